//! Is the change of a weight matrix low-rank? The singular values of `ΔW = W − W0`, next to
//! those of `W0` and `W`, with the stable rank and the top-k energy shares of each
//! (`spectrum.parquet`).
//!
//! The decomposition is faer's (pure Rust, f64, one thread per matrix): its results do not
//! depend on the number of threads, but unlike the trainer's they are not pinned bit for bit
//! across CPUs (faer picks its own SIMD path and blocking), only to rounding.

use drift_train::Layer;
use faer::MatRef;

use crate::tables::{SpectrumRow, TOP_SHARES};

/// The matrices of one layer whose spectra are kept, in table order.
pub const MATRICES: [&str; 3] = ["dw", "w0", "w"];

/// The singular values of the `rows × cols` row-major matrix `values` (widened to f64), largest
/// first; `None` when an entry is not finite (a diverged run) and there is nothing to decompose.
pub fn singular_values(rows: usize, cols: usize, values: &[f64]) -> Option<Vec<f64>> {
    assert_eq!(values.len(), rows * cols, "a {rows} × {cols} matrix");
    if !values.iter().all(|v| v.is_finite()) {
        return None;
    }
    if rows == 0 || cols == 0 {
        return Some(Vec::new());
    }
    // Row-major is the column-major layout of the transpose, which has the same singular values.
    let transposed = MatRef::from_column_major_slice(values, cols, rows);
    let mut sigma = transposed.singular_values().ok()?;
    sigma.sort_unstable_by(|a, b| b.total_cmp(a));
    Some(sigma)
}

/// `(‖M‖²_F / σ₁², [share of ‖M‖²_F in the top 1, 5, 10 values])` from the singular values of
/// `M`, largest first; `None` for a zero matrix (ΔW before training), where neither is defined.
pub fn stable_rank_and_shares(sigma: &[f64]) -> Option<(f64, [f64; 3])> {
    let energy: f64 = sigma.iter().map(|s| s * s).sum();
    let top = *sigma.first()?;
    if energy <= 0.0 {
        return None;
    }
    let share = |k: usize| sigma.iter().take(k).map(|s| s * s).sum::<f64>() / energy;
    Some((energy / (top * top), TOP_SHARES.map(|(_, k)| share(k))))
}

/// The rows of one matrix's spectrum.
fn rows_of(epoch: i32, layer: i32, matrix: &'static str, sigma: &[f64]) -> Vec<SpectrumRow> {
    let summary = stable_rank_and_shares(sigma);
    sigma
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let first = (i == 0).then_some(summary).flatten();
            SpectrumRow {
                epoch,
                layer,
                matrix,
                index: i as i32,
                sigma: s,
                stable_rank: first.map(|(rank, _)| rank),
                top_shares: first.map(|(_, shares)| shares),
            }
        })
        .collect()
}

/// The singular values of a layer's initial weights, computed once per run and reused at every
/// snapshot (`None` if they are not finite).
pub fn initial_spectrum(init: &Layer) -> Option<Vec<f64>> {
    let w0: Vec<f64> = init.w.iter().map(|&v| f64::from(v)).collect();
    singular_values(init.fan_out, init.fan_in, &w0)
}

/// The spectrum rows of one layer (numbered from 1) at one epoch: ΔW, W0 (given, from
/// [`initial_spectrum`]) and W. A matrix with a non-finite entry has no rows.
pub fn spectrum_rows(
    epoch: i32,
    layer_number: i32,
    init: &Layer,
    current: &Layer,
    w0_sigma: Option<&[f64]>,
) -> Vec<SpectrumRow> {
    let (rows, cols) = (current.fan_out, current.fan_in);
    let w: Vec<f64> = current.w.iter().map(|&v| f64::from(v)).collect();
    let dw: Vec<f64> = w.iter().zip(&init.w).map(|(&w, &w0)| w - f64::from(w0)).collect();
    let (dw_sigma, w_sigma) = rayon::join(|| singular_values(rows, cols, &dw), || singular_values(rows, cols, &w));
    let spectra = [dw_sigma.as_deref(), w0_sigma, w_sigma.as_deref()];
    MATRICES
        .iter()
        .zip(spectra)
        .filter_map(|(&matrix, sigma)| Some(rows_of(epoch, layer_number, matrix, sigma?)))
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_values_of_known_matrices() {
        // diag(3, 2) padded with a zero row: singular values 3, 2 whatever the orientation.
        let m = [0.0, 2.0, 3.0, 0.0, 0.0, 0.0];
        let s = singular_values(3, 2, &m).unwrap();
        assert!((s[0] - 3.0).abs() < 1e-14 && (s[1] - 2.0).abs() < 1e-14, "{s:?}");
        let t = singular_values(2, 3, &[0.0, 3.0, 0.0, 2.0, 0.0, 0.0]).unwrap();
        assert!((t[0] - 3.0).abs() < 1e-14 && (t[1] - 2.0).abs() < 1e-14, "{t:?}");
        // A rank-one matrix u vᵀ: one value ‖u‖‖v‖, the rest zero.
        let (u, v) = ([1.0, 2.0, 2.0], [3.0, 4.0]);
        let outer: Vec<f64> = u.iter().flat_map(|a| v.iter().map(move |b| a * b)).collect();
        let s = singular_values(3, 2, &outer).unwrap();
        assert!((s[0] - 15.0).abs() < 1e-12 && s[1].abs() < 1e-12, "{s:?}");
        assert_eq!(singular_values(2, 2, &[1.0, f64::NAN, 0.0, 1.0]), None);
    }

    #[test]
    fn stable_rank_and_shares_of_known_spectra() {
        let (rank, shares) = stable_rank_and_shares(&[2.0, 1.0, 1.0]).unwrap();
        assert_eq!(rank, 6.0 / 4.0);
        assert_eq!(shares, [4.0 / 6.0, 1.0, 1.0]);
        let flat = [1.0; 20];
        let (rank, shares) = stable_rank_and_shares(&flat).unwrap();
        assert_eq!((rank, shares), (20.0, [0.05, 0.25, 0.5]));
        assert_eq!(stable_rank_and_shares(&[0.0, 0.0]), None);
        assert_eq!(stable_rank_and_shares(&[]), None);
    }

    #[test]
    fn rows_carry_the_summary_on_index_zero_only() {
        let init = Layer { fan_in: 2, fan_out: 2, w: vec![1.0, 0.0, 0.0, 1.0], b: vec![0.0; 2] };
        let now = Layer { w: vec![3.0, 0.0, 0.0, 1.0], ..init.clone() };
        let w0 = initial_spectrum(&init).unwrap();
        let rows = spectrum_rows(4, 1, &init, &now, Some(&w0));
        assert_eq!(rows.len(), 6);
        let names: Vec<_> = rows.iter().map(|r| (r.matrix, r.index)).collect();
        assert_eq!(names, [("dw", 0), ("dw", 1), ("w0", 0), ("w0", 1), ("w", 0), ("w", 1)]);
        // ΔW = diag(2, 0): rank one.
        assert!((rows[0].sigma - 2.0).abs() < 1e-14 && rows[1].sigma.abs() < 1e-14);
        assert!((rows[0].stable_rank.unwrap() - 1.0).abs() < 1e-12);
        assert!(rows.iter().filter(|r| r.index > 0).all(|r| r.stable_rank.is_none() && r.top_shares.is_none()));
        // Before training ΔW = 0: its values are rows, its stable rank is undefined.
        let start = spectrum_rows(0, 1, &init, &init, Some(&w0));
        assert!(start[0].sigma == 0.0 && start[0].stable_rank.is_none());
        assert_eq!(start[2].stable_rank, Some(2.0));
    }
}
