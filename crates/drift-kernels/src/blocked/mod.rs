//! Our own cache-blocked SIMD GEMM: `C = A·B` or `C += A·B` over strided views, with AVX-512,
//! AVX2+FMA and portable microkernels, bit-identical for any number of threads.
//!
//! The structure follows matrixmultiply: one generic blocking driver (`driver.rs`) over a small
//! microkernel trait (`kernel.rs`) whose register-tile sizes are constants, one struct per
//! instruction set (`x86.rs`, and the portable twin in `kernel.rs`), packing of both operands
//! from any strides (`pack.rs`), and block sizes in one file that says what each cuts
//! (`params.rs`).
//!
//! # Contract
//! `gemm_blocked(kernel, A, B, C, accumulate)` computes, for `A: m×k`, `B: k×n`, `C: m×n`,
//!
//! * `C[i,j] = Σ_p A[i,p]·B[p,j]` when `accumulate` is false (`beta = 0`: the previous contents
//!   of C, NaN included, are never read);
//! * `C[i,j] = C[i,j] + Σ_p A[i,p]·B[p,j]` when it is true.
//!
//! [`gemm_blocked_fused`] adds an [`Epilogue`](crate::Epilogue) applied to each tile of C on the
//! last `kc` block, while the tile is in L1.
//!
//! Edge cases: `k = 0` writes zeros (or leaves C unchanged with `accumulate`); `m = 0` or `n = 0`
//! does nothing. The three training layouts (`X·Wᵀ`, `dZ·W`, `dZᵀ·X`) are plain views: a
//! transposed operand is read through its strides by the packing, never copied whole.
//!
//! # Determinism
//! Each `C[i,j]` is, per block of `KC` reduction indices taken in order, an FMA chain (a multiply
//! then an add for [`Kernel::Portable`]) started from zero, then added to C. Neither the task grid
//! nor the number of rayon threads enters that sequence, so results are bit-identical for any
//! pool size. AVX-512 and AVX2 share `KC` and give the same bits as each other; the portable
//! kernel rounds the products separately and differs from them in the last bits.
//!
//! ```
//! use drift_kernels::blocked::gemm_blocked;
//! use drift_kernels::{Kernel, MatMut, MatRef};
//! let x = [1.0f32, 2.0, 3.0, 4.0]; // 2×2
//! let w = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3×2 (out×in)
//! let mut z = [f32::NAN; 6]; // 2×3, overwritten
//! gemm_blocked(Kernel::detect(), MatRef::new(&x, 2, 2), MatRef::new(&w, 3, 2).t(), MatMut::new(&mut z, 2, 3), false);
//! assert_eq!(z, [1.0, 2.0, 3.0, 3.0, 4.0, 7.0]);
//! ```

mod driver;
mod kernel;
mod pack;
mod params;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::epilogue::separate;
use crate::{Epilogue, Kernel, MatMut, MatRef};
use driver::Out;
use kernel::Microkernel;
use pack::Source;
use params::BlockSizes;

/// `C = A·B` (`accumulate = false`) or `C += A·B` (`accumulate = true`) with the microkernel of
/// the blocked `kernel`, parallel over a fixed grid of C tiles on the current rayon pool.
///
/// `A` is `m×k` and `B` is `k×n`, each with any strides (a transpose is a view); `C` is `m×n`
/// dense row-major. See the [module docs](self) for the exact arithmetic and edge cases.
///
/// # Panics
/// If the shapes disagree (`B` is not `k×n` or `C` is not `m×n`), if a view reaches past its
/// slice, if `kernel` is not one of [`Kernel::BLOCKED`], or if this CPU does not support it
/// (check [`Kernel::supported`]).
pub fn gemm_blocked(kernel: Kernel, a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>, accumulate: bool) {
    gemm_blocked_fused(kernel, a, b, c, if accumulate { Epilogue::Accumulate } else { Epilogue::None })
}

/// `C = epilogue(A·B)` (see [`Epilogue`]) with the microkernel of `kernel`: as [`gemm_blocked`],
/// with the epilogue applied to each tile of C on the last `kc` block of the reduction, while
/// the tile is in L1, instead of in a second pass over C. The bits are those of the plain
/// product followed by the element-wise pass.
///
/// [`Epilogue::Sgd`] is fused only when the reduction fits one `kc` block (a batch of up to
/// 512 samples with the FMA kernels, 256 portable): a longer one would need the whole gradient
/// before the step, so it takes the separate pass (same bits again). `k = 0` also does.
///
/// # Panics
/// As [`gemm_blocked`]; and if a bias is not `n` long or a mask not `m×n`.
pub fn gemm_blocked_fused(kernel: Kernel, a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>, epilogue: Epilogue<'_>) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    assert_eq!(b.rows(), k, "gemm_blocked: A is {m}×{k} but B is {}×{n}", b.rows());
    assert!(c.rows() == m && c.cols() == n, "gemm_blocked: C is {}×{}, expected {m}×{n}", c.rows(), c.cols());
    assert!(kernel.is_blocked(), "gemm_blocked: {kernel} is not one of the blocked kernels (avx512, avx2, portable)");
    assert!(kernel.supported(), "gemm_blocked: instruction set {kernel} is not supported by this CPU");
    epilogue.check(m, n);
    if m == 0 || n == 0 || (k == 0 && matches!(epilogue, Epilogue::Accumulate | Epilogue::Sgd { .. })) {
        return;
    }
    let fused = k > 0 && !matches!(epilogue, Epilogue::Sgd { .. } if k > block_sizes(kernel).kc);
    if fused {
        product(kernel, a, b, c, epilogue)
    } else {
        separate(c, epilogue, |c| {
            if k == 0 {
                c.into_parts().0.fill(0.0);
            } else {
                product(kernel, a, b, c, Epilogue::None);
            }
        })
    }
}

fn block_sizes(kernel: Kernel) -> BlockSizes {
    match kernel {
        Kernel::Avx512 => params::AVX512,
        Kernel::Avx2 => params::AVX2,
        Kernel::Portable => params::PORTABLE,
        Kernel::Auto | Kernel::MatrixMultiply => unreachable!("gemm_blocked: {kernel} is not a blocked kernel"),
    }
}

/// The checked product with `m, k, n > 0`: views to packing sources, then the driver.
fn product(kernel: Kernel, a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>, epilogue: Epilogue<'_>) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let (c, _, _) = c.into_parts();
    let a = source(&a, "A");
    let b = source(&b.t(), "B");
    let out = Out { ptr: c.as_mut_ptr(), rsc: n as isize, csc: 1 };
    let bs = block_sizes(kernel);
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => run::<x86::Avx512, x86::Avx512Thin>(bs, (m, k, n), a, b, out, epilogue),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => run::<x86::Avx2, x86::Avx2Thin>(bs, (m, k, n), a, b, out, epilogue),
        Kernel::Portable => run::<kernel::Portable, kernel::Portable>(bs, (m, k, n), a, b, out, epilogue),
        // Not blocked, or an x86 kernel elsewhere: both rejected by `gemm_blocked_fused`.
        _ => unreachable!("gemm_blocked: {kernel} passed the checks but has no microkernel here"),
    }
}

/// A matrix as packing lanes = its rows, reduction = its columns; checks the view's extent.
fn source<'a>(m: &MatRef<'a>, what: &str) -> Source<'a> {
    let (data, rs, cs) = m.parts();
    let (rows, cols) = (m.rows(), m.cols());
    // Only called with rows, cols > 0.
    let last = (rows - 1).checked_mul(rs).zip((cols - 1).checked_mul(cs)).and_then(|(r, c)| r.checked_add(c));
    assert!(
        last.is_some_and(|last| last < data.len()),
        "gemm_blocked: {what} view of {rows}×{cols} with strides ({rs}, {cs}) exceeds its slice of {}",
        data.len()
    );
    Source { data, lanes: rows, lane_stride: rs, k_stride: cs }
}

/// Chooses the orientation and the kernel, and runs the driver.
///
/// When `n` is much smaller than `m` relative to the tile (the 10-class output layer), computing
/// `Cᵀ = Bᵀ·Aᵀ` puts the short dimension under `MR` instead of `NR` and wastes less of the
/// register tile; the forward product of a wide layer is swapped too, to pack its smaller
/// operand ([`transposes_less`]). Each element still gets the same products in the same order (the product of
/// two floats does not depend on their order), so the choice does not change any bit. Then,
/// when the rows are few (at most `THIN_ROWS`, the classes of the output layer) and the thin
/// kernel `T` pads them less than `K` does, `T` computes the product: the tile's shape only
/// decides which elements share registers, never an element's arithmetic.
fn run<K: Microkernel, T: Microkernel>(
    bs: BlockSizes,
    (m, k, n): (usize, usize, usize),
    a: Source<'_>,
    b: Source<'_>,
    c: Out,
    epilogue: Epilogue<'_>,
) {
    let padded = |rows: usize, cols: usize| rows.div_ceil(K::MR) * K::MR * cols.div_ceil(K::NR) * K::NR;
    let swap = 4 * padded(n, m) < 3 * padded(m, n)
        || (padded(n, m) <= padded(m, n) && transposes_less::<K>((m, k, n), a, b, epilogue));
    let (rows, k, cols, a, b, c, bias_along_rows) = if swap {
        (n, k, m, b, a, Out { ptr: c.ptr, rsc: c.csc, csc: c.rsc }, true)
    } else {
        (m, k, n, a, b, c, false)
    };
    let thin = rows <= THIN_ROWS && rows.div_ceil(T::MR) * T::MR < rows.div_ceil(K::MR) * K::MR;
    // SAFETY: `gemm_blocked` checked that the CPU supports the kernel's instruction set
    // (`kernel.supported()` selected `K`, and `T` is of the same set) and that both views lie
    // inside their slices; `c` points at the m×n dense slice borrowed mutably from the caller's
    // `MatMut`, which cannot overlap the shared borrows behind `a` and `b`; `gemm_blocked_fused`
    // checked the epilogue's slices against m×n, and the transposed view keeps the mask's offsets
    // (only a bias changes sides).
    unsafe {
        if thin {
            driver::gemm::<T>(bs, (rows, k, cols), a, b, c, (epilogue, bias_along_rows));
        } else {
            driver::gemm::<K>(bs, (rows, k, cols), a, b, c, (epilogue, bias_along_rows));
        }
    }
}

/// Whether computing `Cᵀ = Bᵀ·Aᵀ` copies less than `C = A·B` for a product whose operands both
/// have their reduction contiguous (the forward `X·Wᵀ`, activations by weights). As it stands, A
/// is read in place and B packed by a transposing copy of its `n·k` floats; swapped, A's `m·k`
/// floats are transposed instead, and each full tile goes to contiguous columns of C, which a
/// [`COLUMNS`](Microkernel::COLUMNS) kernel writes with vector instructions for a plain or bias
/// epilogue (through the stack and 8×8 transposes). Worth it when the copy saved, `(n − m)·k`
/// floats, exceeds twice the `m·n` elements written through the transposition (a batch of 128
/// against 512 or 1000 weights' rows); the caller also requires that the swap pads the tiles no
/// more (a batch under `NR` rows would waste most of each tile).
fn transposes_less<K: Microkernel>(
    (m, k, n): (usize, usize, usize),
    a: Source<'_>,
    b: Source<'_>,
    epilogue: Epilogue<'_>,
) -> bool {
    let writable =
        matches!(epilogue, Epilogue::None | Epilogue::Accumulate | Epilogue::Bias(_) | Epilogue::BiasRelu(_));
    K::COLUMNS && writable && a.k_stride == 1 && b.k_stride == 1 && n > m && (n - m) * k > 2 * m * n
}

/// Products with at most this many rows (after the orientation is chosen) may take the thin
/// kernel: the 10 classes of the output layer.
const THIN_ROWS: usize = 10;
