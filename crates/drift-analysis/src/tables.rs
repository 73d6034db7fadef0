//! The rows of each table of DESIGN.md and their Arrow columns. Types: ids and labels `Utf8`,
//! epochs, layers, bins, rows and columns `Int32`, counts `Int64`, the seed `UInt64`,
//! statistics `Float64` (nullable where undefined), snapshot weights `Float32`.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field};

fn field(name: &str, ty: DataType, nullable: bool) -> Field {
    Field::new(name, ty, nullable)
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn opt_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn i32s(values: impl Iterator<Item = i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values))
}

fn opt_i32s(values: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    Arc::new(Int32Array::from_iter(values))
}

fn i64s(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn f64s(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn opt_f64s(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(values))
}

/// A table: its fields and the columns of a slice of rows.
pub trait Table: Sized {
    fn fields() -> Vec<Field>;
    fn columns(run_id: &str, rows: &[Self]) -> Vec<ArrayRef>;
}

/// `history.parquet`: one row per epoch (0 = before training).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub epoch: i32,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    pub seconds: f64,
}

impl Table for HistoryRow {
    fn fields() -> Vec<Field> {
        let mut f = vec![field("run_id", DataType::Utf8, false), field("epoch", DataType::Int32, false)];
        for name in ["train_loss", "train_acc", "test_loss", "test_acc", "seconds"] {
            f.push(field(name, DataType::Float64, false));
        }
        f
    }
    fn columns(run_id: &str, rows: &[Self]) -> Vec<ArrayRef> {
        vec![
            strings(rows.iter().map(|_| run_id)),
            i32s(rows.iter().map(|r| r.epoch)),
            f64s(rows.iter().map(|r| r.train_loss)),
            f64s(rows.iter().map(|r| r.train_acc)),
            f64s(rows.iter().map(|r| r.test_loss)),
            f64s(rows.iter().map(|r| r.test_acc)),
            f64s(rows.iter().map(|r| r.seconds)),
        ]
    }
}

/// Quantile levels of `deviation.parquet`, with their column names.
pub const DEVIATION_QUANTILES: [(&str, f64); 7] =
    [("p01", 0.01), ("p05", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95), ("p99", 0.99)];

/// `deviation.parquet`: statistics of `Δw = w − w0` for one epoch, layer and kind.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviationRow {
    pub epoch: i32,
    pub layer: i32,
    pub kind: &'static str,
    pub n: i64,
    pub mean: f64,
    pub std: f64,
    pub mean_abs: f64,
    pub rms: f64,
    pub max_abs: f64,
    pub skewness: Option<f64>,
    pub kurtosis: Option<f64>,
    pub quantiles: [f64; 7],
    /// `‖W − W0‖_F / ‖W0‖_F`; `None` where `W0 = 0` (biases).
    pub rel_change: Option<f64>,
    pub frac_beyond_limit: f64,
}

impl Table for DeviationRow {
    fn fields() -> Vec<Field> {
        let mut f = vec![
            field("run_id", DataType::Utf8, false),
            field("epoch", DataType::Int32, false),
            field("layer", DataType::Int32, false),
            field("kind", DataType::Utf8, false),
            field("n", DataType::Int64, false),
        ];
        for name in ["mean", "std", "mean_abs", "rms", "max_abs"] {
            f.push(field(name, DataType::Float64, false));
        }
        f.push(field("skewness", DataType::Float64, true));
        f.push(field("kurtosis", DataType::Float64, true));
        for (name, _) in DEVIATION_QUANTILES {
            f.push(field(name, DataType::Float64, false));
        }
        f.push(field("rel_change", DataType::Float64, true));
        f.push(field("frac_beyond_limit", DataType::Float64, false));
        f
    }
    fn columns(run_id: &str, rows: &[Self]) -> Vec<ArrayRef> {
        let mut c = vec![
            strings(rows.iter().map(|_| run_id)),
            i32s(rows.iter().map(|r| r.epoch)),
            i32s(rows.iter().map(|r| r.layer)),
            strings(rows.iter().map(|r| r.kind)),
            i64s(rows.iter().map(|r| r.n)),
            f64s(rows.iter().map(|r| r.mean)),
            f64s(rows.iter().map(|r| r.std)),
            f64s(rows.iter().map(|r| r.mean_abs)),
            f64s(rows.iter().map(|r| r.rms)),
            f64s(rows.iter().map(|r| r.max_abs)),
            opt_f64s(rows.iter().map(|r| r.skewness)),
            opt_f64s(rows.iter().map(|r| r.kurtosis)),
        ];
        for q in 0..DEVIATION_QUANTILES.len() {
            c.push(f64s(rows.iter().map(|r| r.quantiles[q])));
        }
        c.push(opt_f64s(rows.iter().map(|r| r.rel_change)));
        c.push(f64s(rows.iter().map(|r| r.frac_beyond_limit)));
        c
    }
}

/// Quantile levels of the weights in `conditional.parquet` (the bands of Figure 3).
pub const CONDITIONAL_QUANTILES: [(&str, f64); 5] =
    [("p02", 0.02), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p98", 0.98)];

/// `conditional.parquet`: `Δw` and `w` of the weights whose `w0` falls in one bin.
/// Statistics are null for an empty bin; shape statistics also where the spread is 0.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionalRow {
    pub epoch: i32,
    pub layer: i32,
    pub bin: i32,
    pub w0_lo: f64,
    pub w0_hi: f64,
    pub count: i64,
    pub mean_dw: Option<f64>,
    pub std_dw: Option<f64>,
    pub skew_dw: Option<f64>,
    pub kurt_dw: Option<f64>,
    pub mode_dw: Option<f64>,
    pub w_quantiles: Option<[f64; 5]>,
}

impl Table for ConditionalRow {
    fn fields() -> Vec<Field> {
        let mut f = vec![
            field("run_id", DataType::Utf8, false),
            field("epoch", DataType::Int32, false),
            field("layer", DataType::Int32, false),
            field("bin", DataType::Int32, false),
            field("w0_lo", DataType::Float64, false),
            field("w0_hi", DataType::Float64, false),
            field("count", DataType::Int64, false),
        ];
        for name in ["mean_dw", "std_dw", "skew_dw", "kurt_dw", "mode_dw"] {
            f.push(field(name, DataType::Float64, true));
        }
        for (name, _) in CONDITIONAL_QUANTILES {
            f.push(field(name, DataType::Float64, true));
        }
        f
    }
    fn columns(run_id: &str, rows: &[Self]) -> Vec<ArrayRef> {
        let mut c = vec![
            strings(rows.iter().map(|_| run_id)),
            i32s(rows.iter().map(|r| r.epoch)),
            i32s(rows.iter().map(|r| r.layer)),
            i32s(rows.iter().map(|r| r.bin)),
            f64s(rows.iter().map(|r| r.w0_lo)),
            f64s(rows.iter().map(|r| r.w0_hi)),
            i64s(rows.iter().map(|r| r.count)),
            opt_f64s(rows.iter().map(|r| r.mean_dw)),
            opt_f64s(rows.iter().map(|r| r.std_dw)),
            opt_f64s(rows.iter().map(|r| r.skew_dw)),
            opt_f64s(rows.iter().map(|r| r.kurt_dw)),
            opt_f64s(rows.iter().map(|r| r.mode_dw)),
        ];
        for q in 0..CONDITIONAL_QUANTILES.len() {
            c.push(opt_f64s(rows.iter().map(|r| r.w_quantiles.map(|w| w[q]))));
        }
        c
    }
}

/// `hist2d.parquet`: one non-empty cell of the 2-D histogram of `(w0, w)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hist2dRow {
    pub epoch: i32,
    pub layer: i32,
    pub w0_bin: i32,
    pub w_bin: i32,
    pub w0_lo: f64,
    pub w0_hi: f64,
    pub w_lo: f64,
    pub w_hi: f64,
    pub count: i64,
}

impl Table for Hist2dRow {
    fn fields() -> Vec<Field> {
        let mut f = vec![field("run_id", DataType::Utf8, false)];
        for name in ["epoch", "layer", "w0_bin", "w_bin"] {
            f.push(field(name, DataType::Int32, false));
        }
        for name in ["w0_lo", "w0_hi", "w_lo", "w_hi"] {
            f.push(field(name, DataType::Float64, false));
        }
        f.push(field("count", DataType::Int64, false));
        f
    }
    fn columns(run_id: &str, rows: &[Self]) -> Vec<ArrayRef> {
        vec![
            strings(rows.iter().map(|_| run_id)),
            i32s(rows.iter().map(|r| r.epoch)),
            i32s(rows.iter().map(|r| r.layer)),
            i32s(rows.iter().map(|r| r.w0_bin)),
            i32s(rows.iter().map(|r| r.w_bin)),
            f64s(rows.iter().map(|r| r.w0_lo)),
            f64s(rows.iter().map(|r| r.w0_hi)),
            f64s(rows.iter().map(|r| r.w_lo)),
            f64s(rows.iter().map(|r| r.w_hi)),
            i64s(rows.iter().map(|r| r.count)),
        ]
    }
}

/// `spectrum.parquet`: one singular value of one weight matrix of a layer at a snapshot epoch.
/// `matrix` is `dw` (ΔW = W − W0), `w0` or `w`; `index` counts from 0, largest first. The row
/// with `index = 0` of each matrix also carries its stable rank (‖M‖²_F / ‖M‖²₂) and the shares
/// of ‖M‖²_F in its top 1, 5 and 10 singular values (null elsewhere, and where M = 0).
#[derive(Clone, Debug, PartialEq)]
pub struct SpectrumRow {
    pub epoch: i32,
    pub layer: i32,
    pub matrix: &'static str,
    pub index: i32,
    pub sigma: f64,
    pub stable_rank: Option<f64>,
    pub top_shares: Option<[f64; 3]>,
}

/// The `k` of the `topK_share` columns of `spectrum.parquet`.
pub const TOP_SHARES: [(&str, usize); 3] = [("top1_share", 1), ("top5_share", 5), ("top10_share", 10)];

impl Table for SpectrumRow {
    fn fields() -> Vec<Field> {
        let mut f = vec![
            field("run_id", DataType::Utf8, false),
            field("epoch", DataType::Int32, false),
            field("layer", DataType::Int32, false),
            field("matrix", DataType::Utf8, false),
            field("index", DataType::Int32, false),
            field("sigma", DataType::Float64, false),
            field("stable_rank", DataType::Float64, true),
        ];
        f.extend(TOP_SHARES.map(|(name, _)| field(name, DataType::Float64, true)));
        f
    }
    fn columns(run_id: &str, rows: &[Self]) -> Vec<ArrayRef> {
        let mut c = vec![
            strings(rows.iter().map(|_| run_id)),
            i32s(rows.iter().map(|r| r.epoch)),
            i32s(rows.iter().map(|r| r.layer)),
            strings(rows.iter().map(|r| r.matrix)),
            i32s(rows.iter().map(|r| r.index)),
            f64s(rows.iter().map(|r| r.sigma)),
            opt_f64s(rows.iter().map(|r| r.stable_rank)),
        ];
        for k in 0..TOP_SHARES.len() {
            c.push(opt_f64s(rows.iter().map(|r| r.top_shares.map(|s| s[k]))));
        }
        c
    }
}

/// `runs.parquet`: one row describing a run and its outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub dataset: String,
    pub train_size: i64,
    pub test_size: i64,
    pub input_dim: i64,
    pub classes: i64,
    pub width: i64,
    pub depth: i64,
    pub seed: u64,
    pub lr: f64,
    pub batch_size: i64,
    pub epochs: i32,
    pub loss_mode: String,
    pub init: String,
    pub mask: Option<String>,
    /// The GEMM kernel the run used (`avx512`, `avx2`, `portable`, `matrixmultiply`).
    pub kernel: String,
    /// The input transform (`raw`, `invert`).
    pub input: String,
    /// Mean ‖x‖² of the training inputs used: the scale of the first layer's SGD step.
    pub input_sq_norm: f64,
    /// `sgd`, `momentum` or `adam` (the hyper-parameters are in the metadata and `run.json`).
    pub optimizer: String,
    /// The optimiser's hyper-parameters: `momentum` for momentum, `beta1`, `beta2`, `eps` for
    /// Adam; `None` where the optimiser has no such parameter.
    pub momentum: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    /// The train loss at which the run was to stop (`None`: it trains all its epochs).
    pub target_loss: Option<f64>,
    pub status: String,
    pub epochs_done: i32,
    pub min_train_loss: f64,
    pub epoch_min_train_loss: i32,
    pub min_test_loss: f64,
    pub epoch_min_test_loss: i32,
    pub divergence_epoch: Option<i32>,
    pub wall_seconds: f64,
}

impl Table for RunRow {
    fn fields() -> Vec<Field> {
        let mut f = vec![field("run_id", DataType::Utf8, false), field("dataset", DataType::Utf8, false)];
        for name in ["train_size", "test_size", "input_dim", "classes", "width", "depth"] {
            f.push(field(name, DataType::Int64, false));
        }
        f.extend([
            field("seed", DataType::UInt64, false),
            field("lr", DataType::Float64, false),
            field("batch_size", DataType::Int64, false),
            field("epochs", DataType::Int32, false),
            field("loss_mode", DataType::Utf8, false),
            field("init", DataType::Utf8, false),
            field("mask", DataType::Utf8, true),
            field("kernel", DataType::Utf8, false),
            field("input", DataType::Utf8, false),
            field("input_sq_norm", DataType::Float64, false),
            field("optimizer", DataType::Utf8, false),
            field("momentum", DataType::Float64, true),
            field("beta1", DataType::Float64, true),
            field("beta2", DataType::Float64, true),
            field("eps", DataType::Float64, true),
            field("target_loss", DataType::Float64, true),
            field("status", DataType::Utf8, false),
            field("epochs_done", DataType::Int32, false),
            field("min_train_loss", DataType::Float64, false),
            field("epoch_min_train_loss", DataType::Int32, false),
            field("min_test_loss", DataType::Float64, false),
            field("epoch_min_test_loss", DataType::Int32, false),
            field("divergence_epoch", DataType::Int32, true),
            field("wall_seconds", DataType::Float64, false),
        ]);
        f
    }
    fn columns(run_id: &str, rows: &[Self]) -> Vec<ArrayRef> {
        vec![
            strings(rows.iter().map(|_| run_id)),
            strings(rows.iter().map(|r| r.dataset.as_str())),
            i64s(rows.iter().map(|r| r.train_size)),
            i64s(rows.iter().map(|r| r.test_size)),
            i64s(rows.iter().map(|r| r.input_dim)),
            i64s(rows.iter().map(|r| r.classes)),
            i64s(rows.iter().map(|r| r.width)),
            i64s(rows.iter().map(|r| r.depth)),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seed))),
            f64s(rows.iter().map(|r| r.lr)),
            i64s(rows.iter().map(|r| r.batch_size)),
            i32s(rows.iter().map(|r| r.epochs)),
            strings(rows.iter().map(|r| r.loss_mode.as_str())),
            strings(rows.iter().map(|r| r.init.as_str())),
            opt_strings(rows.iter().map(|r| r.mask.as_deref())),
            strings(rows.iter().map(|r| r.kernel.as_str())),
            strings(rows.iter().map(|r| r.input.as_str())),
            f64s(rows.iter().map(|r| r.input_sq_norm)),
            strings(rows.iter().map(|r| r.optimizer.as_str())),
            opt_f64s(rows.iter().map(|r| r.momentum)),
            opt_f64s(rows.iter().map(|r| r.beta1)),
            opt_f64s(rows.iter().map(|r| r.beta2)),
            opt_f64s(rows.iter().map(|r| r.eps)),
            opt_f64s(rows.iter().map(|r| r.target_loss)),
            strings(rows.iter().map(|r| r.status.as_str())),
            i32s(rows.iter().map(|r| r.epochs_done)),
            f64s(rows.iter().map(|r| r.min_train_loss)),
            i32s(rows.iter().map(|r| r.epoch_min_train_loss)),
            f64s(rows.iter().map(|r| r.min_test_loss)),
            i32s(rows.iter().map(|r| r.epoch_min_test_loss)),
            opt_i32s(rows.iter().map(|r| r.divergence_epoch)),
            f64s(rows.iter().map(|r| r.wall_seconds)),
        ]
    }
}

/// The columns of a snapshot: every weight and bias entry, bit-exact as f32.
/// Biases have `col = 0`.
pub fn snapshot_fields() -> Vec<Field> {
    [snapshot_index_fields(), snapshot_value_fields()].concat()
}

/// The snapshot columns that say what each row is, the same at every epoch of a run.
pub fn snapshot_index_fields() -> Vec<Field> {
    vec![
        field("layer", DataType::Int32, false),
        field("kind", DataType::Utf8, false),
        field("row", DataType::Int32, false),
        field("col", DataType::Int32, false),
    ]
}

/// The snapshot column that changes from epoch to epoch.
pub fn snapshot_value_fields() -> Vec<Field> {
    vec![field("w", DataType::Float32, false)]
}

/// The columns of [`snapshot_index_fields`], which say what each row is (`layer`, `kind`, `row`, `col`),
/// for layers of the given `(fan_out, fan_in)`: the same at every epoch of a run. Built straight
/// into buffers of the final size: a W = 1000 snapshot has two million rows.
pub fn snapshot_index_columns(shapes: &[(usize, usize)]) -> Vec<ArrayRef> {
    let rows: usize = shapes.iter().map(|&(fan_out, fan_in)| fan_out * (fan_in + 1)).sum();
    let (mut layer, mut row, mut col) = (Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows));
    let mut kind = arrow::array::StringBuilder::with_capacity(rows, rows * "weight".len());
    for (l, &(fan_out, fan_in)) in shapes.iter().enumerate() {
        layer.resize(layer.len() + fan_out * (fan_in + 1), l as i32 + 1);
        row.extend((0..fan_out as i32).flat_map(|i| std::iter::repeat_n(i, fan_in)));
        col.extend((0..fan_out).flat_map(|_| 0..fan_in as i32));
        row.extend(0..fan_out as i32);
        col.resize(col.len() + fan_out, 0);
        (0..fan_out * fan_in).for_each(|_| kind.append_value("weight"));
        (0..fan_out).for_each(|_| kind.append_value("bias"));
    }
    vec![
        Arc::new(Int32Array::from(layer)),
        Arc::new(kind.finish()),
        Arc::new(Int32Array::from(row)),
        Arc::new(Int32Array::from(col)),
    ]
}

/// The column of [`snapshot_value_fields`], `w`: each layer's weights (row-major) then its biases, in the
/// order of [`snapshot_index_columns`].
pub fn snapshot_values(layers: &[(&[f32], &[f32])]) -> ArrayRef {
    let mut w = Vec::with_capacity(layers.iter().map(|(w, b)| w.len() + b.len()).sum());
    for (weights, biases) in layers {
        w.extend_from_slice(weights);
        w.extend_from_slice(biases);
    }
    Arc::new(Float32Array::from(w))
}
