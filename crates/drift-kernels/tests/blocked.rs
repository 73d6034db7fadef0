//! The blocked GEMM with every blocked kernel this CPU supports: the three training layouts
//! against a plain f64 reference, bit-identity across thread counts, and the edge cases.
//! Kernels whose instruction set the CPU lacks are skipped and recorded (`drift_skip`), never silently.

mod common;
use common::{assert_close, blocked_kernels, data, has, Layout, LAYOUTS, TRAINING_SHAPES};

use drift_kernels::blocked::gemm_blocked;
use drift_kernels::{team, Kernel, MatMut, MatRef};

/// Operand data of one product, in the storage its layout uses.
struct Operands {
    layout: Layout,
    m: usize,
    k: usize,
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Operands {
    fn new(layout: Layout, m: usize, k: usize, n: usize, seed: u64) -> Self {
        Operands { layout, m, k, n, a: data(m * k, seed), b: data(k * n, seed ^ 0x9e37_79b9) }
    }

    fn a(&self) -> MatRef<'_> {
        self.layout.views(&self.a, &self.b, (self.m, self.k, self.n)).0
    }

    fn b(&self) -> MatRef<'_> {
        self.layout.views(&self.a, &self.b, (self.m, self.k, self.n)).1
    }

    /// The f64 reference `A·B`, row-major `m×n`.
    fn reference(&self) -> Vec<f64> {
        let (a, b) = (self.a(), self.b());
        let (m, k, n) = (self.m, self.k, self.n);
        let ad: Vec<f64> = (0..m * k).map(|x| f64::from(a.at(x / k, x % k))).collect();
        let bd: Vec<f64> = (0..k * n).map(|x| f64::from(b.at(x / n, x % n))).collect();
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            let row = &mut c[i * n..(i + 1) * n];
            for p in 0..k {
                let aip = ad[i * k + p];
                for (x, &bpj) in row.iter_mut().zip(&bd[p * n..(p + 1) * n]) {
                    *x += aip * bpj;
                }
            }
        }
        c
    }

    fn run(&self, kernel: Kernel, c: &mut [f32], accumulate: bool) {
        gemm_blocked(kernel, self.a(), self.b(), MatMut::new(c, self.m, self.n), accumulate);
    }
}

/// Every layout and blocked kernel, overwrite on NaN and accumulate onto data, against the reference.
fn check_shape(kernels: &[Kernel], m: usize, k: usize, n: usize, seed: u64) {
    for layout in LAYOUTS {
        let ops = Operands::new(layout, m, k, n, seed);
        let want = ops.reference();
        let c0 = data(m * n, seed + 7);
        let want_acc: Vec<f64> = want.iter().zip(&c0).map(|(&w, &c)| w + f64::from(c)).collect();
        for &kernel in kernels {
            let what = format!("{kernel} {layout:?} m={m} k={k} n={n} seed={seed}");
            let mut c = vec![f32::NAN; m * n];
            ops.run(kernel, &mut c, false);
            assert_close(&c, &want, k, &what);
            let mut c = c0.clone();
            ops.run(kernel, &mut c, true);
            assert_close(&c, &want_acc, k, &format!("{what} accumulate"));
        }
    }
}

const DIMS: [usize; 14] = [1, 2, 3, 7, 15, 16, 17, 31, 33, 127, 128, 129, 784, 1000];

/// One dimension over the whole list, the other two at a few values.
#[test]
fn each_dimension_over_the_list_matches_reference() {
    let kernels = blocked_kernels();
    let others = [1usize, 17, 128];
    let pairs: Vec<(usize, usize)> = others.iter().flat_map(|&x| others.map(|y| (x, y))).collect();
    common::each_dimension_in_turn(&DIMS, &pairs, |m, k, n, seed| check_shape(&kernels, m, k, n, seed));
}

/// Random (m, k, n) from the list, from a fixed-seed LCG; products over 3·10⁷ are redrawn.
#[test]
fn random_shapes_match_reference() {
    let kernels = blocked_kernels();
    let mut s: u64 = 0x5eed_0001;
    let mut pick = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        DIMS[(s >> 33) as usize % DIMS.len()]
    };
    let mut done = 0;
    while done < 40 {
        let (m, k, n) = (pick(), pick(), pick());
        if m * k * n > 30_000_000 {
            continue;
        }
        check_shape(&kernels, m, k, n, 1000 + done);
        done += 1;
    }
}

/// The training shapes themselves (W = 512 and W = 1000 networks, full and last batch).
#[test]
fn training_shapes_match_reference() {
    let kernels = blocked_kernels();
    for (i, &(m, k, n)) in TRAINING_SHAPES.iter().enumerate() {
        check_shape(&kernels, m, k, n, 500 + i as u64);
    }
}

/// Products with a side of at most 10 (the output layer's), which the thin kernels compute, in
/// both orientations and every layout.
#[test]
fn thin_products_match_reference() {
    let kernels = blocked_kernels();
    let mut seed = 700;
    for short in [4, 5, 9, 10] {
        for k in [1, 17, 128, 784] {
            for long in [1, 33, 512] {
                check_shape(&kernels, short, k, long, seed);
                check_shape(&kernels, long.max(short + 1) * 4, k, short, seed + 1);
                seed += 2;
            }
        }
    }
}

/// The product on a pool of `threads`, through a fork-join per product or, `in_team`, on a
/// [`team`] of the pool's threads.
fn run_on_threads(threads: usize, in_team: bool, ops: &Operands, kernel: Kernel, accumulate: bool) -> Vec<f32> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool");
    let mut c = if accumulate { data(ops.m * ops.n, 99) } else { vec![f32::NAN; ops.m * ops.n] };
    if in_team {
        pool.install(|| team(|| ops.run(kernel, &mut c, accumulate)));
    } else {
        pool.install(|| ops.run(kernel, &mut c, accumulate));
    }
    c
}

/// The same bits on 1 and 2 threads (and 3, an odd split), with a fork-join per product or on a
/// team, for every layout and blocked kernel; (128, 10, 1000) is a short reduction, split by rows.
#[test]
fn bit_identical_across_thread_counts() {
    let kernels = blocked_kernels();
    for (m, k, n) in [(128, 784, 512), (96, 512, 10), (512, 128, 784), (1000, 128, 1000), (128, 10, 1000)] {
        for layout in LAYOUTS {
            let ops = Operands::new(layout, m, k, n, 42);
            for &kernel in &kernels {
                for accumulate in [false, true] {
                    let one = run_on_threads(1, false, &ops, kernel, accumulate);
                    for (threads, in_team) in [(2, false), (3, false), (2, true), (3, true)] {
                        let more = run_on_threads(threads, in_team, &ops, kernel, accumulate);
                        let same = one.iter().zip(&more).all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(
                            same,
                            "{kernel} {layout:?} {m}×{k}×{n} accumulate={accumulate}: 1 and {threads} threads \
                             (team: {in_team}) differ"
                        );
                    }
                }
            }
        }
    }
}

/// AVX-512 and AVX2 share the reduction blocking and both use FMA: the same bits (documented).
#[test]
fn avx512_and_avx2_agree_bitwise() {
    // `&`, not `&&`: each instruction set the CPU lacks is recorded.
    if !(has(Kernel::Avx512) & has(Kernel::Avx2)) {
        return;
    }
    for (m, k, n) in [(128, 784, 512), (96, 512, 10), (10, 128, 512), (33, 1000, 17)] {
        for layout in LAYOUTS {
            let ops = Operands::new(layout, m, k, n, 7);
            let (mut x, mut y) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            ops.run(Kernel::Avx512, &mut x, false);
            ops.run(Kernel::Avx2, &mut y, false);
            assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{layout:?} {m}×{k}×{n}");
        }
    }
}

#[test]
fn empty_reduction_gives_zeros_or_leaves_c() {
    for kernel in blocked_kernels() {
        let (a, b) = ([0.0f32; 0], [0.0f32; 0]);
        let mut c = vec![f32::NAN; 6];
        gemm_blocked(kernel, MatRef::new(&a, 2, 0), MatRef::new(&b, 0, 3), MatMut::new(&mut c, 2, 3), false);
        assert_eq!(c, vec![0.0; 6], "{kernel}");
        let mut c = data(6, 3);
        let before = c.clone();
        gemm_blocked(kernel, MatRef::new(&a, 2, 0), MatRef::new(&b, 0, 3), MatMut::new(&mut c, 2, 3), true);
        assert_eq!(c, before, "{kernel}");
    }
}

#[test]
fn empty_output_is_a_no_op() {
    for kernel in blocked_kernels() {
        let a = data(5 * 4, 1);
        let mut c: Vec<f32> = Vec::new();
        gemm_blocked(kernel, MatRef::new(&[], 0, 5), MatRef::new(&a, 5, 4), MatMut::new(&mut c, 0, 4), false);
        gemm_blocked(kernel, MatRef::new(&a, 4, 5), MatRef::new(&[], 5, 0), MatMut::new(&mut c, 4, 0), true);
        assert!(c.is_empty());
    }
}

#[test]
#[should_panic(expected = "gemm_blocked: A is 2×3 but B is 4×2")]
fn mismatched_inner_dimension_panics() {
    let (a, b) = (data(6, 1), data(8, 2));
    let mut c = vec![0.0; 4];
    gemm_blocked(Kernel::Portable, MatRef::new(&a, 2, 3), MatRef::new(&b, 4, 2), MatMut::new(&mut c, 2, 2), false);
}

#[test]
#[should_panic(expected = "gemm_blocked: C is 2×3, expected 2×2")]
fn mismatched_output_panics() {
    let (a, b) = (data(6, 1), data(6, 2));
    let mut c = vec![0.0; 6];
    gemm_blocked(Kernel::Portable, MatRef::new(&a, 2, 3), MatRef::new(&b, 3, 2), MatMut::new(&mut c, 2, 3), false);
}

#[test]
fn unsupported_kernel_panics_with_its_name() {
    for kernel in Kernel::BLOCKED.into_iter().filter(|k| !k.supported()) {
        let result = std::panic::catch_unwind(|| {
            let mut c = vec![0.0; 1];
            gemm_blocked(
                kernel,
                MatRef::new(&[1.0], 1, 1),
                MatRef::new(&[1.0], 1, 1),
                MatMut::new(&mut c, 1, 1),
                false,
            );
        });
        let msg = result.expect_err("an unsupported kernel must panic");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains(kernel.as_str()), "{msg}");
    }
}

#[test]
#[should_panic(expected = "gemm_blocked: matrixmultiply is not one of the blocked kernels")]
fn a_kernel_that_is_not_blocked_panics() {
    let mut c = vec![0.0; 1];
    gemm_blocked(
        Kernel::MatrixMultiply,
        MatRef::new(&[1.0], 1, 1),
        MatRef::new(&[1.0], 1, 1),
        MatMut::new(&mut c, 1, 1),
        false,
    );
}

#[test]
fn blocked_kernel_names_round_trip() {
    for kernel in Kernel::BLOCKED {
        assert!(kernel.is_blocked());
        assert_eq!(kernel.as_str().parse::<Kernel>(), Ok(kernel));
        assert_eq!(kernel.to_string(), kernel.as_str());
    }
    assert!("sse".parse::<Kernel>().is_err());
    assert!(Kernel::best().is_blocked() && Kernel::best().supported());
    println!("best blocked kernel here: {}", Kernel::best());
}

/// Run only by `drift_kernel_env_var_forces_or_fails` in a child process with `DRIFT_KERNEL` set.
#[test]
#[ignore]
fn detect_child() {
    println!("FROM_ENV={:?}", Kernel::from_env());
    println!("DETECTED={}", Kernel::detect());
}

/// `DRIFT_KERNEL` forces the blocked kernel of `Kernel::detect`, and an unknown or unavailable
/// value is a clear error (a panic from `detect`, an `Err` from `from_env`); matrixmultiply and
/// `auto` are not blocked kernels, so they are unknown there. Runs this test binary again as a
/// child so the environment of the other tests is untouched.
#[test]
fn drift_kernel_env_var_forces_or_fails() {
    let child = |value: &str| {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--ignored", "--exact", "detect_child", "--nocapture", "--test-threads=1"])
            .env("DRIFT_KERNEL", value)
            .output()
            .expect("run the test binary");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    for kernel in Kernel::BLOCKED {
        let (ok, text) = child(kernel.as_str());
        if kernel.supported() {
            assert!(ok && text.contains(&format!("DETECTED={kernel}")), "DRIFT_KERNEL={kernel}:\n{text}");
        } else {
            assert!(
                !ok && text.contains(&format!("DRIFT_KERNEL: instruction set {kernel} is not supported")),
                "DRIFT_KERNEL={kernel}:\n{text}"
            );
        }
    }
    for value in ["sse9", "matrixmultiply", "auto"] {
        let (ok, text) = child(value);
        let want = format!("DRIFT_KERNEL: unknown instruction set '{value}'");
        assert!(!ok && text.contains(&want), "DRIFT_KERNEL={value}:\n{text}");
    }
    let (ok, text) = child("");
    assert!(ok && text.contains(&format!("DETECTED={}", Kernel::best())), "DRIFT_KERNEL empty:\n{text}");
}
