//! Named random streams: every source of randomness in drift is a Xoshiro256++ generator seeded
//! from the run seed and a stream name, so that adding a new consumer of randomness never shifts
//! the numbers an existing one sees, and a stream can be recreated anywhere (for example the
//! shuffle of epoch 17 after a resume) without replaying the others.
//!
//! The derived quantities (uniform floats, bounded integers, shuffles) are implemented here rather
//! than taken from `rand`, so that their exact algorithms are part of drift's contract and stay
//! fixed across dependency upgrades.
//!
//! ```
//! use drift_data::rng::Stream;
//! let mut a = Stream::new(7, "init/layer=1");
//! let mut b = Stream::new(7, "init/layer=1");
//! assert_eq!(a.next_u64(), b.next_u64());
//! let mut c = Stream::new(7, "init/layer=2");
//! assert_ne!(Stream::new(7, "init/layer=1").next_u64(), c.next_u64());
//! ```

use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A Xoshiro256++ generator for one named stream of one seed.
#[derive(Clone, Debug)]
pub struct Stream {
    inner: Xoshiro256PlusPlus,
}

/// 64-bit FNV-1a of the stream name: a fixed, documented hash (std's hasher may change).
fn fnv1a(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One SplitMix64 step; used to spread (seed, name) over the 256-bit Xoshiro state.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Stream {
    /// The stream `name` of run seed `seed`: state = four SplitMix64 outputs started at
    /// `seed ⊕ rotl(fnv1a(name), 17)`.
    pub fn new(seed: u64, name: &str) -> Self {
        let mut sm = seed ^ fnv1a(name).rotate_left(17);
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut sm).to_le_bytes());
        }
        Stream { inner: Xoshiro256PlusPlus::from_seed(bytes) }
    }

    /// The next raw 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform_range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform_f64()
    }

    /// Uniform integer in `[0, n)`, unbiased (Lemire's multiply-and-reject). Panics if `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Stream::below(0)");
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Fisher–Yates shuffle, from the last element down.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| 0).scan(Stream::new(1, "x"), |s, _| Some(s.next_u64())).collect();
        let b: Vec<u64> = (0..4).map(|_| 0).scan(Stream::new(1, "x"), |s, _| Some(s.next_u64())).collect();
        let c: Vec<u64> = (0..4).map(|_| 0).scan(Stream::new(2, "x"), |s, _| Some(s.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut s = Stream::new(3, "below");
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[s.below(7) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "counts {counts:?}");
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..1000).collect();
        Stream::new(5, "shuffle").shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(v, sorted);
    }

    #[test]
    fn uniform_moments() {
        let mut s = Stream::new(9, "moments");
        let n = 100_000;
        let u: Vec<f64> = (0..n).map(|_| s.uniform_f64()).collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        let var = u.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01 && (var - 1.0 / 12.0).abs() < 0.002, "mean {mean} var {var}");
        assert!(u.iter().all(|x| (0.0..1.0).contains(x)));
    }
}
