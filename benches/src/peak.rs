//! The physical limit every other figure is divided by: this machine's f32 FMA rate, measured
//! with many independent FMA chains per core so that latency never stalls the pipes.

/// FMA instructions per chain per call.
pub const ITERATIONS: u64 = 1 << 20;
/// Independent accumulators, more than FMA latency × FMA pipes of any current core, and few
/// enough to stay in registers (32 zmm with AVX-512, 16 ymm with AVX2, two hold constants).
const CHAINS_AVX512: usize = 24;
const CHAINS_AVX2: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// Whether this CPU has the instruction set.
    #[cfg(target_arch = "x86_64")]
    pub fn available(self) -> bool {
        match self {
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        }
    }

    /// Never: both are x86-64 instruction sets.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn available(self) -> bool {
        false
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
        }
    }

    fn lanes(self) -> u64 {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }

    fn chains(self) -> u64 {
        match self {
            Isa::Avx512 => CHAINS_AVX512 as u64,
            Isa::Avx2 => CHAINS_AVX2 as u64,
        }
    }

    /// FLOPs of one probe on one thread (an FMA is two).
    pub fn flops(self, iterations: u64) -> u64 {
        iterations * self.chains() * self.lanes() * 2
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn chains_avx512(iterations: u64) -> f32 {
    use std::arch::x86_64::*;
    let mul = _mm512_set1_ps(0.999_999);
    let add = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); CHAINS_AVX512];
    for _ in 0..iterations {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, mul, add);
        }
    }
    let mut sum = _mm512_setzero_ps();
    for a in acc {
        sum = _mm512_add_ps(sum, a);
    }
    _mm512_reduce_add_ps(sum)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chains_avx2(iterations: u64) -> f32 {
    use std::arch::x86_64::*;
    let mul = _mm256_set1_ps(0.999_999);
    let add = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); CHAINS_AVX2];
    for _ in 0..iterations {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, mul, add);
        }
    }
    let mut sum = _mm256_setzero_ps();
    for a in acc {
        sum = _mm256_add_ps(sum, a);
    }
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds the 8 floats the store writes.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

#[cfg(target_arch = "x86_64")]
fn one_thread(isa: Isa) -> f32 {
    assert!(isa.available(), "{isa:?} is not supported by this CPU");
    // SAFETY: the instruction set was checked just above.
    unsafe {
        match isa {
            Isa::Avx512 => chains_avx512(ITERATIONS),
            Isa::Avx2 => chains_avx2(ITERATIONS),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn one_thread(isa: Isa) -> f32 {
    panic!("{isa:?} is not supported by this CPU")
}

/// Runs the probe on `threads` threads at once; returns a value so the work is not optimised out.
pub fn fma_chains(isa: Isa, threads: usize) -> f32 {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(move || one_thread(isa))).collect();
        handles.into_iter().map(|h| h.join().expect("probe thread")).sum()
    })
}

/// Measured GFLOP/s of `threads` threads (best of a few runs).
pub fn measure_gflops(isa: Isa, threads: usize) -> f64 {
    (0..5)
        .map(|_| {
            let start = std::time::Instant::now();
            std::hint::black_box(fma_chains(isa, threads));
            (isa.flops(ITERATIONS) * threads as u64) as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}
