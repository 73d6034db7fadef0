//! Sweeps: a TOML grid of run keys expanded into a fixed, ordered list of runs, and the
//! deterministic slice of that list one shard runs.
//!
//! ```toml
//! description = "widths × seeds on Fashion-MNIST"   # optional, free text
//! dataset = "fashion-mnist"                          # top-level keys apply to every run
//! epochs = 100
//!
//! [[grid]]                # each grid multiplies out its array values
//! width = [16, 64, 256]
//! seed = [0, 1, 2]
//!
//! [[grid]]                # grids are concatenated
//! width = 512
//! mask = "a"
//! ```
//! Without `[[grid]]` tables the top-level arrays form the one grid. Keys of a grid override the
//! top-level ones; within a grid the product runs over the keys in alphabetical order, the last
//! key varying fastest, so the list (and every shard of it) is the same on every machine.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// The keys of one run as a `drift train --config` file or a sweep spells them; unset keys take
/// `drift train`'s defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunKeys {
    pub dataset: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub width: Option<usize>,
    pub depth: Option<usize>,
    pub epochs: Option<u32>,
    pub seed: Option<u64>,
    pub lr: Option<f64>,
    pub batch: Option<usize>,
    pub train_size: Option<usize>,
    /// `raw` or `invert` (x → 1 − x), for any data set.
    pub input: Option<String>,
    /// HASYv2's classification fold, 1–10.
    pub fold: Option<u32>,
    /// The synthetic generator's shape (only with `dataset = "synthetic"`).
    pub synthetic_classes: Option<usize>,
    pub synthetic_side: Option<usize>,
    pub synthetic_train: Option<usize>,
    pub synthetic_test: Option<usize>,
    /// `black` or `white`.
    pub synthetic_background: Option<String>,
    /// How many times more frequent the first class is than the last (1: balanced).
    pub synthetic_imbalance: Option<f64>,
    pub loss: Option<String>,
    /// `glorot-uniform`, `he-normal` or `lecun-normal`.
    pub init: Option<String>,
    /// `sgd`, `momentum` or `adam`, and their hyper-parameters.
    pub optimizer: Option<String>,
    pub momentum: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    /// Stop at the first epoch whose train loss is at or below this.
    pub target_loss: Option<f64>,
    pub mask: Option<String>,
    pub snapshots: Option<String>,
    pub kernel: Option<String>,
    pub threads: Option<usize>,
}

impl RunKeys {
    /// These keys, each unset one taken from `base` (flags over a `--config` file, say).
    pub fn over(self, base: RunKeys) -> RunKeys {
        RunKeys {
            dataset: self.dataset.or(base.dataset),
            data_dir: self.data_dir.or(base.data_dir),
            width: self.width.or(base.width),
            depth: self.depth.or(base.depth),
            epochs: self.epochs.or(base.epochs),
            seed: self.seed.or(base.seed),
            lr: self.lr.or(base.lr),
            batch: self.batch.or(base.batch),
            train_size: self.train_size.or(base.train_size),
            input: self.input.or(base.input),
            fold: self.fold.or(base.fold),
            synthetic_classes: self.synthetic_classes.or(base.synthetic_classes),
            synthetic_side: self.synthetic_side.or(base.synthetic_side),
            synthetic_train: self.synthetic_train.or(base.synthetic_train),
            synthetic_test: self.synthetic_test.or(base.synthetic_test),
            synthetic_background: self.synthetic_background.or(base.synthetic_background),
            synthetic_imbalance: self.synthetic_imbalance.or(base.synthetic_imbalance),
            loss: self.loss.or(base.loss),
            init: self.init.or(base.init),
            optimizer: self.optimizer.or(base.optimizer),
            momentum: self.momentum.or(base.momentum),
            beta1: self.beta1.or(base.beta1),
            beta2: self.beta2.or(base.beta2),
            eps: self.eps.or(base.eps),
            target_loss: self.target_loss.or(base.target_loss),
            mask: self.mask.or(base.mask),
            snapshots: self.snapshots.or(base.snapshots),
            kernel: self.kernel.or(base.kernel),
            threads: self.threads.or(base.threads),
        }
    }
}

/// Why a sweep file cannot be used; the message names the grid and key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SweepError(pub String);

/// A sweep file's description and its runs, in their fixed order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub description: Option<String>,
    pub runs: Vec<RunKeys>,
}

impl FromStr for Sweep {
    type Err = SweepError;

    fn from_str(text: &str) -> Result<Self, SweepError> {
        let mut table: Table = text.parse().map_err(|e: toml::de::Error| SweepError(e.message().to_string()))?;
        let description = match table.remove("description") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => return Err(SweepError(format!("description: expected a string, got {}", other.type_str()))),
        };
        let grids = match table.remove("grid") {
            // A file of comments (or an empty one) would otherwise be one run of all defaults.
            None if table.is_empty() => {
                return Err(SweepError(
                    "holds no run keys: expected keys such as `width = [64, 128]` or [[grid]] tables".into(),
                ))
            }
            None => vec![Table::new()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Table(t) => Ok(t),
                    other => Err(SweepError(format!("grid {}: expected a table, got {}", i + 1, other.type_str()))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(SweepError("grid: expected one or more [[grid]] tables".into())),
        };
        let mut runs = Vec::new();
        for (g, grid) in grids.into_iter().enumerate() {
            let mut merged = table.clone();
            merged.extend(grid);
            let budget = MAX_RUNS - runs.len();
            for combination in product(&merged, budget).map_err(|e| SweepError(format!("grid {}: {e}", g + 1)))? {
                let keys = RunKeys::deserialize(Value::Table(combination))
                    .map_err(|e| SweepError(format!("grid {}: {}", g + 1, e.message())))?;
                runs.push(keys);
            }
        }
        Ok(Sweep { description, runs })
    }
}

/// The most runs a sweep may expand to: far beyond any study, small enough to list in memory.
pub const MAX_RUNS: usize = 100_000;

/// Every combination of the array values of `table` (scalars stay as they are), in key order
/// with the last key varying fastest; refused if there would be more than `budget`.
fn product(table: &Table, budget: usize) -> Result<Vec<Table>, String> {
    let count = table.values().try_fold(1usize, |n, v| match v {
        Value::Array(values) => n.checked_mul(values.len()),
        _ => Some(n),
    });
    match count {
        Some(n) if n <= budget => {}
        _ => return Err(format!("the sweep multiplies out to more than {MAX_RUNS} runs")),
    }
    let mut combos = vec![Table::new()];
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort();
    for key in keys {
        let choices = match &table[key] {
            Value::Array(values) if values.is_empty() => return Err(format!("{key}: empty list")),
            Value::Array(values) => values.clone(),
            scalar => vec![scalar.clone()],
        };
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                choices.iter().map(move |v| {
                    let mut next = combo.clone();
                    next.insert(key.clone(), v.clone());
                    next
                })
            })
            .collect();
    }
    Ok(combos)
}

/// The `I`-th of `N` disjoint slices of a sweep (`--shard I/N`, 1 ≤ I ≤ N): runs are dealt out
/// round-robin by their position in a fixed order, so slices are disjoint, balanced and the
/// same on every machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Whether the run dealt at `position` (from 0) belongs to this shard.
    pub fn contains(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

/// A shard that is not `I/N` with 1 ≤ I ≤ N.
#[derive(Debug, thiserror::Error)]
#[error("expected I/N with 1 ≤ I ≤ N (e.g. 2/3), got '{got}'")]
pub struct ShardError {
    pub got: String,
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, ShardError> {
        let expected = || ShardError { got: text.to_string() };
        let (i, n) = text.split_once('/').ok_or_else(expected)?;
        let (index, count): (usize, usize) =
            (i.trim().parse().map_err(|_| expected())?, n.trim().parse().map_err(|_| expected())?);
        if index == 0 || count == 0 || index > count {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_multiply_out_in_key_order_and_concatenate() {
        let sweep: Sweep = r#"
            description = "test"
            epochs = 5
            seed = [0, 1]
            [[grid]]
            width = [16, 32]
            [[grid]]
            width = 64
            seed = 7
            mask = "a"
        "#
        .parse()
        .unwrap();
        assert_eq!(sweep.description.as_deref(), Some("test"));
        let runs: Vec<_> = sweep.runs.iter().map(|r| (r.seed.unwrap(), r.width.unwrap(), r.epochs.unwrap())).collect();
        assert_eq!(runs, [(0, 16, 5), (0, 32, 5), (1, 16, 5), (1, 32, 5), (7, 64, 5)]);
        assert_eq!(sweep.runs[4].mask.as_deref(), Some("a"));
    }

    #[test]
    fn top_level_arrays_without_grids_form_the_grid() {
        let sweep: Sweep = "width = [1, 2, 3]\nlr = 0.5".parse().unwrap();
        assert_eq!(sweep.runs.len(), 3);
        assert!(sweep.runs.iter().all(|r| r.lr == Some(0.5)));
    }

    #[test]
    fn errors_name_the_grid_and_key() {
        let err = "[[grid]]\nwidth = 4\n[[grid]]\nwidht = 4".parse::<Sweep>().unwrap_err().0;
        assert!(err.contains("grid 2") && err.contains("widht"), "{err}");
        for nothing in ["", "# only a comment\n", "description = \"empty\"\n"] {
            let err = nothing.parse::<Sweep>().unwrap_err().0;
            assert!(err.starts_with("holds no run keys"), "{err}");
        }
        let err = "width = []".parse::<Sweep>().unwrap_err().0;
        assert!(err.contains("width: empty list"), "{err}");
        let err = "a = [1,2,3,4,5,6,7,8,9,10]\nb = [1,2,3,4,5,6,7,8,9,10]\nc = [1,2,3,4,5,6,7,8,9,10]\nd = [1,2,3,4,5,6,7,8,9,10]\ne = [1,2,3,4,5,6,7,8,9,10]\nf = [1,2]"
            .parse::<Sweep>()
            .unwrap_err()
            .0;
        assert!(err.contains("more than 100000 runs"), "{err}");
        let err = "width = 'wide'".parse::<Sweep>().unwrap_err().0;
        assert!(err.contains("grid 1"), "{err}");
    }

    #[test]
    fn shards_partition_the_runs() {
        for text in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(text.parse::<Shard>().is_err(), "{text}");
        }
        let shards: Vec<Shard> = ["1/3", "2/3", "3/3"].iter().map(|s| s.parse().unwrap()).collect();
        for position in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.contains(position)).count(), 1);
        }
        assert!(Shard::ALL.contains(5));
    }
}
