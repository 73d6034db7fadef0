//! The x86-64 microkernels: AVX-512 and AVX2+FMA, broadcast-A × vector-B outer products.
//!
//! Per step `p` of the reduction, the kernel loads `NR / LANES` vectors of the packed B row,
//! broadcasts each of the `MR` A values (packed, or read in place) and issues `MR · NR / LANES`
//! FMAs into accumulators that stay in registers for the whole call.

use std::arch::x86_64::*;

use super::kernel::{APanel, Microkernel, TileOp, MAX_TILE};
use super::pack::x86::transpose_8x8;
use crate::elementwise::ElementOp;

/// AVX-512F, 8×32: 16 zmm accumulators + 2 B vectors + 1 broadcast; 2 loads and 8 broadcasts
/// feed 16 FMAs per step, which Zen 4 (one 512-bit FMA per cycle) sustains at ≈ 98% of peak from
/// L1. 8 rows divide the 128- and 96-row batches (a 12×32 tile, 24 accumulators, was as fast in
/// L1 but wasted 4 of 132 rows on the batch and ran 1-40% slower on the training shapes, the most at k = 10).
pub(crate) struct Avx512;

/// AVX2+FMA, 6×16: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers;
/// 12 FMAs per step keep Zen 4's two 256-bit FMA pipes busy (≈ 100% of peak from L1).
pub(crate) struct Avx2;

/// AVX-512F, 10×32, for products whose short side is the 10 classes of the output layer (the
/// forward `X·Wᵀ` computed as its transpose, the weight gradient `dZᵀ·X`): one panel covers the
/// 10 rows that the 8×32 tile pads to 16. 20 zmm accumulators + 2 B vectors + 1 broadcast.
pub(crate) struct Avx512Thin;

/// AVX2+FMA, 5×16, for the same thin products: two panels cover 10 rows, which the 6×16 tile
/// pads to 12. 10 ymm accumulators + 2 B vectors + 1 broadcast.
pub(crate) struct Avx2Thin;

/// `impl Microkernel` for `$kernel`: an `MR × (LANES·NV)` tile of `$register`s, computed by
/// [`tile`] inlined into a function compiled for `$feature`.
macro_rules! microkernel {
    ($kernel:ident, $register:ty, $feature:literal, mr: $mr:literal, nv: $nv:literal) => {
        impl Microkernel for $kernel {
            const MR: usize = $mr;
            const NR: usize = $nv * <$register as Register>::LANES;
            const AVX: bool = true;
            const COLUMNS: bool = $mr == 8;

            #[inline(always)]
            unsafe fn kernel(k: usize, a: APanel, b: *const f32, c: *mut f32, rsc: isize, csc: isize, op: TileOp) {
                /// [`tile`] compiled with the instruction set enabled: the intrinsics it inlines
                /// take their target feature from here.
                #[target_feature(enable = $feature)]
                unsafe fn with_feature(
                    k: usize,
                    a: APanel,
                    b: *const f32,
                    c: *mut f32,
                    rsc: isize,
                    csc: isize,
                    op: TileOp,
                ) {
                    // SAFETY: the contract of `Microkernel::kernel`, forwarded by our caller.
                    // One loop per layout of A, so the packed one keeps its constant offsets.
                    unsafe {
                        match a {
                            APanel::Packed(a) => tile::<$register, $mr, $nv>(k, a, (1, $mr), b, c, rsc, csc, op),
                            APanel::Rows { ptr, lda } => {
                                tile::<$register, $mr, $nv>(k, ptr, (lda, 1), b, c, rsc, csc, op)
                            }
                        }
                    }
                }
                // SAFETY: the caller of `Microkernel::kernel` guarantees that this CPU has
                // `$feature` and the memory contract, which `with_feature` forwards.
                unsafe { with_feature(k, a, b, c, rsc, csc, op) }
            }
        }
    };
}
microkernel!(Avx512, __m512, "avx512f", mr: 8, nv: 2);
microkernel!(Avx2, __m256, "avx2,fma", mr: 6, nv: 2);
microkernel!(Avx512Thin, __m512, "avx512f", mr: 10, nv: 2);
microkernel!(Avx2Thin, __m256, "avx2,fma", mr: 5, nv: 2);

/// The one microkernel body, `MR × (LANES·NV)` with registers `V`: per step of the reduction,
/// `NV` loads of the packed B row, then for each of the `MR` A values (`A(i, p)` at
/// `a + i·rs + p·ps`) a broadcast and `NV` FMAs. Always inlined, so that it is compiled inside the `#[target_feature]` function of its
/// kernel and its intrinsics become that instruction set's instructions.
///
/// # Safety
/// The contract of [`Microkernel::kernel`], with `V`'s instruction set as the kernel's.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<V: Register, const MR: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    (rs, ps): (usize, usize),
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    op: TileOp,
) {
    let nr = NV * V::LANES;
    // SAFETY: the caller's: `V`'s instruction set is available.
    let mut acc = [[unsafe { V::zero() }; NV]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        // SAFETY: the caller guarantees A(i, p) at a + i·rs + p·ps for i < MR, p < k, k·NR floats
        // at `b`, and `V`'s instruction set; we advance by one reduction step of each.
        unsafe {
            let bv: [V; NV] = std::array::from_fn(
                #[inline(always)]
                |v| V::load(b.add(v * V::LANES)),
            );
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = V::splat(*a.add(i * rs));
                for (x, &bx) in row.iter_mut().zip(&bv) {
                    *x = V::fmadd(ai, bx, *x);
                }
            }
            a = a.add(ps);
            b = b.add(nr);
        }
    }
    // SAFETY: the caller's contract, forwarded.
    unsafe { write_tile(&acc, c, rsc, csc, op) };
}

/// Writes the accumulators into the tile of C through `op`: in registers when rows are
/// contiguous (`csc = 1`), else (the transposed orientation) through a row-major tile on the
/// stack, from which an 8-row tile goes to contiguous columns of C as AVX vectors
/// ([`write_columns`]) and any other element by element (`Store` or `Add` only). Generic over the
/// register type so both kernels share it.
///
/// # Safety
/// The vector instructions of `V` are available; the contract of `Microkernel::kernel` for `c`,
/// `rsc`, `csc` and `op`.
#[inline(always)]
unsafe fn write_tile<V: Register, const MR: usize, const NV: usize>(
    acc: &[[V; NV]; MR],
    c: *mut f32,
    rsc: isize,
    csc: isize,
    op: TileOp,
) {
    let nr = NV * V::LANES;
    if csc != 1 {
        let mut tile = [0.0f32; MAX_TILE];
        // SAFETY: the tile holds MR·NR ≤ MAX_TILE floats, rows NR apart; the caller promised
        // `V`'s instruction set.
        unsafe {
            store_rows(
                acc,
                tile.as_mut_ptr(),
                nr as isize,
                #[inline(always)]
                |_, _, x| x,
            )
        };
        // The condition of `Microkernel::COLUMNS` (`MR == 8` for these kernels), under which the
        // driver may also hand us a bias along the rows.
        if MR == 8 && rsc == 1 {
            // SAFETY: every x86 kernel has AVX; column j of the tile is the 8 floats at
            // c + j·csc (rsc = 1), the caller's; NR is a multiple of 8; a bias operand holds the
            // tile's 8 rows (the contract of `Microkernel::kernel` for `COLUMNS`).
            unsafe { write_columns(&tile[..8 * nr], nr, c, csc, op) };
        } else {
            debug_assert!(matches!(op.op, ElementOp::Store | ElementOp::Add), "{op:?} on strided C");
            // SAFETY: (i, j) < (MR, NR) is inside the caller's tile, and `op` has no operand.
            unsafe { scatter(&tile[..MR * nr], nr, c, rsc, csc, op) };
        }
        return;
    }
    // SAFETY: (each arm) the caller promised `V`'s instruction set, that row i of the tile is NR
    // contiguous floats at c + i·rsc, readable and writable, and that the operand is the tile's
    // bias (NR floats) or has C's offsets (the mask).
    unsafe {
        let operand = op.operand;
        match op.op {
            ElementOp::Store => store_rows(
                acc,
                c,
                rsc,
                #[inline(always)]
                |_, _, x| x,
            ),
            ElementOp::Add => store_rows(
                acc,
                c,
                rsc,
                #[inline(always)]
                |p, _, x| V::add(V::load(p), x),
            ),
            ElementOp::Bias { .. } => {
                let bias: [V; NV] = std::array::from_fn(
                    #[inline(always)]
                    |v| V::load(operand.add(v * V::LANES)),
                );
                store_rows(
                    acc,
                    c,
                    rsc,
                    #[inline(always)]
                    |p, (_, v), x| plain_or_bias(op.op, p, x, bias[v]),
                )
            }
            ElementOp::Mask { add } => store_rows(
                acc,
                c,
                rsc,
                #[inline(always)]
                |p, (i, v), x| {
                    let s = if add { V::add(V::load(p), x) } else { x };
                    V::zero_where_not_positive(s, V::load(operand.offset(i as isize * rsc + (v * V::LANES) as isize)))
                },
            ),
            ElementOp::Sgd(lr) => {
                let lr = V::splat(lr);
                store_rows(
                    acc,
                    c,
                    rsc,
                    #[inline(always)]
                    |p, _, x| V::sub(V::load(p), V::mul(lr, x)),
                )
            }
        }
    }
}

/// `c[i·rsc + v·LANES ..] = f(that address, (i, v), acc[i][v])` for every register of the tile;
/// fully unrolled. Callers mark their closures `#[inline(always)]` (as every closure of these
/// kernels): a closure does not inherit the kernel's target features, so one left out of line
/// ran its intrinsics as calls (write_tile's closures took 7% of a W = 128 epoch).
///
/// # Safety
/// Each row `c + i·rsc .. + NV·LANES` is writable, and whatever `f` reads is readable.
#[inline(always)]
unsafe fn store_rows<V: Register, const MR: usize, const NV: usize>(
    acc: &[[V; NV]; MR],
    c: *mut f32,
    rsc: isize,
    f: impl Fn(*mut f32, (usize, usize), V) -> V,
) {
    for (i, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            // SAFETY: inside row i of the caller's tile.
            unsafe {
                let p = c.offset(i as isize * rsc + (v * V::LANES) as isize);
                V::store(p, f(p, (i, v), x));
            }
        }
    }
}

/// Writes an 8-row tile, row-major in `tile` (rows `nr` apart), into a C whose columns are
/// contiguous (element `(i, j)` at `c + i + j·csc`): 8 columns at a time are transposed through
/// AVX registers, then each column of C gets `op` as one vector. The forward product in its
/// transposed orientation (`Zᵀ = W·Xᵀ`, see `run` in `mod.rs`) writes all its tiles this way;
/// a bias along the rows is one vector for every column. Each element is computed as
/// [`ElementOp::apply`] computes it.
///
/// # Safety
/// AVX is available; `c + i + j·csc` is readable and writable for `i < 8`, `j < nr`; `nr` is a
/// multiple of 8; `op` is `Store`, `Add` or `Bias`, whose operand holds 8 floats.
#[inline(always)]
unsafe fn write_columns(tile: &[f32], nr: usize, c: *mut f32, csc: isize, op: TileOp) {
    debug_assert!(tile.len() == 8 * nr && nr.is_multiple_of(8) && nr * 8 <= MAX_TILE);
    // Not zeroed (2 KiB per tile): the transposes write all 8·nr floats before any is read.
    let mut columns = std::mem::MaybeUninit::<[f32; MAX_TILE]>::uninit();
    let columns = columns.as_mut_ptr().cast::<f32>();
    // SAFETY: (all below) AVX is the caller's promise; `tile` and `columns` hold 8·nr floats, and
    // the transposes write columns[jb·8 + q·8 + r] for every jb, q, r < 8, all of them, before
    // the loads read them; column j of C is the 8 floats at c + j·csc (the caller's), and a bias
    // holds 8.
    unsafe {
        for jb in (0..nr).step_by(8) {
            transpose_8x8(tile.as_ptr().add(jb), nr, columns.add(jb * 8), 8);
        }
        let bias = match op.op {
            ElementOp::Bias { .. } => __m256::load(op.operand),
            _ => __m256::zero(),
        };
        for j in 0..nr {
            let p = c.offset(j as isize * csc);
            __m256::store(p, plain_or_bias(op.op, p, __m256::load(columns.add(j * 8)), bias));
        }
    }
}

/// The vector form of [`ElementOp::apply`] for `Store`, `Add` and `Bias`: the new value of the
/// `LANES` elements at `p` from their sums `x` (the old values read only when added) and their
/// bias. One definition for the row and the column writers, so both round alike.
///
/// # Safety
/// `V`'s instruction set; `p` readable for `LANES` floats when `op` adds.
#[inline(always)]
unsafe fn plain_or_bias<V: Register>(op: ElementOp, p: *const f32, x: V, bias: V) -> V {
    // SAFETY: the caller's.
    unsafe {
        match op {
            ElementOp::Store => x,
            ElementOp::Add => V::add(V::load(p), x),
            ElementOp::Bias { add, relu } => {
                let s = V::add(if add { V::add(V::load(p), x) } else { x }, bias);
                if relu {
                    V::relu(s)
                } else {
                    s
                }
            }
            ElementOp::Mask { .. } | ElementOp::Sgd(_) => unreachable!("{op:?} has an operand of its own"),
        }
    }
}

/// `c[i·rsc + j·csc] = op(c[i·rsc + j·csc], tile[i·nr + j])` for the whole tile, element by
/// element (the scalar definition).
///
/// # Safety
/// Every `c + i·rsc + j·csc` for the tile's `(i, j)` is readable and writable; `op`'s operand is
/// valid as `TileOp::scalar` requires.
unsafe fn scatter(tile: &[f32], nr: usize, c: *mut f32, rsc: isize, csc: isize, op: TileOp) {
    for (i, row) in tile.chunks_exact(nr).enumerate() {
        for (j, &x) in row.iter().enumerate() {
            // SAFETY: inside the caller's tile; the operand is the caller's.
            unsafe {
                let o = i as isize * rsc + j as isize * csc;
                let p = c.offset(o);
                *p = op.scalar(*p, x, j, o);
            }
        }
    }
}

/// The vector register of a kernel: the operations of the microkernel's loop and of the
/// epilogues. The epilogue operations must round as the scalar definition, `ElementOp::apply`,
/// does (one IEEE operation per step, no FMA).
///
/// # Safety
/// Every method needs the register's instruction set (AVX-512F for `__m512`, AVX for `__m256`,
/// and FMA for its `fmadd`); `load` and `store` also need `LANES` readable or writable floats at
/// `p`.
trait Register: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(p: *mut f32, x: Self);
    /// `a·b + c`, rounded once.
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
    unsafe fn add(x: Self, y: Self) -> Self;
    unsafe fn sub(x: Self, y: Self) -> Self;
    unsafe fn mul(x: Self, y: Self) -> Self;
    /// `x > 0 ? x : +0` per lane (`vmaxps x, 0` returns its second operand for NaN and zeros).
    unsafe fn relu(x: Self) -> Self;
    /// `mask ≤ 0 ? +0 : x` per lane (a NaN mask keeps `x`).
    unsafe fn zero_where_not_positive(x: Self, mask: Self) -> Self;
}

/// `impl Register for $register`, each method one intrinsic (named after the `_mm512_` or
/// `_mm256_` prefix); `zero_where_not_positive` is spelled out, as the two sets compare and
/// select differently.
macro_rules! register {
    ($register:ty, lanes: $lanes:literal, $setzero:ident, $set1:ident, $loadu:ident, $storeu:ident,
     $fmadd:ident, $add:ident, $sub:ident, $mul:ident, $max:ident,
     zero_where_not_positive: |$x:ident, $mask:ident| $select:expr) => {
        impl Register for $register {
            const LANES: usize = $lanes;
            // SAFETY: (every block below) the instruction set, and for `load` and `store` the
            // `LANES` floats at `p`, are the caller's promise (see `Register`).
            #[inline(always)]
            unsafe fn zero() -> Self {
                // SAFETY: see above.
                unsafe { $setzero() }
            }
            #[inline(always)]
            unsafe fn splat(x: f32) -> Self {
                // SAFETY: see above.
                unsafe { $set1(x) }
            }
            #[inline(always)]
            unsafe fn load(p: *const f32) -> Self {
                // SAFETY: see above.
                unsafe { $loadu(p) }
            }
            #[inline(always)]
            unsafe fn store(p: *mut f32, x: Self) {
                // SAFETY: see above.
                unsafe { $storeu(p, x) }
            }
            #[inline(always)]
            unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
                // SAFETY: see above.
                unsafe { $fmadd(a, b, c) }
            }
            #[inline(always)]
            unsafe fn add(x: Self, y: Self) -> Self {
                // SAFETY: see above.
                unsafe { $add(x, y) }
            }
            #[inline(always)]
            unsafe fn sub(x: Self, y: Self) -> Self {
                // SAFETY: see above.
                unsafe { $sub(x, y) }
            }
            #[inline(always)]
            unsafe fn mul(x: Self, y: Self) -> Self {
                // SAFETY: see above.
                unsafe { $mul(x, y) }
            }
            #[inline(always)]
            unsafe fn relu(x: Self) -> Self {
                // SAFETY: see above.
                unsafe { $max(x, $setzero()) }
            }
            #[inline(always)]
            unsafe fn zero_where_not_positive($x: Self, $mask: Self) -> Self {
                // SAFETY: see above.
                unsafe { $select }
            }
        }
    };
}

register! {
    __m512, lanes: 16, _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps,
    _mm512_fmadd_ps, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_max_ps,
    zero_where_not_positive: |x, mask| {
        let zero = _mm512_setzero_ps();
        _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask::<_CMP_LE_OQ>(mask, zero), zero)
    }
}
register! {
    __m256, lanes: 8, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
    _mm256_fmadd_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_max_ps,
    zero_where_not_positive: |x, mask| {
        let zero = _mm256_setzero_ps();
        _mm256_blendv_ps(x, zero, _mm256_cmp_ps::<_CMP_LE_OQ>(mask, zero))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementwise::{no_operand, relu};

    /// NaN, both zeros, infinities, subnormals: the lanes the random tests never hit.
    const SPECIAL: [f32; 16] = [
        f32::NAN,
        -0.0,
        0.0,
        -1.0,
        1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-45,
        -1e-45,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        3.5,
        -3.5,
        f32::MAX,
        f32::MIN,
        0.5,
    ];

    /// The vector epilogue operations against the scalar definition ([`ElementOp::apply`]), bit
    /// for bit, on every pair of special values.
    fn check<V: Register>() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let lanes = V::LANES;
        for shift in 0..SPECIAL.len() {
            let x: Vec<f32> = (0..lanes).map(|i| SPECIAL[i % 16]).collect();
            let m: Vec<f32> = (0..lanes).map(|i| SPECIAL[(i + shift) % 16]).collect();
            let mut out = vec![0.0f32; lanes];
            // SAFETY: `lanes` floats in each buffer; the callers checked the instruction set.
            unsafe {
                let (xv, mv) = (V::load(x.as_ptr()), V::load(m.as_ptr()));
                V::store(out.as_mut_ptr(), V::relu(xv));
                assert_eq!(bits(&out), bits(&x.iter().map(|&v| relu(v)).collect::<Vec<_>>()), "relu");
                V::store(out.as_mut_ptr(), V::zero_where_not_positive(xv, mv));
                let scalar =
                    |op: ElementOp| -> Vec<f32> { x.iter().zip(&m).map(|(&v, &k)| op.apply(0.0, v, || k)).collect() };
                assert_eq!(bits(&out), bits(&scalar(ElementOp::Mask { add: false })), "mask {m:?}");
                V::store(out.as_mut_ptr(), V::relu(V::add(xv, mv)));
                assert_eq!(bits(&out), bits(&scalar(ElementOp::Bias { add: false, relu: true })), "bias relu {m:?}");
                V::store(out.as_mut_ptr(), V::sub(xv, V::mul(V::splat(0.1), mv)));
                let want: Vec<f32> =
                    x.iter().zip(&m).map(|(&v, &k)| ElementOp::Sgd(0.1).apply(v, k, no_operand)).collect();
                assert_eq!(bits(&out), bits(&want), "sgd");
            }
        }
    }

    #[test]
    fn epilogue_lanes_match_the_scalar_definitions() {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is present.
            unsafe { with_avx512(check::<__m512>) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA are present.
            unsafe { with_avx2(check::<__m256>) };
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn with_avx512(f: fn()) {
        f()
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn with_avx2(f: fn()) {
        f()
    }
}
