//! Helpers shared by the kernel test files.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use drift_kernels::{Kernel, MatRef};

/// Whether this CPU can run `kernel`; if not, records that the part of the calling test that
/// needs it is skipped (capability `avx512` or `avx2`; a failure where `DRIFT_REQUIRE` names it).
#[track_caller]
pub fn has(kernel: Kernel) -> bool {
    let ok = kernel.supported();
    if !ok {
        drift_skip::skip(kernel.as_str(), "not supported by this CPU");
    }
    ok
}

/// The blocked kernels to test: those this CPU has, the skip of each other one recorded.
pub fn blocked_kernels() -> Vec<Kernel> {
    Kernel::BLOCKED.into_iter().filter(|&k| has(k)).collect()
}

/// The kernels to test: every supported blocked kernel, then matrixmultiply; the skip of each
/// blocked kernel this CPU lacks is recorded.
pub fn kernels() -> Vec<Kernel> {
    blocked_kernels();
    Kernel::available()
}

/// Deterministic test data in [-1, 1): a 64-bit LCG, so failures replay from the printed seed.
pub fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `(m, k, n)` of the products of a training step at W = 512 and W = 1000, for a full batch of
/// 128 and a last, partial one of 96.
pub const TRAINING_SHAPES: [(usize, usize, usize); 6] =
    [(128, 784, 512), (96, 512, 10), (128, 10, 512), (10, 128, 512), (512, 96, 784), (128, 1000, 1000)];

/// Calls `check(m, k, n, seed)` with every `d` of `dims` as m, then as k, then as n, the other two
/// dimensions from each pair of `others`; the seed counts up from 1, so a failure replays.
pub fn each_dimension_in_turn(
    dims: &[usize],
    others: &[(usize, usize)],
    mut check: impl FnMut(usize, usize, usize, u64),
) {
    let mut seed = 1;
    for &d in dims {
        for &(x, y) in others {
            check(d, x, y, seed);
            check(x, d, y, seed + 1);
            check(x, y, d, seed + 2);
            seed += 3;
        }
    }
}

/// The three training layouts of one product `C (m×n) = A (m×k) · B (k×n)`.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// `Z = X·Wᵀ`: A = X row-major `m×k`, B = Wᵀ with W row-major `n×k`.
    Forward,
    /// `dX = dZ·W`: A = dZ row-major `m×k`, B = W row-major `k×n`.
    BackwardData,
    /// `dW = dZᵀ·X`: A = dZᵀ with dZ row-major `k×m`, B = X row-major `k×n`.
    WeightGrad,
}

pub const LAYOUTS: [Layout; 3] = [Layout::Forward, Layout::BackwardData, Layout::WeightGrad];

impl Layout {
    /// The views A (`m×k`) and B (`k×n`) of operand data stored as this layout stores them.
    pub fn views<'a>(self, a: &'a [f32], b: &'a [f32], (m, k, n): (usize, usize, usize)) -> (MatRef<'a>, MatRef<'a>) {
        match self {
            Layout::Forward => (MatRef::new(a, m, k), MatRef::new(b, n, k).t()),
            Layout::BackwardData => (MatRef::new(a, m, k), MatRef::new(b, k, n)),
            Layout::WeightGrad => (MatRef::new(a, k, m).t(), MatRef::new(b, k, n)),
        }
    }
}

/// `got` within `1e-5·√k·(1 + |want|)` of the f64 reference, element by element: the rounding
/// a sum of `k` f32 products may accumulate.
#[track_caller]
pub fn assert_close(got: &[f32], want: &[f64], k: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (idx, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * (k.max(1) as f64).sqrt() * (1.0 + w.abs());
        assert!((f64::from(g) - w).abs() <= tol, "{what}: element {idx}: got {g}, want {w} (tol {tol:e})");
    }
}
