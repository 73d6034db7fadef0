//! The command line of DESIGN.md.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use drift_train::RunKeys;

#[derive(Parser, Debug)]
#[command(
    name = "drift",
    version,
    about = "Trains small ReLU networks deterministically and measures how far every weight moves from its initial value."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train one network and write its tables into --out.
    Train(Box<TrainArgs>),
    /// Train the runs of a sweep file (or one shard of it) into DIR/runs/<run_id>/.
    Sweep(SweepArgs),
    /// Recompute conditional, hist2d and spectrum of a run or of every run of a sweep from the
    /// saved snapshots (at the training resolution, or another one).
    Analyze(AnalyzeArgs),
    /// Draw the figures of a sweep folder from its tables.
    Figures(FiguresArgs),
    /// Run a profile's sweep (resuming), draw the figures and write the claims report.
    Reproduce(ReproduceArgs),
    /// Data set status, checksums and caches.
    Data(DataArgs),
}

/// Flags of `drift train`; each overrides the same key of --config.
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// TOML file with any of the keys below (dataset, width, depth, epochs, …).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// fashion-mnist | mnist | hasyv2 | synthetic | idx:DIR  [default: fashion-mnist]
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder with the four IDX files, instead of the data set's default location.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Hidden width W  [default: 512]
    #[arg(long)]
    pub width: Option<usize>,
    /// Number of hidden layers  [default: 2]
    #[arg(long)]
    pub depth: Option<usize>,
    /// [default: 100]
    #[arg(long)]
    pub epochs: Option<u32>,
    /// [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Learning rate  [default: 0.1]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Batch size  [default: 128]
    #[arg(long)]
    pub batch: Option<usize>,
    /// Use only the first N training samples.
    #[arg(long)]
    pub train_size: Option<usize>,
    /// raw | invert (x -> 1 - x), for any data set  [default: raw]
    #[arg(long)]
    pub input: Option<String>,
    /// HASYv2 classification fold, 1-10  [default: 1]
    #[arg(long)]
    pub fold: Option<u32>,
    /// keras-clipped | logits  [default: keras-clipped]
    #[arg(long)]
    pub loss: Option<String>,
    /// Initial weights: glorot-uniform | he-normal | lecun-normal (Keras's)  [default: glorot-uniform]
    #[arg(long)]
    pub init: Option<String>,
    /// sgd | momentum | adam (Keras's)  [default: sgd]
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Momentum μ, in [0, 1), for --optimizer momentum  [default: 0.9]
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Adam's β1, in [0, 1)  [default: 0.9]
    #[arg(long)]
    pub beta1: Option<f64>,
    /// Adam's β2, in [0, 1)  [default: 0.999]
    #[arg(long)]
    pub beta2: Option<f64>,
    /// Adam's ε, positive (Keras's default; PyTorch's is 1e-8)  [default: 1e-7]
    #[arg(long)]
    pub eps: Option<f64>,
    /// Stop at the end of the first epoch whose train loss is at or below this (--epochs is then
    /// the most a run trains)
    #[arg(long)]
    pub target_loss: Option<f64>,
    /// Letter drawn as zeros into the hidden→hidden matrix before training.
    #[arg(long)]
    pub mask: Option<String>,
    /// Snapshot epochs: list of epochs, every:N, last, none  [default: 0,1,2,5,10,20,50,100,200,500,1000,last]
    #[arg(long)]
    pub snapshots: Option<String>,
    /// GEMM kernel: auto | avx512 | avx2 | portable | matrixmultiply  [default: auto]
    #[arg(long)]
    pub kernel: Option<String>,
    /// Worker threads (0: all cores); never changes a result  [default: 0]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output folder (must not exist or be empty, unless --resume).
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint (nothing to do if it is finished).
    #[arg(long)]
    pub resume: bool,
}

impl TrainArgs {
    /// The run keys given as flags.
    pub fn keys(&self) -> RunKeys {
        RunKeys {
            dataset: self.dataset.clone(),
            data_dir: self.data_dir.clone(),
            width: self.width,
            depth: self.depth,
            epochs: self.epochs,
            seed: self.seed,
            lr: self.lr,
            batch: self.batch,
            train_size: self.train_size,
            input: self.input.clone(),
            fold: self.fold,
            loss: self.loss.clone(),
            init: self.init.clone(),
            optimizer: self.optimizer.clone(),
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            target_loss: self.target_loss,
            mask: self.mask.clone(),
            snapshots: self.snapshots.clone(),
            kernel: self.kernel.clone(),
            threads: self.threads,
            ..RunKeys::default()
        }
    }
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// TOML file: run keys, arrays multiplied out, optional [[grid]] tables.
    pub file: PathBuf,
    /// Output folder; runs go to DIR/runs/<run_id>/.
    #[arg(long)]
    pub out: PathBuf,
    /// Run only the I-th of N disjoint slices of the sweep (e.g. 2/3), for N machines.
    #[arg(long)]
    pub shard: Option<String>,
    /// Skip finished runs and restart unfinished ones.
    #[arg(long)]
    pub resume: bool,
    /// Runs trained at the same time (0: one per core, each on one thread)
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// A run folder (with run.json) or a sweep folder (with runs/<run_id>/ inside).
    pub dir: PathBuf,
    /// Bins of w0 over the range of each layer's initialisation  [default: the run's own, 50]
    #[arg(long)]
    pub bins: Option<usize>,
    /// Cells of the w axis of hist2d over that range  [default: as many as --bins]
    #[arg(long)]
    pub w_bins: Option<usize>,
}

#[derive(Args, Debug)]
pub struct FiguresArgs {
    /// A sweep folder (with runs/<run_id>/ inside).
    pub dir: PathBuf,
    /// Where the PNG and SVG files go  [default: DIR/figures]
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// quick | regimes | optimizers | full | a sweep file
    #[arg(long, default_value = "quick")]
    pub profile: String,
    /// Output folder  [default: results/<profile>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs trained at the same time (0: one per core)
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
}

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub action: DataAction,
}

#[derive(Subcommand, Debug)]
pub enum DataAction {
    /// Where the files are, their sizes and shapes.
    Info(DataTarget),
    /// Check the SHA-256 of the files against the official values.
    Verify(DataTarget),
    /// Decompress into the cache and validate, so that training starts at once.
    Prepare(DataTarget),
}

#[derive(Args, Debug)]
pub struct DataTarget {
    /// fashion-mnist | mnist | synthetic | idx:DIR
    pub name: String,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}
