//! The microkernel trait and the portable kernel (the plain twin of the SIMD ones).

use crate::elementwise::ElementOp;

/// A register-tile kernel: `C[MR×NR] (=|+=) Ã·B̃` for panels of length `k`.
///
/// Packed layouts (written by `pack.rs`): `a[p * MR + i]` is `A(i, p)` and `b[p * NR + j]` is
/// `B(p, j)` for `p < k`; or A read in place ([`APanel::Rows`]). Every element of the tile is an FMA (or multiply-add for the portable
/// kernel) chain over `p = 0, 1, …, k−1` started from zero; then [`TileOp`] combines it into C
/// while it is still in registers.
pub(crate) trait Microkernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// The kernel's instruction set includes AVX, so the packing may use it too.
    const AVX: bool;
    /// The kernel writes full tiles of a C whose columns are contiguous (`rsc = 1`, the
    /// transposed orientation) from its registers, a bias along the tile's rows included: its
    /// tile has 8 rows, one AVX vector per column of C.
    const COLUMNS: bool;

    /// Computes one full `MR × NR` tile of C at `c`, element `(i, j)` at `c + i·rsc + j·csc`,
    /// and writes it through `op`.
    ///
    /// # Safety
    /// The caller guarantees: the CPU supports the kernel's instruction set; `a` addresses
    /// `A(i, p)` for `i < MR`, `p < k` and `b` holds `k · NR` readable floats; every `c + i·rsc + j·csc` with `i < MR`,
    /// `j < NR` is readable and writable, not aliased by `a` or `b`, and not written by another
    /// thread during the call; `op` is `Store` or `Add` unless `csc = 1`, or `rsc = 1` with a
    /// `Bias` for a kernel with [`COLUMNS`](Self::COLUMNS); its operand is the tile's bias (`NR`
    /// floats along the columns, `MR` along the rows when `csc ≠ 1`) or mask (`c`'s offsets).
    unsafe fn kernel(k: usize, a: APanel, b: *const f32, c: *mut f32, rsc: isize, csc: isize, op: TileOp);
}

/// Where a kernel reads its `MR` rows of A.
#[derive(Clone, Copy, Debug)]
pub(crate) enum APanel {
    /// A packed panel: `A(i, p)` at `ptr + p·MR + i`.
    Packed(*const f32),
    /// The rows of a reduction-contiguous A in place: `A(i, p)` at `ptr + i·lda + p`. A kernel
    /// broadcasts A's values one at a time, so it needs no copy of them in panel order; reading
    /// them in place saves the transposing copy that packing such an A takes (each element of C
    /// still sees the same products in the same order).
    Rows { ptr: *const f32, lda: usize },
}

impl APanel {
    /// The address of `A(i, 0)` and the distances between rows and between reduction steps.
    #[inline(always)]
    pub(crate) fn strides(self, mr: usize) -> (*const f32, usize, usize) {
        match self {
            APanel::Packed(ptr) => (ptr, 1, mr),
            APanel::Rows { ptr, lda } => (ptr, lda, 1),
        }
    }
}

/// How a kernel writes its sums into the tile of C: `op` on every element while the sums are in
/// registers. `operand` points at the bias of the tile's first column for `ElementOp::Bias`
/// (column `j` takes `operand[j]`; row `i` takes `operand[i]` for a tile that a `COLUMNS` kernel
/// writes to contiguous columns of C), at the mask value of the tile's corner for `ElementOp::Mask`
/// (with C's strides), and is null otherwise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileOp {
    pub op: ElementOp,
    pub operand: *const f32,
}

impl TileOp {
    /// `op` with no operand (`Store`, `Add`, `Sgd`).
    pub(crate) fn plain(op: ElementOp) -> TileOp {
        debug_assert!(!matches!(op, ElementOp::Bias { .. } | ElementOp::Mask { .. }), "{op:?} needs an operand");
        TileOp { op, operand: std::ptr::null() }
    }

    /// The new value of the element `(·, j)` at offset `o` from the tile's corner, from its old
    /// value `c` and its sum `x`: [`ElementOp::apply`] with the element's operand.
    ///
    /// # Safety
    /// `operand` is valid at column `j` (`Bias`) or offset `o` (`Mask`).
    #[inline(always)]
    pub(crate) unsafe fn scalar(self, c: f32, x: f32, j: usize, o: isize) -> f32 {
        self.op.apply(c, x, || match self.op {
            // SAFETY: the caller's: the bias holds the tile's columns.
            ElementOp::Bias { .. } => unsafe { *self.operand.add(j) },
            // SAFETY: the caller's: the mask has C's offsets from the tile's corner.
            _ => unsafe { *self.operand.offset(o) },
        })
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
    const COLUMNS: bool = false;

    unsafe fn kernel(k: usize, a: APanel, b: *const f32, c: *mut f32, rsc: isize, csc: isize, op: TileOp) {
        const MR: usize = Portable::MR;
        const NR: usize = Portable::NR;
        let (a, rs, ps) = a.strides(MR);
        // SAFETY: the caller guarantees `b` holds k·NR floats.
        let b = unsafe { std::slice::from_raw_parts(b, k * NR) };
        let mut acc = [[0.0f32; NR]; MR];
        for (p, bp) in b.chunks_exact(NR).enumerate() {
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: the caller guarantees A(i, p) at this address for i < MR, p < k.
                let ai = unsafe { *a.add(i * rs + p * ps) };
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
