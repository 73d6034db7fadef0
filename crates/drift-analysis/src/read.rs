//! Reading the tables of finished runs back (for figures and claim checks): the inverse of
//! [`crate::tables`], column by column and by name, so extra columns never break a reader.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Float64Type, Int32Type, Int64Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::layout::{RunDir, SweepDir, TableFile};
use crate::tables::{ConditionalRow, DeviationRow, Hist2dRow, HistoryRow, RunRow, SpectrumRow};
use crate::AnalysisError;
use drift_train::{Layer, Params};

/// Every table of one finished run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTables {
    pub dir: RunDir,
    pub run_id: String,
    pub run: RunRow,
    pub history: Vec<HistoryRow>,
    pub deviation: Vec<DeviationRow>,
    pub conditional: Vec<ConditionalRow>,
    pub hist2d: Vec<Hist2dRow>,
    /// Empty for a run written before `spectrum.parquet` existed (`drift analyze` adds it).
    pub spectrum: Vec<SpectrumRow>,
}

/// The columns of one Parquet file, looked up by name.
struct Columns {
    path: PathBuf,
    batches: Vec<RecordBatch>,
}

impl Columns {
    fn read(path: &Path) -> Result<Columns, AnalysisError> {
        let error = |message: String| AnalysisError::Read { path: path.to_path_buf(), message };
        let file = File::open(path).map_err(|e| error(e.to_string()))?;
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()).map_err(|e| error(e.to_string()))?;
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| error(e.to_string()))?;
        Ok(Columns { path: path.to_path_buf(), batches })
    }

    fn arrays(&self, name: &str) -> Result<Vec<&dyn Array>, AnalysisError> {
        self.batches
            .iter()
            .map(|b| {
                b.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| AnalysisError::Read {
                    path: self.path.clone(),
                    message: format!("no column '{name}'"),
                })
            })
            .collect()
    }

    /// Whether the file has a column `name` (columns added since its format version began).
    fn has(&self, name: &str) -> bool {
        self.batches.first().is_some_and(|b| b.column_by_name(name).is_some())
    }

    fn wrong_type(&self, name: &str) -> AnalysisError {
        AnalysisError::Read { path: self.path.clone(), message: format!("column '{name}' has an unexpected type") }
    }

    fn f64(&self, name: &str) -> Result<Vec<Option<f64>>, AnalysisError> {
        let mut out = Vec::new();
        for a in self.arrays(name)? {
            let a = a.as_primitive_opt::<Float64Type>().ok_or_else(|| self.wrong_type(name))?;
            out.extend(a.iter());
        }
        Ok(out)
    }

    fn f64_required(&self, name: &str) -> Result<Vec<f64>, AnalysisError> {
        Ok(self.f64(name)?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }

    fn i32(&self, name: &str) -> Result<Vec<Option<i32>>, AnalysisError> {
        let mut out = Vec::new();
        for a in self.arrays(name)? {
            out.extend(a.as_primitive_opt::<Int32Type>().ok_or_else(|| self.wrong_type(name))?.iter());
        }
        Ok(out)
    }

    fn i32_required(&self, name: &str) -> Result<Vec<i32>, AnalysisError> {
        Ok(self.i32(name)?.into_iter().map(|v| v.unwrap_or(-1)).collect())
    }

    fn i64(&self, name: &str) -> Result<Vec<i64>, AnalysisError> {
        let mut out = Vec::new();
        for a in self.arrays(name)? {
            out.extend(
                a.as_primitive_opt::<Int64Type>().ok_or_else(|| self.wrong_type(name))?.iter().map(|v| v.unwrap_or(0)),
            );
        }
        Ok(out)
    }

    fn u64(&self, name: &str) -> Result<Vec<u64>, AnalysisError> {
        let mut out = Vec::new();
        for a in self.arrays(name)? {
            out.extend(
                a.as_primitive_opt::<UInt64Type>().ok_or_else(|| self.wrong_type(name))?.iter().map(|v| v.unwrap_or(0)),
            );
        }
        Ok(out)
    }

    fn f32(&self, name: &str) -> Result<Vec<f32>, AnalysisError> {
        let mut out = Vec::new();
        for a in self.arrays(name)? {
            out.extend(
                a.as_primitive_opt::<Float32Type>()
                    .ok_or_else(|| self.wrong_type(name))?
                    .iter()
                    .map(|v| v.unwrap_or(f32::NAN)),
            );
        }
        Ok(out)
    }

    fn strings(&self, name: &str) -> Result<Vec<Option<String>>, AnalysisError> {
        let mut out = Vec::new();
        for a in self.arrays(name)? {
            let a = a.as_string_opt::<i32>().ok_or_else(|| self.wrong_type(name))?;
            out.extend(a.iter().map(|s| s.map(str::to_string)));
        }
        Ok(out)
    }

    fn strings_required(&self, name: &str) -> Result<Vec<String>, AnalysisError> {
        Ok(self.strings(name)?.into_iter().map(Option::unwrap_or_default).collect())
    }
}

fn read_runs_row(path: &Path) -> Result<(String, RunRow), AnalysisError> {
    let c = Columns::read(path)?;
    let ids = c.strings_required("run_id")?;
    if ids.len() != 1 {
        return Err(AnalysisError::Read {
            path: path.to_path_buf(),
            message: format!("{} rows, expected 1", ids.len()),
        });
    }
    // Absent in files written before there were other optimisers (SGD has none of them) or
    // target losses.
    let hyper = |name: &str| -> Result<Option<f64>, AnalysisError> {
        Ok(if c.has(name) { c.f64(name)?.remove(0) } else { None })
    };
    let row = RunRow {
        dataset: c.strings_required("dataset")?.remove(0),
        train_size: c.i64("train_size")?[0],
        test_size: c.i64("test_size")?[0],
        input_dim: c.i64("input_dim")?[0],
        classes: c.i64("classes")?[0],
        width: c.i64("width")?[0],
        depth: c.i64("depth")?[0],
        seed: c.u64("seed")?[0],
        lr: c.f64_required("lr")?[0],
        batch_size: c.i64("batch_size")?[0],
        epochs: c.i32_required("epochs")?[0],
        loss_mode: c.strings_required("loss_mode")?.remove(0),
        init: c.strings_required("init")?.remove(0),
        mask: c.strings("mask")?.remove(0),
        kernel: c.strings_required("kernel")?.remove(0),
        input: c.strings_required("input")?.remove(0),
        input_sq_norm: c.f64_required("input_sq_norm")?[0],
        // Written before there were other optimisers: SGD.
        optimizer: if c.has("optimizer") { c.strings_required("optimizer")?.remove(0) } else { "sgd".into() },
        momentum: hyper("momentum")?,
        beta1: hyper("beta1")?,
        beta2: hyper("beta2")?,
        eps: hyper("eps")?,
        target_loss: hyper("target_loss")?,
        status: c.strings_required("status")?.remove(0),
        epochs_done: c.i32_required("epochs_done")?[0],
        min_train_loss: c.f64_required("min_train_loss")?[0],
        epoch_min_train_loss: c.i32_required("epoch_min_train_loss")?[0],
        min_test_loss: c.f64_required("min_test_loss")?[0],
        epoch_min_test_loss: c.i32_required("epoch_min_test_loss")?[0],
        divergence_epoch: c.i32("divergence_epoch")?[0],
        wall_seconds: c.f64_required("wall_seconds")?[0],
    };
    Ok((ids[0].clone(), row))
}

pub(crate) fn read_history(path: &Path) -> Result<Vec<HistoryRow>, AnalysisError> {
    let c = Columns::read(path)?;
    let epoch = c.i32_required("epoch")?;
    let (train_loss, train_acc) = (c.f64_required("train_loss")?, c.f64_required("train_acc")?);
    let (test_loss, test_acc, seconds) =
        (c.f64_required("test_loss")?, c.f64_required("test_acc")?, c.f64_required("seconds")?);
    Ok((0..epoch.len())
        .map(|i| HistoryRow {
            epoch: epoch[i],
            train_loss: train_loss[i],
            train_acc: train_acc[i],
            test_loss: test_loss[i],
            test_acc: test_acc[i],
            seconds: seconds[i],
        })
        .collect())
}

pub(crate) fn read_deviation(path: &Path) -> Result<Vec<DeviationRow>, AnalysisError> {
    use crate::tables::DEVIATION_QUANTILES;
    let c = Columns::read(path)?;
    let (epoch, layer, kind, n) =
        (c.i32_required("epoch")?, c.i32_required("layer")?, c.strings_required("kind")?, c.i64("n")?);
    let [mean, std, mean_abs, rms, max_abs, frac] =
        ["mean", "std", "mean_abs", "rms", "max_abs", "frac_beyond_limit"].map(|name| c.f64_required(name));
    let (mean, std, mean_abs, rms, max_abs, frac) = (mean?, std?, mean_abs?, rms?, max_abs?, frac?);
    let (skewness, kurtosis, rel_change) = (c.f64("skewness")?, c.f64("kurtosis")?, c.f64("rel_change")?);
    let quantiles = DEVIATION_QUANTILES.iter().map(|(name, _)| c.f64_required(name)).collect::<Result<Vec<_>, _>>()?;
    Ok((0..epoch.len())
        .map(|i| DeviationRow {
            epoch: epoch[i],
            layer: layer[i],
            kind: if kind[i] == "bias" { "bias" } else { "weight" },
            n: n[i],
            mean: mean[i],
            std: std[i],
            mean_abs: mean_abs[i],
            rms: rms[i],
            max_abs: max_abs[i],
            skewness: skewness[i],
            kurtosis: kurtosis[i],
            quantiles: std::array::from_fn(|q| quantiles[q][i]),
            rel_change: rel_change[i],
            frac_beyond_limit: frac[i],
        })
        .collect())
}

pub(crate) fn read_conditional(path: &Path) -> Result<Vec<ConditionalRow>, AnalysisError> {
    use crate::tables::CONDITIONAL_QUANTILES;
    let c = Columns::read(path)?;
    let (epoch, layer, bin) = (c.i32_required("epoch")?, c.i32_required("layer")?, c.i32_required("bin")?);
    let (w0_lo, w0_hi, count) = (c.f64_required("w0_lo")?, c.f64_required("w0_hi")?, c.i64("count")?);
    let [mean, std, skew, kurt, mode] = ["mean_dw", "std_dw", "skew_dw", "kurt_dw", "mode_dw"].map(|name| c.f64(name));
    let (mean, std, skew, kurt, mode) = (mean?, std?, skew?, kurt?, mode?);
    let quantiles = CONDITIONAL_QUANTILES.iter().map(|(name, _)| c.f64(name)).collect::<Result<Vec<_>, _>>()?;
    Ok((0..epoch.len())
        .map(|i| ConditionalRow {
            epoch: epoch[i],
            layer: layer[i],
            bin: bin[i],
            w0_lo: w0_lo[i],
            w0_hi: w0_hi[i],
            count: count[i],
            mean_dw: mean[i],
            std_dw: std[i],
            skew_dw: skew[i],
            kurt_dw: kurt[i],
            mode_dw: mode[i],
            w_quantiles: quantiles[0][i].map(|_| std::array::from_fn(|q| quantiles[q][i].unwrap_or(f64::NAN))),
        })
        .collect())
}

pub(crate) fn read_hist2d(path: &Path) -> Result<Vec<Hist2dRow>, AnalysisError> {
    let c = Columns::read(path)?;
    let [epoch, layer, w0_bin, w_bin] = ["epoch", "layer", "w0_bin", "w_bin"].map(|name| c.i32_required(name));
    let (epoch, layer, w0_bin, w_bin) = (epoch?, layer?, w0_bin?, w_bin?);
    let [w0_lo, w0_hi, w_lo, w_hi] = ["w0_lo", "w0_hi", "w_lo", "w_hi"].map(|name| c.f64_required(name));
    let (w0_lo, w0_hi, w_lo, w_hi, count) = (w0_lo?, w0_hi?, w_lo?, w_hi?, c.i64("count")?);
    Ok((0..epoch.len())
        .map(|i| Hist2dRow {
            epoch: epoch[i],
            layer: layer[i],
            w0_bin: w0_bin[i],
            w_bin: w_bin[i],
            w0_lo: w0_lo[i],
            w0_hi: w0_hi[i],
            w_lo: w_lo[i],
            w_hi: w_hi[i],
            count: count[i],
        })
        .collect())
}

pub(crate) fn read_spectrum(path: &Path) -> Result<Vec<SpectrumRow>, AnalysisError> {
    use crate::spectrum::MATRICES;
    use crate::tables::TOP_SHARES;
    let c = Columns::read(path)?;
    let (epoch, layer, index) = (c.i32_required("epoch")?, c.i32_required("layer")?, c.i32_required("index")?);
    let (matrix, sigma, stable_rank) = (c.strings_required("matrix")?, c.f64_required("sigma")?, c.f64("stable_rank")?);
    let shares = TOP_SHARES.iter().map(|(name, _)| c.f64(name)).collect::<Result<Vec<_>, _>>()?;
    (0..epoch.len())
        .map(|i| {
            let matrix = MATRICES.into_iter().find(|&m| m == matrix[i]).ok_or_else(|| AnalysisError::Read {
                path: path.to_path_buf(),
                message: format!("matrix '{}', expected one of {}", matrix[i], MATRICES.join(", ")),
            })?;
            Ok(SpectrumRow {
                epoch: epoch[i],
                layer: layer[i],
                matrix,
                index: index[i],
                sigma: sigma[i],
                stable_rank: stable_rank[i],
                top_shares: shares[0][i].map(|_| std::array::from_fn(|k| shares[k][i].unwrap_or(f64::NAN))),
            })
        })
        .collect()
}

/// The `drift.*` key-value metadata of a Parquet file of drift, in the order it was written.
pub fn read_drift_metadata(path: &Path) -> Result<Vec<(String, String)>, AnalysisError> {
    let error = |message: String| AnalysisError::Read { path: path.to_path_buf(), message };
    let file = File::open(path).map_err(|e| error(e.to_string()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| error(e.to_string()))?;
    let pairs = builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    Ok(pairs
        .into_iter()
        .filter(|kv| kv.key.starts_with("drift."))
        .map(|kv| (kv.key, kv.value.unwrap_or_default()))
        .collect())
}

/// Every weight and bias of the snapshot file at `path`, as the trainer held them.
pub fn read_snapshot(path: &Path) -> Result<Params, AnalysisError> {
    let c = Columns::read(path)?;
    let (layers, kinds, rows, cols, w) = (
        c.i32_required("layer")?,
        c.strings_required("kind")?,
        c.i32_required("row")?,
        c.i32_required("col")?,
        c.f32("w")?,
    );
    let bad = |message: String| AnalysisError::Read { path: path.to_path_buf(), message };
    let count = layers.iter().copied().max().unwrap_or(0).max(0) as usize;
    let mut shapes = vec![(0usize, 0usize); count];
    for i in 0..w.len() {
        if layers[i] < 1 || rows[i] < 0 || cols[i] < 0 {
            return Err(bad(format!("entry {i}: layer {}, row {}, col {}", layers[i], rows[i], cols[i])));
        }
        if kinds[i] == "weight" {
            let shape = &mut shapes[layers[i] as usize - 1];
            *shape = (shape.0.max(rows[i] as usize + 1), shape.1.max(cols[i] as usize + 1));
        }
    }
    let mut params = Params {
        layers: shapes
            .iter()
            .map(|&(fan_out, fan_in)| Layer {
                fan_in,
                fan_out,
                w: vec![f32::NAN; fan_in * fan_out],
                b: vec![f32::NAN; fan_out],
            })
            .collect(),
    };
    let mut filled = 0;
    for i in 0..w.len() {
        let layer = &mut params.layers[layers[i] as usize - 1];
        let (r, col) = (rows[i] as usize, cols[i] as usize);
        let slot = match kinds[i].as_str() {
            "weight" => layer.w.get_mut(r * layer.fan_in + col),
            "bias" if col == 0 => layer.b.get_mut(r),
            _ => None,
        };
        *slot.ok_or_else(|| bad(format!("entry {i}: {} ({r}, {col}) outside layer {}", kinds[i], layers[i])))? = w[i];
        filled += 1;
    }
    if filled != params.count() {
        return Err(bad(format!("{filled} entries for a network of {} parameters", params.count())));
    }
    Ok(params)
}

/// The tables of the finished run in `dir` (one that has its `runs.parquet`).
pub fn read_run(dir: &RunDir) -> Result<RunTables, AnalysisError> {
    let (run_id, run) = read_runs_row(&dir.table(TableFile::Runs))?;
    Ok(RunTables {
        dir: dir.clone(),
        run_id,
        run,
        history: read_history(&dir.table(TableFile::History))?,
        deviation: read_deviation(&dir.table(TableFile::Deviation))?,
        conditional: read_conditional(&dir.table(TableFile::Conditional))?,
        hist2d: read_hist2d(&dir.table(TableFile::Hist2d))?,
        spectrum: match dir.table(TableFile::Spectrum) {
            path if path.exists() => read_spectrum(&path)?,
            _ => Vec::new(),
        },
    })
}

/// The finished runs of a sweep folder, ordered by data set, width, mask and seed; unfinished
/// runs are left out.
pub fn read_sweep(sweep: &SweepDir) -> Result<Vec<RunTables>, ReadSweepError> {
    let mut out = Vec::new();
    for run in sweep.runs()? {
        if run.is_finished() {
            out.push(read_run(&run)?);
        }
    }
    out.sort_by(|a, b| {
        let key =
            |r: &RunTables| (r.run.dataset.clone(), r.run.width, r.run.mask.clone(), r.run.seed, r.run_id.clone());
        key(a).cmp(&key(b))
    });
    Ok(out)
}

/// Why the runs of a sweep folder cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadSweepError {
    #[error(transparent)]
    Folder(#[from] crate::LayoutError),
    #[error(transparent)]
    Table(#[from] AnalysisError),
}

/// One weight matrix of a snapshot, `rows × cols` in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

/// The weight matrix of `layer` in the snapshot file at `path` (0 × 0 if it has no such layer).
pub fn read_weight_matrix(path: &Path, layer: i32) -> Result<Matrix, AnalysisError> {
    let mut params = read_snapshot(path)?;
    let index = usize::try_from(layer - 1).ok().filter(|&i| i < params.layers.len());
    Ok(match index.map(|i| params.layers.swap_remove(i)) {
        Some(l) => Matrix { rows: l.fan_out, cols: l.fan_in, values: l.w },
        None => Matrix { rows: 0, cols: 0, values: Vec::new() },
    })
}
