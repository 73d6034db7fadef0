//! `drift train`, `sweep`, `analyze`, `figures` and `reproduce`: options in, progress out.

use std::sync::Arc;

use drift_analysis::layout::check_output_folder;
use drift_analysis::{RunDir, SweepDir};
use drift_runs::reproduce::{draw, read_tables};
use drift_runs::{check_fresh, load_data, read_config_file, resolve, run_sweep, train_run, Error, Owner, Planned};
use drift_runs::{RunOutcome, SweepPlan};
use drift_train::{RunControl, RunKeys, RunStatus, Shard, Sweep};

use crate::args::{AnalyzeArgs, FiguresArgs, ReproduceArgs, SweepArgs, TrainArgs};
use crate::progress::{Progress, RunsProgress, SweepProgress};
use crate::signals::stop_flag;

fn warn(text: &str) {
    eprintln!("drift: warning: {text}");
}

pub fn train(args: TrainArgs) -> Result<(), Error> {
    let file = match &args.config {
        Some(path) => read_config_file(path)?,
        None => RunKeys::default(),
    };
    let resolved = resolve(args.keys().over(file))?;
    let out = |e: Error| e.for_option("--out");
    check_output_folder(&args.out).map_err(|e| out(e.into()))?;
    let dir = RunDir::new(&args.out);
    check_fresh(&dir, args.resume).map_err(out)?;
    resolved.warnings.iter().for_each(|w| warn(w));
    let data = Arc::new(load_data(&resolved)?);
    data.warnings.iter().for_each(|w| warn(w));
    let run = Planned::new(resolved, data)?;
    let lock = dir.lock().map_err(|e| out(e.into()))?;
    let mut progress = Progress::new(run.resolved.config.epochs, run.train_size());
    let (id, folder) = (run.run_id(), args.out.display());
    match train_run(
        &run,
        &dir,
        &lock,
        Owner::User,
        args.resume,
        &mut progress,
        RunControl { stop: Some(stop_flag()), cores: None },
    )
    .map_err(out)?
    {
        RunOutcome::AlreadyFinished => eprintln!("drift: run {id} in {folder} is already finished"),
        RunOutcome::Trained { summary, resumed_after, warnings } => {
            progress.done(&summary);
            warnings.iter().for_each(|w| warn(w));
            let resumed = resumed_after.map(|e| format!(" (resumed after epoch {e})")).unwrap_or_default();
            let (status, epochs) = (summary.status.as_str(), summary.epochs_done);
            if summary.status == RunStatus::Interrupted {
                return Err(Error::Interrupted(format!(
                    "run {id} stopped after epoch {epochs}; continue it with the same command and --resume"
                )));
            }
            eprintln!("drift: run {id} {status} after {epochs} epochs{resumed}; tables in {folder}");
        }
    }
    Ok(())
}

pub fn sweep(args: SweepArgs) -> Result<(), Error> {
    let file_error = |message: String| Error::File { path: args.file.clone(), line: None, message };
    let text = std::fs::read_to_string(&args.file).map_err(|e| file_error(e.to_string()))?;
    let sweep: Sweep = text.parse().map_err(|e: drift_train::SweepError| file_error(e.to_string()))?;
    let shard = match &args.shard {
        Some(s) => s
            .parse()
            .map_err(|e: drift_train::ShardError| Error::Key { key: "shard".into(), message: e.to_string() })?,
        None => Shard::ALL,
    };
    let origin = args.file.display().to_string();
    let out = SweepDir::new(args.out);
    let plan = SweepPlan { text, origin, sweep, out, shard, resume: args.resume, jobs: args.jobs };
    let outcome = run_sweep(&plan, &SweepProgress::new(), stop_flag())?;
    match outcome.failed.is_empty() {
        true => Ok(()),
        false => Err(Error::RunsFailed(outcome.failed)),
    }
}

pub fn analyze(args: AnalyzeArgs) -> Result<(), Error> {
    let options = drift_analysis::AnalyzeOptions { bins: args.bins, w_bins: args.w_bins };
    let runs = drift_runs::analysis_targets(&args.dir).map_err(|e| e.for_option("DIR"))?;
    let progress = RunsProgress::new(runs.len());
    let analyzed = drift_runs::analyze_runs(&runs, options, |run, outcome| progress.ran(run, outcome))?;
    progress.done(analyzed, runs.len());
    Ok(())
}

pub fn figures(args: FiguresArgs) -> Result<(), Error> {
    let sweep = SweepDir::new(args.dir);
    let tables = read_tables(&sweep, None)?;
    let fig_dir = args.out.unwrap_or_else(|| sweep.figures_dir());
    let drawn = draw(&tables, &fig_dir, sweep.path())?;
    drawn.files.iter().for_each(|f| eprintln!("figures: {}", f.display()));
    drawn.skipped.iter().for_each(|s| eprintln!("figures: skipped {s}"));
    Ok(())
}

pub fn reproduce(args: ReproduceArgs) -> Result<(), Error> {
    let progress = SweepProgress::new();
    let done = drift_runs::reproduce::reproduce(&args.profile, args.out, args.jobs, &progress, stop_flag())?;
    eprintln!("reproduce: {} runs trained now, {} were already finished", done.trained, done.skipped);
    for notice in &done.notices {
        eprintln!("\n!!! {notice}\n");
    }
    eprintln!("reproduce: report in {}", done.report.display());
    match done.failed.is_empty() {
        true => Ok(()),
        false => Err(Error::RunsFailed(done.failed)),
    }
}
