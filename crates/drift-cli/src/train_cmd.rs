//! `drift train`: resolve the configuration (file, then flags), load the data, train with a
//! [`RunWriter`] and a progress display attached.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use drift_analysis::{write_atomic, RunMeta, RunWriter, SnapshotSchedule, DEFAULT_BINS};
use drift_data::{DatasetSpec, LoadOptions};
use drift_train::{effective_train_size, train, Observer, TrainConfig, TrainError};

use crate::args::TrainArgs;
use crate::bad_input;
use crate::progress::Progress;

/// The keys of a `--config` TOML file: the flags of `drift train`, spelled the same.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    dataset: Option<String>,
    data_dir: Option<PathBuf>,
    width: Option<usize>,
    depth: Option<usize>,
    epochs: Option<u32>,
    seed: Option<u64>,
    lr: Option<f64>,
    batch: Option<usize>,
    train_size: Option<usize>,
    loss: Option<String>,
    mask: Option<String>,
    snapshots: Option<String>,
    kernel: Option<String>,
    threads: Option<usize>,
}

/// A fully resolved `drift train` invocation.
pub struct Resolved {
    pub config: TrainConfig,
    pub spec: DatasetSpec,
    pub data_dir: Option<PathBuf>,
    pub schedule: SnapshotSchedule,
}

fn read_config_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = fs::read_to_string(path).map_err(|e| bad_input(format!("--config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad_input(format!("--config {}: {}", path.display(), e.message())))
}

/// File values, overridden by flags, over the defaults; every value checked here, before any work.
pub fn resolve(args: &TrainArgs) -> anyhow::Result<Resolved> {
    let file = match &args.config {
        Some(path) => read_config_file(path)?,
        None => FileConfig::default(),
    };
    let defaults = TrainConfig::default();
    let dataset = args.dataset.clone().or(file.dataset).unwrap_or(defaults.dataset.clone());
    let spec: DatasetSpec = dataset.parse().map_err(|e: String| bad_input(format!("--dataset: {e}")))?;
    let loss = match args.loss.clone().or(file.loss) {
        Some(text) => text.parse().map_err(|e: String| bad_input(format!("--loss: {e}")))?,
        None => defaults.loss,
    };
    let mask = match args.mask.clone().or(file.mask) {
        None => None,
        Some(text) => {
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => return Err(bad_input(format!("--mask: expected a single letter, got '{text}'"))),
            }
        }
    };
    let kernel = match args.kernel.clone().or(file.kernel) {
        Some(text) => text.parse().map_err(|e: String| bad_input(format!("--kernel: {e}")))?,
        None => defaults.kernel,
    };
    let schedule = match args.snapshots.clone().or(file.snapshots) {
        Some(text) => text.parse().map_err(|e: String| bad_input(format!("--snapshots: {e}")))?,
        None => SnapshotSchedule::default(),
    };
    let config = TrainConfig {
        dataset: spec.to_string(),
        width: args.width.or(file.width).unwrap_or(defaults.width),
        depth: args.depth.or(file.depth).unwrap_or(defaults.depth),
        epochs: args.epochs.or(file.epochs).unwrap_or(defaults.epochs),
        seed: args.seed.or(file.seed).unwrap_or(defaults.seed),
        lr: args.lr.or(file.lr).unwrap_or(defaults.lr),
        batch_size: args.batch.or(file.batch).unwrap_or(defaults.batch_size),
        train_size: args.train_size.or(file.train_size),
        loss,
        mask,
        kernel,
        threads: args.threads.or(file.threads).unwrap_or(defaults.threads),
    };
    config.validate().map_err(|e| bad_input(format!("--{e}")))?;
    Ok(Resolved { config, spec, data_dir: args.data_dir.clone().or(file.data_dir), schedule })
}

/// Refuses an output folder that already holds files: a run is never overwritten.
fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut entries = fs::read_dir(out).map_err(|e| bad_input(format!("--out {}: {e}", out.display())))?;
        if entries.next().is_some() {
            return Err(bad_input(format!(
                "--out {}: folder is not empty; drift never overwrites a run, choose a new folder",
                out.display()
            )));
        }
    }
    Ok(())
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let resolved = resolve(&args)?;
    check_out_dir(&args.out)?;
    let config = &resolved.config;
    let mut opts = LoadOptions::new(config.seed);
    opts.data_dir = resolved.data_dir.clone();
    let data = drift_data::load(&resolved.spec, &opts).map_err(|e| bad_input(e.to_string()))?;
    for warning in &data.warnings {
        eprintln!("drift: warning: {warning}");
    }
    let train_size = effective_train_size(config, &data).map_err(|e| bad_input(format!("--{e}")))?;
    let data_key = match resolved.spec {
        DatasetSpec::Synthetic => data.source.clone(),
        _ => String::new(),
    };
    let meta = RunMeta::new(config, &data, train_size, &data_key);
    let (run_id, result_keys) = (meta.run_id.clone(), meta.result_keys.clone());

    let out = &args.out;
    let mut writer = RunWriter::create(out, meta, resolved.schedule.clone(), DEFAULT_BINS)
        .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    let threads =
        if config.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { config.threads };
    let provenance = |status: &str, epochs_done: u32, wall: f64| {
        serde_json::json!({
            "run_id": run_id,
            "status": status,
            "epochs_done": epochs_done,
            "wall_seconds": wall,
            "config": config,
            "result_keys": result_keys.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect::<serde_json::Map<_, _>>(),
            "snapshots": resolved.schedule.to_string(),
            "bins": DEFAULT_BINS,
            "data": {
                "name": data.name,
                "source": data.source,
                "train_size": train_size,
                "test_size": data.test.len(),
                "input_dim": data.input_dim,
                "classes": data.classes,
                "warnings": data.warnings,
            },
            "provenance": {
                "drift_version": env!("CARGO_PKG_VERSION"),
                "git_revision": env!("DRIFT_GIT_REVISION"),
                "kernel": config.resolved_kernel().as_str(),
                "threads": threads,
                "host_cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        })
    };
    write_run_json(out, &provenance("running", 0, 0.0))?;

    let mut progress = Progress::new(config.epochs, train_size);
    let mut observers: [&mut dyn Observer; 2] = [&mut writer, &mut progress];
    let summary = train(config, &data, &mut observers).map_err(|e| match e {
        TrainError::Config(_) | TrainError::DataMismatch(_) => bad_input(e.to_string()),
        other => anyhow::anyhow!(other),
    })?;
    progress.done(&summary);
    write_run_json(out, &provenance(summary.status.as_str(), summary.epochs_done, summary.wall_seconds))?;
    eprintln!(
        "drift: run {run_id} {} after {} epochs; tables in {}",
        summary.status.as_str(),
        summary.epochs_done,
        out.display()
    );
    Ok(())
}

fn write_run_json(out: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_atomic(&out.join("run.json"), |w| {
        use std::io::Write;
        w.write_all(text.as_bytes())?;
        w.write_all(b"\n")
    })?;
    Ok(())
}
