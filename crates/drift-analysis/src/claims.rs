//! The six claims of the study, checked against the tables of a sweep. Every verdict is computed
//! here from the tables, by a rule fixed in the doc comment of its check; the figures draw the
//! same quantities (the helpers below are shared with them).
//!
//! The hidden→hidden matrix is layer 2; a claim that needs it is not testable on depth-1 runs.

use std::collections::BTreeMap;

use crate::read::RunTables;
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

/// The epoch after the first whose step most increased the mean |Δw| of the hidden→hidden
/// weights, with that increase. The first epoch is left out: every weight starts moving there,
/// so it is the largest step of almost every run and says nothing about a crossover.
pub fn largest_jump(run: &RunTables) -> Option<(i32, f64)> {
    let rows = layer_weights(run, HIDDEN_LAYER);
    rows.windows(2)
        .filter(|p| p[0].epoch >= 1)
        .map(|p| (p[1].epoch, p[1].mean_abs - p[0].mean_abs))
        .max_by(|a, b| a.1.total_cmp(&b.1))
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
    let unstable: Vec<_> = masked.iter().filter(|r| diverged(r)).collect();
    if unstable.is_empty() {
        evidence.push(
            "No masked run diverged, so the second half (the letter vanishing at the loss jump) is not testable here."
                .into(),
        );
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
            "Diverging run {} (W = {}, seed {}): divergence at epoch {d}; contrast {} before and {} after it; first below {VISIBLE} at {}.",
            run.run_id,
            run.run.width,
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

/// Claim 2. Needs at least three widths. Trainability must improve with width (Spearman
/// correlation of width and the seed-mean minimum train loss < 0), and some width other than the
/// narrowest and the widest must diverge in at least half of its seeds (the untrainable mid
/// regime).
pub fn check_regimes(runs: &[&RunTables]) -> ClaimResult {
    let groups = by_width(runs);
    if groups.len() < 3 {
        return result(
            2,
            Verdict::NotTestable,
            vec![format!("{} width(s); three regimes need at least three.", groups.len())],
        );
    }
    let mut evidence = vec!["| width | seeds | min train loss | epoch of min train loss | min test loss | epoch of min test loss | diverged |".into(), "|---|---|---|---|---|---|---|".into()];
    let (mut widths, mut min_train, mut divergent_mid) = (vec![], vec![], vec![]);
    let (first, last) = (*groups.keys().next().expect("widths"), *groups.keys().last().expect("widths"));
    for (&w, group) in &groups {
        let col = |f: &dyn Fn(&RunTables) -> f64| group.iter().map(|r| f(r)).collect::<Vec<f64>>();
        let train = col(&|r| r.run.min_train_loss);
        let n_div = group.iter().filter(|r| diverged(r)).count();
        evidence.push(format!(
            "| {w} | {} | {} | {} | {} | {} | {n_div}/{} |",
            group.len(),
            pm(&train, 4),
            pm(&col(&|r| f64::from(r.run.epoch_min_train_loss)), 1),
            pm(&col(&|r| r.run.min_test_loss), 4),
            pm(&col(&|r| f64::from(r.run.epoch_min_test_loss)), 1),
            group.len()
        ));
        widths.push(w as f64);
        min_train.push(mean_std(&train).0);
        if w != first && w != last && 2 * n_div >= group.len() {
            divergent_mid.push(w);
        }
    }
    let rho = spearman(&widths, &min_train);
    evidence.push(format!(
        "Spearman correlation of width and minimum train loss: {} (negative: wider trains better).",
        rho.map_or("undefined".into(), |r| format!("{r:.3}"))
    ));
    evidence.push(match divergent_mid.len() {
        0 => "No mid width diverged in at least half of its seeds: no untrainable regime in these runs.".into(),
        _ => format!("Mid widths diverging in at least half of their seeds: {divergent_mid:?}."),
    });
    let verdict = if rho.is_some_and(|r| r < 0.0) && !divergent_mid.is_empty() {
        Verdict::Supported
    } else {
        Verdict::NotSupported
    };
    result(2, verdict, evidence)
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

/// Claim 5: in every run whose train loss diverged, the epoch of the largest per-epoch increase
/// of the hidden→hidden mean |Δw| must lie within 2 epochs of the divergence epoch, in at least
/// half of those runs. Not testable when no run diverged (the epochs of the largest jumps of the
/// other runs are reported).
pub fn check_evolution(runs: &[&RunTables]) -> ClaimResult {
    let div: Vec<_> = runs.iter().filter(|r| diverged(r)).collect();
    let mut evidence = vec![];
    if div.is_empty() {
        let jumps: Vec<f64> = runs.iter().filter_map(|r| largest_jump(r)).map(|j| f64::from(j.0)).collect();
        evidence.push("No run diverged, so the loss never jumped up: the coincidence cannot be tested.".into());
        if !jumps.is_empty() {
            evidence.push(format!(
                "Epoch of the largest per-epoch increase of mean |Δw| (hidden→hidden, after epoch 1) over all runs: {}.",
                pm(&jumps, 1)
            ));
        }
        return result(5, Verdict::NotTestable, evidence);
    }
    let mut matched = 0;
    for run in &div {
        let d = run.run.divergence_epoch.expect("diverged");
        let jump = largest_jump(run);
        let hit = jump.is_some_and(|(e, _)| (e - d).abs() <= 2);
        matched += usize::from(hit);
        evidence.push(format!(
            "Run {} (W = {}, seed {}): divergence at epoch {d}, largest jump of mean |Δw| at epoch {}.",
            run.run_id,
            run.run.width,
            run.run.seed,
            jump.map_or("–".into(), |(e, v)| format!("{e} (+{v:.3e})"))
        ));
    }
    evidence.push(format!("{matched} of {} diverged runs have the jump within 2 epochs of the divergence.", div.len()));
    result(5, if 2 * matched >= div.len() { Verdict::Supported } else { Verdict::NotSupported }, evidence)
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

/// All six checks on the runs of one data set: claim 1 on the masked runs, the others on the
/// [`comparable`] runs.
pub fn check_all(runs: &[&RunTables], masks: &BTreeMap<String, Vec<MaskPoint>>) -> Vec<ClaimResult> {
    let base = comparable(runs);
    vec![
        check_mask(runs, masks),
        check_regimes(&base),
        check_final_vs_initial(&base),
        check_moments(&base),
        check_evolution(&base),
        check_width(&base),
    ]
}

/// The mask contrast at every snapshot of a masked run (`None` for an unmasked run), read from
/// its snapshot files.
pub fn mask_trace(run: &RunTables) -> Result<Option<Vec<MaskPoint>>, crate::AnalysisError> {
    use crate::read::{read_weight_matrix, snapshot_epochs};
    use crate::RunWriter;
    if run.run.mask.is_none() || run.run.depth < 2 {
        return Ok(None);
    }
    let epochs = snapshot_epochs(&run.dir);
    let Some(&first) = epochs.first().filter(|&&e| e == 0) else { return Ok(None) };
    let w0 = read_weight_matrix(&RunWriter::snapshot_path(&run.dir, first), HIDDEN_LAYER)?;
    let mut points = vec![];
    for epoch in epochs {
        let w = read_weight_matrix(&RunWriter::snapshot_path(&run.dir, epoch), HIDDEN_LAYER)?;
        if let Some(visibility) = mask_visibility(&w0.values, &w.values) {
            points.push(MaskPoint { epoch: epoch as i32, visibility });
        }
    }
    Ok((!points.is_empty()).then_some(points))
}
