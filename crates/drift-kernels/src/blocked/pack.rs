//! Packing: copies of A into MR-row panels and of B into NR-column panels, from any strides (an
//! A whose reduction is contiguous is read in place instead, see `driver.rs`).
//!
//! Both operands are seen as *lanes* along a reduction index `p`: the rows of A (`A(i, p)`) and
//! the columns of B (`B(p, j)`). A panel of width `R` holds `R` consecutive lanes over a range
//! `p0..p0 + kc`: lane `r`, index `p0 + q` goes to `dst[q·R + r]`, the order a microkernel reads.
//! Lanes past the edge of the matrix are written as zeros, so every kernel call is a full tile.
//!
//! Packing only copies, so how it is split or vectorised never changes a result bit.

/// A strided read-only operand: lane `r`, reduction index `p` is `data[r·lane_stride + p·k_stride]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    pub data: &'a [f32],
    pub lanes: usize,
    pub lane_stride: usize,
    pub k_stride: usize,
}

/// Packs lanes `lane0..lane0 + width` (zeros past `src.lanes`) over `p0..p0 + kc` into `dst`,
/// which holds exactly `kc · width` floats. `avx` says the CPU has AVX (the transposing case
/// then moves 8×8 and 4×8 blocks through registers).
///
/// Panics (slice bounds) if the source does not hold the elements; `gemm_blocked` has checked
/// the extents before, so this does not happen.
///
/// # Safety
/// With `avx`, the CPU has AVX.
pub(crate) unsafe fn pack_panel(
    dst: &mut [f32],
    width: usize,
    src: Source<'_>,
    lane0: usize,
    p0: usize,
    kc: usize,
    avx: bool,
) {
    assert_eq!(dst.len(), kc * width, "pack_panel: destination size");
    assert!(lane0 < src.lanes, "pack_panel: first lane {lane0} of {}", src.lanes);
    let w = width.min(src.lanes - lane0);
    let base = lane0 * src.lane_stride + p0 * src.k_stride;
    if src.lane_stride == 1 {
        // Lanes contiguous (A column-major, B row-major): one short copy per p.
        #[cfg(target_arch = "x86_64")]
        if avx {
            // SAFETY: with `avx` the CPU has AVX (our caller's promise).
            return unsafe { copy_lanes_avx(dst, width, src, base, w, kc) };
        }
        copy_lanes(dst, width, src, base, w, kc);
    } else if src.k_stride == 1 {
        // Reduction contiguous (A row-major, B = Wᵀ of a row-major W): a transpose.
        // SAFETY: with `avx` the CPU has AVX (our caller's promise).
        let r = if avx { unsafe { transpose_lanes(dst, width, src, base, w, kc) } } else { 0 };
        for rr in r..w {
            let start = base + rr * src.lane_stride;
            let lane = &src.data[start..start + kc];
            for (d, &v) in dst.chunks_exact_mut(width).zip(lane) {
                d[rr] = v;
            }
        }
        if w < width {
            for d in dst.chunks_exact_mut(width) {
                d[w..].fill(0.0);
            }
        }
    } else {
        for (q, d) in dst.chunks_exact_mut(width).enumerate() {
            for (r, x) in d[..w].iter_mut().enumerate() {
                *x = src.data[base + r * src.lane_stride + q * src.k_stride];
            }
            d[w..].fill(0.0);
        }
    }
}

/// The copying pack of lanes `0..w` (relative to `base`) when lanes are contiguous.
#[inline(always)]
fn copy_lanes(dst: &mut [f32], width: usize, src: Source<'_>, base: usize, w: usize, kc: usize) {
    match width {
        32 if w == 32 => copy_rows::<32>(dst, src, base, kc),
        16 if w == 16 => copy_rows::<16>(dst, src, base, kc),
        12 if w == 12 => copy_rows::<12>(dst, src, base, kc),
        10 if w == 10 => copy_rows::<10>(dst, src, base, kc),
        8 if w == 8 => copy_rows::<8>(dst, src, base, kc),
        6 if w == 6 => copy_rows::<6>(dst, src, base, kc),
        5 if w == 5 => copy_rows::<5>(dst, src, base, kc),
        4 if w == 4 => copy_rows::<4>(dst, src, base, kc),
        _ => {
            for (q, d) in dst.chunks_exact_mut(width).enumerate() {
                let start = base + q * src.k_stride;
                d[..w].copy_from_slice(&src.data[start..start + w]);
                d[w..].fill(0.0);
            }
        }
    }
}

/// [`copy_lanes`] compiled with AVX, so that each step's lanes move through 32-byte registers
/// (the baseline x86-64 build copies 16 bytes at a time).
///
/// # Safety
/// The CPU has AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn copy_lanes_avx(dst: &mut [f32], width: usize, src: Source<'_>, base: usize, w: usize, kc: usize) {
    copy_lanes(dst, width, src, base, w, kc)
}

/// The transposing pack of lanes `0..w` (relative to `base`) in blocks of 8 or 4 lanes through
/// AVX registers; returns how many lanes it packed (a multiple of 4), the caller does the rest.
///
/// # Safety
/// The CPU has AVX.
#[cfg(target_arch = "x86_64")]
unsafe fn transpose_lanes(dst: &mut [f32], width: usize, src: Source<'_>, base: usize, w: usize, kc: usize) -> usize {
    // Bounds for the whole block, so the unchecked loads below stay inside `src.data`.
    let last = base + (w - 1) * src.lane_stride + kc;
    assert!(last <= src.data.len() && dst.len() == kc * width, "pack_panel: source or destination too short");
    let q8 = kc - kc % 8;
    let mut r = 0;
    while r + 4 <= w {
        let lanes = if r + 8 <= w { 8 } else { 4 };
        // SAFETY: AVX is present (our caller's promise). Reads: lanes
        // r..r+lanes, indices 0..q8 of each, all before `last` (checked above). Writes:
        // dst[q·width + r .. + lanes] for q < q8 ≤ kc, inside `dst` (kc·width floats, checked).
        unsafe {
            let s = src.data.as_ptr().add(base + r * src.lane_stride);
            let d = dst.as_mut_ptr().add(r);
            for q0 in (0..q8).step_by(8) {
                if lanes == 8 {
                    x86::transpose_8x8(s.add(q0), src.lane_stride, d.add(q0 * width), width);
                } else {
                    x86::transpose_4x8(s.add(q0), src.lane_stride, d.add(q0 * width), width);
                }
            }
        }
        for rr in r..r + lanes {
            let start = base + rr * src.lane_stride;
            for (q, &v) in src.data[start + q8..start + kc].iter().enumerate() {
                dst[(q8 + q) * width + rr] = v;
            }
        }
        r += lanes;
    }
    r
}

/// # Safety
/// None needed: packs nothing (no AVX off x86).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose_lanes(_: &mut [f32], _: usize, _: Source<'_>, _: usize, _: usize, _: usize) -> usize {
    0
}

/// Full-width copy of `kc` rows of `N` contiguous lanes.
#[inline(always)]
fn copy_rows<const N: usize>(dst: &mut [f32], src: Source<'_>, base: usize, kc: usize) {
    for (q, d) in dst.chunks_exact_mut(N).take(kc).enumerate() {
        let start = base + q * src.k_stride;
        let s: &[f32; N] = src.data[start..start + N].try_into().expect("N floats");
        let d: &mut [f32; N] = d.try_into().expect("N floats");
        *d = *s;
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    /// Transposes 8 lanes × 8 indices: reads `s + r·ls + q`, writes `d + q·ld + r` (r, q < 8).
    ///
    /// # Safety
    /// AVX present; those 64 reads and 64 writes are in bounds.
    #[target_feature(enable = "avx")]
    pub(in crate::blocked) unsafe fn transpose_8x8(s: *const f32, ls: usize, d: *mut f32, ld: usize) {
        // SAFETY: the caller's bounds, row by row.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(s.add(i * ls)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            // u[q] holds index q (low half: lanes 0-3) and q + 4 (high half: lanes 0-3).
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let v0 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let v1 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let v2 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let v3 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            _mm256_storeu_ps(d, _mm256_permute2f128_ps::<0x20>(u0, v0));
            _mm256_storeu_ps(d.add(ld), _mm256_permute2f128_ps::<0x20>(u1, v1));
            _mm256_storeu_ps(d.add(2 * ld), _mm256_permute2f128_ps::<0x20>(u2, v2));
            _mm256_storeu_ps(d.add(3 * ld), _mm256_permute2f128_ps::<0x20>(u3, v3));
            _mm256_storeu_ps(d.add(4 * ld), _mm256_permute2f128_ps::<0x31>(u0, v0));
            _mm256_storeu_ps(d.add(5 * ld), _mm256_permute2f128_ps::<0x31>(u1, v1));
            _mm256_storeu_ps(d.add(6 * ld), _mm256_permute2f128_ps::<0x31>(u2, v2));
            _mm256_storeu_ps(d.add(7 * ld), _mm256_permute2f128_ps::<0x31>(u3, v3));
        }
    }

    /// Transposes 4 lanes × 8 indices: reads `s + r·ls + q`, writes `d + q·ld + r` (r < 4, q < 8).
    ///
    /// # Safety
    /// AVX present; those 32 reads and 32 writes are in bounds.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose_4x8(s: *const f32, ls: usize, d: *mut f32, ld: usize) {
        // SAFETY: the caller's bounds, row by row.
        unsafe {
            let r: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(s.add(i * ls)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let u = [
                _mm256_shuffle_ps::<0x44>(t0, t2),
                _mm256_shuffle_ps::<0xEE>(t0, t2),
                _mm256_shuffle_ps::<0x44>(t1, t3),
                _mm256_shuffle_ps::<0xEE>(t1, t3),
            ];
            for (q, &x) in u.iter().enumerate() {
                _mm_storeu_ps(d.add(q * ld), _mm256_castps256_ps128(x));
                _mm_storeu_ps(d.add((q + 4) * ld), _mm256_extractf128_ps::<1>(x));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path (contiguous lanes, contiguous reduction with and without AVX, general strides)
    /// against the definition `dst[q·R + r] = src(lane0 + r, p0 + q)`, zeros past the last lane.
    #[test]
    fn pack_panel_matches_definition_on_every_path() {
        let data: Vec<f32> = (0..4000).map(|x| x as f32).collect();
        #[cfg(target_arch = "x86_64")]
        let avx = std::arch::is_x86_feature_detected!("avx");
        #[cfg(not(target_arch = "x86_64"))]
        let avx = false;
        let (lanes, k) = (21, 19);
        // (lane_stride, k_stride) of a 21×19 operand: lanes contiguous, reduction contiguous, and
        // a strided view (every other element of a 42-wide buffer) that takes the general path.
        for (ls, ks) in [(1, lanes), (k, 1), (2 * k + 1, 2)] {
            let src = Source { data: &data, lanes, lane_stride: ls, k_stride: ks };
            for width in [4, 6, 8, 12, 16, 32] {
                for (lane0, p0, kc) in [(0, 0, k), (width.min(lanes - 1), 3, 16), (lanes - 1, 2, 9)] {
                    for use_avx in [false, avx] {
                        let mut dst = vec![f32::NAN; kc * width];
                        // SAFETY: `use_avx` only where the CPU has AVX (detected above).
                        unsafe { pack_panel(&mut dst, width, src, lane0, p0, kc, use_avx) };
                        for q in 0..kc {
                            for r in 0..width {
                                let want = if lane0 + r < lanes { data[(lane0 + r) * ls + (p0 + q) * ks] } else { 0.0 };
                                let got = dst[q * width + r];
                                assert_eq!(
                                    got, want,
                                    "strides ({ls}, {ks}) width {width} lane0 {lane0} p0 {p0} q {q} r {r}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
