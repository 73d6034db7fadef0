//! How far the parameters moved: the statistics of `Δw = w − w0` per layer, overall
//! ([`deviation_rows`]), as functions of `w0` ([`conditional_rows`]), and the joint histogram
//! of `(w0, w)` ([`hist2d_rows`]).

use drift_train::Layer;
use rayon::prelude::*;

use crate::stats::{histogram_mode, moments, quantiles};
use crate::tables::{ConditionalRow, DeviationRow, Hist2dRow, CONDITIONAL_QUANTILES, DEVIATION_QUANTILES};

fn deltas(w0: &[f32], w: &[f32]) -> Vec<f64> {
    w.iter().zip(w0).map(|(&w, &w0)| f64::from(w) - f64::from(w0)).collect()
}

/// Frobenius norm, accumulated in f64 in index order.
fn norm(values: impl Iterator<Item = f64>) -> f64 {
    values.map(|v| v * v).sum::<f64>().sqrt()
}

/// The rows of one layer (numbered from 1) at one epoch: one for its weights, one for its biases.
pub fn deviation_rows(epoch: i32, layer_number: i32, init: &Layer, current: &Layer) -> [DeviationRow; 2] {
    let limit = init.glorot_limit();
    let row = |kind: &'static str, w0: &[f32], w: &[f32]| {
        let mut dw = deltas(w0, w);
        let m = moments(&dw);
        let beyond = dw.iter().filter(|d| d.abs() > limit).count();
        let base = norm(w0.iter().map(|&v| f64::from(v)));
        let rel_change = (base > 0.0).then(|| norm(dw.iter().copied()) / base);
        DeviationRow {
            epoch,
            layer: layer_number,
            kind,
            n: m.n as i64,
            mean: m.mean,
            std: m.std,
            mean_abs: m.mean_abs,
            rms: m.rms,
            max_abs: m.max_abs,
            skewness: m.skewness,
            kurtosis: m.kurtosis,
            quantiles: quantiles(&mut dw, DEVIATION_QUANTILES.map(|(_, q)| q)),
            rel_change,
            frac_beyond_limit: beyond as f64 / m.n as f64,
        }
    };
    [row("weight", &init.w, &current.w), row("bias", &init.b, &current.b)]
}

/// How finely the snapshot tables resolve the weights: `w0` equal bins of the initial value over
/// the range of a layer's initialisation (`conditional.parquet`, both tables' `w0` axis), and
/// the `w` axis of `hist2d.parquet` in cells of `1/w` of that range. Neither is ever 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bins {
    pub w0: usize,
    pub w: usize,
}

impl Bins {
    /// `bins` on both axes: the resolution training writes.
    pub fn square(bins: usize) -> Bins {
        Bins { w0: bins.max(1), w: bins.max(1) }
    }
}

/// Bin `i` of `bins` equal bins over `[−l, l]`, clamped to the ends.
fn w0_bin(w0: f64, limit: f64, bins: usize) -> usize {
    floor_to_i64((w0 + limit) / (2.0 * limit) * bins as f64).clamp(0, bins as i64 - 1) as usize
}

/// `x.floor()` as an integer, saturating, NaN to 0. Written out because `f64::floor` is a call
/// into libm on the baseline x86-64 target (no SSE4.1), a fifth of the histograms' time.
fn floor_to_i64(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) > x {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// The weights of one layer grouped by their initial value into `bins` equal bins over
/// `[−range, range]`, the range of the layer's initialisation ([`drift_train::Init::bound`]):
/// count, moments and histogram peak of `Δw`, quantiles of `w`.
pub fn conditional_rows(
    epoch: i32,
    layer_number: i32,
    init: &Layer,
    current: &Layer,
    range: f64,
    bins: usize,
) -> Vec<ConditionalRow> {
    let limit = range;
    let width = 2.0 * limit / bins as f64;
    let mut dw_by_bin: Vec<Vec<f64>> = vec![Vec::new(); bins];
    let mut w_by_bin: Vec<Vec<f64>> = vec![Vec::new(); bins];
    for (&w0, &w) in init.w.iter().zip(&current.w) {
        let b = w0_bin(f64::from(w0), limit, bins);
        dw_by_bin[b].push(f64::from(w) - f64::from(w0));
        w_by_bin[b].push(f64::from(w));
    }
    dw_by_bin
        .par_iter_mut()
        .zip(w_by_bin.par_iter_mut())
        .enumerate()
        .map(|(b, (dw, w))| {
            let filled = !dw.is_empty();
            let m = filled.then(|| moments(dw));
            ConditionalRow {
                epoch,
                layer: layer_number,
                bin: b as i32,
                w0_lo: -limit + b as f64 * width,
                w0_hi: -limit + (b + 1) as f64 * width,
                count: dw.len() as i64,
                mean_dw: m.map(|m| m.mean),
                std_dw: m.map(|m| m.std),
                skew_dw: m.and_then(|m| m.skewness),
                kurt_dw: m.and_then(|m| m.kurtosis),
                mode_dw: histogram_mode(dw),
                w_quantiles: filled.then(|| quantiles(w, CONDITIONAL_QUANTILES.map(|(_, q)| q))),
            }
        })
        .collect()
}

/// The non-empty cells of the 2-D histogram of `(w0, w)` of one layer's weights. The `w0` axis
/// has `resolution.w0` bins over the initialisation's range `[−r, r]` (`r = range`), the `w`
/// axis cells of width `2r / resolution.w` from the same origin `−r`: with equal counts (the
/// default) the diagonal `w = w0` runs through the corners of the cells. The `w` axis extends as
/// far as the weights have moved (its bin index may be negative or exceed `resolution.w`).
pub fn hist2d_rows(
    epoch: i32,
    layer_number: i32,
    init: &Layer,
    current: &Layer,
    range: f64,
    resolution: Bins,
) -> Vec<Hist2dRow> {
    let limit = range;
    let bins = resolution.w0;
    let width = 2.0 * limit / bins as f64;
    let w_width = 2.0 * limit / resolution.w as f64;
    let cell = |w0: f32, w: f32| {
        let x = w0_bin(f64::from(w0), limit, bins) as i32;
        let y = floor_to_i64((f64::from(w) + limit) / w_width).clamp(i32::MIN.into(), i32::MAX.into()) as i32;
        (x, y)
    };
    let finite = || init.w.iter().zip(&current.w).filter(|(_, w)| w.is_finite());
    let (lo, hi) = finite().fold((i32::MAX, i32::MIN), |(lo, hi), (&w0, &w)| {
        let y = cell(w0, w).1;
        (lo.min(y), hi.max(y))
    });
    if lo > hi {
        return Vec::new();
    }
    // A dense grid while the weights stay in a sane range (the usual case), a sorted list of
    // cells when a diverged layer spreads them over millions of bins.
    let rows = i64::from(hi) - i64::from(lo) + 1;
    let mut counts: Vec<((i32, i32), i64)> = if rows * bins as i64 <= 1 << 22 {
        let mut grid = vec![0i64; rows as usize * bins];
        for (&w0, &w) in finite() {
            let (x, y) = cell(w0, w);
            grid[(y - lo) as usize * bins + x as usize] += 1;
        }
        let cells = grid.iter().enumerate().filter(|(_, &c)| c > 0);
        cells.map(|(i, &c)| (((i % bins) as i32, lo + (i / bins) as i32), c)).collect()
    } else {
        let mut cells: Vec<(i32, i32)> = finite().map(|(&w0, &w)| cell(w0, w)).collect();
        cells.sort_unstable_by_key(|&(x, y)| (y, x));
        cells.chunk_by(|a, b| a == b).map(|run| (run[0], run.len() as i64)).collect()
    };
    // Ordered by w0 bin, then w bin.
    counts.sort_unstable_by_key(|&(cell, _)| cell);
    counts
        .into_iter()
        .map(|((x, y), count)| Hist2dRow {
            epoch,
            layer: layer_number,
            w0_bin: x,
            w_bin: y,
            w0_lo: -limit + f64::from(x) * width,
            w0_hi: -limit + f64::from(x + 1) * width,
            w_lo: -limit + f64::from(y) * w_width,
            w_hi: -limit + f64::from(y + 1) * w_width,
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(w: Vec<f32>, b: Vec<f32>, fan_in: usize) -> Layer {
        Layer { fan_in, fan_out: w.len() / fan_in, w, b }
    }

    #[test]
    fn unchanged_layer_has_zero_deviation() {
        let init = layer(vec![0.1, -0.2, 0.3, -0.4], vec![0.0, 0.0], 2);
        let [w, b] = deviation_rows(0, 1, &init, &init);
        assert_eq!((w.mean, w.std, w.max_abs, w.quantiles), (0.0, 0.0, 0.0, [0.0; 7]));
        assert_eq!(w.rel_change, Some(0.0));
        assert_eq!(b.rel_change, None, "biases start at zero");
        assert_eq!((w.n, b.n), (4, 2));
    }

    #[test]
    fn deviation_of_a_known_change() {
        let init = layer(vec![0.5, -0.5, 0.25, 0.0], vec![0.0; 2], 2);
        let now = layer(vec![1.5, -0.5, 0.25, 0.0], vec![0.5, 0.0], 2);
        let [w, b] = deviation_rows(3, 2, &init, &now);
        assert_eq!((w.epoch, w.layer, w.kind), (3, 2, "weight"));
        assert!((w.mean - 0.25).abs() < 1e-12 && (w.max_abs - 1.0).abs() < 1e-12);
        let base = (0.25f64 + 0.25 + 0.0625).sqrt();
        assert!((w.rel_change.unwrap() - 1.0 / base).abs() < 1e-12);
        // limit = sqrt(6/4) ≈ 1.22: a step of 1.0 is within it.
        assert_eq!(w.frac_beyond_limit, 0.0);
        assert!((b.mean - 0.25).abs() < 1e-12);
    }

    #[test]
    fn conditional_bins_cover_the_glorot_range() {
        let init = layer(vec![-1.2, -0.6, 0.0, 0.6, 1.2, 0.61], vec![0.0; 3], 2);
        let now = layer(vec![-1.3, -0.6, 0.1, 0.7, 1.2, 0.61], vec![0.0; 3], 2);
        let rows = conditional_rows(1, 1, &init, &now, init.glorot_limit(), 4);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows.iter().map(|r| r.count).sum::<i64>(), 6);
        let limit = init.glorot_limit();
        assert!((rows[0].w0_lo + limit).abs() < 1e-12 && (rows[3].w0_hi - limit).abs() < 1e-12);
        assert!(rows.iter().all(|r| r.count > 0 || r.mean_dw.is_none()));
    }

    #[test]
    fn hist2d_counts_every_weight_and_aligns_the_diagonal() {
        let init = layer(vec![-0.9, -0.3, 0.3, 0.9], vec![0.0; 2], 2);
        let rows = hist2d_rows(0, 1, &init, &init, init.glorot_limit(), Bins::square(10));
        assert_eq!(rows.iter().map(|r| r.count).sum::<i64>(), 4);
        assert!(rows.iter().all(|r| r.w0_bin == r.w_bin), "w = w0 falls on the diagonal");
    }

    #[test]
    fn hist2d_w_axis_has_its_own_resolution() {
        let init = layer(vec![-0.9, -0.3, 0.3, 0.9], vec![0.0; 2], 2);
        let limit = init.glorot_limit();
        let rows = hist2d_rows(0, 1, &init, &init, limit, Bins { w0: 2, w: 8 });
        assert_eq!(rows.iter().map(|r| r.count).sum::<i64>(), 4);
        for r in &rows {
            assert!((r.w_hi - r.w_lo - limit / 4.0).abs() < 1e-12 && (r.w0_hi - r.w0_lo - limit).abs() < 1e-12);
            assert!(r.w0_lo <= r.w_lo && r.w_hi <= r.w0_hi, "w = w0 lies in the w0 bin: {r:?}");
        }
    }

    #[test]
    fn floor_to_i64_is_floor() {
        let cases: [f64; 14] =
            [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.999, -2.999, 1e-300, -1e-300, 4.5e15, -4.5e15, 1e30, -1e30];
        for x in cases {
            let want = x.floor().clamp(i64::MIN as f64, i64::MAX as f64) as i64;
            assert_eq!(floor_to_i64(x), want, "floor({x})");
        }
        assert_eq!(floor_to_i64(f64::NAN), 0);
        assert_eq!((floor_to_i64(f64::INFINITY), floor_to_i64(f64::NEG_INFINITY)), (i64::MAX, i64::MIN));
    }
}
