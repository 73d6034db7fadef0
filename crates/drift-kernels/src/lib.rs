//! drift-kernels: the arithmetic of a ReLU multilayer perceptron, behind a small, safe API.
//!
//! Matrices are row-major `f32` slices described by [`MatRef`] / [`MatMut`] views; a transposed
//! operand is a view with swapped strides ([`MatRef::t`]), never a materialised copy. The three
//! products training needs are all [`gemm`]:
//!
//! | pass | product | shapes |
//! |---|---|---|
//! | forward | `Z = X·Wᵀ` | `X: B×in`, `W: out×in`, `Z: B×out` |
//! | backward-data | `dX = dZ·W` | `dZ: B×out`, `W: out×in`, `dX: B×in` |
//! | weight gradient | `dW = dZᵀ·X` | `dZ: B×out`, `X: B×in`, `dW: out×in` |
//!
//! [`gemm_fused`] applies a layer's element-wise work ([`Epilogue`]: bias, bias + ReLU, the ReLU
//! mask of the backward, an SGD step) to each tile of the product while it is in L1, with the
//! bits of the separate passes.
//!
//! Every output element is computed by one fixed sequence of operations whatever the number of
//! threads: work is split over fixed blocks of output rows ([`ROW_BLOCK`]) and the reduction
//! dimension is never split, so results are bit-identical for any rayon pool size.
//! [`team`] holds the pool's threads for a stretch of products (a training step), so that each
//! product starts on every core at once; it changes no bit either.
//!
//! ```
//! use drift_kernels::{gemm, MatMut, MatRef};
//! let x = [1.0f32, 2.0, 3.0, 4.0]; // 2×2
//! let w = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3×2 (out×in)
//! let mut z = [0.0f32; 6]; // 2×3
//! gemm(MatRef::new(&x, 2, 2), MatRef::new(&w, 3, 2).t(), MatMut::new(&mut z, 2, 3));
//! assert_eq!(z, [1.0, 2.0, 3.0, 3.0, 4.0, 7.0]);
//! ```

pub mod blocked;
mod dispatch;
mod elementwise;
mod epilogue;
mod gemm;
mod loss;
mod team;

pub use dispatch::{gemm, gemm_fused, gemm_with, Kernel, KernelError, KERNEL_ENV_VAR};
pub use elementwise::{
    adam_update, bias_forward, bias_grad, bias_relu_forward, momentum_update, relu_backward, sgd_update, AdamStep,
};
pub use epilogue::Epilogue;
pub use gemm::{gemm_matrixmultiply, MatMut, MatRef, ROW_BLOCK};
pub use loss::{ln_f64, softmax_cross_entropy, BatchLoss, LossMode, CLIP_EPSILON};
pub use team::team;

/// A name that is not one drift knows (`--kernel`, `--loss`): which kind of name, the text
/// given, and the names accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{got}', expected {expected}")]
pub struct ParseError {
    pub what: &'static str,
    pub got: String,
    pub expected: &'static str,
}
