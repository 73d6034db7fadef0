//! One run into its folder, as `drift train` and each run of a sweep carry it out: the folder's
//! lock, the rules for what it may already hold, `run.json` before and after, the tables.

use drift_analysis::layout::{RunContents, RunLock, RunRecord};
use drift_analysis::{LayoutError, ResumeError, RunDir, RunWriter, DEFAULT_BINS};
use drift_train::{train_with, Observer, RunControl, RunSummary, TrainState};

use crate::resolve::available_threads;
use crate::{Error, Planned};

/// Who names the folder, which decides what may be done with a folder whose `run.json` is
/// missing or damaged and that has no checkpoint: a sweep's run folder is named by its run id,
/// so it can be started again; a folder the user named cannot be told apart from someone
/// else's files, so it is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    User,
    Sweep,
}

/// What [`train_run`] did.
#[derive(Debug)]
pub enum RunOutcome {
    /// Trained (to the end, diverged, or stopped on request with a checkpoint).
    Trained { summary: RunSummary, resumed_after: Option<u32>, warnings: Vec<String> },
    /// The folder already holds this run, finished.
    AlreadyFinished,
}

/// Refuses, before any work, a folder that already holds something when not resuming: a run is
/// never overwritten. The same rule is applied again under the lock.
pub fn check_fresh(dir: &RunDir, resume: bool) -> Result<(), Error> {
    if !resume && dir.contents()? != RunContents::Empty {
        return Err(LayoutError::NotEmpty { path: dir.path().to_path_buf() }.into());
    }
    Ok(())
}

/// How a run starts in its folder, decided under the lock.
enum Start {
    Fresh,
    /// The checkpoint's state, its writer and the earlier resumes of `run.json`.
    Continue(Box<(TrainState, RunWriter, Vec<serde_json::Value>)>),
    Finished,
}

/// Trains `run` into `dir`, whose lock the caller holds ([`RunDir::lock`]: another process
/// holding it is `Busy`), with `extra` observing too. With `resume`, a checkpoint in the folder is continued (one of another
/// run or version, or one that cannot be read, is refused and nothing is touched) and a finished
/// run is left alone; without it a folder that holds anything is refused. `run.json` is written
/// before (status `running`) and after. Stops between two batches once `control.stop` is set,
/// leaving a checkpoint (status `interrupted`), and takes the cores `control.cores` offers
/// between epochs.
pub fn train_run(
    run: &Planned,
    dir: &RunDir,
    _lock: &RunLock,
    owner: Owner,
    resume: bool,
    extra: &mut dyn Observer,
    control: RunControl<'_>,
) -> Result<RunOutcome, Error> {
    let mut warnings = Vec::new();
    let (mut writer, state, mut resumes) = match start(run, dir, owner, resume, &mut warnings)? {
        Start::Finished => return Ok(RunOutcome::AlreadyFinished),
        Start::Fresh => {
            (RunWriter::create(dir, run.meta.clone(), run.resolved.schedule.clone(), DEFAULT_BINS)?, None, Vec::new())
        }
        Start::Continue(continued) => {
            let (state, writer, resumes) = *continued;
            (writer, Some(state), resumes)
        }
    };
    let resumed_after = state.as_ref().map(|s| s.epochs_done);
    if let Some(after) = resumed_after {
        resumes.push(serde_json::json!({
            "after_epoch": after,
            "threads": effective_threads(run),
            "snapshots": run.resolved.schedule.to_string(),
            "kernel": run.resolved.config.resolved_kernel().as_str(),
            "drift_version": env!("CARGO_PKG_VERSION"),
        }));
    }
    dir.write_record(&record(run, "running", 0, 0.0, &resumes))?;
    let mut observers: [&mut dyn Observer; 2] = [&mut writer, extra];
    let summary = train_with(&run.resolved.config, &run.data, &mut observers, state, control)?;
    dir.write_record(&record(run, summary.status.as_str(), summary.epochs_done, summary.wall_seconds, &resumes))?;
    Ok(RunOutcome::Trained { summary, resumed_after, warnings })
}

fn start(run: &Planned, dir: &RunDir, owner: Owner, resume: bool, warnings: &mut Vec<String>) -> Result<Start, Error> {
    let path = dir.path().to_path_buf();
    let (record, checkpoint) = match dir.contents()? {
        RunContents::Empty => return Ok(Start::Fresh),
        RunContents::Finished if resume => {
            return match dir.read_record() {
                Some(Ok(record)) if record.run_id != run.run_id() => {
                    Err(Error::OtherRun { path, found: record.run_id, expected: run.run_id().to_string() })
                }
                _ => Ok(Start::Finished),
            }
        }
        RunContents::Finished => return Err(LayoutError::NotEmpty { path }.into()),
        RunContents::Started { .. } if !resume => return Err(LayoutError::NotEmpty { path }.into()),
        RunContents::Started { record, checkpoint } => (record, checkpoint),
    };
    let mut resumes = Vec::new();
    match *record {
        Ok(record) if record.run_id != run.run_id() => {
            return Err(Error::OtherRun { path, found: record.run_id, expected: run.run_id().to_string() })
        }
        Ok(record) => resumes = record.resumes,
        // The checkpoint names its run, so it can stand in for a lost record (checked below).
        Err(problem) if checkpoint => warnings.push(format!(
            "{}: {problem}; the checkpoint says which run this is, and it is rewritten",
            dir.record_path().display()
        )),
        Err(problem) if owner == Owner::User => {
            return Err(LayoutError::BadRecord {
                path: dir.record_path(),
                problem: format!(
                "{problem}, and there is no checkpoint: cannot tell which run this folder holds; choose a new folder"
            ),
            }
            .into())
        }
        Err(_) => {}
    }
    if !checkpoint {
        // Stopped before its first checkpoint: nothing to continue from, start again.
        return Ok(Start::Fresh);
    }
    let (writer, state) = RunWriter::resume(dir, run.meta.clone(), run.resolved.schedule.clone(), DEFAULT_BINS)
        .map_err(|e| match e {
            ResumeError::Tables(e) => Error::Tables(e),
            e => Error::Resume(e),
        })?;
    Ok(Start::Continue(Box::new((state, writer, resumes))))
}

fn effective_threads(run: &Planned) -> usize {
    match run.resolved.config.threads {
        0 => available_threads(),
        n => n,
    }
}

fn record(
    run: &Planned,
    status: &str,
    epochs_done: u32,
    wall_seconds: f64,
    resumes: &[serde_json::Value],
) -> RunRecord {
    let (config, data) = (&run.resolved.config, &run.data);
    RunRecord {
        run_id: run.run_id().to_string(),
        status: status.to_string(),
        epochs_done,
        wall_seconds,
        config: serde_json::to_value(config).unwrap_or_default(),
        result_keys: run.meta.result_keys.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect(),
        snapshots: run.resolved.schedule.to_string(),
        bins: DEFAULT_BINS,
        data: serde_json::json!({
            "name": data.name,
            "source": data.source,
            "train_size": run.train_size(),
            "test_size": data.test.len(),
            "input_dim": data.input_dim,
            "classes": data.classes,
            "warnings": data.warnings,
        }),
        provenance: serde_json::json!({
            "drift_version": env!("CARGO_PKG_VERSION"),
            "git_revision": env!("DRIFT_GIT_REVISION"),
            "kernel": config.resolved_kernel().as_str(),
            "threads": effective_threads(run),
            "host_cpus": available_threads(),
        }),
        resumes: resumes.to_vec(),
    }
}
