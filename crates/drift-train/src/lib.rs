//! drift-train: deterministic training of ReLU multilayer perceptrons (SGD, momentum or Adam,
//! Glorot-uniform, He-normal or LeCun-normal initial weights), the way the Keras setup of the
//! study does it, with an [`Observer`] called after every epoch.
//!
//! A run is a pure function of its [`TrainConfig`] and data: initial weights come from the named
//! stream `init/layer=L` of the seed, the order of epoch `e` from `shuffle/epoch=e`, and every
//! reduction has a fixed order, so the result is bit-identical for any thread count.
//!
//! ```
//! use drift_data::{synthetic::SyntheticConfig, DatasetSpec, LoadOptions};
//! use drift_train::{train, History, TrainConfig};
//!
//! let mut opts = LoadOptions::new(1);
//! opts.synthetic = SyntheticConfig { train: 256, test: 128, ..SyntheticConfig::default() };
//! let data = drift_data::load(&DatasetSpec::Synthetic, &opts).unwrap();
//! let config = TrainConfig { width: 32, epochs: 3, seed: 1, threads: 1, ..TrainConfig::default() };
//! let mut history = History::default();
//! let summary = train(&config, &data, &mut history).unwrap();
//! assert_eq!(history.records.len(), 4); // epoch 0 (before training) and 3 epochs
//! assert!(history.records[3].train_loss < history.records[0].train_loss);
//! assert_eq!(summary.epochs_done, 3);
//! ```

mod checkpoint;
mod config;
mod glyph;
mod init;
mod model;
mod observer;
mod optimizer;
pub mod reference;
pub mod sweep;
mod trainer;

pub use checkpoint::{CheckpointError, TrainState};
pub use config::{ConfigError, TrainConfig};
pub use drift_kernels::LossMode;
pub use glyph::{glyph_mask, GLYPH_LETTERS};
pub use init::{Init, Normals, TRUNCATED_NORMAL_STD};
pub use model::{Layer, Params};
pub use observer::{EpochRecord, History, Observer, ObserverError, RunStatus, RunSummary};
pub use optimizer::{Optimizer, OptimizerState, UpdateRule};
pub use sweep::{RunKeys, Shard, ShardError, Sweep, SweepError};
pub use trainer::{
    effective_train_size, evaluate, train, train_with, Evaluation, RunControl, SpareCores, TrainError, Workspace,
};
