//! A seeded, MNIST-shaped synthetic data set for machines without Fashion-MNIST, and for tests.
//!
//! It has to be learnable yet not trivial, and it has to overfit like the real data sets do, or
//! the regimes the study is about never appear. Plain Gaussian blobs are too easy: every net
//! separates them and none overfits. So each class is drawn with strokes:
//!
//! - **Prototypes.** Each class has a skeleton of a few random strokes (straight or curved, thick,
//!   anti-aliased) on the `side × side` grid; its [`PROTOTYPES`] prototypes are the skeleton with
//!   jittered end points and widths, like several writers' versions of one glyph. They come from
//!   the stream `synthetic/prototypes`.
//! - **Samples.** A sample is a prototype of its class, shifted by up to ±[`SHIFT`] pixels and
//!   scaled in intensity, blended with a shifted prototype of another class at a random weight
//!   (so classes overlap), plus pixel noise, clamped to `0..=255`.
//! - **Label noise.** With probability `label_noise` the label is then replaced by a uniformly
//!   random class, in both splits: the noise is part of the distribution, and memorising it is
//!   what makes a net overfit.
//!
//! - **Shape of the set.** The number of classes, the side, the split sizes, the background
//!   (`white`: every pixel `p` becomes `255 − p`, dark strokes on white like HASYv2's symbols)
//!   and a class imbalance (class `k` drawn with probability ∝ `1 / (1 + (R − 1)·k/(C − 1))`, so
//!   the first class is `R` times as frequent as the last) are parameters, so that a
//!   HASYv2-shaped set (1024 inputs, 369 unequal classes) can stand in for the real one.
//!
//! Sample `i` of split `s` is drawn from its own stream `synthetic/{s}/{i}`, so the samples are
//! generated in parallel and the data are identical for any thread count.

use rayon::prelude::*;

use crate::rng::Stream;
use crate::{DataError, Dataset, ParseError, Split};

/// Name and version of the generator; part of [`SyntheticConfig::describe`], so that a change
/// to the generator changes the key of every run that used it.
pub const GENERATOR: &str = "strokes-v1";

/// Prototypes per class.
pub const PROTOTYPES: usize = 4;

/// Largest shift of a sample against its prototype, in pixels, each direction.
pub const SHIFT: usize = 2;

/// Strokes per class skeleton.
const STROKES: usize = 3;
/// How far a prototype moves a skeleton's points, as a fraction of the side.
const JITTER: f64 = 0.1;
/// Stroke width range, as a fraction of the side.
const WIDTH: (f64, f64) = (0.06, 0.11);
/// Intensity scale of the sample's own prototype.
const SCALE: (f64, f64) = (0.6, 1.0);
/// Weight range of the other class's prototype blended in.
const BLEND: (f64, f64) = (0.0, 0.5);
/// Pixel noise: `NOISE * (b1 + b2 - 255)` for two random bytes, triangular on ±`255 * NOISE`.
const NOISE: f32 = 0.5;

/// Sizes and noise of the synthetic data set.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Training samples.
    pub train: usize,
    /// Test samples.
    pub test: usize,
    pub classes: usize,
    /// Images are `side × side` pixels.
    pub side: usize,
    /// Probability that a label is replaced by a uniformly random class.
    pub label_noise: f64,
    /// Colour of the background: black (strokes bright, as in MNIST) or white.
    pub background: Background,
    /// How many times more frequent the first class is than the last (1: balanced).
    pub imbalance: f64,
}

/// The background of synthetic images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Background {
    #[default]
    Black,
    /// Dark strokes on white: each pixel `p` of the black-background image becomes `255 − p`.
    White,
}

impl Background {
    pub fn as_str(self) -> &'static str {
        match self {
            Background::Black => "black",
            Background::White => "white",
        }
    }
}

impl std::str::FromStr for Background {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "black" => Ok(Background::Black),
            "white" => Ok(Background::White),
            _ => Err(ParseError { what: "background", got: s.into(), expected: "black or white" }),
        }
    }
}

impl Default for SyntheticConfig {
    /// MNIST's shape: 60000 + 10000 images of 28 × 28 in 10 classes, 10% label noise.
    fn default() -> Self {
        SyntheticConfig {
            train: 60_000,
            test: 10_000,
            classes: 10,
            side: 28,
            label_noise: 0.1,
            background: Background::Black,
            imbalance: 1.0,
        }
    }
}

impl SyntheticConfig {
    /// Checks the ranges: at least one sample per split, 2 to 1000 classes, sides of 4 to 256
    /// pixels, a label-noise probability in `[0, 1]`.
    pub fn validate(&self) -> Result<(), DataError> {
        let fail = |reason: String| Err(DataError::Unavailable { dataset: "synthetic".into(), reason });
        if self.train == 0 || self.test == 0 {
            return fail(format!("needs at least one sample per split, got train={} test={}", self.train, self.test));
        }
        if !(2..=1000).contains(&self.classes) {
            return fail(format!("classes={} is outside 2..=1000", self.classes));
        }
        if !(4..=256).contains(&self.side) {
            return fail(format!("side={} is outside 4..=256", self.side));
        }
        if !(0.0..=1.0).contains(&self.label_noise) {
            return fail(format!("label_noise={} is outside [0, 1]", self.label_noise));
        }
        if !(1.0..=1e6).contains(&self.imbalance) {
            return fail(format!("imbalance={} is outside [1, 1e6] (1: balanced classes)", self.imbalance));
        }
        let dim = self.side * self.side;
        if self.train.checked_mul(dim).is_none() || self.test.checked_mul(dim).is_none() {
            return fail(format!("{} + {} images of {dim} pixels do not fit in memory", self.train, self.test));
        }
        Ok(())
    }

    /// The generator and every parameter: with this string the data are fully determined.
    pub fn describe(&self, seed: u64) -> String {
        format!(
            "synthetic {GENERATOR}: seed={seed} train={} test={} classes={} side={} label_noise={} background={} imbalance={}",
            self.train,
            self.test,
            self.classes,
            self.side,
            self.label_noise,
            self.background.as_str(),
            self.imbalance
        )
    }

    /// Cumulative class weights `1 / (1 + (R − 1)·k/(C − 1))` for `k = 0..C`; `None` when balanced
    /// (classes are then drawn with [`Stream::below`], as before imbalance existed). Only `+ × /`:
    /// the same bits on every machine.
    fn class_cdf(&self) -> Option<Vec<f64>> {
        if self.imbalance == 1.0 {
            return None;
        }
        let last = (self.classes - 1) as f64;
        let mut total = 0.0;
        Some(
            (0..self.classes)
                .map(|k| {
                    total += 1.0 / (1.0 + (self.imbalance - 1.0) * k as f64 / last);
                    total
                })
                .collect(),
        )
    }
}

/// Generates the data set of `config` from `seed`.
pub fn generate(seed: u64, config: &SyntheticConfig) -> Result<Dataset, DataError> {
    config.validate()?;
    let protos = prototypes(seed, config);
    let train = split(seed, "train", config.train, config, &protos);
    if let Some(reason) = crate::single_class(train.labels()) {
        let reason = format!("{reason}; draw more training samples (synthetic-train)");
        return Err(DataError::Unavailable { dataset: "synthetic".into(), reason });
    }
    let test = split(seed, "test", config.test, config, &protos);
    Ok(Dataset {
        name: "synthetic".into(),
        train,
        test,
        classes: config.classes,
        input_dim: config.side * config.side,
        source: config.describe(seed),
        warnings: Vec::new(),
    })
}

/// A point in pixel coordinates.
type Point = (f64, f64);

/// A thick polyline.
struct Stroke {
    points: Vec<Point>,
    width: f64,
}

/// Distance from `p` to the segment `a`–`b`.
fn segment_distance(p: Point, a: Point, b: Point) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (qx, qy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (qx * qx + qy * qy).sqrt()
}

/// Draws strokes into `out` (row-major, `side × side`, values in `[0, 1]`): the coverage of
/// each pixel centre, with a one-pixel linear ramp at the edge for anti-aliasing.
fn render(strokes: &[Stroke], side: usize, out: &mut [f32]) {
    for (k, px) in out.iter_mut().enumerate() {
        let p = ((k % side) as f64 + 0.5, (k / side) as f64 + 0.5);
        let mut v = 0.0f64;
        for s in strokes {
            for pair in s.points.windows(2) {
                let d = segment_distance(p, pair[0], pair[1]);
                v = v.max((s.width / 2.0 + 0.5 - d).clamp(0.0, 1.0));
            }
        }
        *px = v as f32;
    }
}

/// The skeleton stroke's control points: a straight segment (2 points) or a quadratic curve.
fn skeleton_stroke(rng: &mut Stream, side: f64) -> Vec<Point> {
    let mut point = || (rng.uniform_range(0.2, 0.8) * side, rng.uniform_range(0.2, 0.8) * side);
    let (a, b) = (point(), point());
    let c = point();
    let curved = rng.below(2) == 1;
    if curved {
        vec![a, c, b]
    } else {
        vec![a, b]
    }
}

/// A polyline through a quadratic Bézier curve with these control points (or the segment itself).
fn trace(ctrl: &[Point]) -> Vec<Point> {
    if ctrl.len() == 2 {
        return ctrl.to_vec();
    }
    let (a, c, b) = (ctrl[0], ctrl[1], ctrl[2]);
    (0..=8)
        .map(|i| {
            let t = f64::from(i) / 8.0;
            let (u, w) = ((1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t));
            (u * a.0 + w * c.0 + t * t * b.0, u * a.1 + w * c.1 + t * t * b.1)
        })
        .collect()
}

/// All prototypes, class-major: `classes × PROTOTYPES` images of `side²` values in `[0, 1]`.
fn prototypes(seed: u64, config: &SyntheticConfig) -> Vec<f32> {
    let side = config.side as f64;
    let dim = config.side * config.side;
    let mut rng = Stream::new(seed, "synthetic/prototypes");
    let mut out = vec![0f32; config.classes * PROTOTYPES * dim];
    let mut images = out.chunks_exact_mut(dim);
    for _ in 0..config.classes {
        let skeleton: Vec<Vec<Point>> = (0..STROKES).map(|_| skeleton_stroke(&mut rng, side)).collect();
        for _ in 0..PROTOTYPES {
            let strokes: Vec<Stroke> = skeleton
                .iter()
                .map(|ctrl| {
                    let moved: Vec<Point> = ctrl
                        .iter()
                        .map(|&(x, y)| {
                            let j = JITTER * side;
                            (x + rng.uniform_range(-j, j), y + rng.uniform_range(-j, j))
                        })
                        .collect();
                    Stroke { points: trace(&moved), width: rng.uniform_range(WIDTH.0, WIDTH.1) * side }
                })
                .collect();
            render(&strokes, config.side, images.next().expect("one image per prototype"));
        }
    }
    out
}

/// A random shift in `-SHIFT..=SHIFT` pixels.
fn shift(rng: &mut Stream) -> isize {
    rng.below(2 * SHIFT as u64 + 1) as isize - SHIFT as isize
}

/// Draws one sample into `img` from its own stream and returns its label.
fn sample(rng: &mut Stream, config: &SyntheticConfig, cdf: Option<&[f64]>, protos: &[f32], img: &mut [u8]) -> u16 {
    let (classes, side) = (config.classes, config.side);
    let dim = side * side;
    let proto = |class: usize, k: u64| &protos[(class * PROTOTYPES + k as usize) * dim..][..dim];
    let class = match cdf {
        None => rng.below(classes as u64) as usize,
        Some(cdf) => {
            let u = rng.uniform_f64() * cdf[classes - 1];
            cdf.partition_point(|&c| c <= u).min(classes - 1)
        }
    };
    let own = proto(class, rng.below(PROTOTYPES as u64));
    let (dx, dy) = (shift(rng), shift(rng));
    let scale = rng.uniform_range(SCALE.0, SCALE.1) as f32 * 255.0;
    let other_class = (class + 1 + rng.below(classes as u64 - 1) as usize) % classes;
    let other = proto(other_class, rng.below(PROTOTYPES as u64));
    let (ox, oy) = (shift(rng), shift(rng));
    let weight = rng.uniform_range(BLEND.0, BLEND.1) as f32 * 255.0;

    // The pixel (x, y) of a prototype shifted by (dx, dy); zero outside the grid.
    let at = |image: &[f32], x: usize, y: usize, dx: isize, dy: isize| -> f32 {
        let (sx, sy) = (x as isize - dx, y as isize - dy);
        if sx < 0 || sy < 0 || sx >= side as isize || sy >= side as isize {
            0.0
        } else {
            image[sy as usize * side + sx as usize]
        }
    };
    let mut bits = 0u64;
    for (k, px) in img.iter_mut().enumerate() {
        if k % 4 == 0 {
            bits = rng.next_u64();
        }
        let noise_bytes = (bits >> (16 * (k % 4))) as u16;
        let noise = NOISE * (f32::from(noise_bytes as u8) + f32::from((noise_bytes >> 8) as u8) - 255.0);
        let (x, y) = (k % side, k / side);
        let v = scale * at(own, x, y, dx, dy) + weight * at(other, x, y, ox, oy) + noise;
        let v = v.round().clamp(0.0, 255.0) as u8;
        *px = match config.background {
            Background::Black => v,
            Background::White => 255 - v,
        };
    }
    let label = if rng.uniform_f64() < config.label_noise { rng.below(classes as u64) as usize } else { class };
    label as u16
}

/// `n` samples of split `name`, each from its own stream, in parallel.
fn split(seed: u64, name: &str, n: usize, config: &SyntheticConfig, protos: &[f32]) -> Split {
    let dim = config.side * config.side;
    let mut pixels = vec![0u8; n * dim];
    let mut labels = vec![0u16; n];
    let cdf = config.class_cdf();
    pixels.par_chunks_mut(dim).zip(labels.par_iter_mut()).enumerate().for_each(|(i, (img, label))| {
        let mut rng = Stream::new(seed, &format!("synthetic/{name}/{i}"));
        *label = sample(&mut rng, config, cdf.as_deref(), protos, img);
    });
    Split::owned(pixels, labels, dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticConfig {
        SyntheticConfig { train: 3000, test: 500, ..SyntheticConfig::default() }
    }

    fn bytes(split: &Split) -> Vec<u8> {
        (0..split.len()).flat_map(|i| split.image(i).to_vec()).collect()
    }

    #[test]
    fn deterministic_per_seed() {
        let a = generate(1, &small()).unwrap();
        let b = generate(1, &small()).unwrap();
        let c = generate(2, &small()).unwrap();
        assert_eq!(bytes(&a.train), bytes(&b.train));
        assert_eq!(a.train.labels(), b.train.labels());
        assert_eq!(bytes(&a.test), bytes(&b.test));
        assert_ne!(bytes(&a.train), bytes(&c.train));
        assert_ne!(a.source, c.source);
    }

    #[test]
    fn sizes_follow_the_config_and_values_are_in_range() {
        let config = SyntheticConfig { train: 50, test: 7, classes: 3, side: 12, label_noise: 0.0, ..small() };
        let data = generate(5, &config).unwrap();
        assert_eq!((data.train.len(), data.test.len()), (50, 7));
        assert_eq!((data.input_dim, data.train.dim(), data.classes), (144, 144, 3));
        assert!(data.train.labels().iter().chain(data.test.labels()).all(|&l| l < 3));
        // Strokes reach full intensity somewhere and the background stays dark on average.
        let all = bytes(&data.train);
        assert!(all.iter().any(|&p| p > 200));
        let mean = all.iter().map(|&p| f64::from(p)).sum::<f64>() / all.len() as f64;
        assert!((10.0..120.0).contains(&mean), "mean pixel {mean}");
        assert!(data.source.contains("seed=5") && data.source.contains(GENERATOR));
    }

    #[test]
    fn classes_are_roughly_balanced() {
        let data = generate(3, &small()).unwrap();
        let mut counts = [0usize; 10];
        for &l in data.train.labels() {
            counts[usize::from(l)] += 1;
        }
        for c in counts {
            assert!((230..=370).contains(&c), "class counts {counts:?}");
        }
    }

    #[test]
    fn white_background_inverts_the_black_one() {
        let black = generate(3, &small()).unwrap();
        let white = generate(3, &SyntheticConfig { background: Background::White, ..small() }).unwrap();
        let inverted: Vec<u8> = bytes(&black.train).iter().map(|&p| 255 - p).collect();
        assert_eq!(bytes(&white.train), inverted);
        assert_eq!(white.train.labels(), black.train.labels());
        assert!(white.train.mean_sq_norm(3000) > 3.0 * black.train.mean_sq_norm(3000));
        assert_ne!(white.source, black.source);
    }

    #[test]
    fn imbalance_makes_the_first_class_about_r_times_the_last() {
        let config = SyntheticConfig {
            train: 40_000,
            test: 10,
            classes: 5,
            side: 8,
            label_noise: 0.0,
            imbalance: 4.0,
            ..small()
        };
        let data = generate(9, &config).unwrap();
        let mut counts = [0f64; 5];
        data.train.labels().iter().for_each(|&l| counts[usize::from(l)] += 1.0);
        // Weights 1, 1/1.75, 1/2.5, 1/3.25, 1/4 of their sum 2.5291.
        let expected = [1.0, 1.0 / 1.75, 0.4, 1.0 / 3.25, 0.25].map(|w| w / 2.529_121 * 40_000.0);
        for (c, e) in counts.iter().zip(expected) {
            assert!((c - e).abs() < 0.05 * e, "counts {counts:?}, expected {expected:?}");
        }
        let balanced = generate(9, &SyntheticConfig { imbalance: 1.0, ..config.clone() }).unwrap();
        assert_ne!(balanced.train.labels(), data.train.labels());
    }

    #[test]
    fn identical_for_any_thread_count() {
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| generate(11, &small()).unwrap())
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(bytes(&one.train), bytes(&two.train));
        assert_eq!(one.train.labels(), two.train.labels());
        assert_eq!(bytes(&one.test), bytes(&two.test));
    }

    #[test]
    fn label_noise_flips_about_the_asked_share() {
        // With noise 1 every label is uniform; with noise 0 the label is the drawn class, which
        // the same stream reproduces: compare the two.
        let clean = generate(4, &SyntheticConfig { label_noise: 0.0, ..small() }).unwrap();
        let noisy = generate(4, &SyntheticConfig { label_noise: 0.5, ..small() }).unwrap();
        assert_eq!(bytes(&clean.train), bytes(&noisy.train));
        let changed = clean.train.labels().iter().zip(noisy.train.labels()).filter(|(a, b)| a != b).count();
        // Expected share: 0.5 * 9/10 = 0.45.
        let share = changed as f64 / clean.train.len() as f64;
        assert!((0.40..0.50).contains(&share), "share {share}");
    }

    #[test]
    fn backgrounds_parse_by_name() {
        assert_eq!(("black".parse(), "white".parse()), (Ok(Background::Black), Ok(Background::White)));
        let e = "grey".parse::<Background>().unwrap_err();
        assert_eq!(e, ParseError { what: "background", got: "grey".into(), expected: "black or white" });
        assert_eq!(e.to_string(), "unknown background 'grey'; expected black or white");
    }

    #[test]
    fn a_training_set_of_one_class_is_refused() {
        let e = generate(1, &SyntheticConfig { train: 1, ..small() }).unwrap_err().to_string();
        assert!(e.starts_with("synthetic: all 1 training labels are ") && e.ends_with("(synthetic-train)"), "{e}");
        assert!(generate(1, &SyntheticConfig { train: 40, ..small() }).is_ok());
    }

    #[test]
    fn bad_configs_are_refused() {
        for config in [
            SyntheticConfig { classes: 1, ..small() },
            SyntheticConfig { side: 2, ..small() },
            SyntheticConfig { train: 0, ..small() },
            SyntheticConfig { label_noise: f64::NAN, ..small() },
            SyntheticConfig { imbalance: 0.5, ..small() },
            SyntheticConfig { imbalance: f64::NAN, ..small() },
            SyntheticConfig { train: usize::MAX / 100, ..small() },
        ] {
            let e = generate(1, &config).unwrap_err().to_string();
            assert!(e.starts_with("synthetic: "), "{e}");
        }
    }
}
