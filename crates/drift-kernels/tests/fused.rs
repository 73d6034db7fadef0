//! The fused epilogues (bias, bias + ReLU, ReLU mask, SGD step) for every kernel this CPU
//! supports, matrixmultiply included: in each training layout and on awkward shapes, the same
//! bits as the plain product followed by the separate element-wise pass, close to an f64
//! reference, and the same bits on 1 and 2 threads.

mod common;
use common::{assert_close, data, kernels, Layout, LAYOUTS, TRAINING_SHAPES};

use drift_kernels::blocked::{gemm_blocked, gemm_blocked_fused};
use drift_kernels::{
    bias_forward, bias_relu_forward, gemm_fused, gemm_matrixmultiply, relu_backward, sgd_update, Epilogue, Kernel,
    MatMut, MatRef,
};

/// A ReLU output: about half zeros, the rest positive.
fn activation(len: usize, seed: u64) -> Vec<f32> {
    data(len, seed).into_iter().map(|v| v.max(0.0)).collect()
}

/// One product `C (m×n) = A (m×k) · B (k×n)` in a training layout, with an epilogue's operands.
struct Case {
    layout: Layout,
    m: usize,
    k: usize,
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    bias: Vec<f32>,
    mask: Vec<f32>,
    c0: Vec<f32>,
}

impl Case {
    fn new(layout: Layout, m: usize, k: usize, n: usize, seed: u64) -> Self {
        Case {
            layout,
            m,
            k,
            n,
            a: data(m * k, seed),
            b: data(k * n, seed + 1),
            bias: data(n, seed + 2),
            mask: activation(m * n, seed + 3),
            c0: data(m * n, seed + 4),
        }
    }

    fn a(&self) -> MatRef<'_> {
        self.layout.views(&self.a, &self.b, (self.m, self.k, self.n)).0
    }

    fn b(&self) -> MatRef<'_> {
        self.layout.views(&self.a, &self.b, (self.m, self.k, self.n)).1
    }

    fn epilogues(&self) -> [Epilogue<'_>; 5] {
        [
            Epilogue::Bias(&self.bias),
            Epilogue::BiasRelu(&self.bias),
            Epilogue::ReluMask(&self.mask),
            Epilogue::Sgd { lr: 0.1 },
            Epilogue::Accumulate,
        ]
    }

    /// C before the product: NaN where it must be overwritten, `c0` where it is read.
    fn start(&self, epilogue: Epilogue<'_>) -> Vec<f32> {
        match epilogue {
            Epilogue::Sgd { .. } | Epilogue::Accumulate => self.c0.clone(),
            _ => vec![f32::NAN; self.m * self.n],
        }
    }

    fn fused(&self, kernel: Kernel, epilogue: Epilogue<'_>) -> Vec<f32> {
        let mut c = self.start(epilogue);
        gemm_fused(kernel, self.a(), self.b(), MatMut::new(&mut c, self.m, self.n), epilogue);
        c
    }

    /// The plain product with the same kernel, then the separate pass.
    fn separate(&self, kernel: Kernel, epilogue: Epilogue<'_>) -> Vec<f32> {
        let mut p = vec![f32::NAN; self.m * self.n];
        let plain = MatMut::new(&mut p, self.m, self.n);
        match kernel {
            Kernel::MatrixMultiply => gemm_matrixmultiply(self.a(), self.b(), plain),
            k => gemm_blocked(k, self.a(), self.b(), plain, false),
        }
        let mut c = self.start(epilogue);
        match epilogue {
            Epilogue::Bias(b) => {
                c = p;
                bias_forward(&mut c, b);
            }
            Epilogue::BiasRelu(b) => {
                c = p;
                bias_relu_forward(&mut c, b);
            }
            Epilogue::ReluMask(mask) => {
                c = p;
                relu_backward(&mut c, mask);
            }
            Epilogue::Sgd { lr } => sgd_update(&mut c, &p, lr),
            Epilogue::Accumulate => c.iter_mut().zip(&p).for_each(|(c, p)| *c += p),
            Epilogue::None => c = p,
        }
        c
    }

    /// The f64 reference of `epilogue(A·B)`.
    fn reference(&self, epilogue: Epilogue<'_>) -> Vec<f64> {
        let (a, b) = (self.a(), self.b());
        let (m, n) = (self.m, self.n);
        let mut out = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..self.k).map(|p| f64::from(a.at(i, p)) * f64::from(b.at(p, j))).sum();
                let o = i * n + j;
                out[o] = match epilogue {
                    Epilogue::None => s,
                    Epilogue::Accumulate => f64::from(self.c0[o]) + s,
                    Epilogue::Bias(bias) => s + f64::from(bias[j]),
                    Epilogue::BiasRelu(bias) => (s + f64::from(bias[j])).max(0.0),
                    Epilogue::ReluMask(mask) => {
                        if mask[o] <= 0.0 {
                            0.0
                        } else {
                            s
                        }
                    }
                    Epilogue::Sgd { lr } => f64::from(self.c0[o]) - f64::from(lr) * s,
                };
            }
        }
        out
    }
}

fn same_bits(x: &[f32], y: &[f32]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
}

fn check(kernels: &[Kernel], m: usize, k: usize, n: usize, seed: u64) {
    for layout in LAYOUTS {
        let case = Case::new(layout, m, k, n, seed);
        for epilogue in case.epilogues() {
            let want = case.reference(epilogue);
            for &kernel in kernels {
                let what = format!("{kernel} {layout:?} {epilogue:?} m={m} k={k} n={n} seed={seed}");
                let what = what.split("([").next().unwrap_or(&what).to_string();
                let fused = case.fused(kernel, epilogue);
                // Accumulate adds each reduction block to C in turn: bits of its own (documented).
                let bitwise = epilogue != Epilogue::Accumulate;
                assert!(
                    !bitwise || same_bits(&fused, &case.separate(kernel, epilogue)),
                    "{what}: fused differs from separate"
                );
                assert_close(&fused, &want, k, &what);
            }
        }
    }
}

const DIMS: [usize; 13] = [1, 2, 3, 7, 15, 16, 17, 31, 33, 127, 128, 129, 600];

/// Each dimension over the list (600 > the FMA kernels' 512-long reduction block, so the
/// multi-block paths are covered), the other two at awkward values.
#[test]
fn fused_equals_separate_on_awkward_shapes() {
    let kernels = kernels();
    common::each_dimension_in_turn(&DIMS, &[(1, 17), (33, 3), (129, 16)], |m, k, n, seed| {
        check(&kernels, m, k, n, seed)
    });
}

/// The products of a training step with each epilogue it uses (W = 512 and W = 1000, a full
/// and a last, partial batch).
#[test]
fn fused_equals_separate_on_training_shapes() {
    let kernels = kernels();
    for (i, &(m, k, n)) in TRAINING_SHAPES.iter().enumerate() {
        check(&kernels, m, k, n, 700 + i as u64);
    }
}

/// AVX-512 computes a wide layer's forward product transposed, its tiles written to contiguous
/// columns of C from the registers; AVX2 keeps the orientation. The same bits for every epilogue
/// and layout, on shapes with one and two reduction blocks and with partial tiles on both edges.
#[test]
fn avx512_and_avx2_fused_agree_bitwise() {
    // `&`, not `&&`: each instruction set the CPU lacks is recorded.
    if !(common::has(Kernel::Avx512) & common::has(Kernel::Avx2)) {
        return;
    }
    for (m, k, n) in [(128, 784, 512), (33, 600, 129), (40, 200, 520), (96, 1000, 1000)] {
        for layout in LAYOUTS {
            let case = Case::new(layout, m, k, n, 11);
            for epilogue in case.epilogues() {
                let (x, y) = (case.fused(Kernel::Avx512, epilogue), case.fused(Kernel::Avx2, epilogue));
                let what = format!("{epilogue:?}");
                let what = what.split('(').next().unwrap_or("");
                assert!(same_bits(&x, &y), "{layout:?} {m}×{k}×{n} {what}: AVX-512 and AVX2 differ");
            }
        }
    }
}

/// The same bits on 1, 2 and 3 threads for every epilogue, layout and kernel, on shapes above
/// and below the size where a product runs on the calling thread.
#[test]
fn fused_bits_do_not_depend_on_thread_count() {
    let kernels = kernels();
    let pools: Vec<_> =
        [1, 2, 3].iter().map(|&t| rayon::ThreadPoolBuilder::new().num_threads(t).build().expect("pool")).collect();
    for (m, k, n) in [(128, 784, 512), (128, 128, 128), (96, 512, 10), (512, 128, 784), (33, 600, 129)] {
        for layout in LAYOUTS {
            let case = Case::new(layout, m, k, n, 42);
            for epilogue in case.epilogues() {
                for &kernel in &kernels {
                    let runs: Vec<Vec<f32>> =
                        pools.iter().map(|p| p.install(|| case.fused(kernel, epilogue))).collect();
                    for (t, run) in runs.iter().enumerate().skip(1) {
                        assert!(
                            same_bits(&runs[0], run),
                            "{kernel} {layout:?} {m}×{k}×{n} {}: 1 and {} threads differ",
                            format!("{epilogue:?}").split('(').next().unwrap_or(""),
                            t + 1
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn empty_reduction_applies_the_epilogue_to_zero() {
    for kernel in kernels() {
        let (a, b) = ([0.0f32; 0], [0.0f32; 0]);
        let run = |epilogue: Epilogue<'_>, start: f32| {
            let mut c = vec![start; 6];
            gemm_fused(kernel, MatRef::new(&a, 2, 0), MatRef::new(&b, 0, 3), MatMut::new(&mut c, 2, 3), epilogue);
            c
        };
        let bias = [1.0, -1.0, 0.5];
        assert_eq!(run(Epilogue::Bias(&bias), f32::NAN), [1.0, -1.0, 0.5, 1.0, -1.0, 0.5], "{kernel}");
        assert_eq!(run(Epilogue::BiasRelu(&bias), f32::NAN), [1.0, 0.0, 0.5, 1.0, 0.0, 0.5], "{kernel}");
        assert_eq!(run(Epilogue::ReluMask(&[1.0; 6]), f32::NAN), [0.0; 6], "{kernel}");
        assert_eq!(run(Epilogue::Sgd { lr: 0.1 }, 2.0), [2.0; 6], "{kernel}");
    }
}

#[test]
#[should_panic(expected = "a bias of 2 values for 3 columns")]
fn a_bias_of_the_wrong_length_panics() {
    let mut c = vec![0.0; 6];
    gemm_blocked_fused(
        Kernel::Portable,
        MatRef::new(&[1.0; 4], 2, 2),
        MatRef::new(&[1.0; 6], 2, 3),
        MatMut::new(&mut c, 2, 3),
        Epilogue::Bias(&[0.0; 2]),
    );
}

#[test]
#[should_panic(expected = "a mask of 5 values for a 2×3 output")]
fn a_mask_of_the_wrong_size_panics() {
    let mut c = vec![0.0; 6];
    gemm_fused(
        Kernel::MatrixMultiply,
        MatRef::new(&[1.0; 4], 2, 2),
        MatRef::new(&[1.0; 6], 2, 3),
        MatMut::new(&mut c, 2, 3),
        Epilogue::ReluMask(&[0.0; 5]),
    );
}
