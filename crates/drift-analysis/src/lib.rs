//! drift-analysis: turns a training run into Parquet tables of how far every weight moved.
//!
//! [`RunWriter`] is a [`drift_train::Observer`]: after every epoch it computes the statistics of
//! `Δw = w − w0` per layer (`deviation.parquet`), and at the epochs of a [`SnapshotSchedule`] it
//! writes every weight bit-exactly (`snapshots/epoch=NNNNNN.parquet`) together with the
//! statistics of `Δw` as a function of `w0` (`conditional.parquet`) and the 2-D histogram of
//! `(w0, w)` (`hist2d.parquet`) and the singular values of `ΔW`, `W0` and `W` (`spectrum.parquet`).
//! [`analyze_run`] recomputes those three from the saved snapshots of a finished run, at any
//! resolution. Every file is written to a temporary name and renamed.
//!
//! ```
//! use drift_analysis::stats::{moments, quantile_sorted};
//! let m = moments(&[0.0, 1.0, 2.0, 3.0]);
//! assert_eq!(m.mean, 1.5);
//! assert_eq!(quantile_sorted(&[0.0, 1.0, 2.0, 3.0], 0.5), 1.5);
//! ```

mod analyze;
pub mod claims;
mod deviation;
pub mod layout;
mod onset;
pub mod optimizers;
mod parquet_file;
pub mod query;
pub mod read;
pub mod regimes;
pub mod report;
mod schedule;
pub mod setting;
pub mod spectrum;
pub mod stats;
pub mod tables;
mod writer;

use std::path::PathBuf;

pub use analyze::{analyze_run, initial_spectra, snapshot_rows, AnalyzeError, AnalyzeOptions, Analyzed, SnapshotRows};
pub use deviation::{conditional_rows, deviation_rows, hist2d_rows, Bins};
pub use layout::{LayoutError, RunDir, SweepDir};
pub use parquet_file::{write_atomic, write_table};
pub use regimes::divergence_epoch;
pub use schedule::SnapshotSchedule;
pub use writer::{ResumeError, RunMeta, RunWriter, DEFAULT_BINS};

/// A file could not be written; names the file.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: cannot read the table: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}: cannot encode the table: {message}", path.display())]
    Encode { path: PathBuf, message: String },
}
