//! The element-wise passes of a layer (bias, ReLU and its backward, the bias gradient, the SGD
//! step) on small known cases and against an f64 reference.

mod common;
use common::{assert_close, data};

use drift_kernels::{
    adam_update, bias_forward, bias_grad, bias_relu_forward, momentum_update, relu_backward, sgd_update, AdamStep,
};

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

#[test]
fn momentum_accumulates_velocity() {
    let (mut w, mut v) = (vec![1.0f32, -2.0], vec![0.0f32; 2]);
    momentum_update(&mut w, &mut v, &[1.0, -2.0], 0.5, 0.5);
    assert_eq!((w.clone(), v.clone()), (vec![0.5, -1.0], vec![-0.5, 1.0]));
    momentum_update(&mut w, &mut v, &[1.0, -2.0], 0.5, 0.5);
    assert_eq!((w, v), (vec![-0.25, 0.5], vec![-0.75, 1.5]));
}

/// Exact small cases: β1 = β2 = 0.5, α = 1, ε = 0 give m = g/2, v = g²/2 after one step, so the
/// step is (g/2)/(|g|/√2) = sign(g)·√2/2.
#[test]
fn adam_steps_by_the_normalised_moment() {
    let step = AdamStep { beta1: 0.5, one_minus_beta1: 0.5, beta2: 0.5, one_minus_beta2: 0.5, alpha: 1.0, eps: 0.0 };
    let (mut w, mut m, mut v) = (vec![0.0f32, 0.0], vec![0.0f32; 2], vec![0.0f32; 2]);
    adam_update(&mut w, &mut m, &mut v, &[2.0, -8.0], step);
    assert_eq!((m, v), (vec![1.0, -4.0], vec![2.0, 32.0]));
    let half_sqrt2 = 1.0f32 / 2.0f32.sqrt();
    assert_eq!(w, vec![-half_sqrt2, half_sqrt2]);
}

/// Above the parallel threshold the passes split into tasks; every element must still get the
/// serial value.
#[test]
fn optimiser_steps_are_the_same_in_parallel() {
    let n = (1 << 18) + 77;
    let g = data(n, 3);
    let step =
        AdamStep { beta1: 0.9, one_minus_beta1: 0.1, beta2: 0.999, one_minus_beta2: 0.001, alpha: 0.01, eps: 1e-7 };
    let (mut w, mut m, mut v) = (data(n, 4), data(n, 5), data(n, 6).iter().map(|x| x.abs()).collect::<Vec<_>>());
    let (mut w1, mut m1, mut v1) = (w[..100].to_vec(), m[..100].to_vec(), v[..100].to_vec());
    adam_update(&mut w, &mut m, &mut v, &g, step);
    adam_update(&mut w1, &mut m1, &mut v1, &g[..100], step);
    assert_eq!((&w[..100], &m[..100], &v[..100]), (&w1[..], &m1[..], &v1[..]));
    let (mut w, mut vel) = (data(n, 7), data(n, 8));
    let (mut w1, mut vel1) = (w[n - 100..].to_vec(), vel[n - 100..].to_vec());
    momentum_update(&mut w, &mut vel, &g, 0.1, 0.9);
    momentum_update(&mut w1, &mut vel1, &g[n - 100..], 0.1, 0.9);
    assert_eq!((&w[n - 100..], &vel[n - 100..]), (&w1[..], &vel1[..]));
}
