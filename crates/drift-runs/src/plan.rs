//! A resolved run with its data: named (the run id), costed, and checked to fit in memory before
//! anything is allocated or created.

use std::sync::Arc;

use drift_analysis::RunMeta;
use drift_data::{Dataset, DatasetSpec, LoadOptions};
use drift_train::{effective_train_size, TrainError};

use crate::resolve::Resolved;
use crate::Error;

/// The data a resolved run trains on (its warnings are in `Dataset::warnings`).
pub fn load_data(resolved: &Resolved) -> Result<Dataset, Error> {
    let mut opts = LoadOptions::new(resolved.config.seed);
    opts.data_dir = resolved.data_dir.clone();
    opts.fold = resolved.fold;
    opts.synthetic = resolved.synthetic.clone();
    opts.input = resolved.config.input;
    Ok(drift_data::load(&resolved.spec, &opts)?)
}

/// A resolved run with its data: everything needed to name it and carry it out.
pub struct Planned {
    pub resolved: Resolved,
    pub data: Arc<Dataset>,
    pub meta: RunMeta,
}

impl Planned {
    /// Checks the configuration against the data (`--train-size`, say) and against the memory
    /// of this machine, and derives the run id.
    pub fn new(resolved: Resolved, data: Arc<Dataset>) -> Result<Planned, Error> {
        let config = &resolved.config;
        let train_size = effective_train_size(config, &data).map_err(|e| match e {
            TrainError::DataMismatch { key, message } => Error::Key { key: key.into(), message },
            e => Error::Train(e),
        })?;
        check_memory(&resolved, &data)?;
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

    /// Estimated cost in multiply-adds (forward and backward over the training samples, forward
    /// over the test samples, every epoch): to start long runs first, deal out shards and weigh
    /// the ETA.
    pub fn cost(&self) -> u64 {
        let c = &self.resolved.config;
        let per_sample = multiply_adds_per_sample(self.data.input_dim, c.width, c.depth, self.data.classes);
        let per_epoch = per_sample.saturating_mul(3 * self.train_size() as u64 + self.data.test.len() as u64);
        per_epoch.saturating_mul(u64::from(c.epochs))
    }

    /// A one-line description for progress lines.
    pub fn label(&self) -> String {
        let c = &self.resolved.config;
        format!(
            "{} W={} seed {}{}",
            c.dataset,
            c.width,
            c.seed,
            c.mask.map(|m| format!(" mask {m}")).unwrap_or_default()
        )
    }
}

fn multiply_adds_per_sample(input_dim: usize, width: usize, depth: usize, classes: usize) -> u64 {
    let (i, w, d, c) = (input_dim as u64, width as u64, depth as u64, classes as u64);
    i.saturating_mul(w).saturating_add((d - 1).saturating_mul(w.saturating_mul(w))).saturating_add(w.saturating_mul(c))
}

/// Bytes a run holds at its peak, from its shape, as (parameters, activations): per parameter
/// the weights, the initial weights, the gradient and packed copies for the kernels (16 bytes),
/// Δw and its sorted copy for the statistics (8), a snapshot's columns and encoding (24) and the
/// checkpoint's encoding (8); per sample of a batch (or of an evaluation chunk of at least 1024)
/// the activations and their gradients of every layer. Deliberately generous: refusing a run
/// that would just fit is better than an abort half-way that leaves a folder behind.
pub fn memory_estimate(input_dim: usize, width: usize, depth: usize, classes: usize, batch: usize) -> (u128, u128) {
    let (i, w, d, c, b) = (input_dim as u128, width as u128, depth as u128, classes as u128, batch as u128);
    let hidden = d.saturating_sub(1).saturating_mul(w.saturating_mul(w));
    let params = i.saturating_mul(w).saturating_add(hidden).saturating_add(w.saturating_mul(c + d + 1));
    let per_sample = i.saturating_add(d.saturating_mul(w)).saturating_add(c);
    (params.saturating_mul(16 + 8 + 24 + 8), b.max(1024).saturating_mul(per_sample).saturating_mul(16))
}

/// The memory this process may still use: the smaller of the system's available memory and what
/// its cgroup (a container, a Slurm job) has left; `None` where neither can be read.
pub fn available_memory() -> Option<u128> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let read = |name: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{name}")).ok();
    let cgroup = match (read("memory.max"), read("memory.current")) {
        (Some(max), Some(current)) => {
            max.trim().parse::<u128>().ok().map(|max| max.saturating_sub(current.trim().parse().unwrap_or(0)))
        }
        _ => None,
    };
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Binary units, for messages.
pub fn human_bytes(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn check_memory(resolved: &Resolved, data: &Dataset) -> Result<(), Error> {
    let c = &resolved.config;
    let (weights, activations) = memory_estimate(data.input_dim, c.width, c.depth, data.classes, c.batch_size);
    let needed = weights.saturating_add(activations);
    match available_memory() {
        Some(available) if needed > available => Err(Error::Resources {
            key: if activations > weights { "batch" } else { "width" },
            message: format!(
                "a network of width {} and depth {} on {} inputs, batch {}, needs about {} of memory (weights, workspace, checkpoint, snapshot), and {} is available here",
                c.width,
                c.depth,
                data.input_dim,
                c.batch_size,
                human_bytes(needed),
                human_bytes(available)
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_grows_with_the_square_of_the_width_and_does_not_overflow() {
        let total = |w, d, b| {
            let (weights, activations) = memory_estimate(784, w, d, 10, b);
            weights + activations
        };
        let small = total(512, 2, 128);
        assert!(small > 30 << 20 && small < 200 << 20, "{small}");
        assert!(total(1_000_000, 2, 128) > 50 << 40, "{}", human_bytes(total(1_000_000, 2, 128)));
        assert!(total(usize::MAX, usize::MAX, usize::MAX) > 0, "saturates instead of overflowing");
        let (weights, activations) = memory_estimate(784, 64, 2, 10, 1 << 30);
        assert!(activations > weights, "a huge batch is the culprit");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn this_machine_reports_its_memory() {
        let available = available_memory().expect("/proc/meminfo");
        assert!(available > 1 << 20);
    }
}
