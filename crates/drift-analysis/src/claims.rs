//! The six claims of the study, checked against the tables of a sweep. Every verdict is computed
//! here from the tables, by a rule fixed in the doc comment of its check; the figures draw the
//! same quantities (the helpers below are shared with them).
//!
//! The hidden→hidden matrix is layer 2; a claim that needs it is not testable on depth-1 runs.

use std::collections::BTreeMap;

use crate::read::RunTables;
use crate::regimes::{
    abrupt_jump, classify_run, phase_map, After, Divergence, Pattern, PhaseMap, Regime, COINCIDENT_SHARE, JUMP_WINDOW,
};
use crate::setting::{lr_range, reference_runs};

pub use crate::onset::{check_onset, onsets, Onset};
use crate::tables::{ConditionalRow, DeviationRow};

/// The hidden→hidden weight matrix (input → hidden 1 is layer 1).
pub const HIDDEN_LAYER: i32 = 2;

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
}

/// One claim, its verdict and the numbers behind it (Markdown lines).
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimResult {
    /// 1–6, as numbered in the study summary.
    pub number: usize,
    pub title: &'static str,
    /// What the study claims.
    pub statement: &'static str,
    pub verdict: Verdict,
    pub evidence: Vec<String>,
}

/// Contrast of the mask in the hidden→hidden matrix at one snapshot epoch:
/// `1 − mean|w| inside the mask / mean|w| outside` (1: sharp letter, 0: gone).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskPoint {
    pub epoch: i32,
    pub visibility: f64,
}

/// The letter counts as visible while its contrast is at least this (half its initial value).
pub const VISIBLE: f64 = 0.5;

/// Mask contrast of a matrix `w` given the masked positions (`w0 == 0` exactly: Glorot-uniform
/// draws never give exact zeros, the mask does).
pub fn mask_visibility(w0: &[f32], w: &[f32]) -> Option<f64> {
    let (mut inside, mut n_in, mut outside, mut n_out) = (0.0, 0usize, 0.0, 0usize);
    for (&a, &b) in w0.iter().zip(w) {
        if a == 0.0 {
            inside += f64::from(b.abs());
            n_in += 1;
        } else {
            outside += f64::from(b.abs());
            n_out += 1;
        }
    }
    if n_in == 0 || n_out == 0 || outside == 0.0 {
        return None;
    }
    Some(1.0 - (inside / n_in as f64) / (outside / n_out as f64))
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// Pearson correlation; `None` when either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let (mx, _) = mean_std(x);
    let (my, _) = mean_std(y);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        for k in i..=j {
            ranks[order[k]] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman rank correlation (ties share their mean rank).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&ranks(x), &ranks(y))
}

/// Least-squares slope and intercept of `y` on `x`.
pub fn fit_line(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let (mx, _) = mean_std(x);
    let (my, _) = mean_std(y);
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    if x.len() < 2 || sxx == 0.0 {
        return None;
    }
    let slope = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / sxx;
    Some((slope, my - slope * mx))
}

/// The deviation rows of the weights of `layer`, in epoch order.
pub fn layer_weights(run: &RunTables, layer: i32) -> Vec<&DeviationRow> {
    let mut rows: Vec<_> = run.deviation.iter().filter(|d| d.layer == layer && d.kind == "weight").collect();
    rows.sort_by_key(|d| d.epoch);
    rows
}

/// Mean |Δw| over every weight of the network at `epoch` (layers weighted by their size).
pub fn mean_abs_all_weights(run: &RunTables, epoch: i32) -> Option<f64> {
    let rows: Vec<_> = run.deviation.iter().filter(|d| d.epoch == epoch && d.kind == "weight").collect();
    let n: i64 = rows.iter().map(|d| d.n).sum();
    (n > 0).then(|| rows.iter().map(|d| d.mean_abs * d.n as f64).sum::<f64>() / n as f64)
}

/// The jump of a hidden→hidden deviation statistic (by [`abrupt_jump`]): the epoch whose
/// increase stands out most against the increases just before it, with that multiple.
pub fn deviation_jump(run: &RunTables, statistic: Statistic) -> Option<(i32, f64)> {
    let series: Vec<(i32, f64)> =
        layer_weights(run, HIDDEN_LAYER).iter().filter_map(|d| Some((d.epoch, statistic.of(d)?))).collect();
    abrupt_jump(&series)
}

/// The per-epoch statistics of Δw whose jumps claim 5 looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    MeanAbs,
    RelChange,
    /// The spread of the tails, p99 − p01.
    Tails,
}

impl Statistic {
    pub fn of(self, d: &DeviationRow) -> Option<f64> {
        match self {
            Statistic::MeanAbs => Some(d.mean_abs),
            Statistic::RelChange => d.rel_change,
            Statistic::Tails => Some(d.quantiles[6] - d.quantiles[0]),
        }
    }
}

/// The first epoch at which the train loss is at most `level`.
pub fn first_epoch_reaching(run: &RunTables, level: f64) -> Option<i32> {
    run.history.iter().filter(|h| h.epoch > 0).find(|h| h.train_loss <= level).map(|h| h.epoch)
}

/// The last epoch with conditional rows (the last snapshot).
pub fn last_snapshot_epoch(run: &RunTables) -> Option<i32> {
    run.conditional.iter().map(|c| c.epoch).max()
}

/// The conditional rows of the hidden→hidden layer at the run's last snapshot.
pub fn last_conditional(run: &RunTables) -> Vec<&ConditionalRow> {
    let Some(epoch) = last_snapshot_epoch(run) else { return Vec::new() };
    run.conditional.iter().filter(|c| c.epoch == epoch && c.layer == HIDDEN_LAYER).collect()
}

/// Whether a run's train loss diverged (the `runs.divergence_epoch` of DESIGN.md).
pub fn diverged(run: &RunTables) -> bool {
    run.run.divergence_epoch.is_some()
}

/// Runs grouped by width, ascending.
pub fn by_width<'a>(runs: &[&'a RunTables]) -> BTreeMap<i64, Vec<&'a RunTables>> {
    let mut groups: BTreeMap<i64, Vec<&RunTables>> = BTreeMap::new();
    for r in runs {
        groups.entry(r.run.width).or_default().push(r);
    }
    groups
}

fn pm(values: &[f64], digits: usize) -> String {
    let (m, s) = mean_std(values);
    if values.len() > 1 {
        format!("{m:.digits$} ± {s:.digits$} (n = {})", values.len())
    } else {
        format!("{m:.digits$} (n = 1)")
    }
}

fn result(number: usize, verdict: Verdict, evidence: Vec<String>) -> ClaimResult {
    let (title, statement) = CLAIMS[number - 1];
    ClaimResult { number, title, statement, verdict, evidence }
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

/// Claim 1. Stable part: the widest masked run that did not diverge must keep a contrast of at
/// least [`VISIBLE`] at its last snapshot. Unstable part (if a masked run diverged): its contrast
/// must fall below [`VISIBLE`] in the snapshot interval that contains its divergence epoch.
/// Not testable without a masked, non-diverged run with snapshots.
pub fn check_mask(runs: &[&RunTables], masks: &BTreeMap<String, Vec<MaskPoint>>) -> ClaimResult {
    let masked: Vec<_> = runs.iter().filter(|r| r.run.mask.is_some() && masks.contains_key(&r.run_id)).collect();
    let stable = masked.iter().filter(|r| !diverged(r)).max_by_key(|r| (r.run.width, std::cmp::Reverse(r.run.seed)));
    let Some(stable) = stable else {
        return result(
            1,
            Verdict::NotTestable,
            vec!["No masked run that kept training (none with `mask` set, or all diverged).".into()],
        );
    };
    let trace = &masks[&stable.run_id];
    let last = trace.last().copied().expect("a mask trace has points");
    let mut evidence = vec![format!(
        "Stable run {} (W = {}, seed {}): mask contrast {:.3} at epoch 0 → {:.3} at epoch {} (visible means ≥ {VISIBLE}).",
        stable.run_id, stable.run.width, stable.run.seed, trace[0].visibility, last.visibility, last.epoch
    )];
    let mut verdict = if last.visibility >= VISIBLE { Verdict::Supported } else { Verdict::NotSupported };
    let unstable: Vec<_> = masked.iter().filter(|r| classify_run(r).is_some_and(|d| d.is_crossover())).collect();
    let other = masked.iter().filter(|r| diverged(r)).count() - unstable.len();
    if unstable.is_empty() {
        evidence.push(
            "No masked run learned and then diverged, so the second half (the letter vanishing at the loss jump) is not testable here."
                .into(),
        );
    }
    if other > 0 {
        evidence.push(format!(
            "{other} masked run(s) collapsed early or died (not the study's crossover); left out of the second half."
        ));
    }
    for run in unstable {
        let d = run.run.divergence_epoch.expect("diverged");
        let trace = &masks[&run.run_id];
        let before = trace.iter().rev().find(|p| p.epoch < d);
        let after = trace.iter().find(|p| p.epoch >= d);
        let vanished_at = trace.iter().find(|p| p.visibility < VISIBLE).map(|p| p.epoch);
        let consistent =
            matches!((before, after), (Some(b), Some(a)) if b.visibility >= VISIBLE && a.visibility < VISIBLE);
        evidence.push(format!(
            "Diverging run {} (W = {}, lr {}, seed {}): divergence at epoch {d}; contrast {} before and {} after it; first below {VISIBLE} at {}.",
            run.run_id,
            run.run.width,
            run.run.lr,
            run.run.seed,
            before.map_or("–".into(), |p| format!("{:.3} (epoch {})", p.visibility, p.epoch)),
            after.map_or("–".into(), |p| format!("{:.3} (epoch {})", p.visibility, p.epoch)),
            vanished_at.map_or("no snapshot".into(), |e| format!("epoch {e}"))
        ));
        if !consistent {
            verdict = Verdict::NotSupported;
        }
    }
    result(1, verdict, evidence)
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
        return result(2, Verdict::NotTestable, vec!["No unmasked runs.".into()]);
    };
    let testable: Vec<f64> = map.lrs.iter().copied().filter(|&lr| map.row(lr).len() >= 3).collect();
    if testable.is_empty() {
        return result(
            2,
            Verdict::NotTestable,
            vec![format!("No learning rate with three or more widths (widths {:?}).", map.widths)],
        );
    }
    let with = |p: Pattern| testable.iter().copied().filter(|&lr| map.pattern(lr) == p).collect::<Vec<f64>>();
    let list = |lrs: &[f64]| lrs.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ");
    let (mid, all, wide, narrow) = (with(Pattern::Mid), with(Pattern::All), with(Pattern::Wide), with(Pattern::Narrow));
    let mut findings = vec![];
    if !mid.is_empty() {
        let widths: Vec<String> = mid
            .iter()
            .map(|&lr| {
                let w: Vec<String> = map
                    .row(lr)
                    .iter()
                    .filter(|c| c.regime == Regime::Untrainable)
                    .map(|c| c.width.to_string())
                    .collect();
                format!("W = {} at lr {lr}", w.join(", "))
            })
            .collect();
        findings.push(format!("an untrainable regime at mid widths ({})", widths.join("; ")));
    }
    if !all.is_empty() {
        findings.push(format!("untrainable at all widths at lr {}", list(&all)));
    }
    if !wide.is_empty() {
        findings.push(format!("untrainable at the widest widths at lr {}", list(&wide)));
    }
    if !narrow.is_empty() {
        findings.push(format!("untrainable at the narrowest widths only at lr {}", list(&narrow)));
    }
    if findings.is_empty() {
        findings.push(format!(
            "no untrainable regime in these settings (lr {}, widths {:?})",
            list(&testable),
            map.widths
        ));
    }
    let mut evidence = vec![format!("**Finding:** {}.", findings.join("; "))];
    evidence.extend(phase_table(&map));
    // Trainability against width at the reference learning rate, as the study compares it.
    let (lr, reference) = reference_runs(runs);
    let groups = by_width(&comparable(&reference));
    let widths: Vec<f64> = groups.keys().map(|&w| w as f64).collect();
    let mins: Vec<f64> =
        groups.values().map(|g| mean_std(&g.iter().map(|r| r.run.min_train_loss).collect::<Vec<_>>()).0).collect();
    evidence.push(format!(
        "At lr {lr}: Spearman correlation of width and the seed-mean minimum train loss {} (negative: wider trains better).",
        spearman(&widths, &mins).map_or("undefined".into(), |r| format!("{r:.3}"))
    ));
    result(2, if mid.is_empty() { Verdict::NotSupported } else { Verdict::Supported }, evidence)
}

/// The phase map as a Markdown table: one row per learning rate, one column per width; each
/// cell its regime (H high, L low, U untrainable), the seeds that diverged and the median
/// minimum train loss.
pub fn phase_table(map: &PhaseMap) -> Vec<String> {
    let mut lines = vec![
        format!("| lr ↓  W → | {} |", map.widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(" | ")),
        format!("|---|{}", "---|".repeat(map.widths.len())),
    ];
    for &lr in &map.lrs {
        let cells: Vec<String> = map
            .widths
            .iter()
            .map(|&w| match map.cell(w, lr) {
                None => "".into(),
                Some(c) => {
                    let letter = match c.regime {
                        Regime::High => "H",
                        Regime::Low => "L",
                        Regime::Untrainable => "**U**",
                    };
                    format!("{letter} {}/{} div, min {:.3}", c.diverged, c.seeds, c.median_min_train)
                }
            })
            .collect();
        lines.push(format!("| {lr} | {} |", cells.join(" | ")));
    }
    lines.push(
        "H: high trainability, L: low, U: untrainable (at least half the seeds diverged and did not recover); `k/n div`: seeds that diverged (any outcome); min: median minimum train loss.".into(),
    );
    lines
}

/// Bins of the last snapshot with enough weights for their statistics to mean something.
const MIN_BIN_COUNT: i64 = 100;

/// Claim 3, on the hidden→hidden layer at the last snapshot of the widest runs that did not
/// diverge: the peak sits at `w_f = w_i` when the count-weighted median over bins of
/// `|mode_dw| / std_dw` is at most 0.5; the peak is close to the median when the same holds for
/// `|mode_dw − mean_dw| / std_dw`; and the skew grows with `|w_i|` when the mean `|skew_dw|` of the
/// outer bins (`|w_i| > 0.75 l`) exceeds that of the central bins (`|w_i| < 0.25 l`).
pub fn check_final_vs_initial(runs: &[&RunTables]) -> ClaimResult {
    let Some(widest) =
        runs.iter().filter(|r| !diverged(r) && !last_conditional(r).is_empty()).map(|r| r.run.width).max()
    else {
        return result(
            3,
            Verdict::NotTestable,
            vec!["No non-diverged run with a hidden→hidden layer and snapshots.".into()],
        );
    };
    let (mut peak, mut near_median, mut skew_out, mut skew_in) = (vec![], vec![], vec![], vec![]);
    for run in runs.iter().filter(|r| r.run.width == widest && !diverged(r)) {
        let rows = last_conditional(run);
        let limit = -rows.iter().map(|c| c.w0_lo).fold(f64::INFINITY, f64::min);
        let mut ratio_peak = vec![];
        let mut ratio_median = vec![];
        let (mut outer, mut central) = (vec![], vec![]);
        for c in rows.iter().filter(|c| c.count >= MIN_BIN_COUNT) {
            let (Some(mode), Some(mean), Some(std)) = (c.mode_dw, c.mean_dw, c.std_dw) else { continue };
            if std <= 0.0 {
                continue;
            }
            ratio_peak.push((mode.abs() / std, c.count));
            ratio_median.push(((mode - mean).abs() / std, c.count));
            let centre = 0.5 * (c.w0_lo + c.w0_hi);
            if let Some(s) = c.skew_dw {
                if centre.abs() > 0.75 * limit {
                    outer.push(s.abs());
                } else if centre.abs() < 0.25 * limit {
                    central.push(s.abs());
                }
            }
        }
        if ratio_peak.is_empty() || outer.is_empty() || central.is_empty() {
            continue;
        }
        peak.push(weighted_median(&mut ratio_peak));
        near_median.push(weighted_median(&mut ratio_median));
        skew_out.push(mean_std(&outer).0);
        skew_in.push(mean_std(&central).0);
    }
    if peak.is_empty() {
        return result(
            3,
            Verdict::NotTestable,
            vec![format!("W = {widest}: too few weights per bin at the last snapshot.")],
        );
    }
    let evidence = vec![
        format!("Widest non-diverged runs (W = {widest}), hidden→hidden layer, last snapshot, bins with ≥ {MIN_BIN_COUNT} weights:"),
        format!("- median over bins of |mode Δw| / std Δw: {} (peak at w_f = w_i if ≤ 0.5)", pm(&peak, 3)),
        format!("- median over bins of |mode Δw − mean Δw| / std Δw: {} (peak near the centre if ≤ 0.5)", pm(&near_median, 3)),
        format!("- mean |skewness of Δw|: outer bins (|w_i| > 0.75 l) {} vs central bins (|w_i| < 0.25 l) {}", pm(&skew_out, 3), pm(&skew_in, 3)),
    ];
    let holds =
        mean_std(&peak).0 <= 0.5 && mean_std(&near_median).0 <= 0.5 && mean_std(&skew_out).0 > mean_std(&skew_in).0;
    result(3, if holds { Verdict::Supported } else { Verdict::NotSupported }, evidence)
}

fn weighted_median(values: &mut [(f64, i64)]) -> f64 {
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: i64 = values.iter().map(|v| v.1).sum();
    let mut seen = 0;
    for &(v, n) in values.iter() {
        seen += n;
        if 2 * seen >= total {
            return v;
        }
    }
    f64::NAN
}

/// Claim 4, on the hidden→hidden layer at the last snapshot of every non-diverged run: across
/// bins (weighted equally), the correlation of `w_i` with `mean_dw` must be positive (updates
/// follow the sign of `w_i`) and the correlation of `|w_i|` with the RMS of Δw in the bin
/// (`√(mean² + std²)`) positive (larger `|w_i|`, larger updates), each in at least 80% of runs.
pub fn check_moments(runs: &[&RunTables]) -> ClaimResult {
    let (mut sign, mut size) = (vec![], vec![]);
    for run in runs.iter().filter(|r| !diverged(r)) {
        let rows: Vec<_> = last_conditional(run).into_iter().filter(|c| c.count >= MIN_BIN_COUNT).collect();
        let points: Vec<(f64, f64, f64)> =
            rows.iter().filter_map(|c| Some((0.5 * (c.w0_lo + c.w0_hi), c.mean_dw?, c.std_dw?))).collect();
        if points.len() < 4 {
            continue;
        }
        let centre: Vec<f64> = points.iter().map(|p| p.0).collect();
        let mean: Vec<f64> = points.iter().map(|p| p.1).collect();
        let abs_centre: Vec<f64> = centre.iter().map(|c| c.abs()).collect();
        let rms: Vec<f64> = points.iter().map(|p| (p.1 * p.1 + p.2 * p.2).sqrt()).collect();
        if let (Some(a), Some(b)) = (pearson(&centre, &mean), pearson(&abs_centre, &rms)) {
            sign.push(a);
            size.push(b);
        }
    }
    if sign.is_empty() {
        return result(
            4,
            Verdict::NotTestable,
            vec!["No non-diverged run with enough populated bins at its last snapshot.".into()],
        );
    }
    let share = |v: &[f64]| v.iter().filter(|&&r| r > 0.0).count() as f64 / v.len() as f64;
    let evidence = vec![
        format!(
            "Hidden→hidden layer, last snapshot, {} non-diverged runs, bins with ≥ {MIN_BIN_COUNT} weights:",
            sign.len()
        ),
        format!(
            "- correlation of w_i with mean Δw: {}, positive in {:.0}% of runs",
            pm(&sign, 3),
            100.0 * share(&sign)
        ),
        format!(
            "- correlation of |w_i| with RMS Δw: {}, positive in {:.0}% of runs",
            pm(&size, 3),
            100.0 * share(&size)
        ),
    ];
    let holds = share(&sign) >= 0.8 && share(&size) >= 0.8;
    result(4, if holds { Verdict::Supported } else { Verdict::NotSupported }, evidence)
}

/// What claim 5 looks at in one diverged run: its divergence, the jumps of the hidden→hidden
/// mean |Δw|, rel_change and tail spread, and how much the weights still move after it.
#[derive(Clone, Debug, PartialEq)]
pub struct JumpRecord {
    pub run_id: String,
    pub width: i64,
    pub lr: f64,
    pub seed: u64,
    pub divergence: Divergence,
    pub mean_abs: Option<(i32, f64)>,
    pub rel_change: Option<(i32, f64)>,
    pub tails: Option<(i32, f64)>,
    /// Median relative per-epoch change of mean |Δw| over the 10 epochs before the divergence
    /// and over the epochs from 3 after it to the end.
    pub movement: (Option<f64>, Option<f64>),
}

impl JumpRecord {
    /// The jump of mean |Δw| lies within [`JUMP_WINDOW`] epochs of the divergence.
    pub fn coincides(&self) -> bool {
        self.mean_abs.is_some_and(|(e, _)| (e - self.divergence.epoch).abs() <= JUMP_WINDOW)
    }
}

/// The median relative per-epoch change of the hidden→hidden mean |Δw| over epochs `from..=to`.
fn movement(run: &RunTables, from: i32, to: i32) -> Option<f64> {
    let rows = layer_weights(run, HIDDEN_LAYER);
    let mut changes: Vec<f64> = rows
        .windows(2)
        .filter(|p| p[1].epoch >= from && p[1].epoch <= to && p[0].mean_abs > 0.0)
        .map(|p| ((p[1].mean_abs - p[0].mean_abs) / p[0].mean_abs).abs())
        .filter(|v| v.is_finite())
        .collect();
    if changes.is_empty() {
        return None;
    }
    changes.sort_by(f64::total_cmp);
    Some(changes[changes.len() / 2])
}

/// The [`JumpRecord`] of every diverged run, in run order.
pub fn jump_records(runs: &[&RunTables]) -> Vec<JumpRecord> {
    runs.iter()
        .filter_map(|r| {
            let divergence = classify_run(r)?;
            let (d, last) = (divergence.epoch, r.run.epochs_done);
            Some(JumpRecord {
                run_id: r.run_id.clone(),
                width: r.run.width,
                lr: r.run.lr,
                seed: r.run.seed,
                divergence,
                mean_abs: deviation_jump(r, Statistic::MeanAbs),
                rel_change: deviation_jump(r, Statistic::RelChange),
                tails: deviation_jump(r, Statistic::Tails),
                movement: (movement(r, d - 10, d - 1), movement(r, d + 3, last)),
            })
        })
        .collect()
}

/// Claim 5, on the study's crossover: the diverged runs that had learned first and did not die
/// ([`Divergence::is_crossover`]). In each, the jump of the hidden→hidden mean |Δw| (the epoch
/// whose increase stands out most against the increases before it, [`abrupt_jump`]) must lie
/// within [`JUMP_WINDOW`] epochs of the divergence epoch, in at least [`COINCIDENT_SHARE`] of
/// those runs. Early collapses and dead networks are reported apart. Not testable without a
/// crossover run.
pub fn check_evolution(runs: &[&RunTables]) -> ClaimResult {
    let records = jump_records(runs);
    let crossovers: Vec<&JumpRecord> = records.iter().filter(|r| r.divergence.is_crossover()).collect();
    let count = |f: &dyn Fn(&JumpRecord) -> bool| records.iter().filter(|r| f(r)).count();
    let early = count(&|r| !r.divergence.learned_first);
    let dead = count(&|r| r.divergence.learned_first && r.divergence.after == After::Dead);
    let mut evidence = vec![format!(
        "{} run(s) diverged: {} learned first and then diverged (the crossover), {early} collapsed before learning, {dead} learned and then died (loss ln C).",
        records.len(),
        crossovers.len()
    )];
    if !records.is_empty() {
        let fmt = |j: Option<(i32, f64)>, d: i32| {
            j.map_or("–".into(), |(e, ratio)| {
                let ratio = if ratio > 1e6 { "≫1000".to_string() } else { format!("{ratio:.1}") };
                format!("{e} (×{ratio}, {:+})", e - d)
            })
        };
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}%", 100.0 * v));
        evidence.push("| run | W | lr | seed | kind | outcome | divergence epoch | jump of mean \\|Δw\\| (×typical step, offset) | jump of rel_change | jump of p99 − p01 | mean \\|Δw\\| change per epoch before → after |".into());
        evidence.push("|---|---|---|---|---|---|---|---|---|---|---|".into());
        for r in &records {
            let d = r.divergence.epoch;
            let kind = if r.divergence.is_crossover() {
                "crossover"
            } else if r.divergence.learned_first {
                "died"
            } else {
                "early collapse"
            };
            evidence.push(format!(
                "| {} | {} | {} | {} | {kind} | {} | {d} | {} | {} | {} | {} → {} |",
                r.run_id,
                r.width,
                r.lr,
                r.seed,
                r.divergence.after.as_str(),
                fmt(r.mean_abs, d),
                fmt(r.rel_change, d),
                fmt(r.tails, d),
                pct(r.movement.0),
                pct(r.movement.1)
            ));
        }
    }
    let frozen: Vec<f64> = records
        .iter()
        .filter(|r| r.divergence.untrainable())
        .filter_map(|r| Some(r.movement.1? / r.movement.0?))
        .filter(|v| v.is_finite())
        .collect();
    if !frozen.is_empty() {
        evidence.push(format!(
            "After a divergence that did not recover, mean |Δw| changes per epoch {} times as much as in the 10 epochs before it (median over {} runs; ≪ 1: the weights are frozen).",
            format_median(&frozen),
            frozen.len()
        ));
    }
    let others: Vec<&JumpRecord> = records.iter().filter(|r| !r.divergence.is_crossover()).collect();
    if !others.is_empty() {
        let hits = others.iter().filter(|r| r.coincides()).count();
        evidence.push(format!(
            "Early collapses and dead networks (not part of the verdict): {hits} of {} have the jump of mean |Δw| within {JUMP_WINDOW} epochs of the divergence.",
            others.len()
        ));
    }
    if crossovers.is_empty() {
        evidence
            .push("No run learned and then diverged without dying: the study's coincidence cannot be tested.".into());
        return result(5, Verdict::NotTestable, evidence);
    }
    let matched = crossovers.iter().filter(|r| r.coincides()).count();
    let share = matched as f64 / crossovers.len() as f64;
    evidence.push(format!(
        "{matched} of {} crossover runs ({:.0}%) have the jump of mean |Δw| within {JUMP_WINDOW} epochs of the divergence (the rule asks for at least {:.0}%).",
        crossovers.len(),
        100.0 * share,
        100.0 * COINCIDENT_SHARE
    ));
    result(5, if share >= COINCIDENT_SHARE { Verdict::Supported } else { Verdict::NotSupported }, evidence)
}

fn format_median(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    format!("{:.3}", v[v.len() / 2])
}

/// Train-loss levels at which claim 6 compares widths.
pub const LOSS_LEVELS: [f64; 8] = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];

/// Mean |Δw| at one train-loss level: `(level, [(width, values over seeds)])`.
pub type LevelDeviation = (f64, Vec<(i64, Vec<f64>)>);

/// For each level of [`LOSS_LEVELS`], the mean |Δw| (all weights) at the first epoch each run
/// reaches it, per width: `(level, [(width, values over seeds)])`. Levels reached by fewer than
/// three widths are left out.
pub fn deviation_at_levels(runs: &[&RunTables]) -> Vec<LevelDeviation> {
    let mut out = vec![];
    for level in LOSS_LEVELS {
        let mut per_width = vec![];
        for (w, group) in by_width(runs) {
            let values: Vec<f64> = group
                .iter()
                .filter_map(|r| first_epoch_reaching(r, level).and_then(|e| mean_abs_all_weights(r, e)))
                .collect();
            if !values.is_empty() {
                per_width.push((w, values));
            }
        }
        if per_width.len() >= 3 {
            out.push((level, per_width));
        }
    }
    out
}

/// Log–log slope of the hidden→hidden `rel_change` at the last epoch against width, over all
/// non-diverged runs, with the points `(width, rel_change)`.
pub fn rel_change_slope(runs: &[&RunTables]) -> (Option<f64>, Vec<(f64, f64)>) {
    let points: Vec<(f64, f64)> = runs
        .iter()
        .filter(|r| !diverged(r))
        .filter_map(|r| Some((r.run.width as f64, layer_weights(r, HIDDEN_LAYER).last()?.rel_change?)))
        .filter(|p| p.1 > 0.0)
        .collect();
    let x: Vec<f64> = points.iter().map(|p| p.0.ln()).collect();
    let y: Vec<f64> = points.iter().map(|p| p.1.ln()).collect();
    let widths = by_width(runs).len();
    (if widths >= 2 { fit_line(&x, &y).map(|f| f.0) } else { None }, points)
}

/// Claim 6: at every loss level reached by at least three widths, the Spearman correlation of
/// width and the seed-mean mean |Δw| at the first epoch reaching that level must be negative.
pub fn check_width(runs: &[&RunTables]) -> ClaimResult {
    let levels = deviation_at_levels(runs);
    let (slope, _) = rel_change_slope(runs);
    let slope_line = format!(
        "Log–log slope of the hidden→hidden rel_change at the last epoch against width: {} (lazy-training/NTK scaling predicts about −0.5).",
        slope.map_or("undefined".into(), |s| format!("{s:.3}"))
    );
    if levels.is_empty() {
        return result(
            6,
            Verdict::NotTestable,
            vec!["No train-loss level is reached by three or more widths.".into(), slope_line],
        );
    }
    let mut evidence = vec![
        "| train loss reached | width: mean \\|Δw\\| (all weights, over seeds) | Spearman ρ(width, mean \\|Δw\\|) |"
            .into(),
        "|---|---|---|".into(),
    ];
    let mut all_negative = true;
    for (level, per_width) in &levels {
        let widths: Vec<f64> = per_width.iter().map(|p| p.0 as f64).collect();
        let means: Vec<f64> = per_width.iter().map(|p| mean_std(&p.1).0).collect();
        let rho = spearman(&widths, &means);
        all_negative &= rho.is_some_and(|r| r < 0.0);
        let cells: Vec<String> = per_width.iter().map(|(w, v)| format!("{w}: {}", pm(v, 4))).collect();
        evidence.push(format!(
            "| ≤ {level} | {} | {} |",
            cells.join("; "),
            rho.map_or("undefined".into(), |r| format!("{r:.3}"))
        ));
    }
    evidence.push(slope_line);
    result(6, if all_negative { Verdict::Supported } else { Verdict::NotSupported }, evidence)
}

/// The runs that compare like with like across widths and seeds: the unmasked ones (a mask
/// changes the initial weights), or all runs if every run is masked.
pub fn comparable<'a>(runs: &[&'a RunTables]) -> Vec<&'a RunTables> {
    let plain: Vec<&RunTables> = runs.iter().filter(|r| r.run.mask.is_none()).copied().collect();
    if plain.is_empty() {
        runs.to_vec()
    } else {
        plain
    }
}

/// All six checks on the runs of one setting ([`crate::setting`]): claim 1 on the masked runs,
/// claims 2 and 5 on the [`comparable`] runs of every learning rate, claims 3, 4 and 6 on those
/// of the [`reference_runs`] (the study's learning rate if the setting has it).
pub fn check_all(runs: &[&RunTables], masks: &BTreeMap<String, Vec<MaskPoint>>) -> Vec<ClaimResult> {
    let base = comparable(runs);
    let (lr, reference) = reference_runs(&base);
    let mut weights = [check_final_vs_initial(&reference), check_moments(&reference), check_width(&reference)];
    let lrs = crate::setting::learning_rates(&base);
    if lrs.len() > 1 {
        for claim in &mut weights {
            claim.evidence.insert(0, format!("Runs at lr {lr} (of {}).", lr_range(&lrs)));
        }
    }
    let [three, four, six] = weights;
    vec![check_mask(runs, masks), check_regimes(&base), three, four, check_evolution(&base), six]
}

/// The mask contrast at every snapshot of a masked run (`None` for an unmasked run), read from
/// its snapshot files.
pub fn mask_trace(run: &RunTables) -> Result<Option<Vec<MaskPoint>>, crate::AnalysisError> {
    use crate::read::read_weight_matrix;
    if run.run.mask.is_none() || run.run.depth < 2 {
        return Ok(None);
    }
    let epochs = run.dir.snapshot_epochs();
    let Some(&first) = epochs.first().filter(|&&e| e == 0) else { return Ok(None) };
    let w0 = read_weight_matrix(&run.dir.snapshot_path(first), HIDDEN_LAYER)?;
    let mut points = vec![];
    for epoch in epochs {
        let w = read_weight_matrix(&run.dir.snapshot_path(epoch), HIDDEN_LAYER)?;
        if let Some(visibility) = mask_visibility(&w0.values, &w.values) {
            points.push(MaskPoint { epoch: epoch as i32, visibility });
        }
    }
    Ok((!points.is_empty()).then_some(points))
}
