//! drift-runs: the runs and sweeps of drift, for the binary and for any program that wants them.
//!
//! Run keys are resolved and checked ([`resolve`]), joined with their data and checked against
//! the machine ([`Planned`]), and trained into a [`drift_analysis::RunDir`] under its lock
//! ([`train_run`]); a sweep file's runs are planned by cost, dealt into shards and trained several
//! at a time into a [`drift_analysis::SweepDir`] ([`run_sweep`]), reporting through
//! [`SweepEvents`]; [`reproduce`] runs a profile and writes its figures and report. Nothing here
//! prints: what a user sees goes through the callbacks and the returned values.

mod analyze;
mod plan;
pub mod reproduce;
mod resolve;
mod run;
mod sweep;

use std::path::PathBuf;

pub use analyze::{analysis_targets, analyze_runs, AnalysisOutcome};
pub use plan::{available_memory, human_bytes, load_data, memory_estimate, Planned};
pub use resolve::{available_threads, read_config_file, resolve, Resolved};
pub use run::{check_fresh, train_run, Owner, RunOutcome};
pub use sweep::{run_sweep, SweepEvents, SweepOutcome, SweepPlan};

/// Why a run, a sweep or a reproduction cannot go on. [`Error::is_bad_input`] tells the user's
/// mistakes (an option, a file, a folder: exit status 2) from failures of the machine (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A run key (flag, config or sweep key) out of range or malformed.
    #[error("--{key}: {message}")]
    Key { key: String, message: String },
    /// A configuration or sweep file that cannot be used.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    File { path: PathBuf, line: Option<usize>, message: String },
    /// A run of a sweep that cannot be planned.
    #[error("{origin}: run {index} of the sweep: {source}")]
    SweepRun { origin: String, index: usize, source: Box<Error> },
    /// A run that would not fit in this machine's memory.
    #[error("--{key}: {message}")]
    Resources { key: &'static str, message: String },
    #[error(transparent)]
    Folder(#[from] drift_analysis::LayoutError),
    /// A folder problem of the folder an option names.
    #[error("{option} {source}")]
    Option { option: &'static str, source: Box<Error> },
    #[error(transparent)]
    Data(#[from] drift_data::DataError),
    /// A run folder that cannot be continued (a checkpoint of another run, damaged, unreadable).
    #[error("cannot resume: {0}")]
    Resume(drift_analysis::ResumeError),
    #[error("{}: holds run {found}, another configuration than this one ({expected}); resume it with its own options or choose a new folder", path.display())]
    OtherRun { path: PathBuf, found: String, expected: String },
    #[error(transparent)]
    Train(#[from] drift_train::TrainError),
    #[error(transparent)]
    Tables(#[from] drift_analysis::AnalysisError),
    #[error(transparent)]
    Figures(#[from] drift_figures::FigureError),
    /// `drift analyze`: a folder or an option that cannot be analysed, or a table that failed.
    #[error(transparent)]
    Analyze(drift_analysis::AnalyzeError),
    /// `drift data verify`: files whose checksums are not the official ones.
    #[error("{dataset}: checksums do not match: {}", files.join(", "))]
    Checksums { dataset: String, files: Vec<String> },
    #[error("{} run(s) failed: {}", .0.len(), .0.join("; "))]
    RunsFailed(Vec<String>),
    /// Stopped on request (SIGINT, SIGTERM) with checkpoints to continue from.
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    /// Says which option named the folder of a folder error (`--out /x: is a file, …`).
    pub fn for_option(self, option: &'static str) -> Error {
        match self {
            e @ (Error::Folder(_) | Error::OtherRun { .. }) => Error::Option { option, source: Box::new(e) },
            other => other,
        }
    }

    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Key { .. }
            | Error::File { .. }
            | Error::Resources { .. }
            | Error::Data(_)
            | Error::OtherRun { .. }
            | Error::Checksums { .. }
            | Error::Resume(drift_analysis::ResumeError::Checkpoint { .. }) => true,
            Error::SweepRun { source, .. } => source.is_bad_input(),
            Error::Folder(e) => e.is_bad_input(),
            Error::Figures(e) => e.is_bad_input(),
            Error::Analyze(e) => e.is_bad_input(),
            Error::Option { source, .. } => source.is_bad_input(),
            Error::Train(e) => {
                matches!(e, drift_train::TrainError::Config(_) | drift_train::TrainError::DataMismatch { .. })
            }
            Error::Resume(_) | Error::Tables(_) | Error::RunsFailed(_) | Error::Interrupted(_) => false,
        }
    }
}
