//! The element-wise passes of a layer (bias, ReLU and its backward, the bias gradient, the SGD
//! step) on small known cases and against an f64 reference.

mod common;
use common::{assert_close, data};

use drift_kernels::{bias_forward, bias_grad, bias_relu_forward, relu_backward, sgd_update};

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
