//! Progress of a run: a bar on a terminal (epoch, losses, accuracy, samples/s, ETA), one plain
//! line per epoch otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use drift_train::{EpochRecord, Observer, ObserverError, Params, RunSummary};

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
