//! Settings: the runs of a sweep that are compared with one another. Runs of one setting share
//! the data (data set, input transform, shape) and the training (epochs, samples, loss, batch,
//! depth, optimiser, initialisation) and differ only in width, seed, mask and learning rate; each setting is a section of
//! the report, with its own figures, and says where it departs from the study's setup.

use std::collections::BTreeMap;

use crate::read::RunTables;

/// The study's learning rate.
pub const STUDY_LR: f64 = 0.1;

/// What the runs of one section share.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Setting {
    pub dataset: String,
    pub input: String,
    pub classes: i64,
    pub input_dim: i64,
    pub train_size: i64,
    pub epochs: i32,
    pub loss_mode: String,
    pub batch_size: i64,
    pub depth: i64,
    pub optimizer: String,
    /// The optimiser's hyper-parameters as a reader names them (`μ 0.9`; empty for SGD).
    pub hyper_parameters: String,
    pub init: String,
    /// The train loss the runs stop at, as written (`None`: they train all their epochs).
    pub target_loss: Option<String>,
}

/// The study's optimiser and initialisation (Keras's SGD and Glorot-uniform).
pub const STUDY_OPTIMIZER: &str = "sgd";
pub const STUDY_INIT: &str = "glorot-uniform";

impl Setting {
    pub fn of(run: &RunTables) -> Setting {
        let r = &run.run;
        Setting {
            dataset: r.dataset.clone(),
            input: r.input.clone(),
            classes: r.classes,
            input_dim: r.input_dim,
            train_size: r.train_size,
            epochs: r.epochs,
            loss_mode: r.loss_mode.clone(),
            batch_size: r.batch_size,
            depth: r.depth,
            optimizer: r.optimizer.clone(),
            hyper_parameters: hyper_parameters(&r.optimizer, [r.momentum, r.beta1, r.beta2, r.eps]),
            init: r.init.clone(),
            target_loss: r.target_loss.map(|t| t.to_string()),
        }
    }

    /// The data as a reader names it: `fashion-mnist`, `fashion-mnist (inverted)`,
    /// `synthetic 369 classes, 32×32`.
    pub fn data_name(&self) -> String {
        let mut name = self.dataset.clone();
        if self.dataset == "synthetic" {
            let side = (self.input_dim as f64).sqrt().round() as i64;
            name = format!("{name} {} classes, {side}×{side}", self.classes);
        }
        if self.input != "raw" {
            name = format!("{name} ({}ed)", self.input);
        }
        if self.optimizer != STUDY_OPTIMIZER {
            name = format!("{name}, {} ({})", self.optimizer, self.hyper_parameters);
        }
        if self.init != STUDY_INIT {
            name = format!("{name}, {} init", self.init);
        }
        name
    }
}

impl Setting {
    /// The file-name part of the setting's figures before any learning rate: the data (with a
    /// synthetic set's shape and the input transform), then the optimiser and initialisation
    /// where they are not the study's (`fashion-mnist-invert`, `mnist-adam-he-normal`).
    pub fn tag(&self) -> String {
        let mut tag = file_tag(&self.dataset);
        if self.dataset == "synthetic" && (self.classes, self.input_dim) != (10, 784) {
            tag = format!("{tag}-{}c-{}px", self.classes, self.input_dim);
        }
        if self.input != "raw" {
            tag = format!("{tag}-{}", self.input);
        }
        for (value, study) in [(&self.optimizer, STUDY_OPTIMIZER), (&self.init, STUDY_INIT)] {
            if value != study {
                tag = format!("{tag}-{value}");
            }
        }
        tag
    }
}

/// `μ 0.9` or `β1 0.9, β2 0.999, ε 1e-7`: the hyper-parameters `[momentum, beta1, beta2, eps]`
/// that are set, with their symbols.
fn hyper_parameters(optimizer: &str, values: [Option<f64>; 4]) -> String {
    let symbols = ["μ", "β1", "β2", "ε"];
    let set: Vec<String> =
        symbols.iter().zip(values).filter_map(|(s, v)| Some(format!("{s} {}", short_number(v?)))).collect();
    if set.is_empty() && optimizer != STUDY_OPTIMIZER {
        return "defaults".into();
    }
    set.join(", ")
}

/// `0.999`, or `1e-7` for a small number that would be a row of zeros.
fn short_number(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// The learning rates of some runs, ascending and distinct.
pub fn learning_rates(runs: &[&RunTables]) -> Vec<f64> {
    let mut lrs: Vec<f64> = runs.iter().map(|r| r.run.lr).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    lrs
}

/// `0.1` or `0.6–0.8`.
pub fn lr_range(lrs: &[f64]) -> String {
    match (lrs.first(), lrs.last()) {
        (Some(a), Some(b)) if a != b => format!("{a}–{b}"),
        (Some(a), _) => format!("{a}"),
        _ => "–".into(),
    }
}

/// One section of a report: a setting and its runs.
pub struct SettingRuns<'a> {
    pub setting: Setting,
    pub runs: Vec<&'a RunTables>,
    /// Short title: the data, the learning rates and the epochs.
    pub name: String,
    /// File-name part of its figures, unique within the report.
    pub tag: String,
    /// What departs from the study's setup (its lr 0.1, raw inputs, real data); empty if nothing.
    pub departures: Vec<String>,
}

/// The runs grouped by setting, in setting order, each with a name, a unique tag and its
/// departures from the study's setup.
pub fn by_setting<'a>(runs: &[&'a RunTables]) -> Vec<SettingRuns<'a>> {
    let mut groups: BTreeMap<Setting, Vec<&RunTables>> = BTreeMap::new();
    for &r in runs {
        groups.entry(Setting::of(r)).or_default().push(r);
    }
    let mut used = std::collections::BTreeSet::new();
    let several = groups.len() > 1;
    groups
        .into_iter()
        .map(|(setting, runs)| {
            let lrs = learning_rates(&runs);
            let study_lr_only = lrs == [STUDY_LR];
            let length = match &setting.target_loss {
                Some(target) => format!("to train loss {target} (at most {} epochs)", setting.epochs),
                None => format!("{} epochs", setting.epochs),
            };
            let name = format!("{}, lr {}, {length}", setting.data_name(), lr_range(&lrs));
            let mut tag = setting.tag();
            if !study_lr_only && several {
                tag = format!("{tag}-lr{}", lr_range(&lrs).replace('–', "-"));
            }
            let base = tag.clone();
            let mut k = 2;
            while !used.insert(tag.clone()) {
                tag = format!("{base}-{k}");
                k += 1;
            }
            let mut departures = Vec::new();
            if !study_lr_only {
                departures.push(format!("learning rate {} (the study: {STUDY_LR})", lr_range(&lrs)));
            }
            if setting.input != "raw" {
                departures.push(format!("inputs {}ed (x → 1 − x)", setting.input));
            }
            if setting.dataset == "synthetic" {
                departures.push("synthetic data, not the study's data sets".into());
            }
            if setting.optimizer != STUDY_OPTIMIZER {
                departures.push(format!(
                    "optimiser {} with {} (the study: plain SGD)",
                    setting.optimizer, setting.hyper_parameters
                ));
            }
            if setting.init != STUDY_INIT {
                departures.push(format!("initialisation {} (the study: {STUDY_INIT})", setting.init));
            }
            if let Some(target) = &setting.target_loss {
                departures.push(format!(
                    "each run stops at the first epoch whose train loss is at most {target} (the study: a fixed number of epochs)"
                ));
            }
            SettingRuns { setting, runs, name, tag, departures }
        })
        .collect()
}

/// File-name form of a data set name (`idx:/a/b` → `idx--a-b`).
pub fn file_tag(dataset: &str) -> String {
    dataset.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect()
}

/// The runs the claims about the weights (3, 4, 6 and the stable half of 1) are computed on:
/// those at the study's learning rate if the setting has it, else those at its lowest, with the
/// learning rate chosen.
pub fn reference_runs<'a>(runs: &[&'a RunTables]) -> (f64, Vec<&'a RunTables>) {
    let lrs = learning_rates(runs);
    let lr = if lrs.contains(&STUDY_LR) { STUDY_LR } else { lrs.first().copied().unwrap_or(STUDY_LR) };
    (lr, runs.iter().filter(|r| r.run.lr == lr).copied().collect())
}
