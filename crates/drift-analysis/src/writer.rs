//! [`RunWriter`]: the observer that turns a training run into the files of DESIGN.md.

use std::fs;

use rayon::prelude::*;

use drift_data::Dataset;
use drift_train::{
    EpochRecord, Observer, ObserverError, Params, RunStatus, RunSummary, TrainConfig, TrainState, UpdateRule,
};

use crate::analyze::{initial_spectra, snapshot_rows, SnapshotRows};
use crate::deviation::{deviation_rows, Bins};
use crate::layout::{RunDir, TableFile};
use crate::parquet_file::{remove_stale_temporaries, write_atomic, write_table, write_table_after, FixedColumns};
use crate::read;
use crate::regimes::divergence_epoch;
use crate::tables::{
    snapshot_index_columns, snapshot_index_fields, snapshot_value_fields, snapshot_values, DeviationRow, HistoryRow,
    RunRow, Table,
};
use crate::{AnalysisError, SnapshotSchedule};

/// What describes a run in `runs.parquet` and the metadata of every file.
#[derive(Clone, Debug, PartialEq)]
pub struct RunMeta {
    pub run_id: String,
    /// The keys that determine results, stored as `drift.<key>` in each file's metadata.
    pub result_keys: Vec<(String, String)>,
    /// The descriptive columns of `runs.parquet`; the outcome columns are filled at the end.
    pub run: RunRow,
    /// The initialisation, whose range the w0 bins of the snapshot tables span.
    pub init: drift_train::Init,
}

impl RunMeta {
    /// The description of a run that is about to start: its id, its result keys and the
    /// descriptive columns of `runs.parquet`, the outcome columns still empty (`interrupted`).
    /// `train_size` is the number of training samples used; `data_key` tells data sets of one
    /// name apart (the generator of a synthetic set) and enters the run id.
    pub fn new(config: &TrainConfig, data: &Dataset, train_size: usize, data_key: &str) -> RunMeta {
        // The columns of the hyper-parameters the optimiser has.
        let (momentum, beta1, beta2, eps) = match config.update_rule() {
            UpdateRule::Sgd { .. } => (None, None, None, None),
            UpdateRule::Momentum { momentum, .. } => (Some(momentum), None, None, None),
            UpdateRule::Adam { beta1, beta2, eps, .. } => (None, Some(beta1), Some(beta2), Some(eps)),
        };
        let result_keys =
            config.result_keys(train_size, data_key).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        RunMeta {
            init: config.init,
            run_id: config.run_id(train_size, data_key),
            result_keys,
            run: RunRow {
                dataset: config.dataset.clone(),
                train_size: train_size as i64,
                test_size: data.test.len() as i64,
                input_dim: data.input_dim as i64,
                classes: data.classes as i64,
                width: config.width as i64,
                depth: config.depth as i64,
                seed: config.seed,
                lr: config.lr,
                batch_size: config.batch_size as i64,
                epochs: config.epochs as i32,
                loss_mode: config.loss.to_string(),
                init: config.init.to_string(),
                mask: config.mask.map(String::from),
                kernel: config.resolved_kernel().to_string(),
                input: config.input.to_string(),
                input_sq_norm: data.train.mean_sq_norm(train_size),
                optimizer: config.optimizer.to_string(),
                momentum,
                beta1,
                beta2,
                eps,
                target_loss: config.target_loss,
                status: "interrupted".into(),
                epochs_done: 0,
                min_train_loss: f64::NAN,
                epoch_min_train_loss: -1,
                min_test_loss: f64::NAN,
                epoch_min_test_loss: -1,
                divergence_epoch: None,
                wall_seconds: 0.0,
            },
        }
    }
}

/// Writes `runs`, `history`, `deviation`, `conditional`, `hist2d`, `spectrum` and the snapshots of one run
/// into a folder. Tables are rewritten (atomically) at every checkpoint, i.e. after every epoch,
/// followed by `checkpoint.bin`, so an interrupted run leaves consistent tables and a state to
/// continue from ([`RunWriter::resume`]).
pub struct RunWriter {
    dir: RunDir,
    meta: RunMeta,
    metadata: Vec<(String, String)>,
    schedule: SnapshotSchedule,
    bins: Bins,
    history: Vec<HistoryRow>,
    deviation: Vec<DeviationRow>,
    snapshot_rows: SnapshotRows,
    /// The singular values of the initial weights, per layer, once a snapshot needed them.
    w0_spectra: Option<Vec<Option<Vec<f64>>>>,
    last_snapshot: Option<u32>,
    /// Snapshot-table rows not yet on disk.
    snapshot_rows_pending: bool,
    /// The snapshots' `layer`, `kind`, `row` and `col` columns, encoded once.
    snapshot_index: Option<FixedColumns>,
}

/// Why a run cannot continue from its folder.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{}: {source}", path.display())]
    Checkpoint { path: std::path::PathBuf, source: drift_train::CheckpointError },
    #[error(transparent)]
    Tables(#[from] AnalysisError),
}

/// Default number of bins of `w0` over the range of a layer's initialisation.
pub const DEFAULT_BINS: usize = 50;

impl RunWriter {
    /// Prepares `dir` (created with its snapshot folder if missing; temporaries a killed writer
    /// left there are removed).
    pub fn create(dir: &RunDir, meta: RunMeta, schedule: SnapshotSchedule, bins: usize) -> Result<Self, AnalysisError> {
        let snapshots = dir.snapshot_dir();
        fs::create_dir_all(&snapshots).map_err(|source| AnalysisError::Io { path: snapshots.clone(), source })?;
        for folder in [dir.path(), &snapshots] {
            remove_stale_temporaries(folder)
                .map_err(|source| AnalysisError::Io { path: folder.to_path_buf(), source })?;
        }
        let mut metadata = vec![("drift.run_id".to_string(), meta.run_id.clone())];
        metadata.extend(meta.result_keys.iter().map(|(k, v)| (format!("drift.{k}"), v.clone())));
        Ok(RunWriter {
            dir: dir.clone(),
            meta,
            metadata,
            schedule,
            bins: Bins::square(bins),
            history: Vec::new(),
            deviation: Vec::new(),
            snapshot_rows: SnapshotRows::default(),
            w0_spectra: None,
            last_snapshot: None,
            snapshot_rows_pending: false,
            snapshot_index: None,
        })
    }

    /// The writer of an interrupted run in `dir` and the state to continue from: the checkpoint
    /// (refused if it belongs to another run or drift version) and the tables cut back to the
    /// epochs it has done, so no row is duplicated or missing once training goes on.
    pub fn resume(
        dir: &RunDir,
        meta: RunMeta,
        schedule: SnapshotSchedule,
        bins: usize,
    ) -> Result<(Self, TrainState), ResumeError> {
        let path = dir.checkpoint_path();
        let bytes = fs::read(&path).map_err(|e| ResumeError::Checkpoint {
            path: path.clone(),
            source: drift_train::CheckpointError::Unreadable(e.to_string()),
        })?;
        let state =
            TrainState::decode(&bytes, &meta.run_id).map_err(|source| ResumeError::Checkpoint { path, source })?;
        let done = state.epochs_done as i32;
        let mut writer = Self::create(dir, meta, schedule, bins)?;
        let keep = |epoch: i32| epoch <= done;
        let table = |t| dir.table(t);
        writer.history =
            read::read_history(&table(TableFile::History))?.into_iter().filter(|r| keep(r.epoch)).collect();
        writer.deviation =
            read::read_deviation(&table(TableFile::Deviation))?.into_iter().filter(|r| keep(r.epoch)).collect();
        writer.snapshot_rows = SnapshotRows {
            conditional: read::read_conditional(&table(TableFile::Conditional))?,
            hist2d: read::read_hist2d(&table(TableFile::Hist2d))?,
            spectrum: read::read_spectrum(&table(TableFile::Spectrum))?,
        };
        writer.snapshot_rows.keep_until(done);
        writer.last_snapshot = dir.snapshot_epochs().into_iter().filter(|&e| e <= state.epochs_done).max();
        writer.snapshot_rows_pending = true;
        Ok((writer, state))
    }

    fn write<T: Table>(&self, file: TableFile, rows: &[T]) -> Result<(), AnalysisError> {
        write_table(&self.dir.table(file), T::fields(), T::columns(&self.meta.run_id, rows), &self.metadata)
    }

    fn write_tables(&self) -> Result<(), AnalysisError> {
        self.write(TableFile::History, &self.history)?;
        self.write(TableFile::Deviation, &self.deviation)?;
        self.snapshot_rows.write(&self.dir, &self.meta.run_id, &self.metadata)
    }

    /// The snapshot file and the snapshot-table rows of `epoch`, the file written while the
    /// statistics are computed.
    fn snapshot(&mut self, epoch: u32, init: &Params, current: &Params) -> Result<(), AnalysisError> {
        let mut metadata = self.metadata.clone();
        metadata.push(("drift.epoch".into(), epoch.to_string()));
        let path = self.dir.snapshot_path(epoch);
        // The index columns are encoded at the first snapshot this writer makes and spliced into
        // every one (the first too, so a resumed run writes the same bytes).
        if self.snapshot_index.is_none() {
            let shapes: Vec<_> = current.layers.iter().map(|l| (l.fan_out, l.fan_in)).collect();
            let fields = snapshot_index_fields();
            let encoded = FixedColumns::encode(fields, snapshot_index_columns(&shapes))
                .map_err(|e| AnalysisError::Encode { path: path.clone(), message: e.to_string() })?;
            self.snapshot_index = Some(encoded);
        }
        let index = self.snapshot_index.as_ref().expect("encoded above");
        let values: Vec<_> = current.layers.iter().map(|l| (&l.w[..], &l.b[..])).collect();
        let w0_spectra = self.w0_spectra.get_or_insert_with(|| initial_spectra(init));
        let (written, rows) = rayon::join(
            || write_table_after(&path, index, snapshot_value_fields(), vec![snapshot_values(&values)], &metadata),
            || snapshot_rows(epoch, init, current, self.meta.init, self.bins, w0_spectra),
        );
        written?;
        self.snapshot_rows.extend(rows);
        self.last_snapshot = Some(epoch);
        self.snapshot_rows_pending = true;
        Ok(())
    }

    /// The `runs.parquet` row: the descriptive columns plus the outcome read off the history.
    fn run_row(&self, summary: &RunSummary) -> RunRow {
        let (min_train, epoch_min_train) = argmin(self.history.iter().map(|h| (h.epoch, h.train_loss)));
        let (min_test, epoch_min_test) = argmin(self.history.iter().map(|h| (h.epoch, h.test_loss)));
        let divergence = divergence_epoch(&self.history, self.meta.run.classes);
        let status = if summary.status == RunStatus::Diverged || divergence.is_some() {
            RunStatus::Diverged
        } else {
            summary.status
        };
        RunRow {
            status: status.as_str().to_string(),
            epochs_done: summary.epochs_done as i32,
            min_train_loss: min_train,
            epoch_min_train_loss: epoch_min_train,
            min_test_loss: min_test,
            epoch_min_test_loss: epoch_min_test,
            divergence_epoch: divergence,
            wall_seconds: summary.wall_seconds,
            ..self.meta.run.clone()
        }
    }
}

/// The smallest finite value and its (first) epoch; `(NaN, -1)` if there is none.
fn argmin(values: impl Iterator<Item = (i32, f64)>) -> (f64, i32) {
    values.filter(|(_, v)| v.is_finite()).fold((f64::NAN, -1), |(best, at), (e, v)| {
        if best.is_nan() || v < best {
            (v, e)
        } else {
            (best, at)
        }
    })
}

impl Observer for RunWriter {
    fn epoch(&mut self, record: &EpochRecord, init: &Params, current: &Params) -> Result<(), ObserverError> {
        let e = record.epoch as i32;
        self.history.push(HistoryRow {
            epoch: e,
            train_loss: record.train_loss,
            train_acc: record.train_acc,
            test_loss: record.test_loss,
            test_acc: record.test_acc,
            seconds: record.seconds,
        });
        let rows: Vec<[DeviationRow; 2]> = init
            .layers
            .par_iter()
            .zip(&current.layers)
            .enumerate()
            .map(|(l, (i, c))| deviation_rows(e, l as i32 + 1, i, c))
            .collect();
        self.deviation.extend(rows.into_iter().flatten());
        let last_epoch = self.meta.run.epochs as u32;
        if self.schedule.contains(record.epoch, last_epoch) {
            self.snapshot(record.epoch, init, current)?;
        }
        Ok(())
    }

    /// The tables up to the state's epoch, then the checkpoint: a crash between the two leaves
    /// tables ahead of the checkpoint, which [`RunWriter::resume`] cuts back.
    fn checkpoint(&mut self, state: &TrainState) -> Result<(), ObserverError> {
        self.write(TableFile::History, &self.history)?;
        self.write(TableFile::Deviation, &self.deviation)?;
        if self.snapshot_rows_pending {
            self.snapshot_rows.write(&self.dir, &self.meta.run_id, &self.metadata)?;
            self.snapshot_rows_pending = false;
        }
        let bytes = state.encode(&self.meta.run_id);
        write_atomic(&self.dir.checkpoint_path(), |w| std::io::Write::write_all(w, &bytes))?;
        Ok(())
    }

    fn finish(&mut self, summary: &RunSummary, init: &Params, current: &Params) -> Result<(), ObserverError> {
        if self.schedule.wants_last() && self.last_snapshot != Some(summary.epochs_done) {
            self.snapshot(summary.epochs_done, init, current)?;
        }
        self.write_tables()?;
        let row = self.run_row(summary);
        self.write(TableFile::Runs, &[row])?;
        // Finished: nothing to continue from any more.
        match fs::remove_file(self.dir.checkpoint_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Box::new(e) as ObserverError),
            _ => Ok(()),
        }
    }
}
