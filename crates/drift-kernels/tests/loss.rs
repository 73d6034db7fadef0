//! Softmax cross-entropy in both loss modes against an f64 reference, clipping included.

mod common;
use common::{assert_close, data};

use drift_kernels::{softmax_cross_entropy, LossMode, CLIP_EPSILON};

/// f64 reference of one sample: (loss, gradient, clipped?).
fn xent_reference(z: &[f32], y: usize, mode: LossMode) -> (f64, Vec<f64>, bool) {
    let z: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
    let p: Vec<f64> = z.iter().map(|v| (v - max).exp() / sum).collect();
    let mut g: Vec<f64> = p.clone();
    g[y] -= 1.0;
    match mode {
        LossMode::Logits => (sum.ln() - (z[y] - max), g, false),
        LossMode::KerasClipped => {
            let eps = f64::from(CLIP_EPSILON);
            if p[y] < eps || p[y] > 1.0 - eps {
                (-(p[y].clamp(eps, 1.0 - eps)).ln(), vec![0.0; z.len()], true)
            } else {
                (-p[y].ln(), g, false)
            }
        }
    }
}

#[test]
fn softmax_cross_entropy_matches_reference_in_both_modes() {
    let n = 10;
    let mut logits = data(6 * n, 42).iter().map(|v| v * 4.0).collect::<Vec<_>>();
    logits[4 * n + 3] = 60.0; // sample 4: confidently class 3, labelled 0 → clipped low
    logits[5 * n + 7] = 60.0; // sample 5: confidently class 7, labelled 7 → clipped high
    let labels = [0u16, 1, 2, 9, 0, 7];
    for mode in [LossMode::KerasClipped, LossMode::Logits] {
        let mut grad = vec![f32::NAN; logits.len()];
        let scale = 1.0 / labels.len() as f32;
        let out = softmax_cross_entropy(&logits, &labels, mode, scale, &mut grad);
        let mut want_loss = 0.0;
        let mut clipped = 0;
        for (i, &y) in labels.iter().enumerate() {
            let (l, g, c) = xent_reference(&logits[i * n..(i + 1) * n], y as usize, mode);
            want_loss += l;
            clipped += usize::from(c);
            let g: Vec<f64> = g.iter().map(|v| v * f64::from(scale)).collect();
            assert_close(&grad[i * n..(i + 1) * n], &g, 4, &format!("{mode} gradient of sample {i}"));
            if c {
                assert!(grad[i * n..(i + 1) * n].iter().all(|&v| v == 0.0), "{mode}: clipped sample {i} has gradient");
            }
        }
        assert!(
            (out.loss_sum - want_loss).abs() < 1e-4 * want_loss.abs().max(1.0),
            "{mode}: loss {} vs {want_loss}",
            out.loss_sum
        );
        assert_eq!(out.clipped, clipped, "{mode}: clipped count");
        assert_eq!(
            out.correct,
            1 + labels
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 4)
                .filter(|&(i, &y)| {
                    let row = &logits[i * n..(i + 1) * n];
                    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (j, &v)| if v > b.1 { (j, v) } else { b }).0
                        == y as usize
                })
                .count()
        );
    }
    // The clipped-low sample's loss is −ln ε, the plateau of diverged Keras runs.
    let mut g = vec![0.0; n];
    let out = softmax_cross_entropy(&logits[4 * n..5 * n], &[0], LossMode::KerasClipped, 1.0, &mut g);
    assert!((out.loss_sum - 16.118).abs() < 1e-3, "plateau loss {}", out.loss_sum);
}
