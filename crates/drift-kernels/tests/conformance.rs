//! GEMM conformance: every kernel against a plain f64 reference on awkward shapes, and
//! bit-identity across threads.

mod common;
use common::{assert_close, data, kernels};

use drift_kernels::*;

const SHAPES: [usize; 8] = [1, 2, 3, 7, 16, 17, 33, 129];

fn reference(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f64> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| f64::from(a.at(i, p)) * f64::from(b.at(p, j))).sum();
        }
    }
    c
}

/// The three training layouts: forward X·Wᵀ, backward-data dZ·W, weight gradient dZᵀ·X.
#[test]
fn gemm_three_layouts_match_reference_with_every_kernel() {
    for kernel in kernels() {
        three_layouts(kernel);
    }
}

fn three_layouts(kernel: Kernel) {
    for (si, &m) in SHAPES.iter().enumerate() {
        for &k in &SHAPES {
            for &n in &[1usize, 10, 17, 128] {
                let seed = (si * 1000 + k * 10 + n) as u64;
                // forward: X (m×k) · W (n×k)ᵀ
                let x = data(m * k, seed);
                let w = data(n * k, seed + 1);
                let mut z = vec![f32::NAN; m * n];
                let (a, b) = (MatRef::new(&x, m, k), MatRef::new(&w, n, k).t());
                gemm_with(kernel, a, b, MatMut::new(&mut z, m, n));
                assert_close(&z, &reference(a, b), k, &format!("{kernel} forward m={m} k={k} n={n} seed={seed}"));
                // backward-data: dZ (m×n) · W (n×k)
                let dz = data(m * n, seed + 2);
                let mut dx = vec![f32::NAN; m * k];
                let (a, b) = (MatRef::new(&dz, m, n), MatRef::new(&w, n, k));
                gemm_with(kernel, a, b, MatMut::new(&mut dx, m, k));
                assert_close(&dx, &reference(a, b), n, &format!("{kernel} backward m={m} k={k} n={n} seed={seed}"));
                // weight gradient: dZᵀ (n×m) · X (m×k)
                let mut dw = vec![f32::NAN; n * k];
                let (a, b) = (MatRef::new(&dz, m, n).t(), MatRef::new(&x, m, k));
                gemm_with(kernel, a, b, MatMut::new(&mut dw, n, k));
                assert_close(&dw, &reference(a, b), m, &format!("{kernel} weight-grad m={m} k={k} n={n} seed={seed}"));
            }
        }
    }
}

#[test]
fn gemm_training_shapes_match_reference() {
    for (m, k, n) in [(128, 784, 512), (96, 512, 10), (128, 1000, 1000)] {
        let x = data(m * k, 11);
        let w = data(n * k, 12);
        let mut z = vec![0.0; m * n];
        let (a, b) = (MatRef::new(&x, m, k), MatRef::new(&w, n, k).t());
        gemm(a, b, MatMut::new(&mut z, m, n));
        assert_close(&z, &reference(a, b), k, &format!("forward {m}×{k}×{n}"));
    }
}

#[test]
fn gemm_with_empty_reduction_gives_zeros() {
    let mut c = vec![f32::NAN; 6];
    gemm(MatRef::new(&[], 2, 0), MatRef::new(&[], 0, 3), MatMut::new(&mut c, 2, 3));
    assert_eq!(c, vec![0.0; 6]);
}

#[test]
#[should_panic(expected = "A is 2×3 but B is 2×2")]
fn gemm_rejects_mismatched_shapes() {
    let mut c = vec![0.0; 4];
    gemm(MatRef::new(&[0.0; 6], 2, 3), MatRef::new(&[0.0; 4], 2, 2), MatMut::new(&mut c, 2, 2));
}

#[test]
fn gemm_bits_do_not_depend_on_thread_count() {
    let (m, k, n) = (257, 300, 129);
    let x = data(m * k, 5);
    let w = data(n * k, 6);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut z = vec![0.0f32; m * n];
            gemm(MatRef::new(&x, m, k), MatRef::new(&w, n, k).t(), MatMut::new(&mut z, m, n));
            let mut dw = vec![0.0f32; n * k];
            gemm(MatRef::new(&z, m, n).t(), MatRef::new(&x, m, k), MatMut::new(&mut dw, n, k));
            (z, dw)
        })
    };
    let (one, two) = (run(1), run(2));
    assert!(one.0.iter().zip(&two.0).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(one.1.iter().zip(&two.1).all(|(a, b)| a.to_bits() == b.to_bits()));
}
