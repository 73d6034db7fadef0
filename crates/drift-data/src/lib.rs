//! drift-data: the data sets drift trains on, as raw `u8` pixels plus `u16` labels, and the
//! seeded order and batching in which the trainer reads them.
//!
//! - [`load`] turns a [`DatasetSpec`] (`fashion-mnist`, `mnist`, `synthetic`, `idx:DIR`) into a
//!   [`Dataset`]: a train and a test [`Split`]. IDX files ([`idx`]) are memory-mapped, `.gz`
//!   files decompressed once into a cache, and the official files checked by SHA-256. The
//!   [`synthetic`] set is generated from the seed, identically for any thread count.
//! - [`epoch_order`] gives the shuffled visiting order of one epoch from the seed alone, so a
//!   resumed run needs no saved random state; [`fill_batch`] copies samples into the `f32` input
//!   matrix (pixels scaled to `[0, 1]`) and the label vector.
//! - [`rng`] holds the named random streams every source of randomness in drift uses.
//!
//! ```
//! use drift_data::{epoch_order, fill_batch, synthetic::SyntheticConfig, DatasetSpec, LoadOptions};
//!
//! let mut opts = LoadOptions::new(7);
//! opts.synthetic = SyntheticConfig { train: 100, test: 20, ..SyntheticConfig::default() };
//! let data = drift_data::load(&DatasetSpec::Synthetic, &opts)?;
//! assert_eq!((data.train.len(), data.test.len(), data.input_dim, data.classes), (100, 20, 784, 10));
//!
//! // The first batch of 8 samples of epoch 1.
//! let order = epoch_order(data.train.len(), 7, 1);
//! let batch = &order[..8];
//! let mut x = vec![0f32; batch.len() * data.input_dim];
//! let mut y = vec![0u16; batch.len()];
//! fill_batch(&data.train, batch, &mut x, &mut y);
//! assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
//! assert_eq!(y[0], data.train.labels()[batch[0] as usize]);
//! # Ok::<(), drift_data::DataError>(())
//! ```

use rayon::prelude::*;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use memmap2::Mmap;

mod cache;
mod checksums;
pub mod hasy;
pub mod idx;
mod load;
pub mod rng;
pub mod synthetic;

pub use load::{inspect, load, prepare, FileReport};

/// Everything that can go wrong reading data. Every variant names the file (or data set) and the
/// reason, so the message alone tells the user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading, writing or mapping a file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A file is not a valid IDX file of the expected kind, or disagrees with its partner.
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// A `.gz` file could not be decompressed.
    #[error("{}: corrupt gzip: {reason}", path.display())]
    Gzip { path: PathBuf, reason: String },
    /// One of the four files of an IDX directory is absent, in both raw and `.gz` form.
    #[error(
        "{}: no such file (nor .gz); a data set directory holds train-images-idx3-ubyte, \
         train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or gzipped (.gz)",
        path.display()
    )]
    Missing { path: PathBuf },
    /// A file of a named data set is not the official one.
    #[error(
        "{}: checksum mismatch: SHA-256 {actual}, expected {expected} (the official {dataset} file)",
        path.display()
    )]
    Checksum { path: PathBuf, dataset: String, actual: String, expected: String },
    /// A data set cannot be located or configured.
    #[error("{dataset}: {reason}")]
    Unavailable { dataset: String, reason: String },
}

/// A name on the command line or in a configuration that is not one drift knows: which kind of
/// name, the text given, and the names accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{got}'; expected {expected}")]
pub struct ParseError {
    pub what: &'static str,
    pub got: String,
    pub expected: &'static str,
}

/// Why training labels that all hold one class are refused (`None` if they hold two or more):
/// every network reaches zero loss on them by ignoring its input, so a run would measure
/// nothing.
pub(crate) fn single_class(labels: &[u16]) -> Option<String> {
    let (&first, rest) = labels.split_first()?;
    rest.iter().all(|&l| l == first).then(|| {
        format!(
            "all {} training labels are {first}: a single class, from which nothing can be learned \
             (a data set needs at least two classes in its training labels)",
            labels.len()
        )
    })
}

/// Where a split's pixels live: generated in memory, or in a mapped IDX file after its header.
enum Pixels {
    Owned(Vec<u8>),
    Mapped { map: Mmap, offset: usize },
}

/// One split (train or test): images as raw `u8` pixels, row-major, [`dim`](Split::dim) bytes
/// each, and their labels.
pub struct Split {
    pixels: Pixels,
    labels: Vec<u16>,
    dim: usize,
}

impl Split {
    /// A split over pixels in memory. Panics unless `pixels.len() == labels.len() * dim`.
    pub(crate) fn owned(pixels: Vec<u8>, labels: Vec<u16>, dim: usize) -> Split {
        assert_eq!(pixels.len(), labels.len() * dim, "pixels for {} images of {dim}", labels.len());
        Split { pixels: Pixels::Owned(pixels), labels, dim }
    }

    /// A split over a mapped file whose images start at `offset`. Panics if the map is too short.
    pub(crate) fn mapped(map: Mmap, offset: usize, labels: Vec<u16>, dim: usize) -> Split {
        assert!(map.len() >= offset + labels.len() * dim, "mapped file too short for its images");
        Split { pixels: Pixels::Mapped { map, offset }, labels, dim }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (784 for the MNIST family).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The pixels of sample `i`. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(i < self.len(), "sample {i} of a split of {}", self.len());
        let start = i * self.dim;
        match &self.pixels {
            Pixels::Owned(v) => &v[start..start + self.dim],
            Pixels::Mapped { map, offset } => &map[offset + start..offset + start + self.dim],
        }
    }

    /// All labels, in sample order.
    pub fn labels(&self) -> &[u16] {
        &self.labels
    }

    /// A copy with every pixel `p` replaced by `255 − p`, i.e. `x → 1 − x` after scaling (exact
    /// on the bytes, so an inverted set is as reproducible as the original).
    pub fn inverted(&self) -> Split {
        let pixels = (0..self.len()).flat_map(|i| self.image(i).iter().map(|&p| 255 - p)).collect();
        Split::owned(pixels, self.labels.clone(), self.dim)
    }

    /// The mean of ‖x‖² over the first `n` samples (all if fewer), with `x = pixel / 255`: the
    /// scale an SGD step on the first layer is multiplied by, so step sizes can be compared across
    /// data sets. Summed in sample order in `f64`, so the value is the same on every machine.
    pub fn mean_sq_norm(&self, n: usize) -> f64 {
        let n = n.min(self.len());
        if n == 0 {
            return 0.0;
        }
        let total: u64 = (0..n).map(|i| self.image(i).iter().map(|&p| u64::from(p) * u64::from(p)).sum::<u64>()).sum();
        total as f64 / (255.0 * 255.0) / n as f64
    }

    /// Keeps the first `n` samples (all of them if there are fewer); used by `--train-size`.
    pub fn truncate(&mut self, n: usize) {
        self.labels.truncate(n);
        if let Pixels::Owned(v) = &mut self.pixels {
            v.truncate(self.labels.len() * self.dim);
        }
    }
}

impl fmt::Debug for Split {
    /// Sizes only: the pixels are megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let storage = match self.pixels {
            Pixels::Owned(_) => "owned",
            Pixels::Mapped { .. } => "mapped",
        };
        f.debug_struct("Split").field("len", &self.len()).field("dim", &self.dim).field("pixels", &storage).finish()
    }
}

/// A loaded data set: both splits and what they are.
#[derive(Debug)]
pub struct Dataset {
    /// `"fashion-mnist"`, `"mnist"`, `"synthetic"` or `"idx:/abs/dir"`.
    pub name: String,
    pub train: Split,
    pub test: Split,
    /// 10 for the MNIST family; for `idx:`, the largest label of either split plus one.
    pub classes: usize,
    /// Pixels per image.
    pub input_dim: usize,
    /// Where the files came from, or the generator and its parameters (for synthetic data this
    /// string determines the data completely).
    pub source: String,
    /// Things the user should know that do not stop the run (e.g. an unrecognised file under
    /// `idx:`); printed by the CLI.
    pub warnings: Vec<String>,
}

/// Which data set to load, as named on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum DatasetSpec {
    FashionMnist,
    Mnist,
    Synthetic,
    /// The HASYv2 release (369 classes of 32 × 32 symbols), in `--data-dir` or `$HASYV2_DIR`.
    Hasyv2,
    /// Any directory with the four standard IDX file names.
    Idx(PathBuf),
}

const ACCEPTED: &str = "fashion-mnist, mnist, hasyv2, synthetic or idx:DIR";

impl FromStr for DatasetSpec {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let unknown = |expected| ParseError { what: "data set", got: s.into(), expected };
        match s {
            "fashion-mnist" => Ok(DatasetSpec::FashionMnist),
            "mnist" => Ok(DatasetSpec::Mnist),
            "synthetic" => Ok(DatasetSpec::Synthetic),
            "hasyv2" => Ok(DatasetSpec::Hasyv2),
            _ => match s.strip_prefix("idx:") {
                Some("") => Err(unknown("a directory after idx:, as in idx:/path/to/dir")),
                Some(dir) => Ok(DatasetSpec::Idx(PathBuf::from(dir))),
                None => Err(unknown(ACCEPTED)),
            },
        }
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::FashionMnist => f.write_str("fashion-mnist"),
            DatasetSpec::Mnist => f.write_str("mnist"),
            DatasetSpec::Synthetic => f.write_str("synthetic"),
            DatasetSpec::Hasyv2 => f.write_str("hasyv2"),
            DatasetSpec::Idx(dir) => write!(f, "idx:{}", dir.display()),
        }
    }
}

/// The transform applied to every input of a data set (`input` key, `--input`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Input {
    /// Pixels as the data set has them, scaled to `[0, 1]`.
    #[default]
    Raw,
    /// `x → 1 − x`: white becomes black. Changes ‖x‖² (and so the effective step of the first
    /// layer) without changing what is to be learned.
    Invert,
}

impl Input {
    pub fn as_str(self) -> &'static str {
        match self {
            Input::Raw => "raw",
            Input::Invert => "invert",
        }
    }
}

impl FromStr for Input {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "raw" => Ok(Input::Raw),
            "invert" => Ok(Input::Invert),
            _ => Err(ParseError { what: "input transform", got: s.into(), expected: "raw or invert" }),
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Dataset {
    /// The data set with `input` applied to both splits (the data set itself for `raw`).
    pub fn with_input(self, input: Input) -> Dataset {
        match input {
            Input::Raw => self,
            Input::Invert => Dataset {
                train: self.train.inverted(),
                test: self.test.inverted(),
                source: format!("{} (inverted: x -> 1 - x)", self.source),
                ..self
            },
        }
    }
}

/// Where to look for data and how to generate it.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `--data-dir`: overrides the default location of fashion-mnist and mnist.
    pub data_dir: Option<PathBuf>,
    /// Where `.gz` files are decompressed to.
    pub cache_dir: PathBuf,
    /// Seed of the synthetic generator.
    pub seed: u64,
    pub synthetic: synthetic::SyntheticConfig,
    /// Applied to both splits after loading.
    pub input: Input,
    /// HASYv2's classification fold (1–10).
    pub fold: u32,
}

impl LoadOptions {
    /// Default locations and generator settings for run seed `seed`.
    pub fn new(seed: u64) -> Self {
        LoadOptions {
            data_dir: None,
            cache_dir: default_cache_dir(),
            seed,
            synthetic: synthetic::SyntheticConfig::default(),
            input: Input::Raw,
            fold: 1,
        }
    }
}

/// `$DRIFT_CACHE` if set, else `$HOME/.cache/drift`, else `./.drift-cache`.
pub fn default_cache_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("DRIFT_CACHE") {
        PathBuf::from(dir)
    } else if let Some(home) = var("HOME") {
        PathBuf::from(home).join(".cache").join("drift")
    } else {
        PathBuf::from(".drift-cache")
    }
}

/// Fills a batch: `x[j*dim + p] = image(indices[j])[p] as f32 / 255.0` and `y[j]` = its label,
/// for `j < indices.len()`; the rest of `x` and `y` is left alone.
///
/// Panics if `x` is shorter than `indices.len() * dim`, `y` shorter than `indices.len()`, or an
/// index is out of range.
pub fn fill_batch(split: &Split, indices: &[u32], x: &mut [f32], y: &mut [u16]) {
    let dim = split.dim();
    assert!(x.len() >= indices.len() * dim, "x holds {} floats, the batch needs {}", x.len(), indices.len() * dim);
    assert!(y.len() >= indices.len(), "y holds {} labels, the batch needs {}", y.len(), indices.len());
    let labels = split.labels();
    let fill = |(indices, (x, y)): (&[u32], (&mut [f32], &mut [u16]))| {
        for (j, ((&i, row), label)) in indices.iter().zip(x.chunks_exact_mut(dim)).zip(y.iter_mut()).enumerate() {
            // The samples are scattered over the whole set, so each image is a cache miss: ask
            // for the next one while this one converts (a W = 128 step waited on memory here).
            if let Some(&next) = indices.get(j + 1) {
                prefetch(split.image(next as usize));
            }
            for (out, &p) in row.iter_mut().zip(split.image(i as usize)) {
                *out = f32::from(p) / 255.0;
            }
            *label = labels[i as usize];
        }
    };
    // Halves on two threads: it halves the wait, and the second thread, woken here, is still
    // awake when the first product of the step forks (waking a sleeping one costs ≈ 25 µs).
    let chunk = indices.len().div_ceil(2).max(1);
    indices
        .par_chunks(chunk)
        .zip(x[..indices.len() * dim].par_chunks_mut(chunk * dim).zip(y[..indices.len()].par_chunks_mut(chunk)))
        .for_each(fill);
}

/// Hints the CPU to bring `bytes` into the cache; no effect on results.
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch only hints the cache; the address is inside a live slice.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// The order in which epoch `epoch` (1-based) visits the `n` training samples: a Fisher–Yates
/// shuffle of `0..n` with the stream `shuffle/epoch={epoch}` of `seed`. Each epoch has its own
/// stream, so a resumed run recreates any epoch without replaying the earlier ones.
///
/// Panics if `n` exceeds `u32::MAX`.
pub fn epoch_order(n: usize, seed: u64, epoch: u32) -> Vec<u32> {
    let n = u32::try_from(n).expect("epoch_order: more than u32::MAX samples");
    let mut order: Vec<u32> = (0..n).collect();
    rng::Stream::new(seed, &format!("shuffle/epoch={epoch}")).shuffle(&mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_and_displays() {
        for s in ["fashion-mnist", "mnist", "synthetic", "hasyv2", "idx:/data/kmnist"] {
            let spec: DatasetSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!("idx:rel/dir".parse::<DatasetSpec>(), Ok(DatasetSpec::Idx("rel/dir".into())));
        let e = "cifar".parse::<DatasetSpec>().unwrap_err();
        assert_eq!((e.what, e.got.as_str()), ("data set", "cifar"));
        assert_eq!(
            e.to_string(),
            "unknown data set 'cifar'; expected fashion-mnist, mnist, hasyv2, synthetic or idx:DIR"
        );
        let e = "idx:".parse::<DatasetSpec>().unwrap_err().to_string();
        assert_eq!(e, "unknown data set 'idx:'; expected a directory after idx:, as in idx:/path/to/dir");
    }

    #[test]
    fn epoch_order_is_a_reproducible_permutation_per_epoch() {
        let a = epoch_order(1000, 3, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
        assert_eq!(a, epoch_order(1000, 3, 1));
        assert_ne!(a, epoch_order(1000, 3, 2));
        assert_ne!(a, epoch_order(1000, 4, 1));
        assert!(epoch_order(0, 3, 1).is_empty());
    }

    #[test]
    fn fill_batch_scales_and_copies_labels() {
        let pixels = vec![0, 255, 51, 1, 2, 3, 10, 20, 30];
        let split = Split::owned(pixels, vec![4, 5, 6], 3);
        let mut x = vec![-1f32; 7];
        let mut y = vec![9u16; 3];
        fill_batch(&split, &[2, 0], &mut x, &mut y);
        assert_eq!(&x[..3], &[10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0]);
        assert_eq!(&x[3..6], &[0.0, 1.0, 0.2]);
        assert_eq!(x[6], -1.0);
        assert_eq!(y, vec![6, 4, 9]);
    }

    #[test]
    #[should_panic(expected = "the batch needs")]
    fn fill_batch_checks_lengths() {
        let split = Split::owned(vec![0; 4], vec![0, 1], 2);
        fill_batch(&split, &[0, 1], &mut [0.0; 3], &mut [0; 2]);
    }

    #[test]
    fn inversion_and_squared_norm() {
        let split = Split::owned(vec![0, 255, 51, 255, 255, 255], vec![1, 2], 3);
        let inv = split.inverted();
        assert_eq!((inv.image(0), inv.image(1), inv.labels()), (&[255, 0, 204][..], &[0, 0, 0][..], &[1u16, 2][..]));
        // (0 + 1 + 0.04) and 3, over two samples; only the first sample for n = 1.
        assert!((split.mean_sq_norm(2) - (1.04 + 3.0) / 2.0).abs() < 1e-12);
        assert!((split.mean_sq_norm(1) - 1.04).abs() < 1e-12);
        assert_eq!(split.mean_sq_norm(10), split.mean_sq_norm(2));
        assert!(("invert".parse::<Input>(), "raw".parse::<Input>()) == (Ok(Input::Invert), Ok(Input::Raw)));
        let e = "negate".parse::<Input>().unwrap_err();
        assert_eq!(e.to_string(), "unknown input transform 'negate'; expected raw or invert");
        assert_eq!(e.got, "negate");
    }

    #[test]
    fn truncate_keeps_the_first_samples() {
        let mut split = Split::owned((0..10).collect(), vec![0, 1, 2, 3, 4], 2);
        split.truncate(2);
        assert_eq!((split.len(), split.labels()), (2, &[0u16, 1][..]));
        assert_eq!(split.image(1), &[2, 3]);
        split.truncate(10);
        assert_eq!(split.len(), 2);
    }
}
