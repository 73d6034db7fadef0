//! Softmax cross-entropy, forward and backward in one pass, in the two modes a run can choose.

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// Keras's `epsilon()`: probabilities are clipped to `[ε, 1 − ε]` in the `keras-clipped` mode.
pub const CLIP_EPSILON: f32 = 1e-7;

/// How the loss is computed from the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossMode {
    /// Keras's categorical cross-entropy on softmax probabilities: `−ln(clip(p_y, ε, 1 − ε))`.
    /// Where `p_y` is clipped the gradient through the clip is zero, so a confidently wrong
    /// sample stops contributing; the loss of such a sample is `−ln ε ≈ 16.12`.
    KerasClipped,
    /// The numerically stable log-softmax: `logsumexp(z) − z_y`, gradient `p − onehot(y)`.
    Logits,
}

impl LossMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LossMode::KerasClipped => "keras-clipped",
            LossMode::Logits => "logits",
        }
    }
}

impl fmt::Display for LossMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LossMode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "keras-clipped" => Ok(LossMode::KerasClipped),
            "logits" => Ok(LossMode::Logits),
            other => Err(ParseError { what: "loss mode", got: other.into(), expected: "keras-clipped or logits" }),
        }
    }
}

/// The sum over a batch of per-sample losses and the number of correct predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    /// `Σ_i loss_i`, accumulated in f64 in sample order.
    pub loss_sum: f64,
    /// Samples whose arg-max logit (first on ties) is the label.
    pub correct: usize,
    /// Samples whose gradient was zeroed by the clip (always 0 in `logits` mode).
    pub clipped: usize,
}

/// Softmax cross-entropy of `m` samples with `n = logits.len() / m` classes.
///
/// Shapes: `logits: m×n`, `labels: m`, `dlogits: m×n` or empty. When `dlogits` is non-empty it
/// receives `∂(scale · Σ_i loss_i)/∂logits`: `scale · (p − onehot(y))` per row, or a zero row where
/// the clip is active (`keras-clipped` only). Use `scale = 1/B` for the batch-mean loss.
/// Panics if a label is `≥ n` or the shapes disagree.
///
/// Three passes over the batch, so that the exponentials (most of the work) run as one flat
/// vectorised loop: each row shifted by its maximum, [`exp`] over all of them, then per row the
/// sum over classes in ascending order, the loss and the gradient.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u16],
    mode: LossMode,
    scale: f32,
    dlogits: &mut [f32],
) -> BatchLoss {
    let m = labels.len();
    assert!(m > 0 && logits.len().is_multiple_of(m), "softmax_cross_entropy: {} logits for {m} labels", logits.len());
    let n = logits.len() / m;
    let want_grad = !dlogits.is_empty();
    assert!(!want_grad || dlogits.len() == logits.len(), "softmax_cross_entropy: gradient buffer size");
    let mut own = Vec::new();
    let e = if want_grad {
        dlogits
    } else {
        own.resize(logits.len(), 0.0);
        &mut own[..]
    };
    let mut out = BatchLoss::default();
    let mut maxima = Vec::with_capacity(m);
    for ((z, e), &label) in logits.chunks_exact(n).zip(e.chunks_exact_mut(n)).zip(labels) {
        let y = usize::from(label);
        assert!(y < n, "softmax_cross_entropy: label {y} with {n} classes");
        let (argmax, max) = z
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| if v > bv { (j, v) } else { (bi, bv) });
        out.correct += usize::from(argmax == y);
        maxima.push(max);
        e.iter_mut().zip(z).for_each(|(e, &v)| *e = v - max);
    }
    exp_in_place(e);
    let (lo, hi) = (CLIP_EPSILON, 1.0f32 - CLIP_EPSILON);
    for (((z, e), &label), max) in logits.chunks_exact(n).zip(e.chunks_exact_mut(n)).zip(labels).zip(maxima) {
        let y = usize::from(label);
        let sum = e.iter().fold(0.0f32, |s, &v| s + v);
        let inv = 1.0 / sum;
        let p_y = e[y] * inv;
        let (loss, live) = match mode {
            LossMode::KerasClipped => (-ln(p_y.clamp(lo, hi)), (lo..=hi).contains(&p_y) || p_y.is_nan()),
            LossMode::Logits => (ln(sum) - (z[y] - max), true),
        };
        out.loss_sum += f64::from(loss);
        out.clipped += usize::from(!live);
        if want_grad {
            if live {
                e.iter_mut().for_each(|g| *g = scale * (*g * inv));
                e[y] -= scale;
            } else {
                e.fill(0.0);
            }
        }
    }
    out
}

/// `x ← eˣ` for every element, in chunks the compiler vectorises (see [`exp`]).
fn exp_in_place(x: &mut [f32]) {
    const CHUNK: usize = 16;
    let mut chunks = x.chunks_exact_mut(CHUNK);
    for c in &mut chunks {
        let c: &mut [f32; CHUNK] = c.try_into().expect("a full chunk");
        for v in c.iter_mut() {
            *v = exp(*v);
        }
    }
    for v in chunks.into_remainder() {
        *v = exp(*v);
    }
}

/// `eˣ` for the shifted logits (`x ≤ 0`), within 1 ulp, from plain multiplies and adds (Cephes'
/// `expf`: `x = k·ln 2 + r`, a degree-7 polynomial in `r`, times `2ᵏ`). Our own rather than the
/// C library's, so the bits are the same on every machine and library version and the loop
/// vectorises. Results below the normal range (`x < −87.3`) are 0; NaN stays NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LO: f32 = -87.33;
    const HI: f32 = 88.72;
    // Round to nearest by adding and removing 1.5·2²³ (no call to `roundf`, which does not vectorise).
    const ROUND: f32 = 12_582_912.0;
    let c = x.clamp(LO, HI); // NaN stays NaN
    let k = (c * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (c - k * 0.693_359_4) - k * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    // 2ᵏ from its exponent bits; k ∈ [−126, 128], so the bits are a normal float (or ∞ at 128).
    let two_k = f32::from_bits((((k as i32) + 127) as u32) << 23);
    let v = y * two_k;
    if x < LO {
        0.0
    } else {
        v
    }
}

/// `ln x` for the loss: [`ln_f64`] of `x`, rounded to `f32`. The error before rounding is a
/// few f64 ulps, so this is the correctly rounded logarithm but for inputs within about 1e-15
/// of a rounding tie. Ours for the reason [`exp`] is: the C library's `logf` differs between
/// libraries and versions, and the loss is a recorded result.
pub(crate) fn ln(x: f32) -> f32 {
    ln_f64(f64::from(x)) as f32
}

/// `ln x` in f64 from `+ − × ÷` only: `x = m·2ᵉ` with `m ∈ (√½, √2]`, then
/// `ln m = 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + …)` with `s = (m − 1)/(m + 1)`, `|s| ≤ 0.172`, to
/// the `s²²/23` term (the next is below 1e-19 relative). `ln 0 = −∞`, `ln ∞ = ∞`, NaN for
/// negative or NaN `x`. `x` must not be an f64 subnormal (no `f32` is one once widened).
/// Public because drift's normal deviates (the truncated-normal initialisations) go through it
/// too: one logarithm, the same bits on every machine.
pub fn ln_f64(x: f64) -> f64 {
    /// `1/(2k + 1)` for `k < 12`: the series' coefficients, rounded once, at compile time.
    const ATANH_SERIES: [f64; 12] = {
        let mut c = [0.0; 12];
        let mut k = 0;
        while k < 12 {
            c[k] = 1.0 / (2 * k + 1) as f64;
            k += 1;
        }
        c
    };
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return x;
    }
    debug_assert!(x.is_normal(), "ln_f64: subnormal {x:e}");
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000); // [1, 2)
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let p = ATANH_SERIES.iter().rev().fold(0.0, |p, &c| p * z + c);
    f64::from(e) * std::f64::consts::LN_2 + 2.0 * s * p
}

#[cfg(test)]
mod tests {
    use super::{exp, ln, ln_f64, LossMode, ParseError};

    #[test]
    fn loss_modes_parse_by_name_and_unknown_names_are_typed() {
        for mode in [LossMode::KerasClipped, LossMode::Logits] {
            assert_eq!(mode.as_str().parse::<LossMode>(), Ok(mode));
        }
        let e = "mse".parse::<LossMode>().unwrap_err();
        assert_eq!(e, ParseError { what: "loss mode", got: "mse".into(), expected: "keras-clipped or logits" });
        assert_eq!(e.to_string(), "unknown loss mode 'mse', expected keras-clipped or logits");
    }

    /// Within 1 ulp of the f64 exponential over the range of shifted logits, exact at 0,
    /// 0 below the normal range, NaN through.
    #[test]
    fn exp_is_accurate_and_total() {
        let mut worst = 0.0f64;
        for i in 0..=2_000_000 {
            let x = -87.3 * f64::from(i) / 2e6;
            let x = x as f32;
            let got = f64::from(exp(x));
            let want = f64::from(x).exp();
            let ulp = f64::from(f32::EPSILON) * want;
            worst = worst.max((got - want).abs() / ulp);
        }
        println!("exp: worst error {worst:.2} ulp");
        assert!(worst <= 1.0, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert!((exp(1.0) - std::f32::consts::E).abs() <= f32::EPSILON * 3.0);
    }

    /// Our `ln` against the platform's f64 logarithm: within 2 f64 ulps everywhere we sample,
    /// and so, rounded to f32, equal to the correctly rounded value at every sampled f32
    /// (every 4099th bit pattern of the positive floats, subnormals included).
    #[test]
    fn ln_is_accurate_and_total() {
        let (mut worst, mut samples) = (0.0f64, 0);
        for bits in (1u32..0x7f80_0000).step_by(4099) {
            let x = f32::from_bits(bits);
            let want = f64::from(x).ln();
            let got = ln_f64(f64::from(x));
            let ulp = f64::EPSILON * want.abs().max(f64::MIN_POSITIVE);
            worst = worst.max((got - want).abs() / ulp);
            assert_eq!(ln(x), want as f32, "ln({x:e})");
            samples += 1;
        }
        println!("ln: worst error {worst:.2} f64 ulp over {samples} floats");
        assert!(worst <= 2.0, "worst error {worst} f64 ulp");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f32::NAN).is_nan());
    }

    /// Over arbitrary f64 inputs in (0, 1) (the range the polar method feeds it) and above,
    /// not only widened f32s: within 2 f64 ulps of the platform's logarithm.
    #[test]
    fn ln_f64_is_accurate_between_the_f32s() {
        let mut worst = 0.0f64;
        let mut bits: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..1_000_000 {
            // SplitMix-style scramble: uniform mantissas, exponents from 2^-104 up to 2^40.
            bits = bits.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(0xbf58_476d_1ce4_e5b9);
            let exponent = 1023 - 104 + (bits >> 56) % 145;
            let x = f64::from_bits((exponent << 52) | (bits & 0x000f_ffff_ffff_ffff));
            let want = x.ln();
            let ulp = f64::EPSILON * want.abs().max(f64::MIN_POSITIVE);
            worst = worst.max((ln_f64(x) - want).abs() / ulp);
        }
        println!("ln_f64: worst error {worst:.2} f64 ulp");
        assert!(worst <= 2.0, "worst error {worst} f64 ulp");
    }

    /// Known answers of the f64 logarithm itself at a few bit patterns (the normal deviates of
    /// the initialisations depend on every bit of it).
    #[test]
    fn ln_f64_bits_are_pinned() {
        let points: [(u64, u64); 4] = [
            (0x3fe0_0000_0000_0000, 0xbfe6_2e42_fefa_39ef), // 0.5
            (0x3fb9_9999_9999_999a, 0xc002_6bb1_bbb5_5515), // 0.1
            (0x3fef_ffff_ffff_ffff, 0xbca0_0000_0000_0000), // 1 − 2⁻⁵³
            (0x3970_0000_0000_0000, 0xc052_0596_6f2b_4f12), // 2⁻¹⁰⁴, the smallest s the polar method can draw
        ];
        let got: Vec<(u64, u64)> = points.iter().map(|&(x, _)| (x, ln_f64(f64::from_bits(x)).to_bits())).collect();
        assert_eq!(got, points);
    }

    /// Known answers: the bit patterns of `exp` and `ln` at chosen points. These are results
    /// (every logit goes through `exp`, every recorded loss through `ln`): a change here changes
    /// results under the same run ids, so it must come with new golden values and a new format
    /// version (`drift_train::FORMAT_VERSION`).
    #[test]
    // −2.302585 is a point of its own, one ulp from −ln 10 in f32: not the constant.
    #[allow(clippy::approx_constant)]
    fn exp_and_ln_bits_are_pinned() {
        let exp_points: [(f32, u32); 8] = [
            (0.0, 0x3f800000),
            (-1e-7, 0x3f7ffffe),
            (-0.5, 0x3f1b4598),
            (-1.0, 0x3ebc5ab2),
            (-2.302_585, 0x3dccccd0),
            (-10.0, 0x383e6bce),
            (-50.5, 0x1b0d6cfa),
            (-87.0, 0x00b33687),
        ];
        let ln_points: [(f32, u32); 8] = [
            (1e-7, 0xc180f1dc),
            (0.1, 0xc0135d8e),
            (0.5, 0xbf317218),
            (0.999_999_9, 0xb4000001),
            (1.5, 0x3ecf991f),
            (2.0, 0x3f317218),
            (10.0, 0x40135d8e),
            (3.4e38, 0x42b171ab),
        ];
        let got = |f: fn(f32) -> f32, points: &[(f32, u32)]| -> Vec<(f32, u32)> {
            points.iter().map(|&(x, _)| (x, f(x).to_bits())).collect()
        };
        assert_eq!(got(exp, &exp_points), exp_points, "exp");
        assert_eq!(got(ln, &ln_points), ln_points, "ln");
    }
}
