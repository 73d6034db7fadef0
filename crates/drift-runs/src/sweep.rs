//! The sweep executor: every run of a sweep file resolved and checked before the first starts,
//! dealt into shards by cost, trained several at a time under the runs' locks, reported through
//! [`SweepEvents`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use drift_analysis::layout::{check_output_folder, RunContents};
use drift_analysis::{LayoutError, SweepDir};
use drift_data::Dataset;
use drift_train::{Observer, RunControl, RunStatus, RunSummary, Shard, SpareCores, Sweep};

use crate::plan::load_data;
use crate::resolve::{available_threads, resolve};
use crate::run::{train_run, Owner, RunOutcome};
use crate::{Error, Planned};

/// What to run and where.
pub struct SweepPlan {
    /// The sweep file's text, kept as `sweep.toml` in the folder.
    pub text: String,
    /// Where the sweep came from, for messages (a file name, `profile quick`).
    pub origin: String,
    pub sweep: Sweep,
    pub out: SweepDir,
    pub shard: Shard,
    /// Skip finished runs and continue unfinished ones; without it a folder that already holds a
    /// run of the sweep is refused.
    pub resume: bool,
    /// Runs trained at the same time (0: one per core).
    pub jobs: usize,
}

/// What happened to a sweep's shard.
pub struct SweepOutcome {
    /// The ids of this shard's runs (finished or not).
    pub run_ids: Vec<String>,
    pub trained: usize,
    /// Finished before, or taken by another process.
    pub skipped: usize,
    pub failed: Vec<String>,
}

/// What a sweep tells its user as it goes; called from the worker threads.
pub trait SweepEvents: Sync {
    /// A warning about a run's keys or data (said once per run or data set).
    fn warning(&self, text: &str);
    /// `runs` to train now, of total cost `cost` (multiply-adds); `finished` done before.
    fn planned(&self, runs: usize, finished: usize, cost: u64, shard: Shard);
    /// A run starts (or continues); the observer returned watches its epochs.
    fn started<'a>(&'a self, run: &Planned) -> Box<dyn Observer + 'a>;
    fn finished(&self, run: &Planned, summary: &RunSummary);
    /// A run this process does not train after all, and why.
    fn passed(&self, run: &Planned, why: &str);
    fn failed(&self, run: &Planned, error: &Error);
    fn done(&self);
}

/// Resolves every run of the sweep, loads each data set once and checks each run against it and
/// against the machine, so an impossible run stops the sweep before anything starts; returns the
/// runs of this shard (a configuration listed twice is run once).
fn plan_runs(plan: &SweepPlan, events: &dyn SweepEvents) -> Result<Vec<Planned>, Error> {
    let mut data: HashMap<String, Arc<Dataset>> = HashMap::new();
    let mut planned: Vec<Planned> = Vec::new();
    for (i, keys) in plan.sweep.runs.iter().enumerate() {
        let context =
            |source: Error| Error::SweepRun { origin: plan.origin.clone(), index: i + 1, source: Box::new(source) };
        let resolved = resolve(keys.clone()).map_err(context)?;
        let data_key = resolved.data_key();
        let dataset = match data.get(&data_key) {
            Some(d) => d.clone(),
            None => {
                let loaded = Arc::new(load_data(&resolved).map_err(context)?);
                loaded.warnings.iter().for_each(|w| events.warning(w));
                data.insert(data_key, loaded.clone());
                loaded
            }
        };
        resolved.warnings.iter().for_each(|w| events.warning(&format!("run {} of the sweep: {w}", i + 1)));
        let run = Planned::new(resolved, dataset).map_err(context)?;
        if !planned.iter().any(|p| p.run_id() == run.run_id()) {
            planned.push(run);
        }
    }
    // Deal the runs out by decreasing cost (ties in sweep order), so shards get similar work.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(planned[i].cost()));
    let mut mine = vec![false; planned.len()];
    for (rank, &i) in order.iter().enumerate() {
        mine[i] = plan.shard.contains(rank);
    }
    Ok(planned.into_iter().zip(mine).filter(|(_, m)| *m).map(|(p, _)| p).collect())
}

/// Jobs and threads per run for `runs` runs on `cores` cores: one run per core on one thread
/// each unless `jobs` says otherwise; the thread count never changes a result. (Independent
/// runs side by side use the cores better than one run on all of them, which hands work between
/// its threads several times a step; the cores the last runs leave idle go to the runs still
/// training, see [`SpareCores`].)
fn split(jobs: usize, runs: usize, cores: usize) -> (usize, usize) {
    let jobs = if jobs == 0 { cores } else { jobs }.clamp(1, runs.max(1));
    (jobs, (cores / jobs).max(1))
}

/// Runs the sweep's shard: finished runs are skipped with `resume` (and refused without it),
/// unfinished ones continue from their checkpoints (or start again if they have none). A run
/// that fails is reported and the others go on. Stops between batches once `stop` is set.
pub fn run_sweep(plan: &SweepPlan, events: &dyn SweepEvents, stop: &AtomicBool) -> Result<SweepOutcome, Error> {
    check_output_folder(plan.out.path())?;
    let runs = plan_runs(plan, events)?;
    let run_ids = runs.iter().map(|r| r.run_id().to_string()).collect();
    let (mut todo, mut skipped) = (Vec::new(), 0);
    for run in runs {
        let dir = plan.out.run(run.run_id());
        let contents = dir.contents()?;
        if contents != RunContents::Empty && !plan.resume {
            return Err(LayoutError::NotEmpty { path: dir.path().to_path_buf() }.into());
        }
        if contents == RunContents::Finished {
            skipped += 1;
        } else {
            todo.push(run);
        }
    }
    plan.out.record_sweep(&plan.text)?;
    let cores = available_threads();
    let (jobs, threads_per_run) = split(plan.jobs, todo.len(), cores);
    let spare = SpareCores::new(cores);
    todo.sort_by_key(|r| std::cmp::Reverse(r.cost()));
    events.planned(todo.len(), skipped, todo.iter().map(Planned::cost).sum(), plan.shard);
    let queue = Mutex::new(VecDeque::from(todo));
    let (trained, passed, failed) = (Mutex::new(0), Mutex::new(0), Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Some(mut run) = queue.lock().expect("queue").pop_front() else {
                    spare.close();
                    break;
                };
                // A run whose threads the sweep chooses starts on its share of the cores and
                // takes those the last runs leave idle; one with `threads` set keeps them.
                let share = (run.resolved.config.threads == 0).then_some(&spare);
                if run.resolved.config.threads == 0 {
                    run.resolved.config.threads = threads_per_run;
                }
                let control = RunControl { stop: Some(stop), cores: share };
                match train_one(plan, &run, events, control) {
                    Ok(true) => *trained.lock().expect("count") += 1,
                    Ok(false) => *passed.lock().expect("count") += 1,
                    Err(e) => {
                        events.failed(&run, &e);
                        failed.lock().expect("failed").push(format!("{}: {e}", run.run_id()));
                    }
                }
            });
        }
    });
    events.done();
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Interrupted(
            "sweep stopped; finished runs are kept and interrupted ones have checkpoints: continue with the same command and --resume".into(),
        ));
    }
    let (trained, passed) = (trained.into_inner().expect("count"), passed.into_inner().expect("count"));
    Ok(SweepOutcome { run_ids, trained, skipped: skipped + passed, failed: failed.into_inner().expect("failed") })
}

/// Trains one run of the sweep: `Ok(false)` when another process holds it, finished it while
/// this one waited, or it stopped on request.
fn train_one(
    plan: &SweepPlan,
    run: &Planned,
    events: &dyn SweepEvents,
    control: RunControl<'_>,
) -> Result<bool, Error> {
    let dir = plan.out.run(run.run_id());
    let lock = match dir.lock() {
        Err(LayoutError::Busy { .. }) => {
            events.passed(run, "is being trained by another process");
            return Ok(false);
        }
        lock => lock?,
    };
    if dir.is_finished() {
        events.passed(run, "was finished by another process");
        return Ok(false);
    }
    let mut observer = events.started(run);
    match train_run(run, &dir, &lock, Owner::Sweep, true, observer.as_mut(), control)? {
        RunOutcome::AlreadyFinished => {
            events.passed(run, "was finished by another process");
            Ok(false)
        }
        RunOutcome::Trained { summary, warnings, .. } => {
            warnings.iter().for_each(|w| events.warning(w));
            if summary.status == RunStatus::Interrupted {
                events.passed(run, &format!("stopped after epoch {} (checkpoint kept)", summary.epochs_done));
                return Ok(false);
            }
            events.finished(run, &summary);
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn jobs_and_threads_split_the_cores() {
        assert_eq!(split(0, 10, 2), (2, 1), "one run per core");
        assert_eq!(split(0, 1, 2), (1, 2), "a lone run gets both cores");
        assert_eq!(split(1, 10, 2), (1, 2));
        assert_eq!(split(8, 3, 2), (3, 1), "never more jobs than runs");
        assert_eq!(split(0, 0, 4), (1, 4));
    }
}
