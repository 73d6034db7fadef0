//! The microkernel trait and the portable kernel (the plain twin of the SIMD ones).

/// A register-tile kernel: `C[MR×NR] (=|+=) Ã·B̃` for packed panels of length `k`.
///
/// Packed layouts (written by `pack.rs`): `a[p * MR + i]` is `A(i, p)` and `b[p * NR + j]` is
/// `B(p, j)` for `p < k`. Every element of the tile is an FMA (or multiply-add for the portable
/// kernel) chain over `p = 0, 1, …, k−1` started from zero; then `C = acc` or, with
/// `accumulate`, `C = C + acc`.
pub(crate) trait Microkernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// The kernel's instruction set includes AVX, so the packing may use it too.
    const AVX: bool;

    /// Computes one full `MR × NR` tile of C at `c`, element `(i, j)` at `c + i·rsc + j·csc`.
    ///
    /// # Safety
    /// The caller guarantees: the CPU supports the kernel's instruction set; `a` holds
    /// `k · MR` and `b` holds `k · NR` readable floats; every `c + i·rsc + j·csc` with `i < MR`,
    /// `j < NR` is writable (and readable with `accumulate`), not aliased by `a` or `b`, and not
    /// written by another thread during the call.
    unsafe fn kernel(k: usize, a: *const f32, b: *const f32, c: *mut f32, rsc: isize, csc: isize, accumulate: bool);
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

    unsafe fn kernel(k: usize, a: *const f32, b: *const f32, c: *mut f32, rsc: isize, csc: isize, accumulate: bool) {
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
                // SAFETY: (i, j) is inside the MR×NR tile the caller lent us.
                unsafe {
                    let p = c.offset(i as isize * rsc + j as isize * csc);
                    *p = if accumulate { *p + x } else { x };
                }
            }
        }
    }
}
