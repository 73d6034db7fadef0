//! The optimisers of a sweep compared at matched train loss: settings that differ only in their
//! optimiser (with its hyper-parameters and learning rate) and train every run to one target
//! loss. Each run is compared at the epoch that reached the target, where its last snapshot is.
//! The rule for "stays near its initial weights" is [`NEAR`], fixed before any optimiser was
//! run.

use std::collections::BTreeMap;

use crate::claims::{bin_correlation, bin_shape, BinCorrelation, BinShape};
use crate::query::{comparable, diverged, layer_weights, mean_abs_all_weights, stable_ranks, HIDDEN_LAYER};
use crate::read::RunTables;
use crate::setting::{lr_range, reference_runs, Setting, SettingRuns, STUDY_OPTIMIZER};
use crate::stats::upper_median;

/// An optimiser stays near its initial weights at a width when the median over seeds of the
/// hidden→hidden `rel_change` (‖ΔW‖_F / ‖W0‖_F) at the target loss is at most this: the initial
/// weights are still the larger part of W (for a change uncorrelated with W0, the correlation
/// of W with W0 is then at least 1/√2). It stays near on the data when it does at every width.
pub const NEAR: f64 = 1.0;

/// One run at the epoch that reached the target loss.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchedRun {
    pub run_id: String,
    pub width: i64,
    pub seed: u64,
    /// The epoch that reached the target (the run's last).
    pub epoch: i32,
    pub train_loss: f64,
    /// Mean |Δw| over every weight of the network.
    pub mean_abs: f64,
    /// ‖ΔW‖_F / ‖W0‖_F of the hidden→hidden matrix.
    pub rel_change: f64,
    /// Stable rank of the hidden→hidden ΔW and of its W0, at the last snapshot.
    pub stable_rank: Option<f64>,
    pub stable_rank_w0: Option<f64>,
    /// Share of ‖ΔW‖²_F in the largest singular value (hidden→hidden).
    pub top1_share: Option<f64>,
    /// Claim 3's statistics of the run ([`crate::claims::check_w_vs_w0`]).
    pub shape: Option<BinShape>,
    /// Claim 4's correlations of the run ([`crate::claims::check_moments`]).
    pub correlation: Option<BinCorrelation>,
}

/// A run that did not reach the target loss: its best train loss and its status.
#[derive(Clone, Debug, PartialEq)]
pub struct UnmatchedRun {
    pub run_id: String,
    pub width: i64,
    pub seed: u64,
    pub min_train_loss: f64,
    pub epochs_done: i32,
    pub status: String,
}

/// The runs of one optimiser.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerRuns {
    pub optimizer: String,
    /// `μ 0.9`, `β1 0.9, β2 0.999, ε 0.0000001`; empty for SGD.
    pub hyper_parameters: String,
    /// The learning rate(s) of its runs, as the report writes them.
    pub lr: String,
    pub matched: Vec<MatchedRun>,
    pub unmatched: Vec<UnmatchedRun>,
}

/// Median over seeds of one quantity per width, ascending by width.
pub type PerWidth = Vec<(i64, f64)>;

impl OptimizerRuns {
    /// The matched runs by width, ascending.
    pub fn by_width(&self) -> BTreeMap<i64, Vec<&MatchedRun>> {
        let mut groups: BTreeMap<i64, Vec<&MatchedRun>> = BTreeMap::new();
        for r in &self.matched {
            groups.entry(r.width).or_default().push(r);
        }
        groups
    }

    /// The upper median over seeds of `f` at each width where some run has it.
    pub fn median(&self, f: impl Fn(&MatchedRun) -> Option<f64>) -> PerWidth {
        self.by_width()
            .into_iter()
            .filter_map(|(w, runs)| Some((w, upper_median(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())?)))
            .collect()
    }

    /// The widths at which the median hidden→hidden `rel_change` exceeds [`NEAR`].
    pub fn far_widths(&self) -> PerWidth {
        self.median(|r| Some(r.rel_change)).into_iter().filter(|&(_, v)| v > NEAR).collect()
    }

    /// Whether the optimiser stays near its initial weights ([`NEAR`] at every width); `None`
    /// when no run reached the target.
    pub fn stays_near(&self) -> Option<bool> {
        (!self.matched.is_empty()).then(|| self.far_widths().is_empty())
    }
}

/// The optimisers of one kind of data and training, trained to one target loss.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerComparison {
    /// The data, as a section name says it.
    pub data: String,
    /// File-name part of its figure: the data's and the target's (`fashion-mnist-loss0.1`).
    pub tag: String,
    pub target: f64,
    /// SGD first, then the others by name.
    pub optimizers: Vec<OptimizerRuns>,
}

impl OptimizerComparison {
    /// The ratio of each optimiser's median `f` to SGD's at the same width (`None` without SGD).
    pub fn ratio_to_sgd(
        &self,
        runs: &OptimizerRuns,
        f: impl Fn(&MatchedRun) -> Option<f64> + Copy,
    ) -> Option<PerWidth> {
        let sgd: BTreeMap<i64, f64> =
            self.optimizers.iter().find(|o| o.optimizer == STUDY_OPTIMIZER)?.median(f).into_iter().collect();
        Some(runs.median(f).into_iter().filter_map(|(w, v)| Some((w, v / sgd.get(&w)?))).collect())
    }
}

/// The run at the epoch that reached `target`, or why it is not comparable.
fn matched_run(run: &RunTables, target: f64) -> Result<MatchedRun, UnmatchedRun> {
    let last = run.history.iter().max_by_key(|h| h.epoch);
    let reached = last.filter(|h| h.epoch > 0 && h.train_loss <= target && !diverged(run));
    let unmatched = || UnmatchedRun {
        run_id: run.run_id.clone(),
        width: run.run.width,
        seed: run.run.seed,
        min_train_loss: run.run.min_train_loss,
        epochs_done: run.run.epochs_done,
        status: run.run.status.clone(),
    };
    let Some(last) = reached else { return Err(unmatched()) };
    let hidden = layer_weights(run, HIDDEN_LAYER);
    let at_last = hidden.iter().find(|d| d.epoch == last.epoch);
    let (Some(mean_abs), Some(rel_change)) =
        (mean_abs_all_weights(run, last.epoch), at_last.and_then(|d| d.rel_change))
    else {
        return Err(unmatched());
    };
    let index0 = |matrix: &str| {
        run.spectrum
            .iter()
            .filter(|s| s.layer == HIDDEN_LAYER && s.matrix == matrix && s.index == 0)
            .max_by_key(|s| s.epoch)
    };
    Ok(MatchedRun {
        run_id: run.run_id.clone(),
        width: run.run.width,
        seed: run.run.seed,
        epoch: last.epoch,
        train_loss: last.train_loss,
        mean_abs,
        rel_change,
        stable_rank: stable_ranks(run, HIDDEN_LAYER, "dw").last().map(|r| r.1),
        stable_rank_w0: index0("w0").and_then(|s| s.stable_rank),
        top1_share: index0("dw").and_then(|s| s.top_shares.map(|t| t[0])),
        shape: bin_shape(run),
        correlation: bin_correlation(run),
    })
}

/// The settings to compare: the same data and training but for the optimiser, all with one
/// target loss; each group of two or more optimisers is one comparison.
pub fn compare_optimizers(settings: &[SettingRuns]) -> Vec<OptimizerComparison> {
    let mut groups: BTreeMap<Setting, Vec<&SettingRuns>> = BTreeMap::new();
    for s in settings.iter().filter(|s| s.setting.target_loss.is_some()) {
        // Keyed as if SGD, so that the key's name is the data and training without the optimiser.
        let key = Setting { optimizer: STUDY_OPTIMIZER.into(), hyper_parameters: String::new(), ..s.setting.clone() };
        groups.entry(key).or_default().push(s);
    }
    let mut out = vec![];
    for (key, group) in groups.into_iter().filter(|(_, g)| g.len() >= 2) {
        let Some(target) = key.target_loss.as_deref().and_then(|t| t.parse::<f64>().ok()) else { continue };
        let mut optimizers: Vec<OptimizerRuns> = group
            .iter()
            .map(|s| {
                let (_, runs) = reference_runs(&comparable(&s.runs));
                let lrs = crate::setting::learning_rates(&runs);
                let (matched, unmatched): (Vec<_>, Vec<_>) =
                    runs.iter().map(|r| matched_run(r, target)).partition(Result::is_ok);
                OptimizerRuns {
                    optimizer: s.setting.optimizer.clone(),
                    hyper_parameters: s.setting.hyper_parameters.clone(),
                    lr: lr_range(&lrs),
                    matched: matched.into_iter().filter_map(Result::ok).collect(),
                    unmatched: unmatched.into_iter().filter_map(Result::err).collect(),
                }
            })
            .collect();
        optimizers.sort_by(|a, b| {
            (a.optimizer != STUDY_OPTIMIZER, &a.optimizer).cmp(&(b.optimizer != STUDY_OPTIMIZER, &b.optimizer))
        });
        let tag = format!("{}-loss{target}", key.tag());
        out.push(OptimizerComparison { data: key.data_name(), tag, target, optimizers });
    }
    out
}
