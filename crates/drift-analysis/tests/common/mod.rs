//! Hand-made run tables whose claim verdicts are known, shared by the claim tests and the
//! report's golden test.
// Each test file uses a part of these.
#![allow(dead_code)]

use drift_analysis::query::HIDDEN_LAYER;
use drift_analysis::read::RunTables;
use drift_analysis::tables::{ConditionalRow, DeviationRow, HistoryRow, RunRow};

/// A run of `width` whose train loss per epoch is `train` (test loss 1.1 × train), whose
/// hidden→hidden mean |Δw| per epoch is `dev`, and whose last epoch has the conditional rows
/// `cond(centre of the bin)` over 20 bins of w0 in [-1, 1].
pub fn run(width: i64, seed: u64, train: &[f64], dev: &[f64], cond: impl Fn(f64) -> (f64, f64, f64, f64)) -> RunTables {
    let epochs = train.len() as i32 - 1;
    let history = train
        .iter()
        .enumerate()
        .map(|(e, &l)| HistoryRow {
            epoch: e as i32,
            train_loss: l,
            train_acc: 0.5,
            test_loss: 1.1 * l,
            test_acc: 0.5,
            seconds: 0.1,
        })
        .collect::<Vec<_>>();
    let deviation = (1..=3)
        .flat_map(|layer| {
            dev.iter().enumerate().map(move |(e, &m)| DeviationRow {
                epoch: e as i32,
                layer,
                kind: "weight",
                n: 100,
                mean: 0.0,
                std: m,
                mean_abs: m,
                rms: m,
                max_abs: 3.0 * m,
                skewness: Some(0.0),
                kurtosis: Some(0.0),
                quantiles: [-2.0 * m, -m, -0.5 * m, 0.0, 0.5 * m, m, 2.0 * m],
                rel_change: Some(m / width as f64),
                frac_beyond_limit: 0.0,
            })
        })
        .collect();
    let conditional = (0..20)
        .map(|b| {
            let (lo, hi) = (-1.0 + 0.1 * b as f64, -0.9 + 0.1 * b as f64);
            let (mean, std, skew, mode) = cond(0.5 * (lo + hi));
            ConditionalRow {
                epoch: epochs,
                layer: HIDDEN_LAYER,
                bin: b,
                w0_lo: lo,
                w0_hi: hi,
                count: 500,
                mean_dw: Some(mean),
                std_dw: Some(std),
                skew_dw: Some(skew),
                kurt_dw: Some(0.0),
                mode_dw: Some(mode),
                w_quantiles: Some([lo, lo, 0.5 * (lo + hi), hi, hi]),
            }
        })
        .collect();
    let (min_train, at) =
        train.iter().enumerate().fold((f64::INFINITY, 0), |b, (e, &l)| if l < b.0 { (l, e) } else { b });
    let history_rows: Vec<HistoryRow> = history;
    let divergence = drift_analysis::divergence_epoch(&history_rows, 10);
    RunTables {
        dir: drift_analysis::RunDir::new("/nonexistent"),
        run_id: format!("w{width}s{seed}"),
        run: RunRow {
            dataset: "fixture".into(),
            train_size: 1000,
            test_size: 100,
            input_dim: 784,
            classes: 10,
            width,
            depth: 2,
            seed,
            lr: 0.1,
            batch_size: 128,
            epochs,
            loss_mode: "keras-clipped".into(),
            init: "glorot-uniform".into(),
            mask: None,
            kernel: "portable".into(),
            input: "raw".into(),
            input_sq_norm: 162.0,
            optimizer: "sgd".into(),
            momentum: None,
            beta1: None,
            beta2: None,
            eps: None,
            target_loss: None,
            status: if divergence.is_some() { "diverged" } else { "completed" }.into(),
            epochs_done: epochs,
            min_train_loss: min_train,
            epoch_min_train_loss: at as i32,
            min_test_loss: 1.1 * min_train,
            epoch_min_test_loss: at as i32,
            divergence_epoch: divergence,
            wall_seconds: 1.0,
        },
        history: history_rows,
        deviation,
        conditional,
        hist2d: vec![],
        spectrum: vec![],
    }
}

/// Typical learning curve reaching `floor`.
pub fn learning(floor: f64) -> Vec<f64> {
    (0..=10).map(|e| floor + (2.3 - floor) * (-(e as f64) / 2.0).exp()).collect()
}

/// Learns, then jumps above the start at epoch 6 and stays on a plateau.
pub fn diverging() -> Vec<f64> {
    vec![2.3, 1.5, 1.0, 0.8, 0.7, 0.65, 16.1, 16.1, 16.1, 16.1, 16.1]
}

pub fn steady_dev(scale: f64) -> Vec<f64> {
    (0..=10).map(|e| scale * (e as f64).sqrt()).collect()
}

/// Follows w0's sign, larger for larger |w0|, peaked at 0, skewed at the edges.
pub fn faithful(c: f64) -> (f64, f64, f64, f64) {
    (0.05 * c, 0.1 + 0.05 * c.abs(), 2.0 * c.abs().powi(2) * c.signum(), 0.0)
}

pub fn refs(runs: &[RunTables]) -> Vec<&RunTables> {
    runs.iter().collect()
}

/// 31 epochs that learn down to 0.3, then from epoch `d` on sit at `after` (16.1: the clip
/// plateau; ln 10: a dead network).
pub fn learn_then(d: usize, after: f64) -> Vec<f64> {
    (0..=30).map(|e| if e >= d { after } else { 0.3 + 2.0 * (-(e as f64) / 3.0).exp() }).collect()
}

/// Mean |Δw| growing by 0.001 per epoch with a step of 0.1 at epoch `e`.
pub fn step_at(e: usize) -> Vec<f64> {
    (0..=30).map(|k| 0.001 * k as f64 + if k >= e { 0.1 } else { 0.0 }).collect()
}
