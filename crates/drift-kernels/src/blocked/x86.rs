//! The x86-64 microkernels: AVX-512 and AVX2+FMA, broadcast-A × vector-B outer products.
//!
//! Per step `p` of the reduction, the kernel loads `NR / LANES` vectors of the packed B row,
//! broadcasts each of the `MR` packed A values and issues `MR · NR / LANES` FMAs into
//! accumulators that stay in registers for the whole call.

use std::arch::x86_64::*;

use super::kernel::{Microkernel, MAX_TILE};

/// AVX-512F, 8×32: 16 zmm accumulators + 2 B vectors + 1 broadcast; 2 loads and 8 broadcasts
/// feed 16 FMAs per step, which Zen 4 (one 512-bit FMA per cycle) sustains at ≈ 98% of peak from
/// L1. 8 rows divide the 128- and 96-row batches (a 12×32 tile, 24 accumulators, was as fast in
/// L1 but wasted 4 of 132 rows on the batch and ran 1-40% slower on the training shapes, the most at k = 10).
pub(crate) struct Avx512;

/// AVX2+FMA, 6×16: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers;
/// 12 FMAs per step keep Zen 4's two 256-bit FMA pipes busy (≈ 100% of peak from L1).
pub(crate) struct Avx2;

impl Microkernel for Avx512 {
    const MR: usize = 8;
    const NR: usize = 32;
    const AVX: bool = true;

    #[inline(always)]
    unsafe fn kernel(k: usize, a: *const f32, b: *const f32, c: *mut f32, rsc: isize, csc: isize, accumulate: bool) {
        // SAFETY: forwarded contract of `Microkernel::kernel`, which includes AVX-512F support.
        unsafe { kernel_avx512::<8, 2>(k, a, b, c, rsc, csc, accumulate) }
    }
}

impl Microkernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;
    const AVX: bool = true;

    #[inline(always)]
    unsafe fn kernel(k: usize, a: *const f32, b: *const f32, c: *mut f32, rsc: isize, csc: isize, accumulate: bool) {
        // SAFETY: forwarded contract of `Microkernel::kernel`, which includes AVX2 and FMA support.
        unsafe { kernel_avx2::<6, 2>(k, a, b, c, rsc, csc, accumulate) }
    }
}

/// `MR × (16·NV)` tile with zmm registers. See [`Microkernel::kernel`] for the contract.
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<const MR: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    accumulate: bool,
) {
    const LANES: usize = 16;
    let nr = NV * LANES;
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        // SAFETY: the caller guarantees k·MR floats at `a` and k·NR at `b`; we advance by one
        // row of each per step.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(b.add(v * LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(i));
                for (x, &bx) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(ai, bx, *x);
                }
            }
            a = a.add(MR);
            b = b.add(nr);
        }
    }
    if csc == 1 {
        // SAFETY: csc = 1, so row i of the tile is NR contiguous floats at c + i·rsc (caller).
        unsafe { store_rows(&acc, c, rsc, accumulate) };
    } else {
        // Strided C (the transposed orientation): through a row-major tile on the stack.
        let mut tile = [0.0f32; MAX_TILE];
        // SAFETY: the tile holds MR·NR ≤ MAX_TILE floats, rows NR apart.
        unsafe { store_rows(&acc, tile.as_mut_ptr(), nr as isize, false) };
        // SAFETY: (i, j) < (MR, NR) is inside the caller's tile.
        unsafe { scatter(&tile[..MR * nr], nr, c, rsc, csc, accumulate) };
    }
}

/// `MR × (8·NV)` tile with ymm registers. See [`Microkernel::kernel`] for the contract.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2<const MR: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    accumulate: bool,
) {
    const LANES: usize = 8;
    let nr = NV * LANES;
    let mut acc = [[_mm256_setzero_ps(); NV]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        // SAFETY: as in `kernel_avx512`.
        unsafe {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(b.add(v * LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_broadcast_ss(&*a.add(i));
                for (x, &bx) in row.iter_mut().zip(&bv) {
                    *x = _mm256_fmadd_ps(ai, bx, *x);
                }
            }
            a = a.add(MR);
            b = b.add(nr);
        }
    }
    if csc == 1 {
        // SAFETY: csc = 1, so row i of the tile is NR contiguous floats at c + i·rsc (caller).
        unsafe { store_rows(&acc, c, rsc, accumulate) };
    } else {
        // Strided C (the transposed orientation): through a row-major tile on the stack.
        let mut tile = [0.0f32; MAX_TILE];
        // SAFETY: the tile holds MR·NR ≤ MAX_TILE floats, rows NR apart.
        unsafe { store_rows(&acc, tile.as_mut_ptr(), nr as isize, false) };
        // SAFETY: (i, j) < (MR, NR) is inside the caller's tile.
        unsafe { scatter(&tile[..MR * nr], nr, c, rsc, csc, accumulate) };
    }
}

/// Writes (or adds, with `accumulate`) the accumulators to rows `c + i·rsc`, contiguous within a
/// row. Generic over the register type so both kernels share it; fully unrolled.
///
/// # Safety
/// The vector instructions of `V` are available; each row `c + i·rsc .. + NV·LANES` is writable
/// (and readable with `accumulate`).
#[inline(always)]
unsafe fn store_rows<V: Register, const MR: usize, const NV: usize>(
    acc: &[[V; NV]; MR],
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    for (i, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            // SAFETY: inside row i of the caller's tile.
            unsafe {
                let p = c.offset(i as isize * rsc + (v * V::LANES) as isize);
                V::store(p, if accumulate { V::add(V::load(p), x) } else { x });
            }
        }
    }
}

/// `c[i·rsc + j·csc] (=|+=) tile[i·nr + j]` for the whole tile.
///
/// # Safety
/// Every `c + i·rsc + j·csc` for the tile's `(i, j)` is writable (and readable with `accumulate`).
unsafe fn scatter(tile: &[f32], nr: usize, c: *mut f32, rsc: isize, csc: isize, accumulate: bool) {
    for (i, row) in tile.chunks_exact(nr).enumerate() {
        for (j, &x) in row.iter().enumerate() {
            // SAFETY: inside the caller's tile.
            unsafe {
                let p = c.offset(i as isize * rsc + j as isize * csc);
                *p = if accumulate { *p + x } else { x };
            }
        }
    }
}

/// The vector register of a kernel: load, store, add.
trait Register: Copy {
    const LANES: usize;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(p: *mut f32, x: Self);
    unsafe fn add(x: Self, y: Self) -> Self;
}

impl Register for __m512 {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller's (16 readable floats at p, AVX-512F present).
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, x: Self) {
        // SAFETY: the caller's (16 writable floats at p, AVX-512F present).
        unsafe { _mm512_storeu_ps(p, x) }
    }
    #[inline(always)]
    unsafe fn add(x: Self, y: Self) -> Self {
        // SAFETY: the caller's (AVX-512F present).
        unsafe { _mm512_add_ps(x, y) }
    }
}

impl Register for __m256 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller's (8 readable floats at p, AVX present).
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, x: Self) {
        // SAFETY: the caller's (8 writable floats at p, AVX present).
        unsafe { _mm256_storeu_ps(p, x) }
    }
    #[inline(always)]
    unsafe fn add(x: Self, y: Self) -> Self {
        // SAFETY: the caller's (AVX present).
        unsafe { _mm256_add_ps(x, y) }
    }
}
