//! What the claim checks and the figures read from the tables of a run: the rows of a layer, the
//! last snapshot's bins of w0, runs by width, the jumps of the deviations, the deviations at
//! given train losses, the spectra of the weight change and the mask contrast. The figures draw exactly these quantities, so a
//! figure shows what its claim was judged on.

use std::collections::BTreeMap;

use crate::read::RunTables;
use crate::regimes::{abrupt_jump, classify_run, Divergence, JUMP_WINDOW};
use crate::stats::{fit_line, upper_median};
use crate::tables::{ConditionalRow, DeviationRow, SpectrumRow};

/// The hidden→hidden weight matrix (input → hidden 1 is layer 1); a quantity of it does not
/// exist in depth-1 runs.
pub const HIDDEN_LAYER: i32 = 2;

/// Bins of w0 with fewer weights than this are left out of claims 3 and 4 and of F4 (the
/// moments of a few dozen deviations are mostly noise).
pub const MIN_BIN_COUNT: i64 = 100;

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

/// The jump of a hidden→hidden deviation statistic (by [`abrupt_jump`]): the epoch whose
/// increase stands out most against the increases just before it, with that multiple.
pub fn deviation_jump(run: &RunTables, statistic: Statistic) -> Option<(i32, f64)> {
    let series: Vec<(i32, f64)> =
        layer_weights(run, HIDDEN_LAYER).iter().filter_map(|d| Some((d.epoch, statistic.of(d)?))).collect();
    abrupt_jump(&series)
}

/// The first epoch at which the train loss is at most `level`.
pub fn first_epoch_reaching(run: &RunTables, level: f64) -> Option<i32> {
    run.history.iter().filter(|h| h.epoch > 0).find(|h| h.train_loss <= level).map(|h| h.epoch)
}

/// The last epoch with conditional rows (the last snapshot).
pub fn last_snapshot_epoch(run: &RunTables) -> Option<i32> {
    run.conditional.iter().map(|c| c.epoch).max()
}

/// The singular values of one matrix (`dw`, `w0` or `w`) of `layer` at the run's last epoch with
/// a spectrum, largest first, and that epoch; `None` if the run has no spectrum of it.
pub fn last_spectrum(run: &RunTables, layer: i32, matrix: &str) -> Option<(i32, Vec<f64>)> {
    let rows =
        |epoch: i32| run.spectrum.iter().filter(move |r| r.epoch == epoch && r.layer == layer && r.matrix == matrix);
    let epoch = run.spectrum.iter().filter(|r| r.layer == layer && r.matrix == matrix).map(|r| r.epoch).max()?;
    let mut values: Vec<&SpectrumRow> = rows(epoch).collect();
    values.sort_by_key(|r| r.index);
    Some((epoch, values.iter().map(|r| r.sigma).collect()))
}

/// The stable rank of one matrix of `layer` at every epoch where it is defined (ΔW = 0 at
/// epoch 0 has none), by epoch.
pub fn stable_ranks(run: &RunTables, layer: i32, matrix: &str) -> Vec<(i32, f64)> {
    let mut ranks: Vec<(i32, f64)> = run
        .spectrum
        .iter()
        .filter(|r| r.layer == layer && r.matrix == matrix && r.index == 0)
        .filter_map(|r| Some((r.epoch, r.stable_rank?)))
        .collect();
    ranks.sort_by_key(|&(epoch, _)| epoch);
    ranks
}

/// The conditional rows of the hidden→hidden layer at the run's last snapshot.
pub fn last_conditional(run: &RunTables) -> Vec<&ConditionalRow> {
    let Some(epoch) = last_snapshot_epoch(run) else { return Vec::new() };
    run.conditional.iter().filter(|c| c.epoch == epoch && c.layer == HIDDEN_LAYER).collect()
}

/// The bins among `rows` that hold at least [`MIN_BIN_COUNT`] weights.
pub fn populated<'a>(rows: impl IntoIterator<Item = &'a ConditionalRow>) -> Vec<&'a ConditionalRow> {
    rows.into_iter().filter(|c| c.count >= MIN_BIN_COUNT).collect()
}

/// The centre of a bin of w0.
pub fn bin_centre(c: &ConditionalRow) -> f64 {
    0.5 * (c.w0_lo + c.w0_hi)
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
    let changes: Vec<f64> = rows
        .windows(2)
        .filter(|p| p[1].epoch >= from && p[1].epoch <= to && p[0].mean_abs > 0.0)
        .map(|p| ((p[1].mean_abs - p[0].mean_abs) / p[0].mean_abs).abs())
        .filter(|v| v.is_finite())
        .collect();
    upper_median(&changes)
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

/// The hidden→hidden `rel_change` at the last epoch against width over the non-diverged runs:
/// the points `(width, rel_change)` and the least-squares line through their logarithms.
#[derive(Clone, Debug, PartialEq)]
pub struct RelChangeFit {
    pub points: Vec<(f64, f64)>,
    /// `(slope, intercept)` of ln rel_change on ln width; `None` with fewer than two widths.
    pub line: Option<(f64, f64)>,
}

impl RelChangeFit {
    /// The log–log slope.
    pub fn slope(&self) -> Option<f64> {
        self.line.map(|l| l.0)
    }
}

/// The log–log fit of the hidden→hidden `rel_change` at the last epoch against width, over all
/// non-diverged runs.
pub fn rel_change_fit(runs: &[&RunTables]) -> RelChangeFit {
    let points: Vec<(f64, f64)> = runs
        .iter()
        .filter(|r| !diverged(r))
        .filter_map(|r| Some((r.run.width as f64, layer_weights(r, HIDDEN_LAYER).last()?.rel_change?)))
        .filter(|p| p.1 > 0.0)
        .collect();
    let x: Vec<f64> = points.iter().map(|p| p.0.ln()).collect();
    let y: Vec<f64> = points.iter().map(|p| p.1.ln()).collect();
    let widths = by_width(runs).len();
    RelChangeFit { line: if widths >= 2 { fit_line(&x, &y) } else { None }, points }
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
