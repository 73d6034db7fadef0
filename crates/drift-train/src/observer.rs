//! The hook through which analysis sees a run: read-only access to the initial and current
//! parameters after every epoch. The trainer knows nothing of what observers write.

use crate::checkpoint::TrainState;
use crate::model::Params;

/// What an observer may fail with; the trainer stops and returns it.
pub type ObserverError = Box<dyn std::error::Error + Send + Sync>;

/// The metrics of one epoch, Keras-style. Epoch 0 is a full evaluation before training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRecord {
    pub epoch: u32,
    /// Mean of the batch losses over the epoch, weighted by batch size (what Keras reports),
    /// computed while the weights change; epoch 0: a full evaluation of the training set.
    pub train_loss: f64,
    pub train_acc: f64,
    /// Full evaluation of the test set after the epoch.
    pub test_loss: f64,
    pub test_acc: f64,
    /// Wall-clock seconds of the epoch (training and test evaluation).
    pub seconds: f64,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// All epochs ran (the loss may still have diverged to a plateau: see the analysis).
    Completed,
    /// The loss or the weights became NaN or infinite; training stopped at that epoch.
    Diverged,
    /// Stopped on request (SIGINT, SIGTERM) after a batch, with a checkpoint to continue from.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Diverged => "diverged",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// The end of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub status: RunStatus,
    pub epochs_done: u32,
    pub wall_seconds: f64,
}

/// Called by the trainer (on its thread pool, hence `Send`); every method but `epoch` has a
/// default that does nothing.
pub trait Observer: Send {
    /// Before training, with the initial parameters (after the mask).
    fn start(&mut self, _init: &Params) -> Result<(), ObserverError> {
        Ok(())
    }

    /// After each batch: for progress display only (`samples_done` of `samples` in `epoch`).
    fn batch(&mut self, _epoch: u32, _samples_done: usize, _samples: usize) {}

    /// After epoch 0 (evaluation before training) and after every epoch of training.
    fn epoch(&mut self, record: &EpochRecord, init: &Params, current: &Params) -> Result<(), ObserverError>;

    /// After each epoch's [`Observer::epoch`] (when every table has received that epoch), and
    /// once more when a run is interrupted between batches: the state to continue from.
    fn checkpoint(&mut self, _state: &TrainState) -> Result<(), ObserverError> {
        Ok(())
    }

    /// Once at the end of a completed or diverged run (not of an interrupted one).
    fn finish(&mut self, _summary: &RunSummary, _init: &Params, _current: &Params) -> Result<(), ObserverError> {
        Ok(())
    }
}

/// Forwards every call to each observer in turn.
impl<const N: usize> Observer for [&mut dyn Observer; N] {
    fn start(&mut self, init: &Params) -> Result<(), ObserverError> {
        self.iter_mut().try_for_each(|o| o.start(init))
    }
    fn batch(&mut self, epoch: u32, done: usize, total: usize) {
        self.iter_mut().for_each(|o| o.batch(epoch, done, total))
    }
    fn epoch(&mut self, record: &EpochRecord, init: &Params, current: &Params) -> Result<(), ObserverError> {
        self.iter_mut().try_for_each(|o| o.epoch(record, init, current))
    }
    fn checkpoint(&mut self, state: &TrainState) -> Result<(), ObserverError> {
        self.iter_mut().try_for_each(|o| o.checkpoint(state))
    }
    fn finish(&mut self, summary: &RunSummary, init: &Params, current: &Params) -> Result<(), ObserverError> {
        self.iter_mut().try_for_each(|o| o.finish(summary, init, current))
    }
}

/// The simplest observer: keeps every epoch record (and the final parameters).
#[derive(Debug, Default)]
pub struct History {
    pub records: Vec<EpochRecord>,
    pub final_params: Option<Params>,
}

impl Observer for History {
    fn epoch(&mut self, record: &EpochRecord, _init: &Params, _current: &Params) -> Result<(), ObserverError> {
        self.records.push(*record);
        Ok(())
    }
    fn finish(&mut self, _summary: &RunSummary, _init: &Params, current: &Params) -> Result<(), ObserverError> {
        self.final_params = Some(current.clone());
        Ok(())
    }
}
