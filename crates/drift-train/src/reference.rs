//! The specification: the network's loss and gradients in plain f64 loops, one sample at a time.
//! Slow and obviously right; the fast f32 path is tested against it, and it is tested against
//! finite differences.

use drift_kernels::{LossMode, CLIP_EPSILON};

use crate::model::Params;

/// One layer in f64: `w` is `fan_out × fan_in` row-major, like [`crate::Layer`].
#[derive(Clone, Debug, PartialEq)]
pub struct RefLayer {
    pub fan_in: usize,
    pub fan_out: usize,
    pub w: Vec<f64>,
    pub b: Vec<f64>,
}

/// Widens f32 parameters to f64 (exactly).
pub fn widen(params: &Params) -> Vec<RefLayer> {
    params
        .layers
        .iter()
        .map(|l| RefLayer {
            fan_in: l.fan_in,
            fan_out: l.fan_out,
            w: l.w.iter().map(|&v| f64::from(v)).collect(),
            b: l.b.iter().map(|&v| f64::from(v)).collect(),
        })
        .collect()
}

/// Gradients of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct RefGrad {
    pub dw: Vec<f64>,
    pub db: Vec<f64>,
}

/// Mean loss over the batch and its gradients. `x` is `labels.len() × fan_in` row-major.
/// Keras-clipped: `−ln clip(p_y, ε, 1−ε)` with a zero gradient where the clip is active.
#[allow(clippy::needless_range_loop)] // index loops mirror the formulas
pub fn loss_and_gradients(layers: &[RefLayer], x: &[f64], labels: &[u16], mode: LossMode) -> (f64, Vec<RefGrad>) {
    let batch = labels.len();
    let mut grads: Vec<RefGrad> =
        layers.iter().map(|l| RefGrad { dw: vec![0.0; l.w.len()], db: vec![0.0; l.b.len()] }).collect();
    let mut total = 0.0;
    for (s, &label) in labels.iter().enumerate() {
        let input = &x[s * layers[0].fan_in..(s + 1) * layers[0].fan_in];
        // Forward, keeping every layer's output.
        let mut acts = vec![input.to_vec()];
        for (l, layer) in layers.iter().enumerate() {
            let a = &acts[l];
            let z: Vec<f64> = (0..layer.fan_out)
                .map(|o| layer.b[o] + (0..layer.fan_in).map(|i| layer.w[o * layer.fan_in + i] * a[i]).sum::<f64>())
                .collect();
            let hidden = l + 1 < layers.len();
            acts.push(if hidden { z.iter().map(|&v| v.max(0.0)).collect() } else { z });
        }
        let logits = acts.last().expect("at least one layer");
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = logits.iter().map(|z| (z - max).exp()).sum();
        let p: Vec<f64> = logits.iter().map(|z| (z - max).exp() / sum).collect();
        let y = usize::from(label);
        let eps = f64::from(CLIP_EPSILON);
        let (loss, live) = match mode {
            LossMode::Logits => (sum.ln() - (logits[y] - max), true),
            LossMode::KerasClipped => (-(p[y].clamp(eps, 1.0 - eps)).ln(), (eps..=1.0 - eps).contains(&p[y])),
        };
        total += loss;
        if !live {
            continue;
        }
        // Backward: dZ of the output layer is (p − onehot)/batch.
        let mut dz: Vec<f64> =
            p.iter().enumerate().map(|(j, &pj)| (pj - f64::from(u8::from(j == y))) / batch as f64).collect();
        for l in (0..layers.len()).rev() {
            let layer = &layers[l];
            let a = &acts[l];
            for o in 0..layer.fan_out {
                grads[l].db[o] += dz[o];
                for i in 0..layer.fan_in {
                    grads[l].dw[o * layer.fan_in + i] += dz[o] * a[i];
                }
            }
            if l > 0 {
                dz = (0..layer.fan_in)
                    .map(|i| {
                        let da: f64 = (0..layer.fan_out).map(|o| dz[o] * layer.w[o * layer.fan_in + i]).sum();
                        if a[i] > 0.0 {
                            da
                        } else {
                            0.0
                        }
                    })
                    .collect();
            }
        }
    }
    (total / batch as f64, grads)
}
