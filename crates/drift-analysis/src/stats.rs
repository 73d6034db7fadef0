//! Descriptive statistics of a sample of deviations, computed in f64 in a fixed order.

/// Moments and extremes of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub n: usize,
    pub mean: f64,
    /// Population standard deviation (divides by n, as NumPy's default).
    pub std: f64,
    /// `m3 / m2^1.5`; `None` when the variance is 0 (undefined).
    pub skewness: Option<f64>,
    /// Excess kurtosis `m4 / m2² − 3`; `None` when the variance is 0.
    pub kurtosis: Option<f64>,
    pub mean_abs: f64,
    pub rms: f64,
    pub max_abs: f64,
}

/// Two passes: the mean, then central moments about it (stable for the tiny deviations of early
/// epochs, where a one-pass formula would cancel catastrophically). Empty input gives NaNs.
pub fn moments(values: &[f64]) -> Moments {
    let n = values.len();
    let nf = n as f64;
    let mean = values.iter().sum::<f64>() / nf;
    let (mut m2, mut m3, mut m4, mut abs, mut sq, mut max_abs) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0f64);
    for &v in values {
        let d = v - mean;
        let d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
        abs += v.abs();
        sq += v * v;
        max_abs = max_abs.max(v.abs());
    }
    let (m2, m3, m4) = (m2 / nf, m3 / nf, m4 / nf);
    let shape = m2 > 0.0;
    Moments {
        n,
        mean,
        std: m2.sqrt(),
        skewness: shape.then(|| m3 / (m2 * m2.sqrt())),
        kurtosis: shape.then(|| m4 / (m2 * m2) - 3.0),
        mean_abs: abs / nf,
        rms: (sq / nf).sqrt(),
        max_abs,
    }
}

/// The `q`-quantile of sorted data with linear interpolation between order statistics
/// (NumPy's default `linear` method, DuckDB's `quantile_cont`). Panics on empty input.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of an empty sample");
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    if lo == hi {
        sorted[lo]
    } else {
        sorted[lo] + (sorted[hi] - sorted[lo]) * frac
    }
}

/// Sorts in place by total order (NaNs last) and returns the slice, ready for quantiles.
pub fn sort(values: &mut [f64]) -> &[f64] {
    values.sort_unstable_by(f64::total_cmp);
    values
}

/// The `qs`-quantiles of unsorted data, exactly as [`quantile_sorted`] would give them after a
/// sort, but by selecting only the order statistics they need (linear time, not `n log n`):
/// this runs on every layer every epoch. Reorders `values`. Panics on empty input.
pub fn quantiles<const K: usize>(values: &mut [f64], qs: [f64; K]) -> [f64; K] {
    assert!(!values.is_empty(), "quantile of an empty sample");
    let last = values.len() - 1;
    let positions = qs.map(|q| q.clamp(0.0, 1.0) * last as f64);
    let mut needed: Vec<usize> = positions.iter().flat_map(|p| [p.floor() as usize, p.ceil() as usize]).collect();
    needed.sort_unstable();
    needed.dedup();
    select_ranks(values, 0, &needed);
    positions.map(|pos| {
        let (lo, hi) = (values[pos.floor() as usize], values[pos.ceil() as usize]);
        lo + (hi - lo) * (pos - pos.floor())
    })
}

/// Puts the order statistics `ranks` (sorted, distinct, relative to `values[0]` at rank
/// `offset`) in their places: select the middle one, then the lower ranks to its left and the
/// higher ones to its right — `n·log(ranks)` work instead of a pass over the rest per rank.
fn select_ranks(values: &mut [f64], offset: usize, ranks: &[usize]) {
    let Some(&rank) = ranks.get(ranks.len() / 2) else { return };
    let (lower, higher) = ranks.split_at(ranks.len() / 2);
    let at = rank - offset;
    if at == 0 {
        // The smallest: one scan (the upper half of a floor/ceil pair lands here).
        let min = (0..values.len()).fold(0, |m, i| if values[i].total_cmp(&values[m]).is_lt() { i } else { m });
        values.swap(0, min);
    } else {
        values.select_nth_unstable_by(at, f64::total_cmp);
    }
    let (left, right) = values.split_at_mut(at + 1);
    select_ranks(&mut left[..at], offset, lower);
    select_ranks(right, rank + 1, &higher[1..]);
}

/// The peak of the histogram of the data (reordered in place): the centre of the fullest bin (the first on ties)
/// of a Freedman–Diaconis histogram (bin width `2·IQR·n^(−1/3)`) over the 1st–99th percentile
/// range, so that a few outliers cannot stretch the bins. At most 4096 bins.
pub fn histogram_mode(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let [lo, p25, median, p75, hi] = quantiles(values, [0.01, 0.25, 0.5, 0.75, 0.99]);
    if hi <= lo || hi.is_nan() || lo.is_nan() {
        return Some(median);
    }
    let iqr = p75 - p25;
    let width = if iqr > 0.0 { 2.0 * iqr / cube_root(n as f64) } else { (hi - lo) / (n as f64).sqrt() };
    let bins = (((hi - lo) / width).ceil() as usize).clamp(1, 4096);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u32; bins];
    for &v in values.iter().filter(|&&v| v >= lo && v <= hi) {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let best = counts.iter().enumerate().fold(0, |best, (i, &c)| if c > counts[best] { i } else { best });
    Some(lo + (best as f64 + 0.5) * width)
}

/// The cube root of `x ≥ 1` by Newton's method from above, in IEEE arithmetic only: the same
/// bits on every platform, where libm's `cbrt` is not specified to the last bit (the bin width of
/// [`histogram_mode`] depends on it). Within 1 ulp of the true root.
fn cube_root(x: f64) -> f64 {
    debug_assert!(x >= 1.0, "cube_root({x})");
    // From any start above the root the iterates fall monotonically onto it; stop when they
    // no longer fall.
    let mut r = x;
    loop {
        let next = (2.0 * r + x / (r * r)) / 3.0;
        if next >= r {
            return r;
        }
        r = next;
    }
}

/// Mean and sample standard deviation (divides by n − 1; 0 for one value), as the spread of a
/// statistic over seeds is reported.
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

/// Ranks from 0, ties sharing their mean rank.
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

/// Least-squares slope and intercept of `y` on `x`; `None` for fewer than two points or a
/// constant `x`.
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

/// The median of `(value, weight)` pairs (sorted in place by value): the first value at which
/// the running weight reaches half the total. NaN when there are none.
pub fn weighted_median(values: &mut [(f64, i64)]) -> f64 {
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

/// The upper median (the element at `n / 2` once sorted, no interpolation); `None` when empty.
pub fn upper_median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The share of `values` above zero.
pub fn positive_share(values: &[f64]) -> f64 {
    values.iter().filter(|&&r| r > 0.0).count() as f64 / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cube_root_is_within_an_ulp_and_exact_on_cubes() {
        let ulp = |x: f64| f64::from_bits(x.to_bits() + 1) - x;
        for n in (1..=2_000_000u64).step_by(997).chain([1, 8, 27, 60_000, 1 << 40]) {
            let (x, got) = (n as f64, cube_root(n as f64));
            assert!((got - x.cbrt()).abs() <= ulp(x.cbrt()), "cube_root({n}) = {got}, cbrt {}", x.cbrt());
        }
        for k in 1..=1000u64 {
            assert_eq!(cube_root((k * k * k) as f64), k as f64, "cube_root({k}³)");
        }
    }

    #[test]
    fn moments_of_a_known_sample() {
        let m = moments(&[1.0, 2.0, 3.0, 4.0, 10.0]);
        assert_eq!(m.n, 5);
        assert!((m.mean - 4.0).abs() < 1e-12);
        assert!((m.std - 10.0f64.sqrt()).abs() < 1e-12);
        // m2 = 10, m3 = 36, m4 = 278.8: skewness 36/10^1.5, excess kurtosis 2.788 − 3.
        assert!((m.skewness.unwrap() - 1.1384199576606167).abs() < 1e-12);
        assert!((m.kurtosis.unwrap() - (-0.212)).abs() < 1e-12, "{:?}", m.kurtosis);
        assert_eq!(m.max_abs, 10.0);
        assert!((m.rms - (130.0f64 / 5.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn constant_sample_has_no_shape() {
        let m = moments(&[0.0; 8]);
        assert_eq!((m.mean, m.std, m.max_abs), (0.0, 0.0, 0.0));
        assert_eq!((m.skewness, m.kurtosis), (None, None));
        assert_eq!(histogram_mode(&mut [0.0; 8]), Some(0.0));
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
        assert_eq!(quantile_sorted(&s, 1.0), 8.0);
        assert!((quantile_sorted(&s, 0.5) - 3.0).abs() < 1e-12);
        assert!((quantile_sorted(&s, 0.25) - 1.75).abs() < 1e-12); // np.quantile([1,2,4,8], .25)
    }

    #[test]
    fn selected_quantiles_equal_sorted_quantiles() {
        for n in [1usize, 2, 3, 10, 101, 1000, 5000] {
            // Repeated values from n = 1009 on.
            let data: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1009) as f64 - 300.0).collect();
            let qs = [0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0];
            let mut sorted = data.clone();
            let want = qs.map(|q| quantile_sorted(sort(&mut sorted), q));
            assert_eq!(quantiles(&mut data.clone(), qs), want, "n = {n}");
        }
    }

    #[test]
    fn mode_finds_the_peak_of_a_skewed_sample() {
        // Triangular on [0, 1] with its peak at 0.2 (inverse CDF at evenly spaced levels).
        let n = 20_000;
        let mut v: Vec<f64> = (0..n)
            .map(|i| {
                let u = (i as f64 + 0.5) / n as f64;
                if u < 0.2 {
                    (0.2 * u).sqrt()
                } else {
                    1.0 - (0.8 * (1.0 - u)).sqrt()
                }
            })
            .collect();
        let mode = histogram_mode(&mut v).unwrap();
        assert!((mode - 0.2).abs() < 0.03, "mode {mode}");
        assert!(quantile_sorted(sort(&mut v), 0.5) > mode + 0.1, "the median sits right of the peak");
    }

    #[test]
    fn correlations_fits_and_spreads() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
        let (slope, intercept) = fit_line(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]).unwrap();
        assert!((slope - 2.0).abs() < 1e-12 && (intercept - 1.0).abs() < 1e-12);
        assert_eq!(fit_line(&[1.0], &[1.0]), None);
        assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }

    #[test]
    fn ties_share_their_mean_rank() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [2.5, 0.0, 2.5, 1.0]);
        assert_eq!(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0, 2.0, 2.0]).map(|r| (r * 1e9).round()),
            Some(894427191.0)
        );
    }

    #[test]
    fn medians() {
        // Weight 3 at 1.0 against 1 + 1 elsewhere: the heavy value wins.
        assert_eq!(weighted_median(&mut [(5.0, 1), (1.0, 3), (9.0, 1)]), 1.0);
        assert_eq!(weighted_median(&mut [(2.0, 1), (1.0, 1)]), 1.0);
        assert!(weighted_median(&mut []).is_nan());
        assert_eq!(upper_median(&[3.0, 1.0, 2.0, 4.0]), Some(3.0));
        assert_eq!(upper_median(&[]), None);
        assert_eq!(positive_share(&[1.0, -1.0, 0.0, 2.0]), 0.5);
    }
}
