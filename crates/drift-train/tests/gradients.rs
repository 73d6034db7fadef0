//! The gradients of the whole network: the f64 specification against central finite
//! differences, and the fast f32 path against the specification, in both loss modes.

use drift_data::rng::Stream;
use drift_kernels::Kernel;
use drift_train::reference::{loss_and_gradients, widen, RefLayer};
use drift_train::{Init, LossMode, Params, Workspace};

const SIZES: [usize; 4] = [6, 5, 4, 3];

/// Inputs in [0, 1) and labels from a fixed stream, so a failure replays.
fn batch(seed: u64, rows: usize) -> (Vec<f64>, Vec<u16>) {
    let mut rng = Stream::new(seed, "test/batch");
    let x = (0..rows * SIZES[0]).map(|_| rng.uniform_f64()).collect();
    let y = (0..rows).map(|_| rng.below(SIZES[3] as u64) as u16).collect();
    (x, y)
}

/// Random f64 parameters with non-zero biases (so that the bias gradients are exercised).
fn layers(seed: u64) -> Vec<RefLayer> {
    let mut layers = widen(&Params::init(&SIZES, seed, Init::GlorotUniform, None));
    let mut rng = Stream::new(seed, "test/bias");
    for l in &mut layers {
        l.b.iter_mut().for_each(|b| *b = rng.uniform_range(-0.3, 0.3));
    }
    layers
}

/// Parameter `i` of layer `l`: a weight (`kind` 0) or a bias (`kind` 1).
fn param(net: &mut [RefLayer], l: usize, kind: usize, i: usize) -> &mut f64 {
    if kind == 0 {
        &mut net[l].w[i]
    } else {
        &mut net[l].b[i]
    }
}

fn finite_difference_check(mode: LossMode, seed: u64) {
    let (x, y) = batch(seed, 7);
    let mut net = layers(seed);
    let (_, grads) = loss_and_gradients(&net, &x, &y, mode);
    let h = 1e-6;
    let mut checked = 0;
    for l in 0..net.len() {
        for kind in 0..2 {
            let count = if kind == 0 { net[l].w.len() } else { net[l].b.len() };
            for i in 0..count {
                let original = *param(&mut net, l, kind, i);
                *param(&mut net, l, kind, i) = original + h;
                let (plus, _) = loss_and_gradients(&net, &x, &y, mode);
                *param(&mut net, l, kind, i) = original - h;
                let (minus, _) = loss_and_gradients(&net, &x, &y, mode);
                *param(&mut net, l, kind, i) = original;
                let numeric = (plus - minus) / (2.0 * h);
                let analytic = if kind == 0 { grads[l].dw[i] } else { grads[l].db[i] };
                assert!(
                    (numeric - analytic).abs() <= 1e-6 + 1e-5 * analytic.abs(),
                    "{mode} seed {seed}: layer {} {} {i}: finite difference {numeric}, analytic {analytic}",
                    l + 1,
                    if kind == 0 { "weight" } else { "bias" }
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, net.iter().map(|l| l.w.len() + l.b.len()).sum::<usize>());
}

#[test]
fn reference_gradients_match_finite_differences_logits() {
    for seed in [1, 2, 3] {
        finite_difference_check(LossMode::Logits, seed);
    }
}

#[test]
fn reference_gradients_match_finite_differences_keras_clipped() {
    for seed in [1, 2, 3] {
        finite_difference_check(LossMode::KerasClipped, seed);
    }
}

/// A sample the network is confidently wrong about: its probability is clipped, so in
/// keras-clipped mode its gradient is exactly zero, while the logits mode still pushes it.
#[test]
fn clipped_sample_has_exactly_zero_gradient() {
    let mut net = layers(4);
    let (x, _) = batch(4, 1);
    // A huge output bias on class 0 makes p(class 2) underflow far below 1e-7.
    net[2].b = vec![60.0, 0.0, 0.0];
    let label = [2u16];
    let (loss, grads) = loss_and_gradients(&net, &x, &label, LossMode::KerasClipped);
    let plateau = -f64::from(drift_kernels::CLIP_EPSILON).ln();
    assert!((loss - plateau).abs() < 1e-12 && (plateau - 16.118).abs() < 1e-3, "clipped loss −ln ε, got {loss}");
    assert!(grads.iter().all(|g| g.dw.iter().chain(&g.db).all(|&v| v == 0.0)), "gradient must be exactly zero");
    // And finite differences agree: the loss is flat there.
    let (plus, _) = loss_and_gradients(
        &{
            let mut n = net.clone();
            n[0].w[0] += 1e-4;
            n
        },
        &x,
        &label,
        LossMode::KerasClipped,
    );
    assert_eq!(plus, loss);
    let (_, grads) = loss_and_gradients(&net, &x, &label, LossMode::Logits);
    assert!(grads[2].db[2] < -0.99, "the logits mode still pulls the right class up");

    // The fast path does the same with every kernel: zero gradient in keras-clipped, not in logits.
    let params = narrow(&net);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    for kernel in Kernel::available() {
        let mut ws = Workspace::new(&SIZES, 1, kernel);
        ws.set_batch(&x32, &label);
        let out = ws.gradients(&params, 1, LossMode::KerasClipped);
        assert_eq!(out.clipped, 1, "{kernel}");
        assert!(ws.dw().iter().chain(ws.db()).all(|g| g.iter().all(|&v| v == 0.0)), "{kernel}");
        ws.gradients(&params, 1, LossMode::Logits);
        assert!(ws.db()[2][2] < -0.99, "{kernel}");
    }
}

fn narrow(net: &[RefLayer]) -> Params {
    Params {
        layers: net
            .iter()
            .map(|l| drift_train::Layer {
                fan_in: l.fan_in,
                fan_out: l.fan_out,
                w: l.w.iter().map(|&v| v as f32).collect(),
                b: l.b.iter().map(|&v| v as f32).collect(),
            })
            .collect(),
    }
}

/// The f32 kernels against the f64 specification on the same (f32-representable) parameters.
#[test]
fn fast_path_matches_reference() {
    for (kernel, mode) in
        Kernel::available().into_iter().flat_map(|k| [(k, LossMode::KerasClipped), (k, LossMode::Logits)])
    {
        for (seed, rows) in [(5u64, 1usize), (6, 7), (7, 33)] {
            let params = narrow(&layers(seed));
            let net = widen(&params);
            let (x, y) = batch(seed, rows);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let x = x32.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
            let (loss, grads) = loss_and_gradients(&net, &x, &y, mode);
            let mut ws = Workspace::new(&SIZES, rows, kernel);
            ws.set_batch(&x32, &y);
            let out = ws.gradients(&params, rows, mode);
            let mean = out.loss_sum / rows as f64;
            assert!(
                (mean - loss).abs() <= 1e-5 * loss.abs().max(1.0),
                "{kernel} {mode} seed {seed}: loss {mean} vs {loss}"
            );
            for (l, g) in grads.iter().enumerate() {
                for (fast, slow) in ws.dw()[l].iter().zip(&g.dw).chain(ws.db()[l].iter().zip(&g.db)) {
                    assert!(
                        (f64::from(*fast) - slow).abs() <= 1e-6 + 1e-4 * slow.abs(),
                        "{kernel} {mode} seed {seed} layer {}: {fast} vs {slow}",
                        l + 1
                    );
                }
            }
        }
    }
}

/// The training step (weight updates fused into the weight-gradient products) is, bit for bit,
/// the gradients followed by a separate SGD pass: with every kernel, in both loss modes, for
/// batches that fit one reduction block and one (600 rows) that does not.
#[test]
fn train_step_equals_gradients_then_sgd() {
    let sizes = [40, 48, 36, 10];
    for (kernel, mode) in
        Kernel::available().into_iter().flat_map(|k| [(k, LossMode::KerasClipped), (k, LossMode::Logits)])
    {
        for (seed, rows) in [(11u64, 1usize), (12, 33), (13, 600)] {
            let params = Params::init(&sizes, seed, Init::GlorotUniform, None);
            let mut rng = Stream::new(seed, "test/step");
            let x: Vec<f32> = (0..rows * sizes[0]).map(|_| rng.uniform_f64() as f32).collect();
            let y: Vec<u16> = (0..rows).map(|_| rng.below(10) as u16).collect();
            let mut ws = Workspace::new(&sizes, rows, kernel);
            ws.set_batch(&x, &y);
            let mut separate = params.clone();
            let want = ws.gradients(&separate, rows, mode);
            ws.apply_sgd(&mut separate, 0.5);
            let mut fused = params.clone();
            let got = ws.train_step(&mut fused, rows, mode, 0.5);
            assert_eq!(got, want, "{kernel} {mode} rows {rows}: loss");
            for (l, (f, s)) in fused.layers.iter().zip(&separate.layers).enumerate() {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&f.w), bits(&s.w), "{kernel} {mode} rows {rows}: weights of layer {}", l + 1);
                assert_eq!(bits(&f.b), bits(&s.b), "{kernel} {mode} rows {rows}: biases of layer {}", l + 1);
            }
            assert_ne!(fused.layers[0].w, params.layers[0].w, "{kernel} {mode}: the step moved the weights");
        }
    }
}
