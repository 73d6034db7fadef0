//! Bias, ReLU and SGD: the element-wise operations of a layer, forward and backward side by side.

use rayon::prelude::*;

use crate::gemm::ROW_BLOCK;

/// Below this many elements an element-wise pass runs on the calling thread: waking a second
/// thread costs more (tens of µs) than the pass itself. The result is the same either way.
const PARALLEL_MIN: usize = 1 << 18;

/// `max(v, 0)`, spelled out: NaN and −0 give +0, exactly what `vmaxps(v, 0)` gives, so that the
/// kernels' vector epilogues match this element-wise pass bit for bit (`f32::max` leaves the
/// sign of a zero to the compiler).
#[inline(always)]
pub fn relu(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

/// Forward of a hidden layer's activation, in place: `Z[i,j] = max(Z[i,j] + b[j], 0)`.
/// `z` is `m × n` row-major with `n = b.len()`.
pub fn bias_relu_forward(z: &mut [f32], b: &[f32]) {
    let n = b.len();
    assert!(n > 0 && z.len().is_multiple_of(n), "bias_relu_forward: {} values for width {n}", z.len());
    let block = |rows: &mut [f32]| {
        for row in rows.chunks_exact_mut(n) {
            for (v, &bias) in row.iter_mut().zip(b) {
                *v = relu(*v + bias);
            }
        }
    };
    if z.len() < PARALLEL_MIN {
        block(z);
    } else {
        z.par_chunks_mut(ROW_BLOCK * n).for_each(block);
    }
}

/// Forward of the output layer's bias, in place: `Z[i,j] += b[j]`.
pub fn bias_forward(z: &mut [f32], b: &[f32]) {
    let n = b.len();
    assert!(n > 0 && z.len().is_multiple_of(n), "bias_forward: {} values for width {n}", z.len());
    for row in z.chunks_exact_mut(n) {
        for (v, &bias) in row.iter_mut().zip(b) {
            *v += bias;
        }
    }
}

/// Backward of ReLU, in place: `dA[i,j] = 0` where the activation `A[i,j]` was not positive.
/// (The ReLU output is positive exactly where its input was, so `A` serves as the mask.)
pub fn relu_backward(da: &mut [f32], a: &[f32]) {
    assert_eq!(da.len(), a.len(), "relu_backward: gradient and activation differ in size");
    let block = |(d, a): (&mut [f32], &[f32])| {
        for (g, &act) in d.iter_mut().zip(a) {
            if act <= 0.0 {
                *g = 0.0;
            }
        }
    };
    if da.len() < PARALLEL_MIN {
        block((da, a));
    } else {
        da.par_chunks_mut(4096).zip(a.par_chunks(4096)).for_each(block);
    }
}

/// Backward of the bias: `db[j] = Σ_i dZ[i,j]`, summed over rows in ascending order.
pub fn bias_grad(dz: &[f32], db: &mut [f32]) {
    let n = db.len();
    assert!(n > 0 && dz.len().is_multiple_of(n), "bias_grad: {} values for width {n}", dz.len());
    db.fill(0.0);
    for row in dz.chunks_exact(n) {
        for (acc, &g) in db.iter_mut().zip(row) {
            *acc += g;
        }
    }
}

/// Plain SGD step: `w ← w − lr·g`.
pub fn sgd_update(w: &mut [f32], g: &[f32], lr: f32) {
    assert_eq!(w.len(), g.len(), "sgd_update: parameter and gradient differ in size");
    let block = |(w, g): (&mut [f32], &[f32])| {
        for (p, &d) in w.iter_mut().zip(g) {
            *p -= lr * d;
        }
    };
    if w.len() < PARALLEL_MIN {
        block((w, g));
    } else {
        w.par_chunks_mut(16384).zip(g.par_chunks(16384)).for_each(block);
    }
}
