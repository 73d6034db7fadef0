//! `drift figures DIR` and `drift reproduce`: from a sweep's tables to the figures and the claims
//! report; `reproduce` first runs (or resumes) the sweep of a profile.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use drift_analysis::claims::{check_all, check_onset, mask_trace, onsets, MaskPoint};
use drift_analysis::read::{read_sweep, RunTables};
use drift_analysis::report::{render, FigureLink, Report, Section};
use drift_analysis::setting::{by_setting, SettingRuns};
use drift_analysis::write_atomic;
use drift_data::{DatasetSpec, LoadOptions};
use drift_train::{Shard, Sweep};

use crate::args::{FiguresArgs, ReproduceArgs};
use crate::bad_input;
use crate::sweep_cmd::{execute, SweepPlan};

/// The profiles shipped with drift (`results/profiles/*.toml`), built into the binary so that
/// `drift reproduce` works from any folder.
const PROFILES: [(&str, &str); 3] = [
    ("quick", include_str!("../../../results/profiles/quick.toml")),
    ("regimes", include_str!("../../../results/profiles/regimes.toml")),
    ("full", include_str!("../../../results/profiles/full.toml")),
];

/// Runs of a sweep grouped by data set, with the mask traces of masked runs.
struct Tables {
    runs: Vec<RunTables>,
    masks: BTreeMap<String, Vec<MaskPoint>>,
}

/// The finished runs in `dir`, only those of `keep` if given.
fn read_tables(dir: &Path, keep: Option<&[String]>) -> anyhow::Result<Tables> {
    let mut runs = read_sweep(dir).map_err(|e| bad_input(format!("{}: {e}", dir.display())))?;
    if let Some(keep) = keep {
        runs.retain(|r| keep.contains(&r.run_id));
    }
    if runs.is_empty() {
        return Err(bad_input(format!("{}: no finished runs under {}", dir.display(), dir.join("runs").display())));
    }
    let mut masks = BTreeMap::new();
    for run in &runs {
        if let Some(trace) = mask_trace(run)? {
            masks.insert(run.run_id.clone(), trace);
        }
    }
    Ok(Tables { runs, masks })
}

/// The figures of each setting (by its tag), as the report links them.
type FigureLinks = BTreeMap<String, Vec<FigureLink>>;

/// Draws every figure of every setting into `fig_dir`; returns the figure links per setting
/// (relative to `base`) and notes on figures that had nothing to draw.
fn draw(tables: &Tables, fig_dir: &Path, base: &Path) -> anyhow::Result<(FigureLinks, Vec<String>)> {
    let mut links = BTreeMap::new();
    let mut notes = Vec::new();
    let all: Vec<&RunTables> = tables.runs.iter().collect();
    for setting in by_setting(&all) {
        let (written, skipped) = drift_figures::draw_all(&setting, &tables.masks, fig_dir)?;
        for w in &written {
            eprintln!("figures: {} {}", w.id, w.png.display());
        }
        notes.extend(skipped);
        let rel = |p: &Path| p.strip_prefix(base).unwrap_or(p).display().to_string();
        links.insert(
            setting.tag,
            written
                .iter()
                .map(|w| FigureLink { id: w.id.to_string(), path: rel(&w.png), caption: w.caption.clone() })
                .collect(),
        );
    }
    Ok((links, notes))
}

pub fn figures(args: FiguresArgs) -> anyhow::Result<()> {
    let tables = read_tables(&args.dir, None)?;
    let fig_dir = args.out.unwrap_or_else(|| args.dir.join("figures"));
    let (_, notes) = draw(&tables, &fig_dir, &args.dir)?;
    for note in notes {
        eprintln!("figures: skipped {note}");
    }
    Ok(())
}

/// The settings whose onsets of untrainability can be compared: those trained alike (epochs,
/// samples, loss, batch, depth) on different data; the largest such group with at least two
/// kinds of data, `None` if there is none (one data set at two run lengths says nothing about
/// the input scale).
fn onset_group<'a, 'b>(settings: &'b [SettingRuns<'a>]) -> Option<Vec<&'b SettingRuns<'a>>> {
    let mut groups: BTreeMap<(i32, i64, String, i64, i64), Vec<&SettingRuns>> = BTreeMap::new();
    for s in settings {
        let t = &s.setting;
        groups.entry((t.epochs, t.train_size, t.loss_mode.clone(), t.batch_size, t.depth)).or_default().push(s);
    }
    groups
        .into_values()
        .filter(|g| g.iter().map(|s| s.setting.data_name()).collect::<BTreeSet<_>>().len() >= 2)
        .max_by_key(|g| g.len())
}

/// Writes the figures and `REPORT.md` of the runs `run_ids` in the sweep folder `dir`.
fn report(
    dir: &Path,
    run_ids: &[String],
    title: String,
    mut notices: Vec<String>,
    command: String,
) -> anyhow::Result<PathBuf> {
    let tables = read_tables(dir, Some(run_ids))?;
    let (links, skipped) = draw(&tables, &dir.join("figures"), dir)?;
    notices.extend(skipped.into_iter().map(|s| format!("figure {s}.")));
    let all: Vec<&RunTables> = tables.runs.iter().collect();
    let settings = by_setting(&all);
    let onset = onset_group(&settings).map(|group| {
        let named: Vec<(String, Vec<&RunTables>)> = group.iter().map(|s| (s.name.clone(), s.runs.clone())).collect();
        check_onset(&onsets(&named))
    });
    let sections = settings
        .into_iter()
        .map(|s| Section {
            figures: links.get(&s.tag).cloned().unwrap_or_default(),
            claims: check_all(&s.runs, &tables.masks),
            name: s.name,
            departures: s.departures,
            runs: s.runs,
        })
        .collect();
    let text = render(&Report { title, notices, sections, onset, command });
    let path = dir.join("REPORT.md");
    write_atomic(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    Ok(path)
}

/// Whether a data set can be loaded here; the reason if not.
fn availability(keys_dataset: &str, data_dir: Option<PathBuf>) -> Result<(), String> {
    let spec = keys_dataset.parse::<DatasetSpec>().map_err(|e| e.to_string())?;
    if spec == DatasetSpec::Synthetic {
        return Ok(());
    }
    let mut opts = LoadOptions::new(0);
    opts.data_dir = data_dir;
    drift_data::prepare(&spec, &opts).map(|_| ()).map_err(|e| e.to_string())
}

fn loud(text: &str) {
    eprintln!("\n!!! {text}\n");
}

pub fn reproduce(args: ReproduceArgs) -> anyhow::Result<()> {
    let (name, text) = match PROFILES.iter().find(|(n, _)| *n == args.profile) {
        Some((n, t)) => (n.to_string(), t.to_string()),
        None => {
            let path = Path::new(&args.profile);
            let text = fs::read_to_string(path).map_err(|e| {
                bad_input(format!("--profile {}: expected quick, regimes, full or a sweep file ({e})", args.profile))
            })?;
            (path.file_stem().map_or("custom".into(), |s| s.to_string_lossy().into_owned()), text)
        }
    };
    let mut sweep: Sweep = text.parse().map_err(|e| bad_input(format!("profile {name}: {e}")))?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("results").join(&name));
    // Data: every data set of the profile that is here; the others are named loudly.
    let mut notices = Vec::new();
    let wanted: BTreeSet<(String, Option<PathBuf>)> = sweep
        .runs
        .iter()
        .map(|k| (k.dataset.clone().unwrap_or_else(|| "fashion-mnist".into()), k.data_dir.clone()))
        .collect();
    let mut missing = BTreeSet::new();
    for (dataset, data_dir) in &wanted {
        eprintln!("reproduce: preparing {dataset}");
        if let Err(reason) = availability(dataset, data_dir.clone()) {
            let msg =
                format!("data set {dataset} is NOT AVAILABLE, its runs are left out of this reproduction: {reason}");
            loud(&msg);
            notices.push(msg);
            missing.insert(dataset.clone());
        }
    }
    let before = sweep.runs.len();
    sweep.runs.retain(|k| !missing.contains(k.dataset.as_deref().unwrap_or("fashion-mnist")));
    if sweep.runs.is_empty() {
        let msg = format!(
            "none of the profile's data sets is available: this reproduction uses the SYNTHETIC data set instead ({before} runs); its numbers say nothing about real data"
        );
        loud(&msg);
        notices.push(msg);
        sweep = text.parse().map_err(|e| bad_input(format!("profile {name}: {e}")))?;
        for keys in &mut sweep.runs {
            keys.dataset = Some("synthetic".into());
            keys.data_dir = None;
        }
    }
    let plan = SweepPlan {
        text,
        origin: format!("profile {name}"),
        sweep,
        out: out.clone(),
        shard: Shard::ALL,
        resume: true,
        jobs: args.jobs,
    };
    let outcome = execute(&plan)?;
    if !outcome.failed.is_empty() {
        let msg = format!(
            "{} run(s) failed and are missing from the figures: {}",
            outcome.failed.len(),
            outcome.failed.join("; ")
        );
        loud(&msg);
        notices.push(msg);
    }
    eprintln!(
        "reproduce: {} runs trained now, {} were already finished; drawing figures",
        outcome.trained, outcome.skipped
    );
    let command = format!("drift reproduce --profile {}", args.profile);
    let path =
        report(&out, &outcome.run_ids, format!("drift reproduction report — profile `{name}`"), notices, command)?;
    eprintln!("reproduce: report in {}", path.display());
    if !outcome.failed.is_empty() {
        anyhow::bail!("{} run(s) failed", outcome.failed.len());
    }
    Ok(())
}
