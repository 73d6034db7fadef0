//! Bias, ReLU, SGD, momentum and Adam: the element-wise operations of a layer, forward and
//! backward side by side, and the optimisers' steps.

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

/// What an epilogue does to one element of C, from its old value `c` and a sum `x` (the product,
/// or the sum of one reduction block of it): the one scalar definition of the element-wise
/// operations. The passes below, the portable kernel, the blocked driver's edge tiles and the x86
/// kernels' strided stores all compute elements through [`ElementOp::apply`]; the x86 vector
/// epilogues match it lane for lane (tested in `blocked/x86.rs`). Each variant rounds once per
/// IEEE operation, never through an FMA.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ElementOp {
    /// `x`.
    Store,
    /// `c + x`.
    Add,
    /// `s + bias`, then [`relu`] with `relu`, where the sum so far `s` is `c + x` with `add`,
    /// else `x`.
    Bias { add: bool, relu: bool },
    /// `+0` where `mask ≤ 0` (a NaN mask keeps the value), else `s` as for `Bias`: the backward
    /// of a ReLU whose output is `mask`.
    Mask { add: bool },
    /// `c − lr·x`: an SGD step on the weight `c` with the gradient `x`.
    Sgd(f32),
}

impl ElementOp {
    /// The element's new value. `operand` gives its bias (`Bias`) or its mask value (`Mask`) and
    /// is called by those two only.
    #[inline(always)]
    pub(crate) fn apply(self, c: f32, x: f32, operand: impl FnOnce() -> f32) -> f32 {
        let sum = |add: bool| if add { c + x } else { x };
        match self {
            ElementOp::Store => x,
            ElementOp::Add => c + x,
            ElementOp::Bias { add, relu: on } => {
                let v = sum(add) + operand();
                if on {
                    relu(v)
                } else {
                    v
                }
            }
            ElementOp::Mask { add } => {
                if operand() <= 0.0 {
                    0.0
                } else {
                    sum(add)
                }
            }
            ElementOp::Sgd(lr) => c - lr * x,
        }
    }
}

/// The `operand` of an [`ElementOp`] that takes none: never called.
pub(crate) fn no_operand() -> f32 {
    unreachable!("an element-wise operation without operand asked for one")
}

/// Forward of a hidden layer's activation, in place: `Z[i,j] = max(Z[i,j] + b[j], 0)`.
/// `z` is `m × n` row-major with `n = b.len()`.
pub fn bias_relu_forward(z: &mut [f32], b: &[f32]) {
    let n = b.len();
    assert!(n > 0 && z.len().is_multiple_of(n), "bias_relu_forward: {} values for width {n}", z.len());
    let op = ElementOp::Bias { add: false, relu: true };
    let block = |rows: &mut [f32]| {
        for row in rows.chunks_exact_mut(n) {
            for (v, &bias) in row.iter_mut().zip(b) {
                *v = op.apply(0.0, *v, || bias);
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
    let op = ElementOp::Bias { add: false, relu: false };
    for row in z.chunks_exact_mut(n) {
        for (v, &bias) in row.iter_mut().zip(b) {
            *v = op.apply(0.0, *v, || bias);
        }
    }
}

/// Backward of ReLU, in place: `dA[i,j] = 0` where the activation `A[i,j]` was not positive.
/// (The ReLU output is positive exactly where its input was, so `A` serves as the mask.)
pub fn relu_backward(da: &mut [f32], a: &[f32]) {
    assert_eq!(da.len(), a.len(), "relu_backward: gradient and activation differ in size");
    let op = ElementOp::Mask { add: false };
    let block = |(d, a): (&mut [f32], &[f32])| {
        for (g, &act) in d.iter_mut().zip(a) {
            *g = op.apply(0.0, *g, || act);
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
            *p = ElementOp::Sgd(lr).apply(*p, d, no_operand);
        }
    };
    if w.len() < PARALLEL_MIN {
        block((w, g));
    } else {
        w.par_chunks_mut(UPDATE_CHUNK).zip(g.par_chunks(UPDATE_CHUNK)).for_each(block);
    }
}

/// Elements per parallel task of an optimiser step. The steps are element-wise (no sums), so
/// this cuts only the work, never a result bit.
const UPDATE_CHUNK: usize = 16384;

/// SGD with momentum (Keras's `SGD(momentum=μ)`, Nesterov off), in f32, one rounding per
/// operation and no FMA: `v ← μ·v − lr·g`, then `w ← w + v`.
pub fn momentum_update(w: &mut [f32], velocity: &mut [f32], g: &[f32], lr: f32, momentum: f32) {
    assert!(w.len() == g.len() && velocity.len() == g.len(), "momentum_update: slices differ in size");
    let block = |w: &mut [f32], v: &mut [f32], g: &[f32]| {
        for ((p, v), &d) in w.iter_mut().zip(v).zip(g) {
            *v = momentum * *v - lr * d;
            *p += *v;
        }
    };
    if w.len() < PARALLEL_MIN {
        block(w, velocity, g);
    } else {
        w.par_chunks_mut(UPDATE_CHUNK)
            .zip(velocity.par_chunks_mut(UPDATE_CHUNK))
            .zip(g.par_chunks(UPDATE_CHUNK))
            .for_each(|((w, v), g)| block(w, v, g));
    }
}

/// The f32 coefficients of one Adam step; the caller forms them (in f64, rounded once) so that
/// the pass itself is plain f32 arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub beta1: f32,
    /// `1 − β1`, rounded from f64 (not `1.0f32 − beta1`).
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// The step's bias-corrected rate `α_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)`.
    pub alpha: f32,
    pub eps: f32,
}

/// One Adam step (Keras 2's `Adam`), in f32, one rounding per operation and no FMA:
/// `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·(g·g)`, `w ← w − (α_t·m) / (√v + ε)`.
pub fn adam_update(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], step: AdamStep) {
    assert!(w.len() == g.len() && m.len() == g.len() && v.len() == g.len(), "adam_update: slices differ in size");
    let AdamStep { beta1, one_minus_beta1, beta2, one_minus_beta2, alpha, eps } = step;
    let block = |w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]| {
        for (((p, m), v), &d) in w.iter_mut().zip(m).zip(v).zip(g) {
            *m = beta1 * *m + one_minus_beta1 * d;
            *v = beta2 * *v + one_minus_beta2 * (d * d);
            *p -= (alpha * *m) / (v.sqrt() + eps);
        }
    };
    if w.len() < PARALLEL_MIN {
        block(w, m, v, g);
    } else {
        w.par_chunks_mut(UPDATE_CHUNK)
            .zip(m.par_chunks_mut(UPDATE_CHUNK))
            .zip(v.par_chunks_mut(UPDATE_CHUNK))
            .zip(g.par_chunks(UPDATE_CHUNK))
            .for_each(|(((w, m), v), g)| block(w, m, v, g));
    }
}
