//! Every kernel against a plain f64 reference on awkward shapes, and bit-identity across threads.

mod common;
use common::{data, kernels};

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

fn assert_close(got: &[f32], want: &[f64], k: usize, what: &str) {
    for (idx, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * (k as f64).sqrt() * (1.0 + w.abs());
        assert!((f64::from(g) - w).abs() <= tol, "{what}: element {idx}: got {g}, want {w}");
    }
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

#[test]
fn bias_relu_and_backward() {
    let mut z = vec![-1.0, 0.5, 2.0, -0.25, 0.0, 1.0];
    bias_relu_forward(&mut z, &[0.5, -1.0, 0.0]);
    assert_eq!(z, vec![0.0, 0.0, 2.0, 0.25, 0.0, 1.0]);
    let mut dz = vec![1.0; 6];
    relu_backward(&mut dz, &z);
    assert_eq!(dz, vec![0.0, 0.0, 1.0, 1.0, 0.0, 1.0]);
    let mut logits = vec![1.0, 2.0, 3.0, 4.0];
    bias_forward(&mut logits, &[0.5, -0.5]);
    assert_eq!(logits, vec![1.5, 1.5, 3.5, 3.5]);
}

#[test]
fn bias_grad_is_column_sum() {
    for &(m, n) in &[(1usize, 1usize), (7, 3), (129, 17)] {
        let dz = data(m * n, (m * n) as u64);
        let mut db = vec![f32::NAN; n];
        bias_grad(&dz, &mut db);
        let want: Vec<f64> = (0..n).map(|j| (0..m).map(|i| f64::from(dz[i * n + j])).sum()).collect();
        assert_close(&db, &want, m, &format!("bias_grad {m}×{n}"));
    }
}

#[test]
fn sgd_update_steps_against_gradient() {
    let mut w = vec![1.0, -2.0, 0.5];
    sgd_update(&mut w, &[10.0, -10.0, 0.0], 0.1);
    assert_eq!(w, vec![0.0, -1.0, 0.5]);
}

/// f64 reference of one sample: (loss, gradient, clipped?).
fn xent_reference(z: &[f32], y: usize, mode: LossMode) -> (f64, Vec<f64>, bool) {
    let z: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
    let p: Vec<f64> = z.iter().map(|v| (v - max).exp() / sum).collect();
    let mut g: Vec<f64> = p.clone();
    g[y] -= 1.0;
    match mode {
        LossMode::Logits => (sum.ln() - (z[y] - max), g, false),
        LossMode::KerasClipped => {
            let eps = f64::from(CLIP_EPSILON);
            if p[y] < eps || p[y] > 1.0 - eps {
                (-(p[y].clamp(eps, 1.0 - eps)).ln(), vec![0.0; z.len()], true)
            } else {
                (-p[y].ln(), g, false)
            }
        }
    }
}

#[test]
fn softmax_cross_entropy_matches_reference_in_both_modes() {
    let n = 10;
    let mut logits = data(6 * n, 42).iter().map(|v| v * 4.0).collect::<Vec<_>>();
    logits[4 * n + 3] = 60.0; // sample 4: confidently class 3, labelled 0 → clipped low
    logits[5 * n + 7] = 60.0; // sample 5: confidently class 7, labelled 7 → clipped high
    let labels = [0u16, 1, 2, 9, 0, 7];
    for mode in [LossMode::KerasClipped, LossMode::Logits] {
        let mut grad = vec![f32::NAN; logits.len()];
        let scale = 1.0 / labels.len() as f32;
        let out = softmax_cross_entropy(&logits, &labels, mode, scale, &mut grad);
        let mut want_loss = 0.0;
        let mut clipped = 0;
        for (i, &y) in labels.iter().enumerate() {
            let (l, g, c) = xent_reference(&logits[i * n..(i + 1) * n], y as usize, mode);
            want_loss += l;
            clipped += usize::from(c);
            let g: Vec<f64> = g.iter().map(|v| v * f64::from(scale)).collect();
            assert_close(&grad[i * n..(i + 1) * n], &g, 4, &format!("{mode} gradient of sample {i}"));
            if c {
                assert!(grad[i * n..(i + 1) * n].iter().all(|&v| v == 0.0), "{mode}: clipped sample {i} has gradient");
            }
        }
        assert!(
            (out.loss_sum - want_loss).abs() < 1e-4 * want_loss.abs().max(1.0),
            "{mode}: loss {} vs {want_loss}",
            out.loss_sum
        );
        assert_eq!(out.clipped, clipped, "{mode}: clipped count");
        assert_eq!(
            out.correct,
            1 + labels
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 4)
                .filter(|&(i, &y)| {
                    let row = &logits[i * n..(i + 1) * n];
                    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (j, &v)| if v > b.1 { (j, v) } else { b }).0
                        == y as usize
                })
                .count()
        );
    }
    // The clipped-low sample's loss is −ln ε, the plateau of diverged Keras runs.
    let mut g = vec![0.0; n];
    let out = softmax_cross_entropy(&logits[4 * n..5 * n], &[0], LossMode::KerasClipped, 1.0, &mut g);
    assert!((out.loss_sum - 16.118).abs() < 1e-3, "plateau loss {}", out.loss_sum);
}
