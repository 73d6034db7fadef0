//! A run stopped between two batches and continued from its checkpoint ends with the same bits
//! as a run that never stopped: parameters, and every epoch's losses and accuracies, with every
//! optimiser (whose state travels in the checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};

use drift_data::{synthetic::SyntheticConfig, DatasetSpec, LoadOptions};
use drift_train::{
    train, train_with, EpochRecord, LossMode, Observer, ObserverError, Optimizer, Params, RunControl, RunStatus,
    RunSummary, TrainConfig, TrainState,
};

/// Keeps the records, the last checkpoint and the final parameters; raises `stop` after
/// `stop_after` batches.
struct Recorder<'a> {
    records: Vec<EpochRecord>,
    checkpoint: Option<TrainState>,
    final_params: Option<Params>,
    batches: usize,
    stop_after: usize,
    stop: &'a AtomicBool,
}

impl Observer for Recorder<'_> {
    fn batch(&mut self, _epoch: u32, _done: usize, _total: usize) {
        self.batches += 1;
        if self.batches == self.stop_after {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
    fn epoch(&mut self, record: &EpochRecord, _init: &Params, _current: &Params) -> Result<(), ObserverError> {
        self.records.push(EpochRecord { seconds: 0.0, ..*record });
        Ok(())
    }
    fn checkpoint(&mut self, state: &TrainState) -> Result<(), ObserverError> {
        // Through the bytes, as a resumed process would read it.
        self.checkpoint = Some(TrainState::decode(&state.encode("run"), "run").unwrap());
        Ok(())
    }
    fn finish(&mut self, _s: &RunSummary, _init: &Params, current: &Params) -> Result<(), ObserverError> {
        self.final_params = Some(current.clone());
        Ok(())
    }
}

fn recorder(stop: &AtomicBool, stop_after: usize) -> Recorder<'_> {
    Recorder { records: vec![], checkpoint: None, final_params: None, batches: 0, stop_after, stop }
}

/// A small network of `optimizer` at `lr` for `epochs`, 11 batches of 64 per epoch, two threads.
fn small(optimizer: Optimizer, lr: f64, epochs: u32) -> TrainConfig {
    TrainConfig { width: 24, epochs, seed: 3, batch_size: 64, threads: 2, optimizer, lr, ..TrainConfig::default() }
}

#[test]
fn stopping_anywhere_and_resuming_changes_no_bit() {
    let mut opts = LoadOptions::new(3);
    opts.synthetic = SyntheticConfig { train: 700, test: 200, ..SyntheticConfig::default() };
    let data = drift_data::load(&DatasetSpec::Synthetic, &opts).unwrap();
    let cases = [
        (LossMode::KerasClipped, Optimizer::Sgd, 0.1),
        (LossMode::Logits, Optimizer::Sgd, 0.1),
        (LossMode::KerasClipped, Optimizer::Momentum, 0.05),
        (LossMode::KerasClipped, Optimizer::Adam, 0.005),
    ];
    for (loss, optimizer, lr) in cases {
        let config = TrainConfig { loss, ..small(optimizer, lr, 4) };
        let never = AtomicBool::new(false);
        let mut whole = recorder(&never, 0);
        train(&config, &data, &mut whole).unwrap();
        // 11 batches per epoch: stop at an epoch boundary, mid-epoch, and twice in a row.
        for stops in [vec![11], vec![5], vec![17, 9]] {
            let mut state = None;
            let mut records = vec![];
            for &at in &stops {
                let stop = AtomicBool::new(false);
                let mut part = recorder(&stop, at);
                let summary =
                    train_with(&config, &data, &mut part, state.take(), RunControl { stop: Some(&stop), cores: None })
                        .unwrap();
                assert_eq!(summary.status, RunStatus::Interrupted);
                let saved = part.checkpoint.as_ref().expect("a checkpoint at the stop");
                assert_eq!(saved.optimizer.optimizer(), optimizer);
                records.extend(part.records);
                state = part.checkpoint;
            }
            let mut rest = recorder(&never, 0);
            let summary = train_with(&config, &data, &mut rest, state, RunControl::default()).unwrap();
            assert_eq!(summary.status, RunStatus::Completed);
            assert_eq!(summary.epochs_done, 4);
            records.extend(rest.records);
            let bits = |p: &Params| {
                p.layers.iter().flat_map(|l| l.w.iter().chain(&l.b).map(|v| v.to_bits())).collect::<Vec<_>>()
            };
            assert_eq!(
                bits(rest.final_params.as_ref().unwrap()),
                bits(whole.final_params.as_ref().unwrap()),
                "{optimizer} {stops:?}"
            );
            assert_eq!(records, whole.records, "{optimizer} {stops:?}: no epoch duplicated or missing");
            assert!(whole.records[4].train_loss < whole.records[0].train_loss, "{optimizer}: it learns");
        }
    }
}

/// A checkpoint of one optimiser cannot continue a run of another (their ids differ too, but
/// the trainer checks the state itself).
#[test]
fn a_checkpoint_of_another_optimizer_is_refused() {
    let mut opts = LoadOptions::new(3);
    opts.synthetic = SyntheticConfig { train: 200, test: 50, ..SyntheticConfig::default() };
    let data = drift_data::load(&DatasetSpec::Synthetic, &opts).unwrap();
    let config = TrainConfig { width: 8, epochs: 2, batch_size: 50, threads: 1, ..TrainConfig::default() };
    let stop = AtomicBool::new(false);
    let mut part = recorder(&stop, 2);
    train_with(&config, &data, &mut part, None, RunControl { stop: Some(&stop), cores: None }).unwrap();
    let adam = TrainConfig { optimizer: Optimizer::Adam, ..config };
    let e = train_with(&adam, &data, &mut recorder(&stop, 0), part.checkpoint, RunControl::default()).unwrap_err();
    assert!(e.to_string().contains("holds sgd state, the run uses adam"), "{e}");
}

/// With a target loss the run ends at the first epoch whose train loss reaches it, with the
/// parameters a run of that many epochs has. It writes no checkpoint of that epoch, so a crash
/// before its tables are written resumes from the epoch before and ends at the same bits.
#[test]
fn a_target_loss_ends_the_run_at_the_first_epoch_reaching_it() {
    let mut opts = LoadOptions::new(3);
    opts.synthetic = SyntheticConfig { train: 700, test: 200, ..SyntheticConfig::default() };
    let data = drift_data::load(&DatasetSpec::Synthetic, &opts).unwrap();
    let bits =
        |p: &Params| p.layers.iter().flat_map(|l| l.w.iter().chain(&l.b).map(|v| v.to_bits())).collect::<Vec<_>>();
    for (optimizer, lr) in [(Optimizer::Sgd, 0.1), (Optimizer::Adam, 0.005)] {
        let config = small(optimizer, lr, 6);
        let never = AtomicBool::new(false);
        let mut whole = recorder(&never, 0);
        train(&config, &data, &mut whole).unwrap();
        let losses: Vec<f64> = whole.records.iter().map(|r| r.train_loss).collect();
        // The loss of epoch 3 as the target: reached exactly there (or before, if it was lower).
        let target = losses[3];
        let expected = (1..=6).find(|&e| losses[e] <= target).unwrap() as u32;
        let to_target = TrainConfig { target_loss: Some(target), ..config.clone() };
        let mut reached = recorder(&never, 0);
        let summary = train(&to_target, &data, &mut reached).unwrap();
        assert_eq!((summary.status, summary.epochs_done), (RunStatus::Completed, expected), "{optimizer}");
        assert_eq!(reached.records[..], whole.records[..=expected as usize], "{optimizer}");
        let mut short = recorder(&never, 0);
        train(&TrainConfig { epochs: expected, ..config.clone() }, &data, &mut short).unwrap();
        assert_eq!(bits(reached.final_params.as_ref().unwrap()), bits(short.final_params.as_ref().unwrap()));
        // Its last checkpoint is of the epoch before the one that ended it.
        let last = reached.checkpoint.take().expect("checkpoints");
        assert_eq!(last.epochs_done, expected - 1, "{optimizer}");
        let mut resumed = recorder(&never, 0);
        let summary = train_with(&to_target, &data, &mut resumed, Some(last), RunControl::default()).unwrap();
        assert_eq!(summary.epochs_done, expected);
        assert_eq!(resumed.records[..], whole.records[expected as usize..=expected as usize]);
        assert_eq!(bits(resumed.final_params.as_ref().unwrap()), bits(short.final_params.as_ref().unwrap()));
    }
}
