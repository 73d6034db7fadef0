//! `REPORT.md`: for each data set of a sweep, each claim with its verdict, numbers and figure,
//! then what the runs cost. Everything in it is computed from the tables.

use std::fmt::Write;

use crate::claims::{
    ClaimResult, Evidence, EvolutionEvidence, MaskEvidence, MomentsEvidence, RegimeMap, RegimesEvidence, Verdict,
    WVsW0Evidence, WidthEvidence,
};
use crate::optimizers::{MatchedRun, OptimizerComparison, OptimizerRuns, NEAR};
use crate::query::{MIN_BIN_COUNT, VISIBLE};
use crate::read::RunTables;
use crate::regimes::{PhaseMap, Regime, COINCIDENT_SHARE, JUMP_WINDOW};
use crate::setting::lr_range;
use crate::stats::{mean_std, positive_share, upper_median};

/// A figure as the report links it.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureLink {
    /// `F1` … `F6`.
    pub id: String,
    /// Path of the PNG relative to the report.
    pub path: String,
    pub caption: String,
}

/// The claims and figures of one setting ([`crate::setting`]).
pub struct Section<'a> {
    /// The setting's short title.
    pub name: String,
    /// Where the setting departs from the study's setup (said at the top of its section).
    pub departures: Vec<String>,
    pub runs: Vec<&'a RunTables>,
    pub claims: Vec<ClaimResult>,
    pub figures: Vec<FigureLink>,
}

/// An optimiser comparison ([`crate::optimizers`]) and its figure, F9.
pub struct OptimizerSection {
    pub comparison: OptimizerComparison,
    pub figure: Option<FigureLink>,
}

/// Everything a report says.
pub struct Report<'a> {
    pub title: String,
    /// Loud notes first: missing data sets, replacements, skipped figures.
    pub notices: Vec<String>,
    pub sections: Vec<Section<'a>>,
    /// The onset comparison across settings: verdict and evidence lines (see
    /// [`crate::claims::check_onset`]); `None` when the report has fewer than two settings.
    pub onset: Option<(String, Vec<String>)>,
    /// The optimisers compared at matched train loss ([`crate::optimizers`]), one comparison per
    /// kind of data and training that has two or more.
    pub optimizers: Vec<OptimizerSection>,
    /// How the report was produced (the command line).
    pub command: String,
}

/// Training throughput of some runs: (runs, wall seconds, samples per second of training and
/// evaluation time as the history records it).
pub fn throughput(runs: &[&RunTables]) -> (usize, f64, f64) {
    let wall: f64 = runs.iter().map(|r| r.run.wall_seconds).sum();
    let samples: f64 = runs.iter().map(|r| r.run.train_size as f64 * f64::from(r.run.epochs_done)).sum();
    let seconds: f64 = runs.iter().flat_map(|r| r.history.iter().filter(|h| h.epoch > 0).map(|h| h.seconds)).sum();
    (runs.len(), wall, if seconds > 0.0 { samples / seconds } else { f64::NAN })
}

fn verdict_badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Supported => "**supported**",
        Verdict::NotSupported => "**not supported**",
        Verdict::NotTestable => "**not testable with these runs**",
    }
}

/// Evidence lines: table rows and list items stay together, other lines are paragraphs.
fn write_evidence(out: &mut String, lines: &[String]) {
    let mut previous_block = false;
    for line in lines {
        let block = line.starts_with('|') || line.starts_with("- ");
        if previous_block && !block {
            out.push('\n');
        }
        let _ = writeln!(out, "{line}");
        if !block {
            out.push('\n');
        }
        previous_block = block;
    }
    if previous_block {
        out.push('\n');
    }
}

/// The Markdown text of the report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", report.title);
    let _ = writeln!(
        out,
        "Written by `{}` from the tables under `runs/`. Each verdict is computed by a fixed rule (see `drift_analysis::claims`) from those tables; nothing here is edited by hand.\n",
        report.command
    );
    for notice in &report.notices {
        let _ = writeln!(out, "> **Note:** {notice}\n");
    }
    if !report.sections.is_empty() {
        let _ = writeln!(out, "## Summary\n");
        let mut header = "| claim |".to_string();
        let mut rule = "|---|".to_string();
        for s in &report.sections {
            let _ = write!(header, " {} |", s.name);
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for (i, (title, _)) in crate::claims::CLAIMS.iter().enumerate() {
            let mut line = format!("| {}. {title} |", i + 1);
            for s in &report.sections {
                let v = s.claims.iter().find(|c| c.number == i + 1).map_or("–", |c| c.verdict.as_str());
                let _ = write!(line, " {v} |");
            }
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    if let Some((verdict, evidence)) = &report.onset {
        let _ = writeln!(out, "## Onset of untrainability: lr or lr · ‖x‖²?\n");
        let _ = writeln!(
            out,
            "*The hypothesis:* what sets the onset is the step relative to the input scale (the first layer's update grows with ‖x‖²), so across data sets the onset should line up in lr · ‖x‖² rather than in lr.\n"
        );
        let _ = writeln!(out, "**{verdict}.**\n");
        write_evidence(&mut out, evidence);
    }
    for section in &report.optimizers {
        let _ = writeln!(out, "## Optimisers at matched train loss: {}\n", section.comparison.data);
        write_evidence(&mut out, &optimizer_lines(&section.comparison));
        if let Some(f) = &section.figure {
            let _ = writeln!(out, "![{}]({})\n\n*{}*\n", f.id, f.path, f.caption);
        }
    }
    for s in &report.sections {
        let _ = writeln!(out, "## {}\n", s.name);
        if s.departures.is_empty() {
            let _ =
                writeln!(out, "The study's setup (lr 0.1, plain SGD, batch and loss as listed in the runs below).\n");
        } else {
            let _ = writeln!(out, "> **Beyond the study's setup:** {}.\n", s.departures.join("; "));
        }
        for claim in &s.claims {
            let _ = writeln!(out, "### {}. {} — {}\n", claim.number, claim.title, verdict_badge(claim.verdict));
            let _ = writeln!(out, "*The study:* {}\n", claim.statement);
            write_evidence(&mut out, &claim_lines(claim));
            if let Some(f) = s.figures.iter().find(|f| f.id == format!("F{}", claim.number)) {
                let _ = writeln!(out, "![{}]({})\n\n*{}*\n", f.id, f.path, f.caption);
            }
            // The phase map goes with the regimes.
            if claim.number == 2 {
                if let Some(f) = s.figures.iter().find(|f| f.id == "F7") {
                    let _ = writeln!(out, "![{}]({})\n\n*{}*\n", f.id, f.path, f.caption);
                }
            }
        }
        let (n, wall, rate) = throughput(&s.runs);
        let _ = writeln!(out, "### Runs\n");
        let _ = writeln!(out, "{n} runs, {wall:.1} s of wall time in all, {rate:.0} samples/s (training and evaluation of an epoch, per run).\n");
        let _ = writeln!(out, "| run_id | width | lr | seed | mask | epochs | status | min train loss (epoch) | min test loss (epoch) | divergence | wall s |");
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &s.runs {
            let x = &r.run;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {:.4} ({}) | {:.4} ({}) | {} | {:.1} |",
                r.run_id,
                x.width,
                x.lr,
                x.seed,
                x.mask.as_deref().unwrap_or("–"),
                x.epochs_done,
                x.status,
                x.min_train_loss,
                x.epoch_min_train_loss,
                x.min_test_loss,
                x.epoch_min_test_loss,
                x.divergence_epoch.map_or("–".into(), |d| d.to_string()),
                x.wall_seconds
            );
        }
        out.push('\n');
    }
    out
}

/// `mean ± std (n = k)` of values over runs or seeds.
fn pm(values: &[f64], digits: usize) -> String {
    let (m, s) = mean_std(values);
    if values.len() > 1 {
        format!("{m:.digits$} ± {s:.digits$} (n = {})", values.len())
    } else {
        format!("{m:.digits$} (n = 1)")
    }
}

/// A correlation or slope to three decimals, `undefined` where there is none.
fn or_undefined(value: Option<f64>) -> String {
    value.map_or("undefined".into(), |r| format!("{r:.3}"))
}

/// A claim's evidence as Markdown lines (paragraphs, list items, table rows).
fn claim_lines(claim: &ClaimResult) -> Vec<String> {
    let mut lines = vec![];
    if let Some(s) = &claim.subset {
        lines.push(format!("Runs at lr {} (of {}).", s.lr, lr_range(&s.of)));
    }
    lines.extend(match &claim.evidence {
        Evidence::Mask(e) => mask_lines(e),
        Evidence::Regimes(e) => regimes_lines(e),
        Evidence::WVsW0(e) => w_vs_w0_lines(e),
        Evidence::Moments(e) => moments_lines(e),
        Evidence::Evolution(e) => evolution_lines(e),
        Evidence::Width(e) => width_lines(e),
    });
    lines
}

fn mask_lines(e: &MaskEvidence) -> Vec<String> {
    let MaskEvidence::Tested { stable, unstable, other_diverged } = e else {
        return vec!["No masked run that kept training (none with `mask` set, or all diverged).".into()];
    };
    let mut lines = vec![format!(
        "Stable run {} (W = {}, seed {}): mask contrast {:.3} at epoch 0 → {:.3} at epoch {} (visible means ≥ {VISIBLE}).",
        stable.run_id, stable.width, stable.seed, stable.initial, stable.last.visibility, stable.last.epoch
    )];
    if unstable.is_empty() {
        lines.push(
            "No masked run learned and then diverged, so the second half (the letter vanishing at the loss jump) is not testable here."
                .into(),
        );
    }
    if *other_diverged > 0 {
        lines.push(format!(
            "{other_diverged} masked run(s) collapsed early or died (not the study's crossover); left out of the second half."
        ));
    }
    let point = |p: Option<crate::query::MaskPoint>| {
        p.map_or("–".into(), |p| format!("{:.3} (epoch {})", p.visibility, p.epoch))
    };
    for u in unstable {
        lines.push(format!(
            "Diverging run {} (W = {}, lr {}, seed {}): divergence at epoch {}; contrast {} before and {} after it; first below {VISIBLE} at {}.",
            u.run_id,
            u.width,
            u.lr,
            u.seed,
            u.divergence,
            point(u.before),
            point(u.after),
            u.vanished_at.map_or("no snapshot".into(), |e| format!("epoch {e}"))
        ));
    }
    lines
}

fn regimes_lines(e: &RegimesEvidence) -> Vec<String> {
    let m: &RegimeMap = match e {
        RegimesEvidence::NoUnmaskedRuns => return vec!["No unmasked runs.".into()],
        RegimesEvidence::TooFewWidths { widths } => {
            return vec![format!("No learning rate with three or more widths (widths {widths:?}).")]
        }
        RegimesEvidence::Map(m) => m,
    };
    let list = |lrs: &[f64]| lrs.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ");
    let mut findings = vec![];
    if !m.mid.is_empty() {
        let widths: Vec<String> = m
            .mid
            .iter()
            .map(|(lr, lost)| {
                let w: Vec<String> = lost.iter().map(|w| w.to_string()).collect();
                format!("W = {} at lr {lr}", w.join(", "))
            })
            .collect();
        findings.push(format!("an untrainable regime at mid widths ({})", widths.join("; ")));
    }
    if !m.all.is_empty() {
        findings.push(format!("untrainable at all widths at lr {}", list(&m.all)));
    }
    if !m.wide.is_empty() {
        findings.push(format!("untrainable at the widest widths at lr {}", list(&m.wide)));
    }
    if !m.narrow.is_empty() {
        findings.push(format!("untrainable at the narrowest widths only at lr {}", list(&m.narrow)));
    }
    if findings.is_empty() {
        findings.push(format!(
            "no untrainable regime in these settings (lr {}, widths {:?})",
            list(&m.testable),
            m.map.widths
        ));
    }
    let mut lines = vec![format!("**Finding:** {}.", findings.join("; "))];
    lines.extend(phase_table(&m.map));
    lines.push(format!(
        "At lr {}: Spearman correlation of width and the seed-mean minimum train loss {} (negative: wider trains better).",
        m.reference_lr,
        or_undefined(m.width_vs_min_loss)
    ));
    lines
}

/// The phase map as a Markdown table: one row per learning rate, one column per width; each
/// cell its regime (H high, L low, U untrainable), the seeds that diverged and the median
/// minimum train loss.
pub fn phase_table(map: &PhaseMap) -> Vec<String> {
    let mut lines = vec![
        format!("| lr ↓  W → | {} |", map.widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(" | ")),
        format!("|---|{}", "---|".repeat(map.widths.len())),
    ];
    for &lr in &map.lrs {
        let cells: Vec<String> = map
            .widths
            .iter()
            .map(|&w| match map.cell(w, lr) {
                None => "".into(),
                Some(c) => {
                    let letter = match c.regime {
                        Regime::High => "H",
                        Regime::Low => "L",
                        Regime::Untrainable => "**U**",
                    };
                    format!("{letter} {}/{} div, min {:.3}", c.diverged, c.seeds, c.median_min_train)
                }
            })
            .collect();
        lines.push(format!("| {lr} | {} |", cells.join(" | ")));
    }
    lines.push(
        "H: high trainability, L: low, U: untrainable (at least half the seeds diverged and did not recover); `k/n div`: seeds that diverged (any outcome); min: median minimum train loss.".into(),
    );
    lines
}

fn w_vs_w0_lines(e: &WVsW0Evidence) -> Vec<String> {
    let (width, runs) = match e {
        WVsW0Evidence::NoRun => return vec!["No non-diverged run with a hidden→hidden layer and snapshots.".into()],
        WVsW0Evidence::SparseBins { width } => {
            return vec![format!("W = {width}: too few weights per bin at the last snapshot.")]
        }
        WVsW0Evidence::Bins { width, runs } => (width, runs),
    };
    let of = |f: fn(&crate::claims::BinShape) -> f64| pm(&runs.iter().map(f).collect::<Vec<_>>(), 3);
    vec![
        format!("Widest non-diverged runs (W = {width}), hidden→hidden layer, last snapshot, bins with ≥ {MIN_BIN_COUNT} weights:"),
        format!("- median over bins of |mode Δw| / std Δw: {} (peak at w_f = w_i if ≤ 0.5)", of(|s| s.peak)),
        format!("- median over bins of |mode Δw − mean Δw| / std Δw: {} (peak near the centre if ≤ 0.5)", of(|s| s.near_median)),
        format!("- mean |skewness of Δw|: outer bins (|w_i| > 0.75 l) {} vs central bins (|w_i| < 0.25 l) {}", of(|s| s.skew_outer), of(|s| s.skew_central)),
    ]
}

fn moments_lines(e: &MomentsEvidence) -> Vec<String> {
    let MomentsEvidence::Correlations(runs) = e else {
        return vec!["No non-diverged run with enough populated bins at its last snapshot.".into()];
    };
    let line = |what: &str, values: Vec<f64>| {
        format!(
            "- correlation of {what}: {}, positive in {:.0}% of runs",
            pm(&values, 3),
            100.0 * positive_share(&values)
        )
    };
    vec![
        format!(
            "Hidden→hidden layer, last snapshot, {} non-diverged runs, bins with ≥ {MIN_BIN_COUNT} weights:",
            runs.len()
        ),
        line("w_i with mean Δw", runs.iter().map(|c| c.sign).collect()),
        line("|w_i| with RMS Δw", runs.iter().map(|c| c.size).collect()),
    ]
}

fn evolution_lines(e: &EvolutionEvidence) -> Vec<String> {
    let records = &e.records;
    let mut lines = vec![format!(
        "{} run(s) diverged: {} learned first and then diverged (the crossover), {} collapsed before learning, {} learned and then died (loss ln C).",
        records.len(),
        e.crossovers,
        e.early,
        e.dead
    )];
    if !records.is_empty() {
        let fmt = |j: Option<(i32, f64)>, d: i32| {
            j.map_or("–".into(), |(e, ratio)| {
                let ratio = if ratio > 1e6 { "≫1000".to_string() } else { format!("{ratio:.1}") };
                format!("{e} (×{ratio}, {:+})", e - d)
            })
        };
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}%", 100.0 * v));
        lines.push("| run | W | lr | seed | kind | outcome | divergence epoch | jump of mean \\|Δw\\| (×typical step, offset) | jump of rel_change | jump of p99 − p01 | mean \\|Δw\\| change per epoch before → after |".into());
        lines.push("|---|---|---|---|---|---|---|---|---|---|---|".into());
        for r in records {
            let d = r.divergence.epoch;
            let kind = if r.divergence.is_crossover() {
                "crossover"
            } else if r.divergence.learned_first {
                "died"
            } else {
                "early collapse"
            };
            lines.push(format!(
                "| {} | {} | {} | {} | {kind} | {} | {d} | {} | {} | {} | {} → {} |",
                r.run_id,
                r.width,
                r.lr,
                r.seed,
                r.divergence.after.as_str(),
                fmt(r.mean_abs, d),
                fmt(r.rel_change, d),
                fmt(r.tails, d),
                pct(r.movement.0),
                pct(r.movement.1)
            ));
        }
    }
    if let Some(median) = upper_median(&e.frozen) {
        lines.push(format!(
            "After a divergence that did not recover, mean |Δw| changes per epoch {median:.3} times as much as in the 10 epochs before it (median over {} runs; ≪ 1: the weights are frozen).",
            e.frozen.len()
        ));
    }
    let others = records.len() - e.crossovers;
    if others > 0 {
        lines.push(format!(
            "Early collapses and dead networks (not part of the verdict): {} of {others} have the jump of mean |Δw| within {JUMP_WINDOW} epochs of the divergence.",
            e.others_coinciding
        ));
    }
    if e.crossovers == 0 {
        lines.push("No run learned and then diverged without dying: the study's coincidence cannot be tested.".into());
        return lines;
    }
    lines.push(format!(
        "{} of {} crossover runs ({:.0}%) have the jump of mean |Δw| within {JUMP_WINDOW} epochs of the divergence (the rule asks for at least {:.0}%).",
        e.coinciding,
        e.crossovers,
        100.0 * e.coinciding as f64 / e.crossovers as f64,
        100.0 * COINCIDENT_SHARE
    ));
    lines
}

fn width_lines(e: &WidthEvidence) -> Vec<String> {
    let slope_line = format!(
        "Log–log slope of the hidden→hidden rel_change at the last epoch against width: {} (lazy-training/NTK scaling predicts about −0.5).",
        or_undefined(e.slope)
    );
    if e.levels.is_empty() {
        return vec!["No train-loss level is reached by three or more widths.".into(), slope_line];
    }
    let mut lines = vec![
        "| train loss reached | width: mean \\|Δw\\| (all weights, over seeds) | Spearman ρ(width, mean \\|Δw\\|) |"
            .into(),
        "|---|---|---|".into(),
    ];
    for l in &e.levels {
        let cells: Vec<String> = l.per_width.iter().map(|(w, v)| format!("{w}: {}", pm(v, 4))).collect();
        lines.push(format!("| ≤ {} | {} | {} |", l.level, cells.join("; "), or_undefined(l.rho)));
    }
    lines.push(slope_line);
    lines
}

/// An optimiser as the report names it: `momentum (μ 0.9, lr 0.01)`.
fn optimizer_name(o: &OptimizerRuns) -> String {
    if o.hyper_parameters.is_empty() {
        format!("{} (lr {})", o.optimizer, o.lr)
    } else {
        format!("{} ({}, lr {})", o.optimizer, o.hyper_parameters, o.lr)
    }
}

/// The optimiser comparison: the question, the rule, a verdict per optimiser, then per width
/// and optimiser the medians over seeds at the target loss.
fn optimizer_lines(c: &OptimizerComparison) -> Vec<String> {
    let mut lines = vec![
        format!("*The question:* does an optimiser other than the study's SGD stay as near its initial weights? Every run trains until its train loss is at most {} and is compared at that epoch, where its last snapshot is.", c.target),
        format!("*The rule, fixed before these runs:* an optimiser stays near its initial weights when, at every width, the median over seeds of the hidden→hidden rel_change ‖ΔW‖_F / ‖W0‖_F at the target is at most {NEAR}: the initial weights are still the larger part of W."),
    ];
    for o in &c.optimizers {
        let rel = o.median(|r| Some(r.rel_change));
        let largest = rel.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        let line = match (o.stays_near(), largest) {
            (Some(true), Some((w, v))) => {
                format!("stays near its initial weights at every width (largest median rel_change {v:.3}, at W = {w})")
            }
            (Some(false), _) => {
                let far: Vec<String> = o.far_widths().iter().map(|(w, v)| format!("{v:.3} at W = {w}")).collect();
                format!("does **not** stay near its initial weights: median rel_change {}", far.join(", "))
            }
            _ => "no run reached the target loss: not testable".into(),
        };
        lines.push(format!("- **{}**: {line}.", optimizer_name(o)));
    }
    lines.push("Medians over seeds at the target loss; `×` is the ratio to SGD's median at the same width. Stable rank ‖ΔW‖²_F / ‖ΔW‖²₂ of the hidden→hidden change (W0's in brackets); claims 3 and 4 as their checks compute them per run (each optimiser's own verdicts are in its section).".into());
    lines.push("| width | optimiser | runs | epochs to target | mean \\|Δw\\| | rel_change | stable rank of ΔW (W0) | top-1 share | claim 3: \\|mode\\| / std | claim 3: \\|skew\\| outer / central | claim 4: ρ(w_i, mean Δw) | claim 4: ρ(\\|w_i\\|, rms Δw) |".into());
    lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    let widths: std::collections::BTreeSet<i64> = c.optimizers.iter().flat_map(|o| o.by_width().into_keys()).collect();
    for w in widths {
        for o in &c.optimizers {
            let groups = o.by_width();
            let Some(runs) = groups.get(&w) else { continue };
            let at = |f: &dyn Fn(&MatchedRun) -> Option<f64>| {
                upper_median(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
            };
            let value = |v: Option<f64>, digits: usize| v.map_or("–".into(), |v| format!("{v:.digits$}"));
            let ratio = |f: fn(&MatchedRun) -> Option<f64>| {
                let r = c.ratio_to_sgd(o, f).and_then(|r| r.into_iter().find(|p| p.0 == w).map(|p| p.1));
                match r {
                    Some(r) if o.optimizer != crate::setting::STUDY_OPTIMIZER => format!(" (×{r:.2})"),
                    _ => String::new(),
                }
            };
            let mean_abs: fn(&MatchedRun) -> Option<f64> = |r| Some(r.mean_abs);
            let rel_change: fn(&MatchedRun) -> Option<f64> = |r| Some(r.rel_change);
            lines.push(format!(
                "| {w} | {} | {} | {} | {}{} | {}{} | {} ({}) | {} | {} | {} / {} | {} | {} |",
                o.optimizer,
                runs.len(),
                value(at(&|r| Some(f64::from(r.epoch))), 0),
                value(at(&mean_abs), 4),
                ratio(mean_abs),
                value(at(&rel_change), 3),
                ratio(rel_change),
                value(at(&|r| r.stable_rank), 2),
                value(at(&|r| r.stable_rank_w0), 1),
                value(at(&|r| r.top1_share), 3),
                value(at(&|r| r.shape.as_ref().map(|s| s.peak)), 3),
                value(at(&|r| r.shape.as_ref().map(|s| s.skew_outer)), 2),
                value(at(&|r| r.shape.as_ref().map(|s| s.skew_central)), 2),
                value(at(&|r| r.correlation.as_ref().map(|k| k.sign)), 3),
                value(at(&|r| r.correlation.as_ref().map(|k| k.size)), 3),
            ));
        }
    }
    for o in &c.optimizers {
        for u in &o.unmatched {
            lines.push(format!(
                "- Not compared: {} run {} (W = {}, seed {}) did not reach the target: best train loss {:.4} in {} epochs ({}).",
                o.optimizer, u.run_id, u.width, u.seed, u.min_train_loss, u.epochs_done, u.status
            ));
        }
    }
    lines
}
