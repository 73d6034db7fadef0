//! One run, as `drift train` and `drift sweep` both carry it out: run keys → a checked
//! configuration → data → tables in a folder, with `run.json` before and after.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use drift_analysis::{write_atomic, ResumeError, RunMeta, RunWriter, SnapshotSchedule, CHECKPOINT_FILE, DEFAULT_BINS};
use drift_data::synthetic::SyntheticConfig;
use drift_data::{Dataset, DatasetSpec, Input, LoadOptions};
use drift_train::{effective_train_size, train_with, Observer, RunKeys, RunSummary, TrainConfig, TrainError};

use crate::bad_input;

/// A run's keys, checked and completed with the defaults of `drift train`.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub config: TrainConfig,
    pub spec: DatasetSpec,
    pub data_dir: Option<PathBuf>,
    /// HASYv2's fold (1 unless set).
    pub fold: u32,
    /// The generator's parameters, for `synthetic` (defaults: MNIST's shape).
    pub synthetic: SyntheticConfig,
    pub schedule: SnapshotSchedule,
}

impl Resolved {
    /// Tells apart the data sets that runs of a sweep can share: real data sets do not depend on
    /// the seed, a synthetic one is generated from it.
    pub fn data_key(&self) -> String {
        let seed = if self.spec == DatasetSpec::Synthetic { self.config.seed } else { 0 };
        format!("{}|{:?}|{}|{}|{:?}|{seed}", self.spec, self.data_dir, self.fold, self.config.input, self.synthetic)
    }
}

/// The generator's parameters from the `synthetic-*` keys, which only a synthetic data set takes.
fn synthetic_config(keys: &RunKeys, spec: &DatasetSpec) -> Result<SyntheticConfig, String> {
    let given = [
        ("synthetic-classes", keys.synthetic_classes.is_some()),
        ("synthetic-side", keys.synthetic_side.is_some()),
        ("synthetic-train", keys.synthetic_train.is_some()),
        ("synthetic-test", keys.synthetic_test.is_some()),
        ("synthetic-background", keys.synthetic_background.is_some()),
        ("synthetic-imbalance", keys.synthetic_imbalance.is_some()),
    ];
    if *spec != DatasetSpec::Synthetic {
        if let Some((key, _)) = given.iter().find(|(_, set)| *set) {
            return Err(format!("--{key}: only for --dataset synthetic, not {spec}"));
        }
    }
    let d = SyntheticConfig::default();
    let background = match &keys.synthetic_background {
        Some(text) => text.parse().map_err(|e| format!("--synthetic-background: {e}"))?,
        None => d.background,
    };
    let config = SyntheticConfig {
        train: keys.synthetic_train.unwrap_or(d.train),
        test: keys.synthetic_test.unwrap_or(d.test),
        classes: keys.synthetic_classes.unwrap_or(d.classes),
        side: keys.synthetic_side.unwrap_or(d.side),
        background,
        imbalance: keys.synthetic_imbalance.unwrap_or(d.imbalance),
        ..d
    };
    config.validate().map_err(|e| format!("--synthetic-*: {e}"))?;
    Ok(config)
}

/// Checks every key before any work starts; an error names the option (`--width: …`).
pub fn resolve(keys: RunKeys) -> Result<Resolved, String> {
    let defaults = TrainConfig::default();
    let dataset = keys.dataset.clone().unwrap_or(defaults.dataset.clone());
    let spec: DatasetSpec = dataset.parse().map_err(|e| format!("--dataset: {e}"))?;
    let synthetic = synthetic_config(&keys, &spec)?;
    let loss = match keys.loss {
        Some(text) => text.parse().map_err(|e| format!("--loss: {e}"))?,
        None => defaults.loss,
    };
    let mask = match keys.mask {
        None => None,
        Some(text) => {
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => return Err(format!("--mask: expected a single letter, got '{text}'")),
            }
        }
    };
    let kernel = match keys.kernel {
        Some(text) => text.parse().map_err(|e| format!("--kernel: {e}"))?,
        None => defaults.kernel,
    };
    let input: Input = match &keys.input {
        Some(text) => text.parse().map_err(|e| format!("--input: {e}"))?,
        None => Input::Raw,
    };
    let fold = keys.fold.unwrap_or(1);
    if keys.fold.is_some() && !matches!(spec, DatasetSpec::Hasyv2) {
        return Err(format!("--fold: only for --dataset hasyv2, not {spec}"));
    }
    if !(1..=10).contains(&fold) {
        return Err(format!("--fold: HASYv2 has folds 1 to 10, got {fold}"));
    }
    let schedule = match keys.snapshots {
        Some(text) => text.parse().map_err(|e: String| format!("--snapshots: {e}"))?,
        None => SnapshotSchedule::default(),
    };
    let config = TrainConfig {
        dataset: spec.to_string(),
        width: keys.width.unwrap_or(defaults.width),
        depth: keys.depth.unwrap_or(defaults.depth),
        epochs: keys.epochs.unwrap_or(defaults.epochs),
        seed: keys.seed.unwrap_or(defaults.seed),
        lr: keys.lr.unwrap_or(defaults.lr),
        batch_size: keys.batch.unwrap_or(defaults.batch_size),
        train_size: keys.train_size,
        input,
        loss,
        mask,
        kernel,
        threads: keys.threads.unwrap_or(defaults.threads),
    };
    config.validate().map_err(|e| format!("--{e}"))?;
    Ok(Resolved { config, spec, data_dir: keys.data_dir, fold, synthetic, schedule })
}

/// The data a resolved run trains on; its warnings are printed.
pub fn load_data(resolved: &Resolved) -> anyhow::Result<Dataset> {
    let mut opts = LoadOptions::new(resolved.config.seed);
    opts.data_dir = resolved.data_dir.clone();
    opts.fold = resolved.fold;
    opts.synthetic = resolved.synthetic.clone();
    opts.input = resolved.config.input;
    let data = drift_data::load(&resolved.spec, &opts).map_err(|e| bad_input(e.to_string()))?;
    for warning in &data.warnings {
        eprintln!("drift: warning: {warning}");
    }
    Ok(data)
}

/// A resolved run with its data: everything needed to name it and carry it out.
pub struct Planned {
    pub resolved: Resolved,
    pub data: Arc<Dataset>,
    pub meta: RunMeta,
}

impl Planned {
    /// Checks the configuration against the data (`--train-size`, say) and derives the run id.
    pub fn new(resolved: Resolved, data: Arc<Dataset>) -> Result<Planned, String> {
        let config = &resolved.config;
        let train_size = effective_train_size(config, &data).map_err(|e| format!("--{e}"))?;
        let data_key = match resolved.spec {
            DatasetSpec::Synthetic => data.source.clone(),
            DatasetSpec::Hasyv2 => format!("fold={}", resolved.fold),
            _ => String::new(),
        };
        let meta = RunMeta::new(config, &data, train_size, &data_key);
        Ok(Planned { resolved, data, meta })
    }

    pub fn run_id(&self) -> &str {
        &self.meta.run_id
    }

    pub fn train_size(&self) -> usize {
        self.meta.run.train_size as usize
    }

    /// Trains into `out` (created if missing) with `extra` observing too; `run.json` is written
    /// before (status `running`) and after. With `resume`, a checkpoint in `out` is continued
    /// (one of another run or drift version is refused). Stops between two batches once the
    /// process is asked to ([`crate::signals`]), leaving a checkpoint: status `interrupted`.
    pub fn execute(&self, out: &Path, extra: &mut dyn Observer, resume: bool) -> anyhow::Result<RunSummary> {
        let config = &self.resolved.config;
        let schedule = self.resolved.schedule.clone();
        let checkpoint = out.join(CHECKPOINT_FILE);
        let (mut writer, state) = if resume && checkpoint.is_file() {
            let (writer, state) =
                RunWriter::resume(out, self.meta.clone(), schedule, DEFAULT_BINS).map_err(|e| match e {
                    ResumeError::Checkpoint { .. } => bad_input(format!("cannot resume: {e}")),
                    ResumeError::Tables(e) => anyhow::anyhow!("cannot resume from {}: {e}", out.display()),
                })?;
            eprintln!("drift: run {} resumes after epoch {}", self.run_id(), state.epochs_done);
            (writer, Some(state))
        } else {
            let writer = RunWriter::create(out, self.meta.clone(), schedule, DEFAULT_BINS)
                .with_context(|| format!("cannot create the output folder {}", out.display()))?;
            (writer, None)
        };
        write_run_json(out, &self.provenance("running", 0, 0.0))?;
        let mut observers: [&mut dyn Observer; 2] = [&mut writer, extra];
        let summary = train_with(config, &self.data, &mut observers, state, Some(crate::signals::stop_flag()))
            .map_err(|e| match e {
                TrainError::Config(_) | TrainError::DataMismatch(_) => bad_input(e.to_string()),
                other => anyhow::anyhow!(other),
            })?;
        write_run_json(out, &self.provenance(summary.status.as_str(), summary.epochs_done, summary.wall_seconds))?;
        Ok(summary)
    }

    fn provenance(&self, status: &str, epochs_done: u32, wall: f64) -> serde_json::Value {
        let (config, data, cpus) = (&self.resolved.config, &self.data, available_threads());
        let threads = if config.threads == 0 { cpus } else { config.threads };
        serde_json::json!({
            "run_id": self.meta.run_id,
            "status": status,
            "epochs_done": epochs_done,
            "wall_seconds": wall,
            "config": config,
            "result_keys": self.meta.result_keys.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect::<serde_json::Map<_, _>>(),
            "snapshots": self.resolved.schedule.to_string(),
            "bins": DEFAULT_BINS,
            "data": {
                "name": data.name,
                "source": data.source,
                "train_size": self.train_size(),
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
                "host_cpus": cpus,
            },
        })
    }
}

/// Checks, before any work, that `out` can be created and written: its nearest existing
/// ancestor must be a folder where a file can be made (a read-only or full file system is
/// refused here, not after the first epoch). Creates nothing that stays.
pub fn check_writable(option: &str, out: &Path) -> anyhow::Result<()> {
    let mut existing = out;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(bad_input(format!("{option} {}: {} is not a folder", out.display(), existing.display())));
    }
    let probe = existing.join(format!(".drift-write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(bad_input(format!("{option} {}: cannot write in {}: {e}", out.display(), existing.display()))),
    }
}

/// The number of cores this process may use.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
