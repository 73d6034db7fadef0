//! The microkernel trait and the portable kernel (the plain twin of the SIMD ones).

use crate::elementwise::relu;

/// A register-tile kernel: `C[MR×NR] (=|+=) Ã·B̃` for packed panels of length `k`.
///
/// Packed layouts (written by `pack.rs`): `a[p * MR + i]` is `A(i, p)` and `b[p * NR + j]` is
/// `B(p, j)` for `p < k`. Every element of the tile is an FMA (or multiply-add for the portable
/// kernel) chain over `p = 0, 1, …, k−1` started from zero; then [`TileOp`] combines it into C
/// while it is still in registers.
pub(crate) trait Microkernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// The kernel's instruction set includes AVX, so the packing may use it too.
    const AVX: bool;

    /// Computes one full `MR × NR` tile of C at `c`, element `(i, j)` at `c + i·rsc + j·csc`,
    /// and writes it through `op`.
    ///
    /// # Safety
    /// The caller guarantees: the CPU supports the kernel's instruction set; `a` holds
    /// `k · MR` and `b` holds `k · NR` readable floats; every `c + i·rsc + j·csc` with `i < MR`,
    /// `j < NR` is readable and writable, not aliased by `a` or `b`, and not written by another
    /// thread during the call; `op` is `Store` or `Add` unless `csc = 1`, and its pointers
    /// address the tile's bias (`NR` floats) or mask (`c`'s offsets).
    unsafe fn kernel(k: usize, a: *const f32, b: *const f32, c: *mut f32, rsc: isize, csc: isize, op: TileOp);
}

/// How a kernel writes its sums `x` into the tile of C: the epilogues of `driver::Epi` on a full
/// tile, applied while the sums are in registers. Each gives the bits of the separate pass.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TileOp {
    /// `c = x`.
    Store,
    /// `c = c + x`.
    Add,
    /// `c = s + bias[j]`, then [`relu`] with `relu`, where `s = c + x` with `add`, else `x`;
    /// `bias` points at the bias of the tile's first column.
    Bias { bias: *const f32, add: bool, relu: bool },
    /// `c = 0` where `mask ≤ 0`, else `s` (as for `Bias`); `mask` points at the mask value of the
    /// tile's corner and has C's strides.
    Mask { mask: *const f32, add: bool },
    /// `c = c − lr·x`.
    Sgd(f32),
}

impl TileOp {
    /// The new value of the element `(·, j)` at offset `o` from the tile's corner, from its old
    /// value and its sum `x`: the scalar definition every kernel's vector code matches.
    ///
    /// # Safety
    /// The pointers of `op` are valid at column `j` and offset `o`.
    #[inline(always)]
    pub(crate) unsafe fn scalar(self, old: f32, x: f32, j: usize, o: isize) -> f32 {
        let sum = |add: bool| if add { old + x } else { x };
        match self {
            TileOp::Store => x,
            TileOp::Add => old + x,
            // SAFETY (both): the caller's.
            TileOp::Bias { bias, add, relu: on } => {
                let v = sum(add) + unsafe { *bias.add(j) };
                if on {
                    relu(v)
                } else {
                    v
                }
            }
            TileOp::Mask { mask, add } => {
                if unsafe { *mask.offset(o) } <= 0.0 {
                    0.0
                } else {
                    sum(add)
                }
            }
            TileOp::Sgd(lr) => old - lr * x,
        }
    }
}

/// Largest `MR · NR` of any kernel: the size of the stack tile used for edges.
pub(crate) const MAX_TILE: usize = 512;

/// Plain Rust, 4×8, no intrinsics and no FMA (`a·b + c` rounds twice), so it runs on any CPU;
/// written with fixed-size arrays so LLVM vectorises the `NR` loop with the baseline SIMD.
pub(crate) struct Portable;

impl Microkernel for Portable {
    const MR: usize = 4;
    const NR: usize = 8;
    const AVX: bool = false;

    unsafe fn kernel(k: usize, a: *const f32, b: *const f32, c: *mut f32, rsc: isize, csc: isize, op: TileOp) {
        const MR: usize = Portable::MR;
        const NR: usize = Portable::NR;
        // SAFETY: the caller guarantees `a` holds k·MR and `b` holds k·NR floats.
        let (a, b) = unsafe { (std::slice::from_raw_parts(a, k * MR), std::slice::from_raw_parts(b, k * NR)) };
        let mut acc = [[0.0f32; NR]; MR];
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for (row, &ai) in acc.iter_mut().zip(ap) {
                for (x, &bj) in row.iter_mut().zip(bp) {
                    *x += ai * bj;
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                // SAFETY: (i, j) is inside the MR×NR tile the caller lent us, and so are op's
                // pointers.
                unsafe {
                    let o = i as isize * rsc + j as isize * csc;
                    let p = c.offset(o);
                    *p = op.scalar(*p, x, j, o);
                }
            }
        }
    }
}
