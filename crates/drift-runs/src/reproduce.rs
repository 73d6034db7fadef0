//! From a sweep's tables to its figures and claims report, and `reproduce`: a profile's sweep
//! (resumed), then both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use drift_analysis::claims::{check_all, check_onset, onsets};
use drift_analysis::layout::{check_input_folder, check_output_folder};
use drift_analysis::optimizers::compare_optimizers;
use drift_analysis::query::{mask_trace, MaskPoint};
use drift_analysis::read::{read_sweep, ReadSweepError, RunTables};
use drift_analysis::report::{render, FigureLink, OptimizerSection, Report, Section};
use drift_analysis::setting::{by_setting, Setting, SettingRuns};
use drift_analysis::{write_atomic, SweepDir};
use drift_data::{DatasetSpec, LoadOptions};
use drift_train::{Shard, Sweep};

use crate::{run_sweep, Error, SweepEvents, SweepPlan};

/// The profiles shipped with drift (`results/profiles/*.toml`), built in so that `reproduce`
/// works from any folder.
pub const PROFILES: [(&str, &str); 4] = [
    ("quick", include_str!("../../../results/profiles/quick.toml")),
    ("regimes", include_str!("../../../results/profiles/regimes.toml")),
    ("optimizers", include_str!("../../../results/profiles/optimizers.toml")),
    ("full", include_str!("../../../results/profiles/full.toml")),
];

/// The finished runs of a sweep folder, with the mask traces of masked runs.
pub struct Tables {
    pub runs: Vec<RunTables>,
    pub masks: BTreeMap<String, Vec<MaskPoint>>,
}

/// The finished runs in `sweep`, only those of `keep` if given; none is an error.
pub fn read_tables(sweep: &SweepDir, keep: Option<&[String]>) -> Result<Tables, Error> {
    check_input_folder(sweep.path())?;
    let mut runs = read_sweep(sweep).map_err(|e| match e {
        ReadSweepError::Folder(e) => Error::Folder(e),
        ReadSweepError::Table(e) => Error::Tables(e),
    })?;
    if let Some(keep) = keep {
        runs.retain(|r| keep.contains(&r.run_id));
    }
    if runs.is_empty() {
        return Err(Error::File { path: sweep.runs_dir(), line: None, message: "holds no finished run".into() });
    }
    let mut masks = BTreeMap::new();
    for run in &runs {
        if let Some(trace) = mask_trace(run)? {
            masks.insert(run.run_id.clone(), trace);
        }
    }
    Ok(Tables { runs, masks })
}

/// What drawing produced: per setting (by its tag) the figure links relative to the sweep
/// folder, the same per optimiser comparison (by its tag), the files written, and notes on
/// figures that had nothing to draw.
pub struct Drawn {
    pub links: BTreeMap<String, Vec<FigureLink>>,
    pub comparisons: BTreeMap<String, FigureLink>,
    pub files: Vec<PathBuf>,
    pub skipped: Vec<String>,
}

/// Draws every figure of every setting, and F9 of every optimiser comparison, into `fig_dir`
/// (checked first: a file, a dangling link or an unwritable folder is refused naming it).
pub fn draw(tables: &Tables, fig_dir: &Path, base: &Path) -> Result<Drawn, Error> {
    check_output_folder(fig_dir)?;
    let mut drawn =
        Drawn { links: BTreeMap::new(), comparisons: BTreeMap::new(), files: Vec::new(), skipped: Vec::new() };
    let all: Vec<&RunTables> = tables.runs.iter().collect();
    let rel = |p: &Path| p.strip_prefix(base).unwrap_or(p).display().to_string();
    let link =
        |w: &drift_figures::Written| FigureLink { id: w.id.to_string(), path: rel(&w.png), caption: w.caption.clone() };
    let settings = by_setting(&all);
    for setting in &settings {
        let (written, skipped) = drift_figures::draw_all(setting, &tables.masks, fig_dir)?;
        drawn.skipped.extend(skipped);
        drawn.links.insert(setting.tag.clone(), written.iter().map(link).collect());
        drawn.files.extend(written.into_iter().map(|w| w.png));
    }
    for comparison in compare_optimizers(&settings) {
        if let Some(written) = drift_figures::draw_comparison(&comparison, fig_dir)? {
            drawn.comparisons.insert(comparison.tag.clone(), link(&written));
            drawn.files.push(written.png);
        }
    }
    Ok(drawn)
}

/// The settings whose onsets of untrainability can be compared: those trained alike (epochs,
/// samples, loss, batch, depth, optimiser, initialisation, target loss) on different data; the
/// largest such group with at least two kinds of data, `None` if there is none (one data set at
/// two run lengths, or with two optimisers, says nothing about the input scale).
fn onset_group<'a, 'b>(settings: &'b [SettingRuns<'a>]) -> Option<Vec<&'b SettingRuns<'a>>> {
    let mut groups: BTreeMap<Setting, Vec<&SettingRuns>> = BTreeMap::new();
    for s in settings {
        // The setting with its data left out: what the group's settings share.
        let training =
            Setting { dataset: String::new(), input: String::new(), classes: 0, input_dim: 0, ..s.setting.clone() };
        groups.entry(training).or_default().push(s);
    }
    let data = |s: &SettingRuns| {
        let t = &s.setting;
        (t.dataset.clone(), t.input.clone(), t.classes, t.input_dim)
    };
    groups
        .into_values()
        .filter(|g| g.iter().map(|s| data(s)).collect::<BTreeSet<_>>().len() >= 2)
        .max_by_key(|g| g.len())
}

/// Writes the figures and `REPORT.md` of the runs `run_ids` of `sweep`; returns the report's
/// path and what was drawn.
pub fn write_report(
    sweep: &SweepDir,
    run_ids: &[String],
    title: String,
    mut notices: Vec<String>,
    command: String,
) -> Result<(PathBuf, Drawn), Error> {
    let tables = read_tables(sweep, Some(run_ids))?;
    let drawn = draw(&tables, &sweep.figures_dir(), sweep.path())?;
    notices.extend(drawn.skipped.iter().map(|s| format!("figure {s}.")));
    let all: Vec<&RunTables> = tables.runs.iter().collect();
    let settings = by_setting(&all);
    let onset = onset_group(&settings).map(|group| {
        let named: Vec<(String, Vec<&RunTables>)> = group.iter().map(|s| (s.name.clone(), s.runs.clone())).collect();
        check_onset(&onsets(&named))
    });
    let optimizers = compare_optimizers(&settings)
        .into_iter()
        .map(|comparison| OptimizerSection { figure: drawn.comparisons.get(&comparison.tag).cloned(), comparison })
        .collect();
    let sections = settings
        .into_iter()
        .map(|s| Section {
            figures: drawn.links.get(&s.tag).cloned().unwrap_or_default(),
            claims: check_all(&s.runs, &tables.masks),
            name: s.name,
            departures: s.departures,
            runs: s.runs,
        })
        .collect();
    let text = render(&Report { title, notices, sections, onset, optimizers, command });
    let path = sweep.report_path();
    write_atomic(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    Ok((path, drawn))
}

/// Whether a data set can be loaded here; the reason if not.
fn availability(dataset: &str, data_dir: Option<PathBuf>) -> Result<(), String> {
    let spec: DatasetSpec = dataset.parse().map_err(|e| format!("{e}"))?;
    if spec == DatasetSpec::Synthetic {
        return Ok(());
    }
    let mut opts = LoadOptions::new(0);
    opts.data_dir = data_dir;
    drift_data::prepare(&spec, &opts).map(|_| ()).map_err(|e| e.to_string())
}

/// The built-in profiles' names, as a message lists them: `quick, regimes, optimizers or full`.
fn profile_names() -> String {
    let names: Vec<&str> = PROFILES.iter().map(|p| p.0).collect();
    format!("{} or {}", names[..names.len() - 1].join(", "), names[names.len() - 1])
}

/// A profile by name, or a sweep file: its name and text.
pub fn profile(name_or_file: &str) -> Result<(String, String), Error> {
    if let Some((name, text)) = PROFILES.iter().find(|(n, _)| *n == name_or_file) {
        return Ok((name.to_string(), text.to_string()));
    }
    let path = Path::new(name_or_file);
    let text = std::fs::read_to_string(path).map_err(|e| Error::Key {
        key: "profile".into(),
        message: format!("{name_or_file}: expected {} or a sweep file ({e})", profile_names()),
    })?;
    Ok((path.file_stem().map_or("custom".into(), |s| s.to_string_lossy().into_owned()), text))
}

/// What a reproduction did.
pub struct Reproduction {
    pub report: PathBuf,
    pub trained: usize,
    pub skipped: usize,
    pub failed: Vec<String>,
    /// Departures said loudly to the user and in the report (missing data sets, failed runs).
    pub notices: Vec<String>,
}

/// Runs (or resumes) a profile's sweep into `out`, every data set of it that is here (the others
/// are left out with a notice; with none at all, the synthetic set stands in, said loudly), then
/// draws the figures and writes `REPORT.md`.
pub fn reproduce(
    name_or_file: &str,
    out: Option<PathBuf>,
    jobs: usize,
    events: &dyn SweepEvents,
    stop: &AtomicBool,
) -> Result<Reproduction, Error> {
    let (name, text) = profile(name_or_file)?;
    let parse = |text: &str| {
        text.parse::<Sweep>().map_err(|e| Error::File {
            path: format!("profile {name}").into(),
            line: None,
            message: e.to_string(),
        })
    };
    let mut sweep = parse(&text)?;
    let out = SweepDir::new(out.unwrap_or_else(|| PathBuf::from("results").join(&name)));
    check_output_folder(out.path())?;
    let mut notices = Vec::new();
    let wanted: BTreeSet<(String, Option<PathBuf>)> = sweep
        .runs
        .iter()
        .map(|k| (k.dataset.clone().unwrap_or_else(|| "fashion-mnist".into()), k.data_dir.clone()))
        .collect();
    let mut missing = BTreeSet::new();
    for (dataset, data_dir) in &wanted {
        if let Err(reason) = availability(dataset, data_dir.clone()) {
            notices.push(format!(
                "data set {dataset} is NOT AVAILABLE, its runs are left out of this reproduction: {reason}"
            ));
            missing.insert(dataset.clone());
        }
    }
    let before = sweep.runs.len();
    sweep.runs.retain(|k| !missing.contains(k.dataset.as_deref().unwrap_or("fashion-mnist")));
    if sweep.runs.is_empty() {
        notices.push(format!(
            "none of the profile's data sets is available: this reproduction uses the SYNTHETIC data set instead ({before} runs); its numbers say nothing about real data"
        ));
        sweep = parse(&text)?;
        for keys in &mut sweep.runs {
            keys.dataset = Some("synthetic".into());
            keys.data_dir = None;
        }
    }
    notices.iter().for_each(|n| events.warning(n));
    let plan = SweepPlan { text, origin: format!("profile {name}"), sweep, out, shard: Shard::ALL, resume: true, jobs };
    let outcome = run_sweep(&plan, events, stop)?;
    if !outcome.failed.is_empty() {
        let notice = format!(
            "{} run(s) failed and are missing from the figures: {}",
            outcome.failed.len(),
            outcome.failed.join("; ")
        );
        events.warning(&notice);
        notices.push(notice);
    }
    let command = format!("drift reproduce --profile {name_or_file}");
    let title = format!("drift reproduction report — profile `{name}`");
    let (report, _) = write_report(&plan.out, &outcome.run_ids, title, notices.clone(), command)?;
    Ok(Reproduction { report, trained: outcome.trained, skipped: outcome.skipped, failed: outcome.failed, notices })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in profile is a valid sweep whose runs all resolve, so `reproduce` never
    /// fails on a profile it ships.
    #[test]
    fn every_profile_resolves() {
        for (name, text) in PROFILES {
            let sweep: Sweep = text.parse().unwrap_or_else(|e| panic!("profile {name}: {e}"));
            assert!(sweep.description.is_some(), "profile {name} has a description");
            for (i, keys) in sweep.runs.into_iter().enumerate() {
                crate::resolve::resolve(keys).unwrap_or_else(|e| panic!("profile {name}, run {}: {e}", i + 1));
            }
        }
        assert_eq!(profile_names(), "quick, regimes, optimizers or full");
    }

    /// The optimizers profile compares the three optimisers at one target loss.
    #[test]
    fn the_optimizers_profile_trains_to_a_target() {
        let (_, text) = profile("optimizers").unwrap();
        let sweep: Sweep = text.parse().unwrap();
        assert_eq!(sweep.runs.len(), 3 * 4 * 3);
        for keys in sweep.runs {
            let resolved = crate::resolve::resolve(keys).unwrap();
            assert_eq!(resolved.config.target_loss, Some(0.1));
        }
    }
}
