//! Softmax cross-entropy, forward and backward in one pass, in the two modes a run can choose.

use std::fmt;
use std::str::FromStr;

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
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keras-clipped" => Ok(LossMode::KerasClipped),
            "logits" => Ok(LossMode::Logits),
            other => Err(format!("unknown loss mode '{other}', expected keras-clipped or logits")),
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
    let (lo, hi) = (CLIP_EPSILON, 1.0f32 - CLIP_EPSILON);
    let mut out = BatchLoss::default();
    let mut probs = vec![0.0f32; n];
    for (i, (z, &label)) in logits.chunks_exact(n).zip(labels).enumerate() {
        let y = usize::from(label);
        assert!(y < n, "softmax_cross_entropy: label {y} with {n} classes");
        let (argmax, max) = z
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| if v > bv { (j, v) } else { (bi, bv) });
        if argmax == y {
            out.correct += 1;
        }
        let mut sum = 0.0f32;
        for (p, &v) in probs.iter_mut().zip(z) {
            *p = (v - max).exp();
            sum += *p;
        }
        let inv = 1.0 / sum;
        for p in probs.iter_mut() {
            *p *= inv;
        }
        let (loss, live) = match mode {
            LossMode::KerasClipped => {
                let p = probs[y];
                let clipped = !(lo..=hi).contains(&p);
                (-(p.clamp(lo, hi)).ln(), !clipped || p.is_nan())
            }
            LossMode::Logits => (sum.ln() - (z[y] - max), true),
        };
        out.loss_sum += f64::from(loss);
        if !live {
            out.clipped += 1;
        }
        if want_grad {
            let g = &mut dlogits[i * n..(i + 1) * n];
            if live {
                for (gj, &p) in g.iter_mut().zip(&probs) {
                    *gj = scale * p;
                }
                g[y] -= scale;
            } else {
                g.fill(0.0);
            }
        }
    }
    out
}
