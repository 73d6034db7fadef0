//! The snapshot tables (`conditional`, `hist2d`, `spectrum`): computed from the weights of one
//! snapshot by [`snapshot_rows`], while training ([`crate::RunWriter`]) and afterwards from the
//! saved snapshots of a finished run ([`analyze_run`], `drift analyze`), at the training-time
//! resolution (the same bytes) or another one.

use rayon::prelude::*;

use drift_train::{Init, Params, TrainConfig};

use crate::deviation::{conditional_rows, hist2d_rows, Bins};
use crate::layout::{RunDir, TableFile};
use crate::parquet_file::write_table;
use crate::read::{read_drift_metadata, read_snapshot};
use crate::spectrum::{initial_spectrum, spectrum_rows};
use crate::tables::{ConditionalRow, Hist2dRow, SpectrumRow, Table};
use crate::{AnalysisError, LayoutError};

/// The rows of the snapshot tables, snapshot after snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotRows {
    pub conditional: Vec<ConditionalRow>,
    pub hist2d: Vec<Hist2dRow>,
    pub spectrum: Vec<SpectrumRow>,
}

impl SnapshotRows {
    /// Appends the rows of a later snapshot.
    pub fn extend(&mut self, later: SnapshotRows) {
        self.conditional.extend(later.conditional);
        self.hist2d.extend(later.hist2d);
        self.spectrum.extend(later.spectrum);
    }

    /// Drops the rows of epochs after `epoch` (a resumed run goes on from there).
    pub fn keep_until(&mut self, epoch: i32) {
        self.conditional.retain(|r| r.epoch <= epoch);
        self.hist2d.retain(|r| r.epoch <= epoch);
        self.spectrum.retain(|r| r.epoch <= epoch);
    }

    /// Writes the three tables of `dir`, each atomically, with `metadata` in their footers.
    pub fn write(&self, dir: &RunDir, run_id: &str, metadata: &[(String, String)]) -> Result<(), AnalysisError> {
        fn one<T: Table>(
            path: &std::path::Path,
            run_id: &str,
            rows: &[T],
            metadata: &[(String, String)],
        ) -> Result<(), AnalysisError> {
            write_table(path, T::fields(), T::columns(run_id, rows), metadata)
        }
        one(&dir.table(TableFile::Conditional), run_id, &self.conditional, metadata)?;
        one(&dir.table(TableFile::Hist2d), run_id, &self.hist2d, metadata)?;
        one(&dir.table(TableFile::Spectrum), run_id, &self.spectrum, metadata)
    }
}

/// The singular values of every layer's initial weights ([`initial_spectrum`]), computed once
/// per run.
pub fn initial_spectra(init: &Params) -> Vec<Option<Vec<f64>>> {
    init.layers.par_iter().map(initial_spectrum).collect()
}

/// The snapshot-table rows of `current` at `epoch`, layer after layer, the w0 bins spanning the
/// range of `initialisation`. `w0_spectra` comes from [`initial_spectra`] of `init`. The layers
/// (and the three tables of each) are computed in parallel; the rows do not depend on how.
pub fn snapshot_rows(
    epoch: u32,
    init: &Params,
    current: &Params,
    initialisation: Init,
    bins: Bins,
    w0_spectra: &[Option<Vec<f64>>],
) -> SnapshotRows {
    let e = epoch as i32;
    let per_layer: Vec<SnapshotRows> = init
        .layers
        .par_iter()
        .zip(&current.layers)
        .zip(w0_spectra)
        .enumerate()
        .map(|(l, ((i, c), w0))| {
            let number = l as i32 + 1;
            let range = initialisation.bound(i.fan_in, i.fan_out);
            let (conditional, (hist2d, spectrum)) = rayon::join(
                || conditional_rows(e, number, i, c, range, bins.w0),
                || {
                    rayon::join(
                        || hist2d_rows(e, number, i, c, range, bins),
                        || spectrum_rows(e, number, i, c, w0.as_deref()),
                    )
                },
            );
            SnapshotRows { conditional, hist2d, spectrum }
        })
        .collect();
    let mut all = SnapshotRows::default();
    per_layer.into_iter().for_each(|rows| all.extend(rows));
    all
}

/// The resolution `drift analyze` recomputes at; what is not given is the run's own (the one
/// training used, recorded in `run.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Bins of `w0` (`--bins`).
    pub bins: Option<usize>,
    /// Cells of the `w` axis of `hist2d` (`--w-bins`; default: as many as `w0` bins).
    pub w_bins: Option<usize>,
}

/// What [`analyze_run`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Analyzed {
    pub run_id: String,
    pub snapshots: usize,
    pub bins: Bins,
}

/// Why a run folder cannot be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{}: not a run folder of drift (no run.json)", .0.display())]
    NotARun(std::path::PathBuf),
    #[error("{}: run.json {problem}", path.display())]
    BadRecord { path: std::path::PathBuf, problem: String },
    #[error("{}: the run is not finished; finish it with --resume first", .0.display())]
    Unfinished(std::path::PathBuf),
    #[error("--{option}: must be at least 1")]
    ZeroBins { option: &'static str },
    #[error(transparent)]
    Folder(#[from] LayoutError),
    #[error(transparent)]
    Tables(#[from] AnalysisError),
}

impl AnalyzeError {
    /// Whether the error is about what the user gave (exit status 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            AnalyzeError::Folder(e) => e.is_bad_input(),
            AnalyzeError::Tables(_) => false,
            _ => true,
        }
    }
}

impl AnalyzeOptions {
    /// The bins for a run that trained with `recorded` bins; refuses 0 before anything is read.
    pub fn resolve(&self, recorded: usize) -> Result<Bins, AnalyzeError> {
        if self.bins == Some(0) {
            return Err(AnalyzeError::ZeroBins { option: "bins" });
        }
        if self.w_bins == Some(0) {
            return Err(AnalyzeError::ZeroBins { option: "w-bins" });
        }
        let w0 = self.bins.unwrap_or(recorded).max(1);
        Ok(Bins { w0, w: self.w_bins.unwrap_or(w0) })
    }
}

/// Recomputes the snapshot tables of the finished run in `dir` from its saved snapshots, under
/// the run's lock, and rewrites them atomically. `W0` is the epoch-0 snapshot, or, where the
/// schedule kept none, the initialisation the configuration in `run.json` regenerates (a pure
/// function of it). With the training-time resolution the files are byte-identical to those
/// training wrote.
pub fn analyze_run(dir: &RunDir, options: AnalyzeOptions) -> Result<Analyzed, AnalyzeError> {
    let record = match dir.read_record() {
        None => return Err(AnalyzeError::NotARun(dir.path().to_path_buf())),
        Some(record) => record.map_err(|problem| AnalyzeError::BadRecord { path: dir.record_path(), problem })?,
    };
    let bins = options.resolve(record.bins)?;
    if !dir.is_finished() {
        return Err(AnalyzeError::Unfinished(dir.path().to_path_buf()));
    }
    let bad = |problem: String| AnalyzeError::BadRecord { path: dir.record_path(), problem };
    let config: TrainConfig = serde_json::from_value(record.config.clone())
        .map_err(|e| bad(format!("has a configuration this drift cannot read ({e})")))?;
    let _lock = dir.lock()?;
    let metadata = read_drift_metadata(&dir.table(TableFile::Runs))?;
    let epochs = dir.snapshot_epochs();
    let mut rows = SnapshotRows::default();
    if let Some(&first) = epochs.first() {
        let init = match first {
            0 => read_snapshot(&dir.snapshot_path(0))?,
            _ => regenerate_init(&config, &read_snapshot(&dir.snapshot_path(first))?),
        };
        let w0_spectra = initial_spectra(&init);
        for &epoch in &epochs {
            let current = match epoch {
                0 => init.clone(),
                _ => read_snapshot(&dir.snapshot_path(epoch))?,
            };
            rows.extend(snapshot_rows(epoch, &init, &current, config.init, bins, &w0_spectra));
        }
    }
    rows.write(dir, &record.run_id, &metadata)?;
    Ok(Analyzed { run_id: record.run_id, snapshots: epochs.len(), bins })
}

/// The initial parameters of the run configured by `config`, regenerated (a pure function of
/// it), for the layer sizes of `any_snapshot`.
fn regenerate_init(config: &TrainConfig, any_snapshot: &Params) -> Params {
    let layers = &any_snapshot.layers;
    let mut sizes: Vec<usize> = layers.iter().map(|l| l.fan_in).collect();
    sizes.extend(layers.last().map(|l| l.fan_out));
    Params::init(&sizes, config.seed, config.init, config.mask)
}
