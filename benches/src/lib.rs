//! Shared pieces of the benchmarks: the physical FMA peak of this machine, and rayon pools of a
//! given size.

pub mod peak;

/// A rayon pool of exactly `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool")
}

use std::time::{Duration, Instant};

use criterion::Criterion;
use drift_kernels::{gemm_with, Kernel, MatMut, MatRef};

/// Criterion settings; `DRIFT_BENCH_QUICK=1` (set by `make bench QUICK=1`) shortens every
/// measurement so the whole suite fits in a few minutes.
pub fn quick_config() -> Criterion {
    let c = Criterion::default().configure_from_args();
    if quick() {
        c.warm_up_time(std::time::Duration::from_millis(100))
            .measurement_time(std::time::Duration::from_millis(300))
            .sample_size(10)
    } else {
        c
    }
}

/// Best seconds per call of each contender, timed in turn in blocks of about `block` each,
/// `rounds` times. On a shared machine the arithmetic throughput a process gets drifts between
/// phases (this 2-vCPU VM has shown its 2-thread FMA peak anywhere from 116 to 229 GFLOP/s
/// within seconds), so implementations measured one after the other can land in different
/// phases; taking turns makes all see the same phases, and the best block of each is the one
/// least disturbed.
pub fn interleaved_best(rounds: usize, block: Duration, contenders: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    // Calls per block, from one warm call of each (at least one).
    let calls: Vec<usize> = contenders
        .iter_mut()
        .map(|f| {
            f();
            let start = Instant::now();
            f();
            (block.as_secs_f64() / start.elapsed().as_secs_f64().max(1e-9)).clamp(1.0, 1e6) as usize
        })
        .collect();
    let mut best = vec![f64::MAX; contenders.len()];
    for _ in 0..rounds {
        for ((f, &n), best) in contenders.iter_mut().zip(&calls).zip(&mut best) {
            let start = Instant::now();
            (0..n).for_each(|_| f());
            *best = best.min(start.elapsed().as_secs_f64() / n as f64);
        }
    }
    best
}

/// The main of a criterion bench with a pass in turns: with `DRIFT_BENCH_INTERLEAVED=FILE`, one
/// pass of `interleaved` before the criterion `benches` and one after, a minute or more apart (a
/// phase of the machine rarely covers both), handed to `write` with FILE to keep the best of each.
pub fn main_with_interleaved<T>(
    name: &str,
    benches: impl FnOnce(),
    interleaved: impl Fn() -> Vec<T>,
    write: impl Fn(&str, &[T], &[T]) -> std::io::Result<()>,
) {
    let path = std::env::var_os("DRIFT_BENCH_INTERLEAVED").map(|p| p.to_string_lossy().into_owned());
    let first = if path.is_some() { interleaved() } else { Vec::new() };
    benches();
    if let Some(path) = path {
        if let Err(e) = write(&path, &first, &interleaved()) {
            eprintln!("{name} bench: cannot write {path}: {e}");
            std::process::exit(2);
        }
        println!("{name} bench: timings in turns appended to {path}");
    }
    Criterion::default().configure_from_args().final_summary();
}

/// Whether `DRIFT_BENCH_QUICK` asks for the short measurements.
pub fn quick() -> bool {
    std::env::var_os("DRIFT_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// Which product of the training step a GEMM case is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `Z = X·Wᵀ`
    Forward,
    /// `dX = dZ·W`
    BackwardData,
    /// `dW = dZᵀ·X`
    WeightGrad,
}

/// One GEMM call of a training step: `C (m×n) = A (m×k) · B (k×n)` in a given layout.
#[derive(Clone, Debug)]
pub struct GemmCase {
    pub width: usize,
    pub layer: usize,
    pub layout: Layout,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl GemmCase {
    pub fn flops(&self) -> u64 {
        2 * (self.m * self.n * self.k) as u64
    }

    /// `W512/forward/L2/m128n512k512`: the id used in criterion's output and the summary.
    pub fn id(&self) -> String {
        let layout = match self.layout {
            Layout::Forward => "forward",
            Layout::BackwardData => "backward_data",
            Layout::WeightGrad => "weight_grad",
        };
        format!("W{}/{layout}/L{}/m{}n{}k{}", self.width, self.layer, self.m, self.n, self.k)
    }
}

/// FLOPs per training sample of a network of layer sizes `sizes`: 2 per weight for the forward
/// and as much for each of the two backward products, less the first layer's backward-data
/// product, which training skips.
pub fn train_flops_per_sample(sizes: &[usize]) -> u64 {
    let weights: usize = sizes.windows(2).map(|p| p[0] * p[1]).sum();
    (6 * weights - 2 * sizes[0] * sizes[1]) as u64
}

/// Batch size, input size and classes of the study's training step.
pub const BATCH: usize = 128;
pub const INPUT: usize = 784;
pub const CLASSES: usize = 10;
pub const WIDTHS: [usize; 3] = [128, 512, 1000];

/// The eight GEMM calls of one step of a 2-hidden-layer network, for each benchmarked width.
pub fn gemm_cases() -> Vec<GemmCase> {
    let mut cases = Vec::new();
    for width in WIDTHS {
        let sizes = [INPUT, width, width, CLASSES];
        for layer in 1..=3 {
            let (fan_in, fan_out) = (sizes[layer - 1], sizes[layer]);
            let case = |layout, m, n, k| GemmCase { width, layer, layout, m, n, k };
            cases.push(case(Layout::Forward, BATCH, fan_out, fan_in));
            if layer > 1 {
                cases.push(case(Layout::BackwardData, BATCH, fan_in, fan_out));
            }
            cases.push(case(Layout::WeightGrad, fan_out, fan_in, BATCH));
        }
    }
    cases
}

/// The operands of a case, in the layouts training uses (`W` is `fan_out × fan_in`).
pub struct Operands {
    layout: Layout,
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Operands {
    pub fn new(case: &GemmCase) -> Self {
        let fill = |len: usize, seed: u32| {
            (0..len).map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 - 0.5).collect()
        };
        let (m, n, k) = (case.m, case.n, case.k);
        Operands { layout: case.layout, m, n, k, a: fill(m * k, 1), b: fill(k * n, 2), c: vec![0.0; m * n] }
    }

    /// One product with `kernel`, reading A and B through the views of the case's layout.
    pub fn run(&mut self, kernel: Kernel) {
        let (m, n, k) = (self.m, self.n, self.k);
        let (a, b) = match self.layout {
            // X (m×k) · Wᵀ where W is n×k.
            Layout::Forward => (MatRef::new(&self.a, m, k), MatRef::new(&self.b, n, k).t()),
            // dZ (m×k) · W where W is k×n.
            Layout::BackwardData => (MatRef::new(&self.a, m, k), MatRef::new(&self.b, k, n)),
            // dZᵀ where dZ is k×m, · X (k×n).
            Layout::WeightGrad => (MatRef::new(&self.a, k, m).t(), MatRef::new(&self.b, k, n)),
        };
        gemm_with(kernel, a, b, MatMut::new(&mut self.c, m, n));
        std::hint::black_box(&self.c);
    }
}
