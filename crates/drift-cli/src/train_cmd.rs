//! `drift train`: keys from `--config`, overridden by flags; one run into `--out` with a
//! progress display attached.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use drift_train::{RunKeys, RunStatus};

use crate::args::TrainArgs;
use crate::bad_input;
use crate::progress::Progress;
use crate::run::{check_writable, load_data, resolve, Planned};
use crate::signals::Interrupted;

fn read_config_file(path: &Path) -> anyhow::Result<RunKeys> {
    let text = fs::read_to_string(path).map_err(|e| bad_input(format!("--config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        // Name the line at fault: serde's message alone does not say which key has a bad value.
        let at = e.span().map(|span| {
            let line = text[..span.start].matches('\n').count();
            format!(" (line {}: `{}`)", line + 1, text.lines().nth(line).unwrap_or("").trim())
        });
        bad_input(format!("--config {}: {}{}", path.display(), e.message(), at.unwrap_or_default()))
    })
}

/// Refuses an output folder that already holds files: a run is never overwritten.
fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut entries = fs::read_dir(out).map_err(|e| bad_input(format!("--out {}: {e}", out.display())))?;
        if entries.next().is_some() {
            return Err(bad_input(format!(
                "--out {}: folder is not empty; drift never overwrites a run: choose a new folder, or add --resume to continue the run in it",
                out.display()
            )));
        }
    }
    Ok(())
}

/// The run id recorded in `DIR/run.json`, if there is one.
fn recorded_run_id(out: &Path) -> Option<String> {
    let text = fs::read_to_string(out.join("run.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("run_id")?.as_str().map(str::to_string)
}

/// `--resume`: the folder must hold this run (or nothing). Returns false when the run is
/// already finished.
fn check_resumable(out: &Path, run_id: &str) -> anyhow::Result<bool> {
    if !out.exists() {
        return Ok(true);
    }
    if !out.is_dir() {
        return Err(bad_input(format!("--out {}: is not a folder", out.display())));
    }
    match recorded_run_id(out) {
        Some(id) if id != run_id => Err(bad_input(format!(
            "--out {}: holds run {id}, another configuration than this one ({run_id}); resume it with its own options or choose a new folder",
            out.display()
        ))),
        Some(_) => Ok(!out.join("runs.parquet").is_file()),
        None => {
            // Stopped before its first checkpoint: nothing to continue from.
            check_out_dir(out).map(|()| true)
        }
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => read_config_file(path)?,
        None => RunKeys::default(),
    };
    let resolved = resolve(args.keys().over(file)).map_err(bad_input)?;
    if !args.resume {
        check_out_dir(&args.out)?;
    }
    check_writable("--out", &args.out)?;
    let data = Arc::new(load_data(&resolved)?);
    let planned = Planned::new(resolved, data).map_err(bad_input)?;
    if args.resume && !check_resumable(&args.out, planned.run_id())? {
        eprintln!("drift: run {} in {} is already finished", planned.run_id(), args.out.display());
        return Ok(());
    }
    let mut progress = Progress::new(planned.resolved.config.epochs, planned.train_size());
    let summary = planned.execute(&args.out, &mut progress, args.resume)?;
    progress.done(&summary);
    if summary.status == RunStatus::Interrupted {
        return Err(Interrupted(format!(
            "run {} stopped after epoch {}; continue it with the same command and --resume",
            planned.run_id(),
            summary.epochs_done
        ))
        .into());
    }
    eprintln!(
        "drift: run {} {} after {} epochs; tables in {}",
        planned.run_id(),
        summary.status.as_str(),
        summary.epochs_done,
        args.out.display()
    );
    Ok(())
}
