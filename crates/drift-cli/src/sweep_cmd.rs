//! `drift sweep`: the runs of a sweep file (or of one shard of it) into `DIR/runs/<run_id>/`,
//! several at a time, skipping finished runs on `--resume`.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use drift_analysis::write_atomic;
use drift_analysis::CHECKPOINT_FILE;
use drift_data::Dataset;
use drift_train::{RunStatus, Shard, Sweep};

use crate::args::SweepArgs;
use crate::bad_input;
use crate::progress::SweepProgress;
use crate::run::{available_threads, check_writable, load_data, resolve, Planned};

/// What to run and where: a parsed sweep plus the options of `drift sweep`.
pub struct SweepPlan {
    /// The sweep file's text, copied to `DIR/sweep.toml`.
    pub text: String,
    /// Where the sweep came from, for messages.
    pub origin: String,
    pub sweep: Sweep,
    pub out: PathBuf,
    pub shard: Shard,
    pub resume: bool,
    /// Runs trained at the same time (0: chosen from the core count).
    pub jobs: usize,
}

/// The outcome of a sweep: how many runs of the shard were trained now and how many were
/// already finished.
pub struct SweepOutcome {
    /// The ids of this shard's runs (finished or not).
    pub run_ids: Vec<String>,
    pub trained: usize,
    pub skipped: usize,
    pub failed: Vec<String>,
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    let origin = args.file.display().to_string();
    let text = fs::read_to_string(&args.file).map_err(|e| bad_input(format!("{origin}: {e}")))?;
    let sweep: Sweep = text.parse().map_err(|e| bad_input(format!("{origin}: {e}")))?;
    let shard = match &args.shard {
        Some(s) => s.parse().map_err(|e| bad_input(format!("--shard: {e}")))?,
        None => Shard::ALL,
    };
    let plan = SweepPlan { text, origin, sweep, out: args.out, shard, resume: args.resume, jobs: args.jobs };
    let outcome = execute(&plan)?;
    if !outcome.failed.is_empty() {
        anyhow::bail!("{} run(s) failed: {}", outcome.failed.len(), outcome.failed.join("; "));
    }
    Ok(())
}

/// The folder of one run of a sweep.
pub fn run_dir(out: &Path, run_id: &str) -> PathBuf {
    out.join("runs").join(run_id)
}

/// A run is finished once its `runs.parquet` exists: it is the last file a run writes.
fn is_finished(dir: &Path) -> bool {
    dir.join("runs.parquet").is_file()
}

/// Resolves every run of the sweep, loads each data set once, and returns the runs of this
/// shard (a configuration listed twice is run once).
fn plan_runs(plan: &SweepPlan) -> anyhow::Result<Vec<Planned>> {
    let mut data: HashMap<String, Arc<Dataset>> = HashMap::new();
    let mut planned: Vec<Planned> = Vec::new();
    for (i, keys) in plan.sweep.runs.iter().enumerate() {
        let context = |e: String| bad_input(format!("{}: run {} of the sweep: {e}", plan.origin, i + 1));
        let resolved = resolve(keys.clone()).map_err(context)?;
        let data_key = resolved.data_key();
        let dataset = match data.get(&data_key) {
            Some(d) => d.clone(),
            None => {
                let loaded = Arc::new(load_data(&resolved)?);
                data.insert(data_key, loaded.clone());
                loaded
            }
        };
        let run = Planned::new(resolved, dataset).map_err(context)?;
        if !planned.iter().any(|p| p.run_id() == run.run_id()) {
            planned.push(run);
        }
    }
    // Deal the runs out by decreasing cost (ties in sweep order), so shards get similar work.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(&planned[i])));
    let mine: Vec<bool> = {
        let mut mine = vec![false; planned.len()];
        for (rank, &i) in order.iter().enumerate() {
            mine[i] = plan.shard.contains(rank);
        }
        mine
    };
    Ok(planned.into_iter().zip(mine).filter(|(_, m)| *m).map(|(p, _)| p).collect())
}

/// Writes `DIR/sweep.toml`, or checks that the one there is this sweep (shards share it).
fn record_sweep_file(plan: &SweepPlan) -> anyhow::Result<()> {
    let path = plan.out.join("sweep.toml");
    match fs::read_to_string(&path) {
        Ok(existing) if existing == plan.text => Ok(()),
        Ok(_) => Err(bad_input(format!(
            "--out {}: holds a different sweep ({}); use a new folder for a new sweep",
            plan.out.display(),
            path.display()
        ))),
        Err(_) => {
            fs::create_dir_all(plan.out.join("runs"))
                .map_err(|e| bad_input(format!("--out {}: {e}", plan.out.display())))?;
            write_atomic(&path, |w| std::io::Write::write_all(w, plan.text.as_bytes()))?;
            Ok(())
        }
    }
}

/// Estimated cost of a run in multiply-adds, to start long runs first and weigh the ETA.
fn cost(run: &Planned) -> u64 {
    let c = &run.resolved.config;
    let per_sample = run.data.input_dim * c.width + (c.depth - 1) * c.width * c.width + c.width * run.data.classes;
    (3 * per_sample * run.train_size() + per_sample * run.data.test.len()) as u64 * u64::from(c.epochs)
}

/// Runs the sweep's shard: finished runs are skipped with `--resume` (and refused without it),
/// unfinished ones continue from their checkpoint (or start again if they have none).
pub fn execute(plan: &SweepPlan) -> anyhow::Result<SweepOutcome> {
    check_writable("--out", &plan.out)?;
    let runs = plan_runs(plan)?;
    let run_ids = runs.iter().map(|r| r.run_id().to_string()).collect();
    let (mut todo, mut skipped) = (Vec::new(), 0);
    for run in runs {
        let dir = run_dir(&plan.out, run.run_id());
        if dir.exists() && !plan.resume {
            return Err(bad_input(format!(
                "--out {}: run {} already has a folder ({}); add --resume to continue the sweep",
                plan.out.display(),
                run.run_id(),
                dir.display()
            )));
        }
        if is_finished(&dir) {
            skipped += 1;
        } else {
            todo.push(run);
        }
    }
    record_sweep_file(plan)?;
    let cores = available_threads();
    let jobs = if plan.jobs == 0 { cores } else { plan.jobs }.clamp(1, todo.len().max(1));
    let threads_per_run = (cores / jobs).max(1);
    todo.sort_by_key(|r| std::cmp::Reverse(cost(r)));
    let total_cost = todo.iter().map(cost).sum();
    let progress = SweepProgress::new(todo.len(), skipped, total_cost, plan.shard);
    let queue = Mutex::new(VecDeque::from(todo));
    let (trained, busy, failed) = (Mutex::new(0), Mutex::new(0), Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if crate::signals::stopping() {
                    break;
                }
                let Some(mut run) = queue.lock().expect("queue").pop_front() else { break };
                if run.resolved.config.threads == 0 {
                    run.resolved.config.threads = threads_per_run;
                }
                match train_one(&plan.out, &run, &progress) {
                    Ok(Some(())) => *trained.lock().expect("count") += 1,
                    Ok(None) => *busy.lock().expect("count") += 1,
                    Err(e) => {
                        progress.failed(&run, &e);
                        failed.lock().expect("failed").push(format!("{}: {e:#}", run.run_id()));
                    }
                }
            });
        }
    });
    progress.done();
    if crate::signals::stopping() {
        return Err(crate::signals::Interrupted(
            "sweep stopped; finished runs are kept and interrupted ones have checkpoints: continue with the same command and --resume".into(),
        )
        .into());
    }
    let (trained, busy) = (trained.into_inner().expect("count"), busy.into_inner().expect("count"));
    Ok(SweepOutcome { run_ids, trained, skipped: skipped + busy, failed: failed.into_inner().expect("failed") })
}

/// Trains one run of the sweep under its lock, `DIR/locks/<run_id>.lock`: a run that another
/// process holds, or that finished while this one waited, is passed over (`Ok(None)`). The lock
/// is the operating system's (flock), so it goes when its process dies, however it dies.
fn train_one(out: &Path, run: &Planned, progress: &SweepProgress) -> anyhow::Result<Option<()>> {
    let locks = out.join("locks");
    fs::create_dir_all(&locks).map_err(|e| anyhow::anyhow!("{}: {e}", locks.display()))?;
    let lock_path = locks.join(format!("{}.lock", run.run_id()));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            progress.passed(run, "is being trained by another process");
            return Ok(None);
        }
        Err(fs::TryLockError::Error(e)) => anyhow::bail!("{}: cannot lock: {e}", lock_path.display()),
    }
    let dir = run_dir(out, run.run_id());
    if is_finished(&dir) {
        progress.passed(run, "was finished by another process");
        return Ok(None);
    }
    let resume = dir.join(CHECKPOINT_FILE).is_file();
    if !resume {
        // Stopped before its first checkpoint: start again.
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => anyhow::bail!("{}: {e}", dir.display()),
            _ => {}
        }
    }
    let mut ticker = progress.ticker(run, cost(run));
    let summary = run.execute(&dir, &mut ticker, resume)?;
    if summary.status == RunStatus::Interrupted {
        progress.passed(run, &format!("stopped after epoch {} (checkpoint kept)", summary.epochs_done));
        return Ok(None);
    }
    progress.finished(run, &summary);
    Ok(Some(()))
}
