//! The rules that say whether a run diverged, what became of it, and which regime a cell of
//! the width × learning-rate map is in. They are fixed here, in advance of any profile, and
//! every level is a share of `ln C`, the loss of a network that knows nothing (uniform output
//! over `C` classes), so one rule serves 10 classes and 369 alike. No level was tuned to an
//! outcome; changing one is a change of the rules and must say so.
//!
//! - A run **learned** once its train loss fell below [`LEARNED`]` · ln C`.
//! - It **diverged** at the first epoch ≥ 1 whose train loss is not finite, or exceeds the
//!   epoch-0 loss (worse than the untrained network), or is back at [`IGNORANT`]` · ln C` or
//!   above after it had learned. The last case catches networks that die (every ReLU off, the
//!   loss ln C), which can sit just below the epoch-0 loss.
//! - A diverged run's **outcome** is read off its last epoch: *recovered* (train loss back below
//!   `IGNORANT · ln C`), *dead* (between `IGNORANT` and [`PLATEAU_FLOOR`] times `ln C`: it knows
//!   nothing), *trapped* (above: confidently wrong, on the plateau of Keras's clip near
//!   −ln 1e-7 ≈ 16.1), or *non-finite*. It is an **early collapse** when it diverged before it
//!   learned.
//! - A cell (one setting, width and learning rate, several seeds) is **untrainable** when at
//!   least half of its seeds diverged and did not recover; otherwise **high trainability** when
//!   the median minimum train loss of its other seeds is at most [`HIGH`]` · ln C`, else **low
//!   trainability**.
//! - The **jump** of a per-epoch series (mean |Δw|, rel_change, the spread of the Δw tails) is the
//!   epoch whose increase is largest against the median increase of the [`JUMP_BASELINE`]
//!   epochs before it: an abrupt step, not the fast start every run has.

use std::collections::BTreeMap;

use crate::read::RunTables;
use crate::tables::HistoryRow;

/// Learned: the train loss fell below this share of ln C.
pub const LEARNED: f64 = 0.45;
/// Knows nothing again: the train loss is back at this share of ln C or above.
pub const IGNORANT: f64 = 0.9;
/// Above this share of ln C a network is worse than knowing nothing: confidently wrong.
pub const PLATEAU_FLOOR: f64 = 1.1;
/// High trainability: the median minimum train loss is at most this share of ln C.
pub const HIGH: f64 = 0.05;
/// Epochs before a step whose median increase it is compared with.
pub const JUMP_BASELINE: usize = 5;
/// Claim 5: the jump of mean |Δw| must lie within this many epochs of the divergence...
pub const JUMP_WINDOW: i32 = 2;
/// ...in at least this share of the runs that learned first and did not die.
pub const COINCIDENT_SHARE: f64 = 0.8;

/// ln C, the loss of a uniform prediction over `classes` classes.
pub fn ignorance(classes: i64) -> f64 {
    (classes.max(2) as f64).ln()
}

/// The divergence epoch of the rules above; `None` for a run that never diverged.
pub fn divergence_epoch(history: &[HistoryRow], classes: i64) -> Option<i32> {
    let start = history.iter().find(|h| h.epoch == 0)?.train_loss;
    let ln_c = ignorance(classes);
    let mut best = start;
    for h in history.iter().filter(|h| h.epoch >= 1) {
        let loss = h.train_loss;
        let learned = best < LEARNED * ln_c;
        if !loss.is_finite() || loss > start || (learned && loss >= IGNORANT * ln_c) {
            return Some(h.epoch);
        }
        best = best.min(loss);
    }
    None
}

/// What became of a run after it diverged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum After {
    /// Trains again: the last train loss is below `IGNORANT · ln C`.
    Recovered,
    /// Knows nothing: constant output, the loss near ln C.
    Dead,
    /// Confidently wrong: the loss above `PLATEAU_FLOOR · ln C`, at the clip plateau.
    Trapped,
    NonFinite,
}

impl After {
    pub fn as_str(self) -> &'static str {
        match self {
            After::Recovered => "recovered",
            After::Dead => "dead",
            After::Trapped => "trapped at the plateau",
            After::NonFinite => "non-finite loss",
        }
    }
}

/// A diverged run: when, whether it had learned before, and how it ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Divergence {
    pub epoch: i32,
    /// It had learned before it diverged (the study's crossover); otherwise an early collapse.
    pub learned_first: bool,
    pub after: After,
    /// Train loss at the last epoch.
    pub final_loss: f64,
}

impl Divergence {
    /// Whether the run is lost to training (diverged and did not recover).
    pub fn untrainable(&self) -> bool {
        self.after != After::Recovered
    }

    /// The study's crossover: learned first, then diverged, and did not die (dead networks and
    /// early collapses are reported apart).
    pub fn is_crossover(&self) -> bool {
        self.learned_first && self.after != After::Dead
    }
}

/// Classifies a run by the rules above; `None` when it did not diverge.
pub fn classify(history: &[HistoryRow], classes: i64) -> Option<Divergence> {
    let epoch = divergence_epoch(history, classes)?;
    let ln_c = ignorance(classes);
    let learned_first = history.iter().filter(|h| h.epoch < epoch).any(|h| h.train_loss < LEARNED * ln_c);
    let final_loss = history.iter().max_by_key(|h| h.epoch).map_or(f64::NAN, |h| h.train_loss);
    let after = if !final_loss.is_finite() {
        After::NonFinite
    } else if final_loss < IGNORANT * ln_c {
        After::Recovered
    } else if final_loss <= PLATEAU_FLOOR * ln_c {
        After::Dead
    } else {
        After::Trapped
    };
    Some(Divergence { epoch, learned_first, after, final_loss })
}

/// The regime of one cell of the phase map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Regime {
    High,
    Low,
    Untrainable,
}

impl Regime {
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::High => "high trainability",
            Regime::Low => "low trainability",
            Regime::Untrainable => "untrainable",
        }
    }
}

/// One seed of a cell: its classification and its minimum train loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeedOutcome {
    pub divergence: Option<Divergence>,
    pub min_train_loss: f64,
}

/// The regime of a cell from its seeds (the rule of the module doc); `None` for no seeds.
pub fn cell_regime(seeds: &[SeedOutcome], classes: i64) -> Option<Regime> {
    if seeds.is_empty() {
        return None;
    }
    let lost = seeds.iter().filter(|s| s.divergence.is_some_and(|d| d.untrainable())).count();
    if 2 * lost >= seeds.len() {
        return Some(Regime::Untrainable);
    }
    let mins: Vec<f64> = seeds
        .iter()
        .filter(|s| !s.divergence.is_some_and(|d| d.untrainable()))
        .map(|s| if s.min_train_loss.is_finite() { s.min_train_loss } else { f64::INFINITY })
        .collect();
    Some(if median(mins) <= HIGH * ignorance(classes) { Regime::High } else { Regime::Low })
}

/// The jump of a series of `(epoch, value)` in epoch order: the epoch whose increase over the
/// epoch before is the largest multiple of the median increase of the [`JUMP_BASELINE`] steps
/// before it, with that multiple. Needs `JUMP_BASELINE + 1` steps and an increase; non-finite
/// values end the series (a run whose weights overflowed has no later jumps to speak of).
pub fn abrupt_jump(series: &[(i32, f64)]) -> Option<(i32, f64)> {
    let finite: Vec<(i32, f64)> = series.iter().copied().take_while(|(_, v)| v.is_finite()).collect();
    let steps: Vec<(i32, f64)> = finite.windows(2).map(|p| (p[1].0, p[1].1 - p[0].1)).collect();
    let mut best: Option<(i32, f64)> = None;
    for i in JUMP_BASELINE..steps.len() {
        let mut before: Vec<f64> = steps[i - JUMP_BASELINE..i].iter().map(|s| s.1.abs()).collect();
        before.sort_by(f64::total_cmp);
        let typical = before[JUMP_BASELINE / 2].max(f64::MIN_POSITIVE);
        let ratio = steps[i].1 / typical;
        if steps[i].1 > 0.0 && best.is_none_or(|(_, r)| ratio > r) {
            best = Some((steps[i].0, ratio));
        }
    }
    best
}

/// The classification of a whole run.
pub fn classify_run(run: &RunTables) -> Option<Divergence> {
    classify(&run.history, run.run.classes)
}

/// One cell of the phase map: the seeds of one width at one learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub width: i64,
    pub lr: f64,
    pub seeds: usize,
    /// Seeds that diverged (any outcome).
    pub diverged: usize,
    /// Seeds that diverged and did not recover.
    pub lost: usize,
    /// Seeds that learned first and then diverged without dying (the study's crossover).
    pub crossovers: usize,
    pub regime: Regime,
    /// Median over seeds of the minimum train loss.
    pub median_min_train: f64,
}

/// The width × learning-rate map of one setting (unmasked runs).
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseMap {
    pub widths: Vec<i64>,
    pub lrs: Vec<f64>,
    pub cells: Vec<Cell>,
    pub classes: i64,
    /// Mean over runs of `input_sq_norm`.
    pub sq_norm: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The phase map of some runs of one setting (masked runs are left out: the mask changes the
/// initial weights). `None` without unmasked runs.
pub fn phase_map(runs: &[&RunTables]) -> Option<PhaseMap> {
    let runs: Vec<&RunTables> = runs.iter().filter(|r| r.run.mask.is_none()).copied().collect();
    let first = runs.first()?;
    let classes = first.run.classes;
    // Positive finite learning rates order like their bit patterns.
    let mut groups: BTreeMap<(u64, i64), Vec<&RunTables>> = BTreeMap::new();
    for r in &runs {
        groups.entry((r.run.lr.to_bits(), r.run.width)).or_default().push(r);
    }
    let cells: Vec<Cell> = groups
        .into_iter()
        .map(|((lr, width), group)| {
            let seeds: Vec<SeedOutcome> = group
                .iter()
                .map(|r| SeedOutcome { divergence: classify_run(r), min_train_loss: r.run.min_train_loss })
                .collect();
            let count =
                |f: &dyn Fn(&Divergence) -> bool| seeds.iter().filter(|s| s.divergence.is_some_and(|d| f(&d))).count();
            Cell {
                width,
                lr: f64::from_bits(lr),
                seeds: seeds.len(),
                diverged: count(&|_| true),
                lost: count(&|d| d.untrainable()),
                crossovers: count(&|d| d.is_crossover()),
                regime: cell_regime(&seeds, classes).expect("a cell has seeds"),
                median_min_train: median(seeds.iter().map(|s| s.min_train_loss).collect()),
            }
        })
        .collect();
    let mut widths: Vec<i64> = cells.iter().map(|c| c.width).collect();
    widths.sort_unstable();
    widths.dedup();
    let mut lrs: Vec<f64> = cells.iter().map(|c| c.lr).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    let sq_norm = runs.iter().map(|r| r.run.input_sq_norm).sum::<f64>() / runs.len() as f64;
    Some(PhaseMap { widths, lrs, cells, classes, sq_norm })
}

/// Where the untrainable cells of one learning rate lie along the widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// No untrainable width.
    None,
    /// Untrainable with a trainable width on either side: the study's regime.
    Mid,
    /// Untrainable at the widest width (not at all).
    Wide,
    /// Untrainable at the narrowest widths only.
    Narrow,
    /// Every width untrainable.
    All,
}

impl PhaseMap {
    /// The cells of one learning rate, by width.
    pub fn row(&self, lr: f64) -> Vec<&Cell> {
        let mut row: Vec<&Cell> = self.cells.iter().filter(|c| c.lr == lr).collect();
        row.sort_by_key(|c| c.width);
        row
    }

    pub fn cell(&self, width: i64, lr: f64) -> Option<&Cell> {
        self.cells.iter().find(|c| c.width == width && c.lr == lr)
    }

    /// The pattern of the learning rate `lr`.
    pub fn pattern(&self, lr: f64) -> Pattern {
        let lost: Vec<bool> = self.row(lr).iter().map(|c| c.regime == Regime::Untrainable).collect();
        let n = lost.len();
        if !lost.contains(&true) {
            Pattern::None
        } else if lost.iter().all(|&l| l) {
            Pattern::All
        } else if (1..n.saturating_sub(1))
            .any(|i| lost[i] && lost[..i].contains(&false) && lost[i + 1..].contains(&false))
        {
            Pattern::Mid
        } else if lost[n - 1] {
            Pattern::Wide
        } else {
            Pattern::Narrow
        }
    }

    /// The smallest learning rate with an untrainable cell, as an interval `(below, at]`: the
    /// onset lies above the tested lr just below it (0 if none) and at most at this one. `None`
    /// when no cell is untrainable; then the onset lies above the largest lr tested.
    pub fn onset(&self) -> Option<(f64, f64)> {
        let i = self.lrs.iter().position(|&lr| self.row(lr).iter().any(|c| c.regime == Regime::Untrainable))?;
        Some((if i == 0 { 0.0 } else { self.lrs[i - 1] }, self.lrs[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(losses: &[f64]) -> Vec<HistoryRow> {
        losses
            .iter()
            .enumerate()
            .map(|(e, &l)| HistoryRow {
                epoch: e as i32,
                train_loss: l,
                train_acc: 0.0,
                test_loss: l,
                test_acc: 0.0,
                seconds: 0.0,
            })
            .collect()
    }

    const LN10: f64 = std::f64::consts::LN_10;

    #[test]
    fn smooth_training_never_diverges() {
        let h = history(&[2.35, 0.8, 0.5, 0.4, 0.35, 0.36, 0.3]);
        assert_eq!(divergence_epoch(&h, 10), None);
        assert_eq!(classify(&h, 10), None);
        // A slow start that hovers near ln C but under the initial loss is not a divergence.
        assert_eq!(divergence_epoch(&history(&[2.35, 2.30, 2.31, 2.29, 2.0]), 10), None);
    }

    #[test]
    fn the_four_outcomes_are_told_apart() {
        // Learned, jumped to the clip plateau and stayed.
        let trapped = classify(&history(&[2.35, 0.5, 0.2, 14.5, 14.5, 14.5]), 10).unwrap();
        assert_eq!((trapped.epoch, trapped.learned_first, trapped.after), (3, true, After::Trapped));
        assert!(trapped.is_crossover() && trapped.untrainable());
        // Learned, died at ln 10 (below the initial loss), stayed dead.
        let dead = classify(&history(&[2.35, 0.5, 0.3, LN10, LN10]), 10).unwrap();
        assert_eq!((dead.epoch, dead.after), (3, After::Dead));
        assert!(!dead.is_crossover() && dead.untrainable());
        // A spike above the initial loss that recovers.
        let spike = classify(&history(&[2.35, 0.3, 0.2, 2.9, 0.6, 0.4]), 10).unwrap();
        assert_eq!((spike.epoch, spike.after), (3, After::Recovered));
        assert!(spike.is_crossover() && !spike.untrainable());
        // Collapse in the first epoch: never learned.
        let early = classify(&history(&[2.35, 14.55, 14.55]), 10).unwrap();
        assert_eq!((early.epoch, early.learned_first, early.after), (1, false, After::Trapped));
        let nan = classify(&history(&[2.35, 0.5, f64::NAN, f64::NAN]), 10).unwrap();
        assert_eq!((nan.epoch, nan.after), (2, After::NonFinite));
        // 369 classes: ln C = 5.91, so a loss of 5.9 is a dead network, 16.08 the plateau.
        let h = history(&[6.0, 2.0, 1.0, 5.9, 5.9]);
        assert_eq!(classify(&h, 369).unwrap().after, After::Dead);
        assert_eq!(classify(&history(&[6.0, 2.0, 16.08]), 369).unwrap().after, After::Trapped);
    }

    #[test]
    fn cells_follow_the_majority_of_their_seeds() {
        let ok = |min| SeedOutcome { divergence: None, min_train_loss: min };
        let lost = SeedOutcome { divergence: classify(&history(&[2.35, 0.5, 14.5]), 10), min_train_loss: 0.5 };
        let spike = SeedOutcome { divergence: classify(&history(&[2.35, 0.3, 2.9, 0.3]), 10), min_train_loss: 0.3 };
        assert_eq!(cell_regime(&[ok(0.01), ok(0.02), lost], 10), Some(Regime::High));
        assert_eq!(cell_regime(&[ok(0.01), lost, lost], 10), Some(Regime::Untrainable));
        assert_eq!(cell_regime(&[ok(0.01), lost], 10), Some(Regime::Untrainable));
        // Spikes that recover do not make a cell untrainable; their minimum counts.
        assert_eq!(cell_regime(&[spike, spike, ok(0.01)], 10), Some(Regime::Low));
        assert_eq!(cell_regime(&[ok(0.2), ok(0.3), ok(0.01)], 10), Some(Regime::Low));
        assert_eq!(cell_regime(&[], 10), None);
    }

    #[test]
    fn the_jump_is_an_abrupt_step_not_the_fast_start() {
        // sqrt-like growth (large early steps), then a step of 12% at epoch 12.
        let mut series: Vec<(i32, f64)> = (0..=20).map(|e| (e, (f64::from(e)).sqrt())).collect();
        for (e, v) in series.iter_mut() {
            if *e >= 12 {
                *v += 0.4;
            }
        }
        let (epoch, ratio) = abrupt_jump(&series).unwrap();
        assert_eq!(epoch, 12);
        assert!(ratio > 3.0, "{ratio}");
        assert_eq!(abrupt_jump(&series[..5]), None);
        // Frozen weights: no step up, no jump.
        assert_eq!(
            abrupt_jump(&[(0, 1.0); 12].iter().enumerate().map(|(e, p)| (e as i32, p.1)).collect::<Vec<_>>()),
            None
        );
        // NaN ends the series.
        series[15].1 = f64::NAN;
        assert_eq!(abrupt_jump(&series).unwrap().0, 12);
    }
}
