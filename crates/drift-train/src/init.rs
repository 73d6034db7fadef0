//! Initial weights: Keras's Glorot-uniform, He-normal and LeCun-normal, drawn from named streams
//! with nothing but the stream's bits and IEEE-exact operations (`+ − × ÷ √`) and drift's own
//! logarithm, so that the same seed gives the same bits on every machine.

use std::fmt;
use std::str::FromStr;

use drift_data::rng::Stream;
use drift_kernels::{ln_f64, ParseError};

/// The standard deviation of a standard normal truncated to `[−2, 2]` (Keras's constant): a
/// truncated normal with scale σ/this has standard deviation σ. Keras writes it
/// 0.87962566103423978, which is this float64.
pub const TRUNCATED_NORMAL_STD: f64 = 0.879_625_661_034_239_8;

/// Where the truncated normals are cut, in standard deviations of the untruncated normal.
const TRUNCATION: f64 = 2.0;

/// How a layer's weights are drawn (biases always start at zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Init {
    /// Uniform on `[−l, l)`, `l = √(6/(fan_in + fan_out))`.
    #[default]
    GlorotUniform,
    /// Keras `VarianceScaling(scale=2, mode="fan_in", distribution="truncated_normal")`.
    HeNormal,
    /// Keras `VarianceScaling(scale=1, mode="fan_in", distribution="truncated_normal")`.
    LecunNormal,
}

impl Init {
    pub const ALL: [Init; 3] = [Init::GlorotUniform, Init::HeNormal, Init::LecunNormal];

    pub fn as_str(self) -> &'static str {
        match self {
            Init::GlorotUniform => "glorot-uniform",
            Init::HeNormal => "he-normal",
            Init::LecunNormal => "lecun-normal",
        }
    }

    /// The scale σ of the normal before truncation, `√(scale/fan_in) / 0.8796…` (so that the
    /// truncated weights have standard deviation `√(scale/fan_in)`); `None` for Glorot-uniform.
    pub fn normal_scale(self, fan_in: usize) -> Option<f64> {
        let scale = match self {
            Init::GlorotUniform => return None,
            Init::HeNormal => 2.0,
            Init::LecunNormal => 1.0,
        };
        Some((scale / fan_in as f64).sqrt() / TRUNCATED_NORMAL_STD)
    }

    /// The largest `|w0|` this initialisation gives a layer: the Glorot limit
    /// `√(6/(fan_in + fan_out))`, or `2σ` for the truncated normals.
    pub fn bound(self, fan_in: usize, fan_out: usize) -> f64 {
        match self.normal_scale(fan_in) {
            None => (6.0 / (fan_in + fan_out) as f64).sqrt(),
            Some(sigma) => TRUNCATION * sigma,
        }
    }

    /// The `fan_out × fan_in` weights of one layer from `stream`, each drawn in f64 and rounded
    /// to f32 once. Truncated normals redraw any deviate with `|z| > 2` (as TensorFlow does).
    pub fn weights(self, fan_in: usize, fan_out: usize, stream: Stream) -> Vec<f32> {
        let n = fan_in * fan_out;
        match self.normal_scale(fan_in) {
            None => {
                let (limit, mut stream) = (self.bound(fan_in, fan_out), stream);
                (0..n).map(|_| stream.uniform_range(-limit, limit) as f32).collect()
            }
            Some(sigma) => {
                let mut normals = Normals::new(stream);
                (0..n)
                    .map(|_| loop {
                        let z = normals.next_normal();
                        if z.abs() <= TRUNCATION {
                            break (z * sigma) as f32;
                        }
                    })
                    .collect()
            }
        }
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Init {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Init::ALL.into_iter().find(|i| i.as_str() == s).ok_or_else(|| ParseError {
            what: "initialisation",
            got: s.into(),
            expected: "glorot-uniform, he-normal or lecun-normal",
        })
    }
}

/// Standard normal deviates by Marsaglia's polar method: `u, v` uniform on `[−1, 1)` (53-bit,
/// exact), `s = u² + v²` redrawn unless `0 < s < 1`, then `u·f` and `v·f` with
/// `f = √(−2·ln s / s)`, handed out in that order. Only `+ − × ÷ √` and [`ln_f64`]: the same
/// bits everywhere.
pub struct Normals {
    stream: Stream,
    spare: Option<f64>,
}

impl Normals {
    pub fn new(stream: Stream) -> Self {
        Normals { stream, spare: None }
    }

    pub fn next_normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.stream.uniform_f64() - 1.0;
            let v = 2.0 * self.stream.uniform_f64() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * ln_f64(s) / s).sqrt();
                self.spare = Some(v * f);
                return u * f;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_typed() {
        for init in Init::ALL {
            assert_eq!(init.to_string().parse::<Init>(), Ok(init));
        }
        let e = "xavier".parse::<Init>().unwrap_err().to_string();
        assert_eq!(e, "unknown initialisation 'xavier', expected glorot-uniform, he-normal or lecun-normal");
    }

    /// Known answer: the first deviates of a named stream, bit for bit. Every truncated-normal
    /// initialisation depends on them; a change here changes results under the same run ids.
    #[test]
    fn first_normal_deviates_are_pinned() {
        let mut normals = Normals::new(Stream::new(0, "init/layer=1"));
        let bits: Vec<u64> = (0..6).map(|_| normals.next_normal().to_bits()).collect();
        // −1.3993…, 0.2767…, 0.4658…, 0.0521…, −0.8828…, −1.5997…
        let want: [u64; 6] = [
            0xbff6_63b8_7c8d_bc6f,
            0x3fd1_b65a_93ba_d1a5,
            0x3fdd_d061_cd6c_3629,
            0x3faa_b34c_5718_ed90,
            0xbfec_406d_e7b9_2e91,
            0xbff9_989d_d4da_1706,
        ];
        assert_eq!(bits, want);
    }

    /// Mean 0, variance 1, and the share beyond 2 that a normal has (4.55 %).
    #[test]
    fn normal_moments() {
        let mut normals = Normals::new(Stream::new(4, "moments"));
        let n = 400_000;
        let z: Vec<f64> = (0..n).map(|_| normals.next_normal()).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let beyond = z.iter().filter(|x| x.abs() > 2.0).count() as f64 / n as f64;
        assert!(mean.abs() < 0.005 && (var - 1.0).abs() < 0.01, "mean {mean} var {var}");
        assert!((beyond - 0.0455).abs() < 0.002, "share beyond 2: {beyond}");
    }

    /// Each initialisation's weights: reproducible, within its bound, mean ≈ 0, and the standard
    /// deviation Keras promises (`√(scale/fan_in)` for the truncated normals, `l/√3` uniform).
    #[test]
    fn weights_have_the_promised_statistics() {
        let (fan_in, fan_out) = (300, 200);
        for init in Init::ALL {
            let w = init.weights(fan_in, fan_out, Stream::new(1, "init/layer=1"));
            assert_eq!(w, init.weights(fan_in, fan_out, Stream::new(1, "init/layer=1")), "{init}");
            assert_ne!(w, init.weights(fan_in, fan_out, Stream::new(2, "init/layer=1")), "{init}");
            let bound = init.bound(fan_in, fan_out) as f32;
            assert!(w.iter().all(|x| x.abs() <= bound), "{init}: a weight beyond {bound}");
            let n = w.len() as f64;
            let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
            let std = (w.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n).sqrt();
            let want = match init {
                Init::GlorotUniform => init.bound(fan_in, fan_out) / 3f64.sqrt(),
                Init::HeNormal => (2.0 / fan_in as f64).sqrt(),
                Init::LecunNormal => (1.0 / fan_in as f64).sqrt(),
            };
            assert!(mean.abs() < 0.01 * want, "{init}: mean {mean}");
            assert!((std / want - 1.0).abs() < 0.01, "{init}: std {std}, expected {want}");
            // The truncated normals reach close to their bound: the cut is really at 2σ.
            assert!(w.iter().any(|x| x.abs() > 0.99 * bound), "{init}: nothing near the bound {bound}");
        }
    }
}
