//! Progress of a run: a bar on a terminal (epoch, losses, accuracy, samples/s, ETA), one plain
//! line per epoch otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use drift_train::{EpochRecord, Observer, ObserverError, Params, RunSummary};

pub struct Progress {
    bar: Option<ProgressBar>,
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
                ProgressStyle::with_template("{prefix} [{bar:30}] {msg} {per_sec} ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Progress { bar, epochs, samples_per_epoch, started: Instant::now() }
    }

    pub fn done(&self, summary: &RunSummary) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message(format!("{} after {} epochs", summary.status.as_str(), summary.epochs_done));
        }
    }
}

impl Observer for Progress {
    fn batch(&mut self, epoch: u32, samples_done: usize, _samples: usize) {
        if let Some(bar) = &self.bar {
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
                bar.set_prefix(format!("epoch {}/{}", r.epoch, self.epochs));
                bar.set_message(summary);
            }
            None => {
                let rate = if r.epoch > 0 { self.samples_per_epoch as f64 / r.seconds } else { 0.0 };
                eprintln!(
                    "epoch {}/{} {summary} · {:.0} samples/s · {:.1} s elapsed",
                    r.epoch,
                    self.epochs,
                    rate,
                    self.started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }
}
