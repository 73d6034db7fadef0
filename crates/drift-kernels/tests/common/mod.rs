//! Helpers shared by the kernel test files.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

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
