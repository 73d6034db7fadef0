//! Progress of a run: a bar on a terminal (epoch, losses, accuracy, samples/s, ETA), one plain
//! line per epoch otherwise (logs, CI); the same for a whole sweep.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use drift_analysis::RunDir;
use drift_runs::{AnalysisOutcome, Error, Planned, SweepEvents};
use drift_train::{EpochRecord, Observer, ObserverError, Params, RunSummary, Shard};

pub struct Progress {
    bar: Option<ProgressBar>,
    /// The metrics of the last epoch, kept on the bar when it finishes.
    last: String,
    /// The epoch in progress, as shown in the bar's prefix.
    shown_epoch: u32,
    epochs: u32,
    samples_per_epoch: usize,
    started: Instant,
}

impl Progress {
    pub fn new(epochs: u32, samples_per_epoch: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(u64::from(epochs) * samples_per_epoch as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {msg} · {rate} · ETA {eta}")
                    .expect("valid template")
                    .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} samples/s", state.per_sec());
                    })
                    .progress_chars("=> "),
            );
            bar
        });
        Progress { bar, last: String::new(), shown_epoch: 0, epochs, samples_per_epoch, started: Instant::now() }
    }

    pub fn done(&self, summary: &RunSummary) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message(format!("{} · {}", self.last, summary.status.as_str()));
        }
    }
}

impl Observer for Progress {
    fn batch(&mut self, epoch: u32, samples_done: usize, _samples: usize) {
        if let Some(bar) = &self.bar {
            if epoch != self.shown_epoch {
                self.shown_epoch = epoch;
                bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
            }
            bar.set_position(u64::from(epoch - 1) * self.samples_per_epoch as u64 + samples_done as u64);
        }
    }

    fn epoch(&mut self, r: &EpochRecord, _init: &Params, _current: &Params) -> Result<(), ObserverError> {
        let summary = format!(
            "train loss {:.4} acc {:.4} · test loss {:.4} acc {:.4}",
            r.train_loss, r.train_acc, r.test_loss, r.test_acc
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(summary.clone());
                self.last = summary;
            }
            None => {
                let rate = match r.epoch {
                    0 => "before training".to_string(),
                    _ => format!("{:.0} samples/s", self.samples_per_epoch as f64 / r.seconds),
                };
                let elapsed = self.started.elapsed().as_secs_f64();
                eprintln!("epoch {}/{} {summary} · {rate} · {elapsed:.1} s elapsed", r.epoch, self.epochs);
            }
        }
        Ok(())
    }
}

/// Progress of a sweep: one bar over all runs (weighted by their cost, so the ETA is honest),
/// or one plain line per run started and finished.
pub struct SweepProgress {
    bar: Option<ProgressBar>,
    state: Mutex<SweepCounts>,
    started: Instant,
}

struct SweepCounts {
    done: usize,
    total: usize,
    skipped: usize,
    shard: Shard,
}

impl SweepProgress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% · {msg} · ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        let state = Mutex::new(SweepCounts { done: 0, total: 0, skipped: 0, shard: Shard::ALL });
        SweepProgress { bar, state, started: Instant::now() }
    }

    fn shard_note(&self) -> String {
        match self.state.lock().expect("progress state").shard {
            Shard::ALL => String::new(),
            shard => format!(" (shard {shard})"),
        }
    }

    fn set_prefix(&self) {
        if let Some(bar) = &self.bar {
            let s = self.state.lock().expect("progress state");
            bar.set_prefix(format!("runs {}/{}", s.done, s.total));
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl SweepEvents for SweepProgress {
    fn warning(&self, text: &str) {
        self.line(format!("drift: warning: {text}"));
    }

    fn planned(&self, runs: usize, finished: usize, cost: u64, shard: Shard) {
        *self.state.lock().expect("progress state") = SweepCounts { done: 0, total: runs, skipped: finished, shard };
        if let Some(bar) = &self.bar {
            bar.set_length(cost.max(1));
        }
        eprintln!("sweep{}: {runs} runs to train, {finished} already finished", self.shard_note());
        self.set_prefix();
    }

    fn started<'a>(&'a self, run: &Planned) -> Box<dyn Observer + 'a> {
        let c = &run.resolved.config;
        if self.bar.is_none() {
            eprintln!("sweep: start {} ({}, {} epochs)", run.run_id(), run.label(), c.epochs);
        }
        Box::new(RunTicker {
            progress: self,
            label: run.label(),
            epochs: c.epochs,
            cost_per_epoch: run.cost() / u64::from(c.epochs.max(1)),
            credited: 0,
        })
    }

    fn finished(&self, run: &Planned, summary: &RunSummary) {
        let (done, total) = {
            let mut s = self.state.lock().expect("progress state");
            s.done += 1;
            (s.done, s.total)
        };
        self.set_prefix();
        self.line(format!(
            "sweep: [{done}/{total}] {} {} after {} epochs in {:.1} s",
            run.run_id(),
            summary.status.as_str(),
            summary.epochs_done,
            summary.wall_seconds
        ));
    }

    fn passed(&self, run: &Planned, why: &str) {
        {
            let mut s = self.state.lock().expect("progress state");
            s.total -= 1;
            s.skipped += 1;
        }
        self.set_prefix();
        self.line(format!("sweep: run {} {why}; skipped", run.run_id()));
    }

    fn failed(&self, run: &Planned, error: &Error) {
        self.line(format!("sweep: run {} FAILED: {error}", run.run_id()));
    }

    fn done(&self) {
        let note = self.shard_note();
        let s = self.state.lock().expect("progress state");
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "sweep{note}: {} runs trained in {:.1} s, {} were already finished",
            s.done,
            self.started.elapsed().as_secs_f64(),
            s.skipped
        );
    }
}

/// Moves the sweep's bar for one run.
pub struct RunTicker<'a> {
    progress: &'a SweepProgress,
    label: String,
    epochs: u32,
    cost_per_epoch: u64,
    /// Cost units of this run already added to the bar.
    credited: u64,
}

impl RunTicker<'_> {
    fn credit(&mut self, epoch: u32, fraction: f64) {
        if let Some(bar) = &self.progress.bar {
            let target = (f64::from(epoch.saturating_sub(1)) + fraction) * self.cost_per_epoch as f64;
            let target = target as u64;
            if target > self.credited {
                bar.inc(target - self.credited);
                self.credited = target;
            }
        }
    }
}

impl Observer for RunTicker<'_> {
    fn batch(&mut self, epoch: u32, samples_done: usize, samples: usize) {
        self.credit(epoch, samples_done as f64 / samples.max(1) as f64);
    }

    fn epoch(&mut self, r: &EpochRecord, _init: &Params, _current: &Params) -> Result<(), ObserverError> {
        if let Some(bar) = &self.progress.bar {
            self.credit(r.epoch + 1, 0.0);
            bar.set_message(format!("{} epoch {}/{} test loss {:.4}", self.label, r.epoch, self.epochs, r.test_loss));
        }
        Ok(())
    }

    fn finish(&mut self, _summary: &RunSummary, _init: &Params, _current: &Params) -> Result<(), ObserverError> {
        self.credit(self.epochs + 1, 0.0);
        Ok(())
    }
}

/// Progress of `drift analyze`: a bar over the runs on a terminal, a line per run otherwise.
pub struct RunsProgress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl RunsProgress {
    pub fn new(runs: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(runs as u64), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("analyze [{bar:30}] {pos}/{len} runs · {msg} · ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        RunsProgress { bar, started: Instant::now() }
    }

    pub fn ran(&self, run: &RunDir, outcome: &AnalysisOutcome) {
        let text = match outcome {
            AnalysisOutcome::Analyzed(a) => format!(
                "analyze: run {} · {} snapshots · {} w0 bins, {} w bins",
                a.run_id, a.snapshots, a.bins.w0, a.bins.w
            ),
            AnalysisOutcome::Unfinished => format!("analyze: {} is not finished, left as it is", run.path().display()),
        };
        match &self.bar {
            Some(bar) => {
                bar.set_message(text.trim_start_matches("analyze: ").to_string());
                bar.inc(1);
            }
            None => eprintln!("{text}"),
        }
    }

    pub fn done(&self, analyzed: usize, runs: usize) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!("analyze: {analyzed} of {runs} runs recomputed in {secs:.1} s");
    }
}
