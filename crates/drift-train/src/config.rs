//! The configuration of one training run and the run id derived from it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use drift_data::Input;
use drift_kernels::{Kernel, LossMode};

use crate::init::Init;
use crate::optimizer::{Optimizer, UpdateRule};

/// Version of the on-disk result format; part of every run id so that a format change never
/// mixes old and new tables under one id.
pub const FORMAT_VERSION: u32 = 3;

/// Everything that determines a run's numbers, plus the thread count (which does not). A key
/// missing when it is read back (from a `run.json` written before the key existed) takes its
/// default, which is what such a run used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainConfig {
    /// Data set name as given on the command line (`fashion-mnist`, `synthetic`, `idx:DIR`, …).
    pub dataset: String,
    /// Hidden width W (all hidden layers are equally wide).
    pub width: usize,
    /// Number of hidden layers.
    pub depth: usize,
    pub epochs: u32,
    pub seed: u64,
    /// Learning rate, as written (the SGD step multiplies by it rounded to f32).
    pub lr: f64,
    #[serde(rename = "batch")]
    pub batch_size: usize,
    /// Use only the first N training samples (all when `None`).
    pub train_size: Option<usize>,
    /// Transform of every input (`raw`, or `invert`: x → 1 − x).
    #[serde(with = "as_text")]
    pub input: Input,
    #[serde(with = "as_text")]
    pub loss: LossMode,
    /// How the initial weights are drawn.
    #[serde(with = "as_text")]
    pub init: Init,
    #[serde(with = "as_text")]
    pub optimizer: Optimizer,
    /// μ of `momentum` (Keras and PyTorch default to 0, i.e. plain SGD; 0.9 is the usual choice).
    pub momentum: f64,
    /// Adam's decay rates of the first and second moments (0.9 and 0.999, as Keras and PyTorch).
    pub beta1: f64,
    pub beta2: f64,
    /// Adam's ε, added to √v (Keras's 1e-7; PyTorch's is 1e-8).
    pub eps: f64,
    /// Stop at the end of the first epoch whose train loss (Keras's epoch mean) is at or below
    /// this value (`None`: train all `epochs`), so that runs of different optimisers or widths
    /// can end at the same loss.
    pub target_loss: Option<f64>,
    /// Letter drawn as zeros into the hidden→hidden matrix before training (`None`: no mask).
    pub mask: Option<char>,
    /// GEMM implementation (`auto`: the best this CPU has). Its arithmetic class goes into the
    /// run id: the AVX-512 and AVX2 kernels give the same bits, the others round differently.
    #[serde(with = "as_text")]
    pub kernel: Kernel,
    /// Worker threads (0: all cores). Never changes a result.
    pub threads: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            dataset: "fashion-mnist".into(),
            width: 512,
            depth: 2,
            epochs: 100,
            seed: 0,
            lr: 0.1,
            batch_size: 128,
            train_size: None,
            input: Input::Raw,
            loss: LossMode::KerasClipped,
            init: Init::GlorotUniform,
            optimizer: Optimizer::Sgd,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            target_loss: None,
            mask: None,
            kernel: Kernel::Auto,
            threads: 0,
        }
    }
}

/// A configuration value out of range; the message names the key and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

impl TrainConfig {
    /// Checks ranges before any work starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, message: String| Err(ConfigError { key, message });
        if self.width == 0 {
            return err("width", "must be at least 1".into());
        }
        if self.depth == 0 {
            return err("depth", "must be at least 1".into());
        }
        if self.epochs == 0 {
            return err("epochs", "must be at least 1".into());
        }
        if self.batch_size == 0 {
            return err("batch", "must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", format!("must be a positive finite number, got {}", self.lr));
        }
        let unit = |key, value: f64| {
            if (0.0..1.0).contains(&value) {
                Ok(())
            } else {
                err(key, format!("must be in [0, 1), got {value}"))
            }
        };
        unit("momentum", self.momentum)?;
        unit("beta1", self.beta1)?;
        unit("beta2", self.beta2)?;
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return err("eps", format!("must be a positive finite number, got {}", self.eps));
        }
        if let Some(target) = self.target_loss {
            if !(target.is_finite() && target > 0.0) {
                return err("target-loss", format!("must be a positive finite number, got {target}"));
            }
        }
        if self.train_size == Some(0) {
            return err("train-size", "must be at least 1".into());
        }
        if let Err(e) = self.kernel.resolve() {
            return err("kernel", e.to_string());
        }
        if let Some(letter) = self.mask {
            if !crate::GLYPH_LETTERS.contains(letter) {
                return err("mask", format!("no glyph for '{letter}', expected one of {}", crate::GLYPH_LETTERS));
            }
            if self.depth < 2 {
                return err("mask", "needs a hidden→hidden matrix, so depth must be at least 2".into());
            }
        }
        Ok(())
    }

    /// The keys that determine results, in a fixed order, as `(key, value)` strings. The thread
    /// count is left out on purpose: it never changes a bit. `train_size` is the effective
    /// number of samples and `data` describes the data (for synthetic sets, its generator).
    /// The optimiser's keys come last and only for momentum (`optimizer`, `momentum`) and Adam
    /// (`optimizer`, `beta1`, `beta2`, `eps`): an SGD run has the keys, and so the id, it had
    /// before there were other optimisers, and unused hyper-parameters never split an id. The
    /// target loss, likewise, is a key only when it is set.
    pub fn result_keys(&self, train_size: usize, data: &str) -> Vec<(&'static str, String)> {
        let mut keys = vec![
            ("format", FORMAT_VERSION.to_string()),
            ("dataset", self.dataset.clone()),
            ("data", data.to_string()),
            ("train_size", train_size.to_string()),
            ("input", self.input.to_string()),
            ("width", self.width.to_string()),
            ("depth", self.depth.to_string()),
            ("epochs", self.epochs.to_string()),
            ("seed", self.seed.to_string()),
            ("lr", self.lr.to_string()),
            ("batch_size", self.batch_size.to_string()),
            ("loss_mode", self.loss.to_string()),
            ("init", self.init.to_string()),
            ("mask", self.mask.map(String::from).unwrap_or_default()),
            ("arithmetic", self.resolved_kernel().arithmetic().to_string()),
        ];
        match self.update_rule() {
            UpdateRule::Sgd { .. } => {}
            UpdateRule::Momentum { momentum, .. } => {
                keys.extend([("optimizer", self.optimizer.to_string()), ("momentum", momentum.to_string())]);
            }
            UpdateRule::Adam { beta1, beta2, eps, .. } => keys.extend([
                ("optimizer", self.optimizer.to_string()),
                ("beta1", beta1.to_string()),
                ("beta2", beta2.to_string()),
                ("eps", eps.to_string()),
            ]),
        }
        if let Some(target) = self.target_loss {
            keys.push(("target_loss", target.to_string()));
        }
        keys
    }

    /// Whether an epoch that ended at `train_loss` ends the run (its target loss is reached).
    pub fn reaches_target(&self, train_loss: f64) -> bool {
        self.target_loss.is_some_and(|target| train_loss <= target)
    }

    /// The optimiser with the hyper-parameters it uses.
    pub fn update_rule(&self) -> UpdateRule {
        let lr = self.lr;
        match self.optimizer {
            Optimizer::Sgd => UpdateRule::Sgd { lr },
            Optimizer::Momentum => UpdateRule::Momentum { lr, momentum: self.momentum },
            Optimizer::Adam => UpdateRule::Adam { lr, beta1: self.beta1, beta2: self.beta2, eps: self.eps },
        }
    }

    /// The kernel this configuration runs with (`auto` resolved for this CPU).
    pub fn resolved_kernel(&self) -> Kernel {
        self.kernel.resolve().unwrap_or(self.kernel)
    }

    /// A stable id of the resolved configuration: the first 16 hex digits of the SHA-256 of the
    /// result keys written as `key=value` lines.
    pub fn run_id(&self, train_size: usize, data: &str) -> String {
        let mut hasher = Sha256::new();
        for (k, v) in self.result_keys(train_size, data) {
            hasher.update(format!("{k}={v}\n").as_bytes());
        }
        let digest = hasher.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// Serde through a value's text form (`Display` / `FromStr`), as TOML and `run.json` spell
/// kernels, loss modes and input transforms.
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_ignores_threads_and_follows_results() {
        let a = TrainConfig::default();
        let b = TrainConfig { threads: 7, ..a.clone() };
        let c = TrainConfig { seed: 1, ..a.clone() };
        let inverted = TrainConfig { input: Input::Invert, ..a.clone() };
        assert_eq!(a.run_id(100, "x"), b.run_id(100, "x"));
        assert_ne!(a.run_id(100, "x"), c.run_id(100, "x"));
        assert_ne!(a.run_id(100, "x"), inverted.run_id(100, "x"));
        // The data key carries the synthetic generator's parameters.
        assert_ne!(a.run_id(100, "x"), a.run_id(100, "y"));
        assert_ne!(a.run_id(100, "x"), a.run_id(99, "x"));
        assert_eq!(a.run_id(100, "x").len(), 16);
    }

    /// The id names the arithmetic, not the instruction set: AVX-512 and AVX2 runs share it
    /// (their bits are identical), the portable kernel and matrixmultiply do not.
    #[test]
    fn run_id_follows_the_arithmetic_class() {
        let with = |kernel| TrainConfig { kernel, ..TrainConfig::default() }.run_id(100, "x");
        assert_eq!(with(Kernel::Avx512), with(Kernel::Avx2));
        assert_ne!(with(Kernel::Avx512), with(Kernel::Portable));
        assert_ne!(with(Kernel::Avx512), with(Kernel::MatrixMultiply));
        assert_ne!(with(Kernel::Portable), with(Kernel::MatrixMultiply));
    }

    /// The id of the default (SGD, Glorot-uniform) configuration is pinned: committed results
    /// and golden tests carry it. Each optimiser key changes the id only where it is used.
    #[test]
    fn sgd_ids_are_unchanged_and_optimizer_keys_split_ids() {
        let id = |c: &TrainConfig| c.run_id(60_000, "");
        // The example of docs/format.md, whose id predates the optimisers.
        let sgd = TrainConfig { width: 256, epochs: 5, kernel: Kernel::Portable, ..TrainConfig::default() };
        assert_eq!(id(&sgd), "956802e1f981d61e");
        // Unused hyper-parameters do not enter the id.
        assert_eq!(id(&sgd), id(&TrainConfig { momentum: 0.5, beta1: 0.5, beta2: 0.5, eps: 1e-3, ..sgd.clone() }));
        let momentum = TrainConfig { optimizer: Optimizer::Momentum, ..sgd.clone() };
        let adam = TrainConfig { optimizer: Optimizer::Adam, ..sgd.clone() };
        let ids = [
            id(&sgd),
            id(&momentum),
            id(&adam),
            id(&TrainConfig { init: Init::HeNormal, ..sgd.clone() }),
            id(&TrainConfig { init: Init::LecunNormal, ..sgd.clone() }),
            id(&TrainConfig { momentum: 0.5, ..momentum.clone() }),
            id(&TrainConfig { beta1: 0.5, ..adam.clone() }),
            id(&TrainConfig { beta2: 0.5, ..adam.clone() }),
            id(&TrainConfig { eps: 1e-8, ..adam.clone() }),
        ];
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
        assert_eq!(id(&momentum), id(&TrainConfig { beta1: 0.5, eps: 1.0, ..momentum.clone() }));
        assert_eq!(id(&adam), id(&TrainConfig { momentum: 0.5, ..adam.clone() }));
    }

    /// A target loss splits the id only when set, so runs without one keep theirs.
    #[test]
    fn target_loss_is_a_key_only_when_set() {
        let id = |c: &TrainConfig| c.run_id(60_000, "");
        let sgd = TrainConfig { width: 256, epochs: 5, kernel: Kernel::Portable, ..TrainConfig::default() };
        let at = |t| TrainConfig { target_loss: Some(t), ..sgd.clone() };
        assert_eq!(id(&sgd), "956802e1f981d61e");
        assert_ne!(id(&at(0.1)), id(&sgd));
        assert_ne!(id(&at(0.1)), id(&at(0.2)));
        assert!(at(0.1).reaches_target(0.1) && !at(0.1).reaches_target(0.1000001) && !sgd.reaches_target(0.0));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(at(bad).validate().unwrap_err().key, "target-loss");
        }
    }

    #[test]
    fn optimizer_ranges_name_the_key() {
        let key = |c: TrainConfig| c.validate().unwrap_err().key;
        let d = TrainConfig::default;
        assert_eq!(key(TrainConfig { momentum: 1.0, ..d() }), "momentum");
        assert_eq!(key(TrainConfig { momentum: -0.1, ..d() }), "momentum");
        assert_eq!(key(TrainConfig { beta1: f64::NAN, ..d() }), "beta1");
        assert_eq!(key(TrainConfig { beta2: 1.5, ..d() }), "beta2");
        assert_eq!(key(TrainConfig { eps: 0.0, ..d() }), "eps");
        assert_eq!(key(TrainConfig { eps: f64::INFINITY, ..d() }), "eps");
        assert!(TrainConfig { momentum: 0.0, beta1: 0.0, beta2: 0.0, eps: 1e-30, ..d() }.validate().is_ok());
    }

    #[test]
    fn validation_names_the_key() {
        let bad = TrainConfig { lr: -1.0, ..TrainConfig::default() };
        assert_eq!(bad.validate().unwrap_err().key, "lr");
        let bad = TrainConfig { mask: Some('a'), depth: 1, ..TrainConfig::default() };
        assert_eq!(bad.validate().unwrap_err().key, "mask");
        assert!(TrainConfig { mask: Some('a'), ..TrainConfig::default() }.validate().is_ok());
    }
}
