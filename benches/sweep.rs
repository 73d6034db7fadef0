//! Sweep throughput: a fixed small sweep (synthetic data, widths 32 to 1000, three seeds) run
//! the way `drift sweep` runs it, with the default `--jobs` and with each fixed split of the
//! cores, in turns (2 rounds quick, 3 otherwise, the best of each kept), then each of its runs
//! alone; the 2-thread peak probe timed between them.
//!
//! Reports the sweep's useful FLOP/s (the FLOPs of its epochs' products: forward, backward-data
//! but the first layer's, weight gradient, and the test set's forward) as a share of the probe,
//! the share of its runs' time spent in their epochs' training and test passes (the rest: loading
//! data, the epoch-0 evaluation, statistics, snapshots, checkpoints), and its wall time against the sum of its runs' single-run times (each run alone
//! on the machine, as `drift train` would run it). With `DRIFT_BENCH_SWEEP=FILE` (set by `make
//! bench`) the numbers are written to FILE as JSON for the summary.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use drift_analysis::SweepDir;
use drift_benches::peak::{measure_gflops, Isa};
use drift_benches::{quick, train_flops_per_sample};
use drift_runs::{run_sweep, Error, Planned, SweepEvents, SweepPlan};
use drift_train::{EpochRecord, Observer, ObserverError, Params, RunSummary, Shard, Sweep};

/// The benchmark's sweep: mixed widths so that narrow and wide runs share the machine, as in the
/// study's profiles; short, so that one pass takes seconds. One snapshot per run, as the study's
/// profiles take one every 50-100 epochs at most.
const SWEEP: &str = r#"
description = "synthetic data (10 000 training samples), widths 32-1000, three seeds, 4 epochs, one snapshot"
dataset = "synthetic"
train-size = 10000
epochs = 4
lr = 0.1
snapshots = "last"

[[grid]]
width = [32, 128, 512, 1000]
seed = [0, 1, 2]
"#;

/// Silent events that keep the useful FLOPs of what is trained and the seconds its epochs spent
/// training and evaluating.
#[derive(Default)]
struct Quiet {
    flops: AtomicU64,
    epoch_seconds: Mutex<f64>,
}

/// The FLOPs of a run's epochs: its training products per training sample, and per test sample
/// the forward (2 per weight).
fn useful_flops(run: &Planned) -> u64 {
    let (c, data) = (&run.resolved.config, &run.data);
    let sizes = Params::sizes(data.input_dim, c.width, c.depth, data.classes);
    let weights: u64 = sizes.windows(2).map(|p| (p[0] * p[1]) as u64).sum();
    let per_epoch = run.train_size() as u64 * train_flops_per_sample(&sizes) + data.test.len() as u64 * 2 * weights;
    per_epoch * u64::from(c.epochs)
}

/// Adds each trained epoch's seconds (its batches and test evaluation) to a total.
struct Tally<'a>(&'a Mutex<f64>);

impl Observer for Tally<'_> {
    fn epoch(&mut self, record: &EpochRecord, _init: &Params, _current: &Params) -> Result<(), ObserverError> {
        if record.epoch > 0 {
            *self.0.lock().expect("tally") += record.seconds;
        }
        Ok(())
    }
}

impl SweepEvents for Quiet {
    fn warning(&self, _text: &str) {}
    fn planned(&self, _runs: usize, _finished: usize, _cost: u64, _shard: Shard) {}
    fn started<'a>(&'a self, run: &Planned) -> Box<dyn Observer + 'a> {
        self.flops.fetch_add(useful_flops(run), Ordering::Relaxed);
        Box::new(Tally(&self.epoch_seconds))
    }
    fn finished(&self, _run: &Planned, _summary: &RunSummary) {}
    fn passed(&self, run: &Planned, why: &str) {
        panic!("sweep bench: run {} {why}", run.run_id());
    }
    fn failed(&self, run: &Planned, error: &Error) {
        panic!("sweep bench: run {} failed: {error}", run.run_id());
    }
    fn done(&self) {}
}

/// One pass of a sweep: wall seconds, useful FLOPs, and the seconds its runs' epochs took.
struct Pass {
    seconds: f64,
    flops: u64,
    epoch_seconds: f64,
}

/// `sweep` run into a fresh folder with `jobs` (0: the default).
fn timed(sweep: Sweep, jobs: usize) -> Pass {
    let dir = tempfile::tempdir().expect("temporary folder");
    let plan = SweepPlan {
        text: SWEEP.to_string(),
        origin: "sweep bench".into(),
        sweep,
        out: SweepDir::new(dir.path().join("sweep")),
        shard: Shard::ALL,
        resume: false,
        jobs,
    };
    let events = Quiet::default();
    let start = Instant::now();
    let outcome = run_sweep(&plan, &events, &AtomicBool::new(false)).expect("sweep");
    let seconds = start.elapsed().as_secs_f64();
    assert!(outcome.failed.is_empty(), "sweep bench: {:?}", outcome.failed);
    let epoch_seconds = events.epoch_seconds.into_inner().expect("tally");
    Pass { seconds, flops: events.flops.into_inner(), epoch_seconds }
}

fn main() {
    let sweep: Sweep = SWEEP.parse().expect("the bench's sweep");
    let cores = drift_runs::available_threads();
    let isa = [Isa::Avx512, Isa::Avx2].into_iter().find(|isa| isa.available());
    let mut peak = 0.0f64;
    let mut probe = || {
        if let Some(isa) = isa {
            peak = peak.max(measure_gflops(isa, 2));
        }
    };
    // Policies: the default, then every fixed number of jobs (each run then gets cores / jobs
    // threads), the probe between them.
    let mut policies = vec![("default --jobs".to_string(), 0)];
    policies
        .extend((1..=cores).map(|jobs| (format!("--jobs {jobs} ({jobs} × {} threads)", (cores / jobs).max(1)), jobs)));
    let rounds = if quick() { 2 } else { 3 };
    let mut best: Vec<Option<Pass>> = policies.iter().map(|_| None).collect();
    for _ in 0..rounds {
        for ((name, jobs), best) in policies.iter().zip(&mut best) {
            probe();
            let pass = timed(sweep.clone(), *jobs);
            println!(
                "sweep {name}: {:.2} s, {:.1} useful GFLOP/s",
                pass.seconds,
                pass.flops as f64 / pass.seconds / 1e9
            );
            if best.as_ref().is_none_or(|b| pass.seconds < b.seconds) {
                *best = Some(pass);
            }
        }
    }
    let best: Vec<Pass> = best.into_iter().map(|b| b.expect("a pass per policy")).collect();
    let flops = best[0].flops;
    // Each run alone, with every core, as `drift train` runs it.
    probe();
    let single: f64 =
        sweep.runs.iter().map(|keys| timed(Sweep { description: None, runs: vec![keys.clone()] }, 0).seconds).sum();
    probe();
    println!("sum of single-run times: {single:.2} s; peak probe (2 threads) {peak:.1} GFLOP/s");
    if let Some(path) = std::env::var_os("DRIFT_BENCH_SWEEP") {
        let rows: Vec<String> = policies
            .iter()
            .zip(&best)
            .map(|((name, jobs), p)| {
                // The runs trained side by side: the default trains one per core.
                let jobs = if *jobs == 0 { cores.min(sweep.runs.len()) } else { *jobs };
                format!(
                    r#"{{"policy": "{name}", "jobs": {jobs}, "wall_seconds": {:.4}, "epoch_seconds": {:.4}}}"#,
                    p.seconds, p.epoch_seconds
                )
            })
            .collect();
        let description = sweep.description.as_deref().unwrap_or("").replace('"', "'");
        let json = format!(
            r#"{{"description": "{description}", "cores": {cores}, "flops": {flops}, "single_seconds": {single:.4}, "peak_gflops": {peak:.1}, "sweeps": [{}]}}"#,
            rows.join(", ")
        );
        if let Err(e) = std::fs::write(&path, json + "\n") {
            eprintln!("sweep bench: cannot write {}: {e}", path.to_string_lossy());
            std::process::exit(2);
        }
    }
}
