//! `drift train`: keys from `--config`, overridden by flags; one run into `--out` with a
//! progress display attached.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use drift_train::RunKeys;

use crate::args::TrainArgs;
use crate::bad_input;
use crate::progress::Progress;
use crate::run::{load_data, resolve, Planned};

fn read_config_file(path: &Path) -> anyhow::Result<RunKeys> {
    let text = fs::read_to_string(path).map_err(|e| bad_input(format!("--config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad_input(format!("--config {}: {}", path.display(), e.message())))
}

/// Refuses an output folder that already holds files: a run is never overwritten.
fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut entries = fs::read_dir(out).map_err(|e| bad_input(format!("--out {}: {e}", out.display())))?;
        if entries.next().is_some() {
            return Err(bad_input(format!(
                "--out {}: folder is not empty; drift never overwrites a run, choose a new folder",
                out.display()
            )));
        }
    }
    Ok(())
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => read_config_file(path)?,
        None => RunKeys::default(),
    };
    let resolved = resolve(args.keys().over(file)).map_err(bad_input)?;
    check_out_dir(&args.out)?;
    let data = Arc::new(load_data(&resolved)?);
    let planned = Planned::new(resolved, data).map_err(bad_input)?;
    let mut progress = Progress::new(planned.resolved.config.epochs, planned.train_size());
    let summary = planned.execute(&args.out, &mut progress)?;
    progress.done(&summary);
    eprintln!(
        "drift: run {} {} after {} epochs; tables in {}",
        planned.run_id(),
        summary.status.as_str(),
        summary.epochs_done,
        args.out.display()
    );
    Ok(())
}
