//! Run keys (flags, `--config` files, sweep entries) → a checked configuration: every key is
//! checked before any work starts, and an error names the key.

use std::path::{Path, PathBuf};

use drift_analysis::SnapshotSchedule;
use drift_data::synthetic::SyntheticConfig;
use drift_data::{DatasetSpec, Input};
use drift_train::{RunKeys, TrainConfig};

use crate::Error;

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
    /// Keys that were accepted but changed or partly ignored, said to the user.
    pub warnings: Vec<String>,
}

impl Resolved {
    /// Tells apart the data sets that runs of a sweep can share: real data sets do not depend on
    /// the seed, a synthetic one is generated from it.
    pub fn data_key(&self) -> String {
        let seed = if self.spec == DatasetSpec::Synthetic { self.config.seed } else { 0 };
        format!("{}|{:?}|{}|{}|{:?}|{seed}", self.spec, self.data_dir, self.fold, self.config.input, self.synthetic)
    }
}

fn key_error(key: &str, message: impl std::fmt::Display) -> Error {
    Error::Key { key: key.to_string(), message: message.to_string() }
}

/// Parses an optional text key, or takes its default.
fn parse_or<T: std::str::FromStr>(key: &str, text: &Option<String>, default: T) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    match text {
        Some(text) => text.parse().map_err(|e| key_error(key, e)),
        None => Ok(default),
    }
}

/// The generator's parameters from the `synthetic-*` keys, which only a synthetic data set takes.
fn synthetic_config(keys: &RunKeys, spec: &DatasetSpec) -> Result<SyntheticConfig, Error> {
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
            return Err(key_error(key, format!("only for --dataset synthetic, not {spec}")));
        }
    }
    let d = SyntheticConfig::default();
    let config = SyntheticConfig {
        train: keys.synthetic_train.unwrap_or(d.train),
        test: keys.synthetic_test.unwrap_or(d.test),
        classes: keys.synthetic_classes.unwrap_or(d.classes),
        side: keys.synthetic_side.unwrap_or(d.side),
        background: parse_or("synthetic-background", &keys.synthetic_background, d.background)?,
        imbalance: keys.synthetic_imbalance.unwrap_or(d.imbalance),
        ..d
    };
    config.validate().map_err(|e| key_error("synthetic-*", e))?;
    Ok(config)
}

/// The number of cores this process may use.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks every key before any work starts; an error names the key (`width: …`, shown as
/// `--width: …`).
pub fn resolve(keys: RunKeys) -> Result<Resolved, Error> {
    let defaults = TrainConfig::default();
    let mut warnings = Vec::new();
    let dataset = keys.dataset.clone().unwrap_or(defaults.dataset.clone());
    let spec: DatasetSpec = dataset.parse().map_err(|e| key_error("dataset", e))?;
    let synthetic = synthetic_config(&keys, &spec)?;
    if spec == DatasetSpec::Synthetic {
        if let Some(dir) = &keys.data_dir {
            return Err(key_error(
                "data-dir",
                format!("{}: the synthetic data set is generated from the seed and reads no folder", dir.display()),
            ));
        }
    }
    let mask = match keys.mask {
        None => None,
        Some(text) => {
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => return Err(key_error("mask", format!("expected a single letter, got '{text}'"))),
            }
        }
    };
    let fold = keys.fold.unwrap_or(1);
    if keys.fold.is_some() && !matches!(spec, DatasetSpec::Hasyv2) {
        return Err(key_error("fold", format!("only for --dataset hasyv2, not {spec}")));
    }
    if !(1..=10).contains(&fold) {
        return Err(key_error("fold", format!("HASYv2 has folds 1 to 10, got {fold}")));
    }
    let cores = available_threads();
    let mut threads = keys.threads.unwrap_or(defaults.threads);
    if threads > cores {
        // The thread count never changes a result, so capping it is safe; more threads than
        // cores only oversubscribe (and 10^10 of them would never start).
        warnings.push(format!("--threads {threads}: this machine has {cores} cores; using {cores}"));
        threads = cores;
    }
    let config = TrainConfig {
        dataset: spec.to_string(),
        width: keys.width.unwrap_or(defaults.width),
        depth: keys.depth.unwrap_or(defaults.depth),
        epochs: keys.epochs.unwrap_or(defaults.epochs),
        seed: keys.seed.unwrap_or(defaults.seed),
        lr: keys.lr.unwrap_or(defaults.lr),
        batch_size: keys.batch.unwrap_or(defaults.batch_size),
        train_size: keys.train_size,
        input: parse_or("input", &keys.input, Input::Raw)?,
        loss: parse_or("loss", &keys.loss, defaults.loss)?,
        init: parse_or("init", &keys.init, defaults.init)?,
        optimizer: parse_or("optimizer", &keys.optimizer, defaults.optimizer)?,
        momentum: keys.momentum.unwrap_or(defaults.momentum),
        beta1: keys.beta1.unwrap_or(defaults.beta1),
        beta2: keys.beta2.unwrap_or(defaults.beta2),
        eps: keys.eps.unwrap_or(defaults.eps),
        target_loss: keys.target_loss,
        mask,
        kernel: parse_or("kernel", &keys.kernel, defaults.kernel)?,
        threads,
    };
    config.validate().map_err(|e| key_error(e.key, e.message))?;
    let schedule = parse_or("snapshots", &keys.snapshots, SnapshotSchedule::default())?;
    if keys.snapshots.is_some() {
        let past = schedule.listed_after(config.epochs);
        if schedule.selects_nothing(config.epochs) {
            return Err(key_error(
                "snapshots",
                format!(
                    "'{schedule}' selects no epoch of a run of {} epochs; write `none` for no snapshots",
                    config.epochs
                ),
            ));
        }
        if !past.is_empty() {
            let list = past.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            warnings.push(format!("--snapshots: epochs {list} are past --epochs {} and are ignored", config.epochs));
        }
    }
    Ok(Resolved { config, spec, data_dir: keys.data_dir, fold, synthetic, schedule, warnings })
}

/// The keys of a `drift train --config` file; an error names the file and the line at fault.
pub fn read_config_file(path: &Path) -> Result<RunKeys, Error> {
    let file_error = |line: Option<usize>, message: String| Error::File { path: path.to_path_buf(), line, message };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(None, e.to_string()))?;
    toml::from_str(&text).map_err(|e| {
        // Name the line: serde's message alone does not say which key has a bad value.
        let line = e.span().map(|span| text[..span.start].matches('\n').count());
        let message = match line {
            Some(l) => format!("{} (`{}`)", e.message(), text.lines().nth(l).unwrap_or("").trim()),
            None => e.message().to_string(),
        };
        file_error(line.map(|l| l + 1), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(f: impl FnOnce(&mut RunKeys)) -> RunKeys {
        let mut k = RunKeys { dataset: Some("synthetic".into()), epochs: Some(10), ..RunKeys::default() };
        f(&mut k);
        k
    }

    fn message(k: RunKeys) -> String {
        resolve(k).unwrap_err().to_string()
    }

    #[test]
    fn snapshots_that_select_nothing_are_refused_and_late_ones_warned() {
        let e = message(keys(|k| k.snapshots = Some("20,50".into())));
        assert!(e.starts_with("--snapshots: '20,50' selects no epoch of a run of 10 epochs"), "{e}");
        let r = resolve(keys(|k| k.snapshots = Some("0,5,20".into()))).unwrap();
        assert_eq!(r.warnings, ["--snapshots: epochs 20 are past --epochs 10 and are ignored"]);
        assert!(resolve(keys(|k| k.snapshots = Some("none".into()))).unwrap().warnings.is_empty());
        assert!(resolve(keys(|k| k.snapshots = Some("every:50".into()))).is_ok(), "every:N includes epoch 0");
        assert!(resolve(keys(|_| {})).unwrap().warnings.is_empty(), "the default schedule is not the user's list");
    }

    #[test]
    fn a_data_dir_with_synthetic_data_is_refused() {
        let e = message(keys(|k| k.data_dir = Some("/data".into())));
        assert!(e.starts_with("--data-dir: /data: the synthetic data set is generated"), "{e}");
    }

    #[test]
    fn threads_above_the_cores_are_capped_with_a_warning() {
        let r = resolve(keys(|k| k.threads = Some(10_000_000_000))).unwrap();
        assert_eq!(r.config.threads, available_threads());
        assert!(r.warnings[0].starts_with("--threads 10000000000: this machine has"), "{:?}", r.warnings);
    }

    #[test]
    fn errors_name_the_key() {
        assert!(message(keys(|k| k.width = Some(0))).starts_with("--width: "));
        assert!(message(keys(|k| k.mask = Some("ab".into()))).starts_with("--mask: "));
        assert!(message(keys(|k| k.fold = Some(2))).starts_with("--fold: "));
        assert!(message(keys(|k| k.kernel = Some("gpu".into()))).starts_with("--kernel: "));
        let e = message(keys(|k| k.optimizer = Some("rmsprop".into())));
        assert_eq!(e, "--optimizer: unknown optimizer 'rmsprop', expected sgd, momentum or adam");
        assert!(message(keys(|k| k.init = Some("xavier".into()))).starts_with("--init: unknown initialisation"));
        assert_eq!(message(keys(|k| k.beta2 = Some(1.5))), "--beta2: must be in [0, 1), got 1.5");
        assert!(message(keys(|k| k.momentum = Some(1.0))).starts_with("--momentum: "));
        assert!(message(keys(|k| k.eps = Some(-1.0))).starts_with("--eps: "));
        let e = message(RunKeys { synthetic_side: Some(4), ..RunKeys::default() });
        assert!(e.starts_with("--synthetic-side: only for --dataset synthetic"), "{e}");
    }
}
