//! Work fused into a GEMM: what happens to `A·B` while its tiles are still in registers or L1,
//! instead of in a separate pass over C that would read it back from memory.

use std::cell::RefCell;

use crate::elementwise::{bias_forward, bias_relu_forward, no_operand, relu_backward, sgd_update, ElementOp};
use crate::gemm::MatMut;

/// What a GEMM does with the product `A·B` (`m×n`) before it leaves the tile. Every variant is
/// defined by [`separate`]'s plain product and element-wise pass, and the fused kernels give
/// exactly its bits, except `Accumulate`: the blocked kernels add the sum of each reduction
/// block to C in turn, which rounds differently once the reduction spans several blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Epilogue<'a> {
    /// `C = A·B`.
    None,
    /// `C = C + A·B`.
    Accumulate,
    /// `C = A·B + b` per column (`b.len() = n`): the output layer's forward.
    Bias(&'a [f32]),
    /// `C = max(A·B + b, 0)` per column: a hidden layer's forward.
    BiasRelu(&'a [f32]),
    /// `C = A·B`, then 0 where `mask ≤ 0` (`mask`: `m×n` row-major): the backward of a ReLU
    /// whose output is `mask`, applied to `dA = dZ·W`.
    ReluMask(&'a [f32]),
    /// `C = C − lr·(A·B)`: an SGD step on the weights `C` straight from their gradient `A·B`,
    /// which is never stored.
    Sgd { lr: f32 },
}

impl Epilogue<'_> {
    /// Panics unless the epilogue's operands fit an `m×n` output.
    pub(crate) fn check(&self, m: usize, n: usize) {
        match *self {
            Epilogue::Bias(b) | Epilogue::BiasRelu(b) => {
                assert_eq!(b.len(), n, "gemm epilogue: a bias of {} values for {n} columns", b.len())
            }
            Epilogue::ReluMask(mask) => {
                assert_eq!(mask.len(), m * n, "gemm epilogue: a mask of {} values for a {m}×{n} output", mask.len())
            }
            Epilogue::None | Epilogue::Accumulate | Epilogue::Sgd { .. } => {}
        }
    }
}

/// `C = epilogue(A·B)` the unfused way: `product` writes `A·B` into the matrix it is given,
/// then one element-wise pass applies the epilogue. The meaning of every [`Epilogue`]; used by
/// the matrixmultiply kernel, and by the blocked kernels where fusing does not apply.
pub(crate) fn separate(c: MatMut<'_>, epilogue: Epilogue<'_>, product: impl FnOnce(MatMut<'_>)) {
    let (rows, cols) = (c.rows(), c.cols());
    epilogue.check(rows, cols);
    let (c, _, _) = c.into_parts();
    if c.is_empty() {
        return;
    }
    match epilogue {
        Epilogue::None => product(MatMut::new(c, rows, cols)),
        Epilogue::Bias(b) => {
            product(MatMut::new(c, rows, cols));
            bias_forward(c, b);
        }
        Epilogue::BiasRelu(b) => {
            product(MatMut::new(c, rows, cols));
            bias_relu_forward(c, b);
        }
        Epilogue::ReluMask(mask) => {
            product(MatMut::new(c, rows, cols));
            relu_backward(c, mask);
        }
        Epilogue::Accumulate | Epilogue::Sgd { .. } => with_scratch(c.len(), |s| {
            product(MatMut::new(s, rows, cols));
            match epilogue {
                Epilogue::Sgd { lr } => sgd_update(c, s, lr),
                _ => c.iter_mut().zip(s.iter()).for_each(|(c, &s)| *c = ElementOp::Add.apply(*c, s, no_operand)),
            }
        }),
    }
}

thread_local! {
    /// The product of the separate path where C must not be overwritten, kept between calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

fn with_scratch(len: usize, f: impl FnOnce(&mut [f32])) {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0.0);
            }
            f(&mut v[..len])
        }
        // A nested call on this thread (a rayon worker that took another product while waiting).
        Err(_) => f(&mut vec![0.0; len]),
    })
}
