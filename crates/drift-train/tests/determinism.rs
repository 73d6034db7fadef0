//! A whole training run is a pure function of its configuration: bit-identical parameters and
//! identical losses for 1 and 2 threads, and when a run's threads change between epochs.

use drift_data::{synthetic::SyntheticConfig, Dataset, DatasetSpec, LoadOptions};
use drift_kernels::Kernel;
use drift_train::{
    train, train_with, EpochRecord, History, Init, Observer, ObserverError, Optimizer, Params, RunControl, RunStatus,
    SpareCores, TrainConfig,
};

fn run(threads: usize, loss: drift_train::LossMode, kernel: Kernel) -> History {
    run_with(threads, TrainConfig { loss, kernel, ..TrainConfig::default() })
}

/// `base`'s loss, kernel, optimiser and initialisation on the fixed data and network of this test.
fn run_with(threads: usize, base: TrainConfig) -> History {
    let (data, config) = setup(threads, base);
    let mut history = History::default();
    let summary = train(&config, &data, &mut history).expect("training runs");
    assert_eq!(summary.status, RunStatus::Completed);
    history
}

/// The fixed data of this test, and its network with `base`'s other settings.
fn setup(threads: usize, base: TrainConfig) -> (Dataset, TrainConfig) {
    let mut opts = LoadOptions::new(9);
    opts.synthetic = SyntheticConfig { train: 900, test: 300, ..SyntheticConfig::default() };
    let data = drift_data::load(&DatasetSpec::Synthetic, &opts).expect("synthetic data");
    // batch 100 with 900 samples, and a width above the GEMM row block: several parallel blocks.
    let config = TrainConfig {
        dataset: "synthetic".into(),
        width: 80,
        depth: 3,
        epochs: 3,
        seed: 9,
        batch_size: 100,
        train_size: Some(850), // last batch partial (50 rows)
        threads,
        ..base
    };
    (data, config)
}

#[test]
fn one_and_two_threads_give_identical_bits_with_every_kernel() {
    let losses = [drift_train::LossMode::KerasClipped, drift_train::LossMode::Logits];
    for (kernel, loss) in Kernel::available().into_iter().flat_map(|k| losses.map(|l| (k, l))) {
        let (one, two) = (run(1, loss, kernel), run(2, loss, kernel));
        let bits = |h: &History| -> Vec<u32> {
            h.final_params
                .as_ref()
                .unwrap()
                .layers
                .iter()
                .flat_map(|l| l.w.iter().chain(&l.b))
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&one), bits(&two), "{kernel} {loss}: parameters differ between 1 and 2 threads");
        for (a, b) in one.records.iter().zip(&two.records) {
            assert_eq!(
                (a.train_loss.to_bits(), a.test_loss.to_bits(), a.train_acc, a.test_acc),
                (b.train_loss.to_bits(), b.test_loss.to_bits(), b.train_acc, b.test_acc),
                "{kernel} {loss}: epoch {}",
                a.epoch
            );
        }
        assert!(one.records[3].train_loss < one.records[0].train_loss, "{loss}: it learns");
    }
}

fn bits(h: &History) -> Vec<u32> {
    h.final_params.as_ref().unwrap().layers.iter().flat_map(|l| l.w.iter().chain(&l.b)).map(|v| v.to_bits()).collect()
}

#[test]
fn every_optimizer_and_init_gives_identical_bits_for_one_and_two_threads() {
    let cases = [
        (Optimizer::Momentum, Init::HeNormal, 0.05),
        (Optimizer::Adam, Init::LecunNormal, 0.003),
        (Optimizer::Adam, Init::GlorotUniform, 0.003),
    ];
    for (optimizer, init, lr) in cases {
        let config = TrainConfig { optimizer, init, lr, ..TrainConfig::default() };
        let (one, two) = (run_with(1, config.clone()), run_with(2, config));
        assert_eq!(bits(&one), bits(&two), "{optimizer} {init}: parameters differ between 1 and 2 threads");
        let losses =
            |h: &History| h.records.iter().map(|r| (r.train_loss.to_bits(), r.test_loss.to_bits())).collect::<Vec<_>>();
        assert_eq!(losses(&one), losses(&two), "{optimizer} {init}");
        assert!(one.records[3].train_loss < one.records[0].train_loss, "{optimizer} {init}: it learns");
    }
}

#[test]
fn a_huge_learning_rate_diverges_without_panicking() {
    let mut opts = LoadOptions::new(1);
    opts.synthetic = SyntheticConfig { train: 512, test: 128, ..SyntheticConfig::default() };
    let data = drift_data::load(&DatasetSpec::Synthetic, &opts).unwrap();
    for loss in [drift_train::LossMode::KerasClipped, drift_train::LossMode::Logits] {
        let config = TrainConfig { width: 64, epochs: 20, lr: 1e6, threads: 1, loss, ..TrainConfig::default() };
        let mut history = History::default();
        let summary = train(&config, &data, &mut history).unwrap();
        let last = history.records.last().unwrap();
        // Either NaN/inf stopped the run, or the loss got stuck far above the start.
        assert!(
            summary.status == RunStatus::Diverged || last.train_loss > history.records[0].train_loss,
            "{loss}: {summary:?}, last {last:?}"
        );
        if summary.status == RunStatus::Diverged {
            assert_eq!(summary.epochs_done, last.epoch);
        }
    }
}

/// A run of a sweep that takes the cores other runs left idle, between two epochs, ends at the
/// bits of the run that kept one thread, and gives every core back at the end.
#[test]
fn taking_spare_cores_between_epochs_keeps_the_bits() {
    let fixed = run_with(1, TrainConfig::default());
    let (data, config) = setup(1, TrainConfig::default());
    // Three cores: this run holds one, a finished run has left two idle and the sweep is closed.
    let cores = SpareCores::new(3);
    cores.close();
    let (mut history, mut threads) = (History::default(), Threads::default());
    let control = RunControl { stop: None, cores: Some(&cores) };
    let mut observers: [&mut dyn Observer; 2] = [&mut history, &mut threads];
    let summary = train_with(&config, &data, &mut observers, None, control).expect("training runs");
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(threads.0, [1, 1, 3, 3], "epoch 0 and 1 on one thread, then on three");
    assert_eq!(bits(&history), bits(&fixed), "parameters differ after taking cores");
    assert_eq!(history.records.len(), fixed.records.len());
    assert_eq!(cores.idle(), 3, "the run gives back the cores it took");
}

/// The threads of the pool each epoch's observer call runs on.
#[derive(Default)]
struct Threads(Vec<usize>);

impl Observer for Threads {
    fn epoch(&mut self, _record: &EpochRecord, _init: &Params, _current: &Params) -> Result<(), ObserverError> {
        self.0.push(rayon::current_num_threads());
        Ok(())
    }
}
