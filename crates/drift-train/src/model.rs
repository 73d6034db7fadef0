//! The parameters of the network: initial weights as [`Init`] says, zero biases, an optional
//! letter mask.

use drift_data::rng::Stream;

use crate::glyph::glyph_mask;
use crate::init::Init;

/// One dense layer `a_out = f(a_in · Wᵀ + b)`, `W` stored `fan_out × fan_in` row-major
/// (`[row = output unit, col = input unit]`, the layout of the snapshot tables).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub fan_in: usize,
    pub fan_out: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

impl Layer {
    /// Keras's Glorot-uniform limit `sqrt(6 / (fan_in + fan_out))`.
    pub fn glorot_limit(&self) -> f64 {
        Init::GlorotUniform.bound(self.fan_in, self.fan_out)
    }
}

/// All layers, input → output; `layers[0]` is layer 1 of the tables.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub layers: Vec<Layer>,
}

impl Params {
    /// Layer sizes `[input, width × depth, classes]`.
    pub fn sizes(input: usize, width: usize, depth: usize, classes: usize) -> Vec<usize> {
        let mut sizes = vec![input];
        sizes.extend(std::iter::repeat_n(width, depth));
        sizes.push(classes);
        sizes
    }

    /// Weights drawn by `init` from the stream `init/layer=L` of `seed`, biases zero; then, if
    /// `mask` is a letter, the hidden→hidden matrix (layer 2) is zeroed where the glyph has ink.
    pub fn init(sizes: &[usize], seed: u64, init: Init, mask: Option<char>) -> Params {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, pair)| {
                let (fan_in, fan_out) = (pair[0], pair[1]);
                let w = init.weights(fan_in, fan_out, Stream::new(seed, &format!("init/layer={}", i + 1)));
                Layer { fan_in, fan_out, w, b: vec![0.0; fan_out] }
            })
            .collect();
        let mut params = Params { layers };
        if let Some(letter) = mask {
            params.apply_mask(letter);
        }
        params
    }

    /// Zeroes the ink of `letter` in layer 2 (must be square, i.e. depth ≥ 2).
    fn apply_mask(&mut self, letter: char) {
        let layer = &mut self.layers[1];
        assert_eq!(layer.fan_in, layer.fan_out, "the mask needs a square hidden→hidden matrix");
        let mask = glyph_mask(letter, layer.fan_in).expect("mask letter validated by the config");
        for (w, ink) in layer.w.iter_mut().zip(mask) {
            if ink {
                *w = 0.0;
            }
        }
    }

    /// Number of parameters.
    pub fn count(&self) -> usize {
        self.layers.iter().map(|l| l.w.len() + l.b.len()).sum()
    }

    /// True when every weight and bias is finite.
    pub fn all_finite(&self) -> bool {
        self.layers.iter().all(|l| l.w.iter().chain(&l.b).all(|v| v.is_finite()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_init_is_reproducible_and_in_range() {
        let sizes = Params::sizes(784, 64, 2, 10);
        let a = Params::init(&sizes, 3, Init::GlorotUniform, None);
        assert_eq!(a, Params::init(&sizes, 3, Init::GlorotUniform, None));
        assert_ne!(a, Params::init(&sizes, 4, Init::GlorotUniform, None));
        for layer in &a.layers {
            let limit = layer.glorot_limit() as f32;
            assert!(layer.w.iter().all(|w| w.abs() <= limit));
            assert!(layer.b.iter().all(|&b| b == 0.0));
            let mean = layer.w.iter().map(|&w| f64::from(w)).sum::<f64>() / layer.w.len() as f64;
            assert!(mean.abs() < 0.05 * f64::from(limit), "mean {mean}");
        }
        assert_eq!(a.count(), 784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10);
    }

    #[test]
    fn mask_zeroes_only_layer_two() {
        let sizes = Params::sizes(20, 32, 2, 3);
        let plain = Params::init(&sizes, 0, Init::GlorotUniform, None);
        let masked = Params::init(&sizes, 0, Init::GlorotUniform, Some('a'));
        assert_eq!(plain.layers[0], masked.layers[0]);
        assert_eq!(plain.layers[2], masked.layers[2]);
        let zeros = masked.layers[1].w.iter().filter(|&&w| w == 0.0).count();
        let ink = glyph_mask('a', 32).unwrap().iter().filter(|&&v| v).count();
        assert_eq!(zeros, ink);
    }
}
