//! The six claims of the study, checked against the tables of a sweep. Every verdict is computed
//! here from the tables, by a rule fixed in the doc comment of its check, and comes with the
//! numbers it was judged on as typed evidence ([`Evidence`], one type per claim); the report
//! ([`crate::report`]) says them in words. The quantities are read by [`crate::query`], which the
//! figures share.
//!
//! The hidden→hidden matrix is layer 2; a claim that needs it is not testable on depth-1 runs.

use std::collections::BTreeMap;

use crate::query::{
    bin_centre, by_width, comparable, deviation_at_levels, diverged, jump_records, last_conditional, populated,
    rel_change_fit, JumpRecord, VISIBLE,
};
use crate::read::RunTables;
use crate::regimes::{classify_run, phase_map, After, Pattern, PhaseMap, Regime, COINCIDENT_SHARE};
use crate::setting::{learning_rates, reference_runs};
use crate::stats::{mean_std, pearson, positive_share, spearman, weighted_median};

pub use crate::onset::{check_onset, onsets, Onset};
/// The mask contrast at a snapshot, as [`check_mask`] takes the traces.
pub use crate::query::MaskPoint;

/// The outcome of one claim check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Supported,
    NotSupported,
    /// The runs do not contain what the check needs (no masked run, a single width, …).
    NotTestable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::NotSupported => "not supported",
            Verdict::NotTestable => "not testable with these runs",
        }
    }

    fn from_holds(holds: bool) -> Verdict {
        if holds {
            Verdict::Supported
        } else {
            Verdict::NotSupported
        }
    }
}

/// One claim, its verdict and the numbers behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimResult {
    /// 1–6, as numbered in the study summary.
    pub number: usize,
    pub title: &'static str,
    /// What the study claims.
    pub statement: &'static str,
    pub verdict: Verdict,
    /// The learning rate the runs were taken at, when the check saw one learning rate of several.
    pub subset: Option<LrSubset>,
    pub evidence: Evidence,
}

/// The runs of one learning rate out of a setting's several.
#[derive(Clone, Debug, PartialEq)]
pub struct LrSubset {
    pub lr: f64,
    /// Every learning rate of the setting, ascending.
    pub of: Vec<f64>,
}

/// The numbers behind a verdict, one variant per claim.
#[derive(Clone, Debug, PartialEq)]
pub enum Evidence {
    Mask(MaskEvidence),
    Regimes(RegimesEvidence),
    WVsW0(WVsW0Evidence),
    Moments(MomentsEvidence),
    Evolution(EvolutionEvidence),
    Width(WidthEvidence),
}

impl Evidence {
    /// The number of the claim this evidence is for.
    pub fn claim(&self) -> usize {
        match self {
            Evidence::Mask(_) => 1,
            Evidence::Regimes(_) => 2,
            Evidence::WVsW0(_) => 3,
            Evidence::Moments(_) => 4,
            Evidence::Evolution(_) => 5,
            Evidence::Width(_) => 6,
        }
    }
}

fn result(verdict: Verdict, evidence: Evidence) -> ClaimResult {
    let number = evidence.claim();
    let (title, statement) = CLAIMS[number - 1];
    ClaimResult { number, title, statement, verdict, subset: None, evidence }
}

/// Titles and statements of the six claims, in the study's order.
pub const CLAIMS: [(&str, &str); 6] = [
    (
        "Mask persistence",
        "A letter masked into the hidden→hidden matrix stays visible after training in a stable, wide network, and vanishes when an unstable network's train loss jumps up.",
    ),
    (
        "Regimes",
        "Wide networks train well, narrow ones poorly, and mid widths first learn and then diverge to a loss plateau (untrainability).",
    ),
    (
        "Final vs initial weight",
        "The distribution of w_f given w_i peaks at w_f = w_i, close to its median, and is skewed for large |w_i|.",
    ),
    (
        "Deviation against initial weight",
        "Weights that start with larger |w_i| receive larger updates, in the direction of their sign.",
    ),
    (
        "Evolution",
        "The deviations increase abruptly at the same time as the abrupt increase of the loss (the crossover to untrainability).",
    ),
    ("Width", "To reach a given loss, wider networks move their weights less from their initial values than narrower ones."),
];

/// Claim 1: the masked runs' mask contrast.
#[derive(Clone, Debug, PartialEq)]
pub enum MaskEvidence {
    /// No masked run that kept training (none with `mask` set, or all diverged).
    NoStableRun,
    Tested {
        stable: StableMask,
        /// The masked runs that learned and then diverged (the study's crossover).
        unstable: Vec<UnstableMask>,
        /// Masked runs that collapsed early or died, left out of the second half.
        other_diverged: usize,
    },
}

/// The widest masked run that did not diverge.
#[derive(Clone, Debug, PartialEq)]
pub struct StableMask {
    pub run_id: String,
    pub width: i64,
    pub seed: u64,
    /// The contrast at the first snapshot (epoch 0).
    pub initial: f64,
    /// The contrast at the last snapshot.
    pub last: MaskPoint,
}

/// A masked run that learned and then diverged, with the snapshots around its divergence.
#[derive(Clone, Debug, PartialEq)]
pub struct UnstableMask {
    pub run_id: String,
    pub width: i64,
    pub lr: f64,
    pub seed: u64,
    pub divergence: i32,
    /// The last snapshot before the divergence epoch.
    pub before: Option<MaskPoint>,
    /// The first snapshot at or after it.
    pub after: Option<MaskPoint>,
    /// The first snapshot epoch with the contrast below [`VISIBLE`].
    pub vanished_at: Option<i32>,
}

impl UnstableMask {
    /// The letter was visible just before the divergence and is gone just after it.
    pub fn vanishes_at_divergence(&self) -> bool {
        matches!((self.before, self.after), (Some(b), Some(a)) if b.visibility >= VISIBLE && a.visibility < VISIBLE)
    }
}

/// Claim 1. Stable part: the widest masked run that did not diverge must keep a contrast of at
/// least [`VISIBLE`] at its last snapshot. Unstable part (if a masked run diverged): its contrast
/// must fall below [`VISIBLE`] in the snapshot interval that contains its divergence epoch.
/// Not testable without a masked, non-diverged run with snapshots.
pub fn check_mask(runs: &[&RunTables], masks: &BTreeMap<String, Vec<MaskPoint>>) -> ClaimResult {
    let masked: Vec<_> = runs.iter().filter(|r| r.run.mask.is_some() && masks.contains_key(&r.run_id)).collect();
    let stable = masked.iter().filter(|r| !diverged(r)).max_by_key(|r| (r.run.width, std::cmp::Reverse(r.run.seed)));
    let Some(stable) = stable else {
        return result(Verdict::NotTestable, Evidence::Mask(MaskEvidence::NoStableRun));
    };
    let trace = &masks[&stable.run_id];
    let last = trace.last().copied().expect("a mask trace has points");
    let stable_mask = StableMask {
        run_id: stable.run_id.clone(),
        width: stable.run.width,
        seed: stable.run.seed,
        initial: trace[0].visibility,
        last,
    };
    let unstable: Vec<UnstableMask> = masked
        .iter()
        .filter(|r| classify_run(r).is_some_and(|d| d.is_crossover()))
        .map(|run| {
            let d = run.run.divergence_epoch.expect("diverged");
            let trace = &masks[&run.run_id];
            UnstableMask {
                run_id: run.run_id.clone(),
                width: run.run.width,
                lr: run.run.lr,
                seed: run.run.seed,
                divergence: d,
                before: trace.iter().rev().find(|p| p.epoch < d).copied(),
                after: trace.iter().find(|p| p.epoch >= d).copied(),
                vanished_at: trace.iter().find(|p| p.visibility < VISIBLE).map(|p| p.epoch),
            }
        })
        .collect();
    let other_diverged = masked.iter().filter(|r| diverged(r)).count() - unstable.len();
    let holds = last.visibility >= VISIBLE && unstable.iter().all(UnstableMask::vanishes_at_divergence);
    let evidence = MaskEvidence::Tested { stable: stable_mask, unstable, other_diverged };
    result(Verdict::from_holds(holds), Evidence::Mask(evidence))
}

/// Claim 2: the phase map and where its untrainable cells lie.
#[derive(Clone, Debug, PartialEq)]
pub enum RegimesEvidence {
    NoUnmaskedRuns,
    /// No learning rate has three or more widths; the widths there are.
    TooFewWidths {
        widths: Vec<i64>,
    },
    Map(Box<RegimeMap>),
}

/// The phase map of the setting, each testable learning rate by its [`Pattern`], and
/// trainability against width at the reference learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct RegimeMap {
    pub map: PhaseMap,
    /// The learning rates with three or more widths.
    pub testable: Vec<f64>,
    /// The learning rates with the study's pattern ([`Pattern::Mid`]), each with its
    /// untrainable widths.
    pub mid: Vec<(f64, Vec<i64>)>,
    /// The learning rates untrainable at every width ([`Pattern::All`]).
    pub all: Vec<f64>,
    /// … at the widest widths ([`Pattern::Wide`]).
    pub wide: Vec<f64>,
    /// … at the narrowest widths only ([`Pattern::Narrow`]).
    pub narrow: Vec<f64>,
    pub reference_lr: f64,
    /// Spearman correlation of width and the seed-mean minimum train loss at `reference_lr`
    /// (negative: wider trains better).
    pub width_vs_min_loss: Option<f64>,
}

/// Claim 2, on the phase map of the setting (every learning rate, unmasked runs; the cell rules
/// are in [`crate::regimes`]). At each learning rate with three or more widths the untrainable
/// cells form a [`Pattern`]. Supported when some learning rate shows the study's pattern,
/// untrainable mid widths with trainable narrower and wider ones ([`Pattern::Mid`]); otherwise
/// not supported, and the finding says which other picture the runs give (no untrainable regime;
/// untrainable at all widths, or at the widest, from some step size on). Not testable without a
/// learning rate that has three widths.
pub fn check_regimes(runs: &[&RunTables]) -> ClaimResult {
    let Some(map) = phase_map(runs) else {
        return result(Verdict::NotTestable, Evidence::Regimes(RegimesEvidence::NoUnmaskedRuns));
    };
    let testable: Vec<f64> = map.lrs.iter().copied().filter(|&lr| map.row(lr).len() >= 3).collect();
    if testable.is_empty() {
        let evidence = RegimesEvidence::TooFewWidths { widths: map.widths.clone() };
        return result(Verdict::NotTestable, Evidence::Regimes(evidence));
    }
    let with = |p: Pattern| testable.iter().copied().filter(|&lr| map.pattern(lr) == p).collect::<Vec<f64>>();
    let mid = with(Pattern::Mid)
        .into_iter()
        .map(|lr| {
            let lost = map.row(lr).iter().filter(|c| c.regime == Regime::Untrainable).map(|c| c.width).collect();
            (lr, lost)
        })
        .collect::<Vec<_>>();
    // Trainability against width at the reference learning rate, as the study compares it.
    let (reference_lr, reference) = reference_runs(runs);
    let groups = by_width(&comparable(&reference));
    let widths: Vec<f64> = groups.keys().map(|&w| w as f64).collect();
    let mins: Vec<f64> =
        groups.values().map(|g| mean_std(&g.iter().map(|r| r.run.min_train_loss).collect::<Vec<_>>()).0).collect();
    let verdict = Verdict::from_holds(!mid.is_empty());
    let evidence = RegimeMap {
        all: with(Pattern::All),
        wide: with(Pattern::Wide),
        narrow: with(Pattern::Narrow),
        mid,
        testable,
        map,
        reference_lr,
        width_vs_min_loss: spearman(&widths, &mins),
    };
    result(verdict, Evidence::Regimes(RegimesEvidence::Map(Box::new(evidence))))
}

/// Claim 3: the shape of Δw in the bins of w0 of the widest runs.
#[derive(Clone, Debug, PartialEq)]
pub enum WVsW0Evidence {
    /// No non-diverged run with a hidden→hidden layer and snapshots.
    NoRun,
    /// The widest runs have too few weights per bin at the last snapshot.
    SparseBins {
        width: i64,
    },
    Bins {
        width: i64,
        runs: Vec<BinShape>,
    },
}

/// The shape of Δw over the populated bins of one run's last snapshot (hidden→hidden layer).
#[derive(Clone, Debug, PartialEq)]
pub struct BinShape {
    pub run_id: String,
    /// Count-weighted median over bins of `|mode_dw| / std_dw`.
    pub peak: f64,
    /// Count-weighted median over bins of `|mode_dw − mean_dw| / std_dw`.
    pub near_median: f64,
    /// Mean `|skew_dw|` of the outer bins (`|w_i| > 0.75 l`).
    pub skew_outer: f64,
    /// Mean `|skew_dw|` of the central bins (`|w_i| < 0.25 l`).
    pub skew_central: f64,
}

/// The [`BinShape`] of a run's last snapshot; `None` when it lacks populated bins or bins in
/// the centre or at the edges.
pub(crate) fn bin_shape(run: &RunTables) -> Option<BinShape> {
    let rows = last_conditional(run);
    let limit = -rows.iter().map(|c| c.w0_lo).fold(f64::INFINITY, f64::min);
    let (mut ratio_peak, mut ratio_median, mut outer, mut central) = (vec![], vec![], vec![], vec![]);
    for c in populated(rows) {
        let (Some(mode), Some(mean), Some(std)) = (c.mode_dw, c.mean_dw, c.std_dw) else { continue };
        if std <= 0.0 {
            continue;
        }
        ratio_peak.push((mode.abs() / std, c.count));
        ratio_median.push(((mode - mean).abs() / std, c.count));
        let centre = bin_centre(c);
        if let Some(s) = c.skew_dw {
            if centre.abs() > 0.75 * limit {
                outer.push(s.abs());
            } else if centre.abs() < 0.25 * limit {
                central.push(s.abs());
            }
        }
    }
    if ratio_peak.is_empty() || outer.is_empty() || central.is_empty() {
        return None;
    }
    Some(BinShape {
        run_id: run.run_id.clone(),
        peak: weighted_median(&mut ratio_peak),
        near_median: weighted_median(&mut ratio_median),
        skew_outer: mean_std(&outer).0,
        skew_central: mean_std(&central).0,
    })
}

/// Claim 3, on the hidden→hidden layer at the last snapshot of the widest runs that did not
/// diverge, over the bins of w0 with at least [`crate::query::MIN_BIN_COUNT`] weights: the peak
/// sits at `w_f = w_i` when the count-weighted median over bins of `|mode_dw| / std_dw` is at
/// most 0.5; the peak is close to the median when the same holds for
/// `|mode_dw − mean_dw| / std_dw`; and the skew grows with `|w_i|` when the mean `|skew_dw|` of the
/// outer bins (`|w_i| > 0.75 l`) exceeds that of the central bins (`|w_i| < 0.25 l`). Each
/// condition on the mean over runs.
pub fn check_w_vs_w0(runs: &[&RunTables]) -> ClaimResult {
    let Some(width) =
        runs.iter().filter(|r| !diverged(r) && !last_conditional(r).is_empty()).map(|r| r.run.width).max()
    else {
        return result(Verdict::NotTestable, Evidence::WVsW0(WVsW0Evidence::NoRun));
    };
    let shapes: Vec<BinShape> =
        runs.iter().filter(|r| r.run.width == width && !diverged(r)).filter_map(|r| bin_shape(r)).collect();
    if shapes.is_empty() {
        return result(Verdict::NotTestable, Evidence::WVsW0(WVsW0Evidence::SparseBins { width }));
    }
    let mean = |f: fn(&BinShape) -> f64| mean_std(&shapes.iter().map(f).collect::<Vec<_>>()).0;
    let holds =
        mean(|s| s.peak) <= 0.5 && mean(|s| s.near_median) <= 0.5 && mean(|s| s.skew_outer) > mean(|s| s.skew_central);
    result(Verdict::from_holds(holds), Evidence::WVsW0(WVsW0Evidence::Bins { width, runs: shapes }))
}

/// Claim 4: per run, how Δw follows w0 across bins.
#[derive(Clone, Debug, PartialEq)]
pub enum MomentsEvidence {
    /// No non-diverged run with enough populated bins at its last snapshot.
    NoRun,
    Correlations(Vec<BinCorrelation>),
}

/// The correlations across the populated bins of one run's last snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct BinCorrelation {
    pub run_id: String,
    /// Pearson correlation of the bin centre `w_i` with `mean_dw`.
    pub sign: f64,
    /// Pearson correlation of `|w_i|` with the RMS of Δw in the bin.
    pub size: f64,
}

/// The sign and size correlations of one run, over at least four populated bins.
pub(crate) fn bin_correlation(run: &RunTables) -> Option<BinCorrelation> {
    let points: Vec<(f64, f64, f64)> =
        populated(last_conditional(run)).iter().filter_map(|c| Some((bin_centre(c), c.mean_dw?, c.std_dw?))).collect();
    if points.len() < 4 {
        return None;
    }
    let centre: Vec<f64> = points.iter().map(|p| p.0).collect();
    let mean: Vec<f64> = points.iter().map(|p| p.1).collect();
    let abs_centre: Vec<f64> = centre.iter().map(|c| c.abs()).collect();
    let rms: Vec<f64> = points.iter().map(|p| (p.1 * p.1 + p.2 * p.2).sqrt()).collect();
    Some(BinCorrelation {
        run_id: run.run_id.clone(),
        sign: pearson(&centre, &mean)?,
        size: pearson(&abs_centre, &rms)?,
    })
}

/// Claim 4, on the hidden→hidden layer at the last snapshot of every non-diverged run, over the
/// bins of w0 with at least [`crate::query::MIN_BIN_COUNT`] weights (weighted equally): the
/// correlation of `w_i` with `mean_dw` must be positive (updates follow the sign of `w_i`) and
/// the correlation of `|w_i|` with the RMS of Δw in the bin (`√(mean² + std²)`) positive (larger
/// `|w_i|`, larger updates), each in at least 80% of runs.
pub fn check_moments(runs: &[&RunTables]) -> ClaimResult {
    let found: Vec<BinCorrelation> = runs.iter().filter(|r| !diverged(r)).filter_map(|r| bin_correlation(r)).collect();
    if found.is_empty() {
        return result(Verdict::NotTestable, Evidence::Moments(MomentsEvidence::NoRun));
    }
    let share = |f: fn(&BinCorrelation) -> f64| positive_share(&found.iter().map(f).collect::<Vec<_>>());
    let holds = share(|c| c.sign) >= 0.8 && share(|c| c.size) >= 0.8;
    result(Verdict::from_holds(holds), Evidence::Moments(MomentsEvidence::Correlations(found)))
}

/// Claim 5: the jumps of the deviations in every diverged run, by kind of divergence.
#[derive(Clone, Debug, PartialEq)]
pub struct EvolutionEvidence {
    /// Every diverged run, in run order.
    pub records: Vec<JumpRecord>,
    /// Runs that learned first and then diverged without dying (the crossover).
    pub crossovers: usize,
    /// Runs that collapsed before learning.
    pub early: usize,
    /// Runs that learned and then died (loss ln C).
    pub dead: usize,
    /// Per run whose divergence did not recover: how much more mean |Δw| changes per epoch after
    /// the divergence than in the 10 epochs before it.
    pub frozen: Vec<f64>,
    /// Of the early collapses and dead networks, those whose jump coincides with the divergence.
    pub others_coinciding: usize,
    /// Of the crossover runs, those whose jump coincides with the divergence.
    pub coinciding: usize,
}

/// Claim 5, on the study's crossover: the diverged runs that had learned first and did not die
/// ([`crate::regimes::Divergence::is_crossover`]). In each, the jump of the hidden→hidden mean
/// |Δw| (the epoch whose increase stands out most against the increases before it,
/// [`crate::regimes::abrupt_jump`]) must lie within [`crate::regimes::JUMP_WINDOW`] epochs of the
/// divergence epoch, in at least [`COINCIDENT_SHARE`] of those runs. Early collapses and dead
/// networks are reported apart. Not testable without a crossover run.
pub fn check_evolution(runs: &[&RunTables]) -> ClaimResult {
    let records = jump_records(runs);
    let count = |f: &dyn Fn(&JumpRecord) -> bool| records.iter().filter(|r| f(r)).count();
    let crossovers = count(&|r| r.divergence.is_crossover());
    let coinciding = count(&|r| r.divergence.is_crossover() && r.coincides());
    let evidence = EvolutionEvidence {
        crossovers,
        early: count(&|r| !r.divergence.learned_first),
        dead: count(&|r| r.divergence.learned_first && r.divergence.after == After::Dead),
        frozen: records
            .iter()
            .filter(|r| r.divergence.untrainable())
            .filter_map(|r| Some(r.movement.1? / r.movement.0?))
            .filter(|v| v.is_finite())
            .collect(),
        others_coinciding: count(&|r| !r.divergence.is_crossover() && r.coincides()),
        coinciding,
        records,
    };
    let verdict = if crossovers == 0 {
        Verdict::NotTestable
    } else {
        Verdict::from_holds(coinciding as f64 / crossovers as f64 >= COINCIDENT_SHARE)
    };
    result(verdict, Evidence::Evolution(evidence))
}

/// Claim 6: mean |Δw| per width at the train-loss levels reached by three widths.
#[derive(Clone, Debug, PartialEq)]
pub struct WidthEvidence {
    pub levels: Vec<LevelCorrelation>,
    /// Log–log slope of the hidden→hidden rel_change at the last epoch against width.
    pub slope: Option<f64>,
}

/// One train-loss level: the mean |Δw| of each width over seeds, and its rank correlation with
/// width.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelCorrelation {
    pub level: f64,
    /// `(width, mean |Δw| of each seed)`, ascending by width.
    pub per_width: Vec<(i64, Vec<f64>)>,
    /// Spearman correlation of width and the seed-mean mean |Δw|.
    pub rho: Option<f64>,
}

/// Claim 6: at every loss level reached by at least three widths, the Spearman correlation of
/// width and the seed-mean mean |Δw| at the first epoch reaching that level must be negative.
pub fn check_width(runs: &[&RunTables]) -> ClaimResult {
    let levels: Vec<LevelCorrelation> = deviation_at_levels(runs)
        .into_iter()
        .map(|(level, per_width)| {
            let widths: Vec<f64> = per_width.iter().map(|p| p.0 as f64).collect();
            let means: Vec<f64> = per_width.iter().map(|p| mean_std(&p.1).0).collect();
            LevelCorrelation { level, rho: spearman(&widths, &means), per_width }
        })
        .collect();
    let verdict = if levels.is_empty() {
        Verdict::NotTestable
    } else {
        Verdict::from_holds(levels.iter().all(|l| l.rho.is_some_and(|r| r < 0.0)))
    };
    result(verdict, Evidence::Width(WidthEvidence { levels, slope: rel_change_fit(runs).slope() }))
}

/// All six checks on the runs of one setting ([`crate::setting`]): claim 1 on the masked runs,
/// claims 2 and 5 on the [`comparable`] runs of every learning rate, claims 3, 4 and 6 on those
/// of the [`reference_runs`] (the study's learning rate if the setting has it).
pub fn check_all(runs: &[&RunTables], masks: &BTreeMap<String, Vec<MaskPoint>>) -> Vec<ClaimResult> {
    let base = comparable(runs);
    let (lr, reference) = reference_runs(&base);
    let mut weights = [check_w_vs_w0(&reference), check_moments(&reference), check_width(&reference)];
    let lrs = learning_rates(&base);
    if lrs.len() > 1 {
        for claim in &mut weights {
            claim.subset = Some(LrSubset { lr, of: lrs.clone() });
        }
    }
    let [three, four, six] = weights;
    vec![check_mask(runs, masks), check_regimes(&base), three, four, check_evolution(&base), six]
}
