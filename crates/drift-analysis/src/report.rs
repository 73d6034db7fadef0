//! `REPORT.md`: for each data set of a sweep, each claim with its verdict, numbers and figure,
//! then what the runs cost. Everything in it is computed from the tables.

use std::fmt::Write;

use crate::claims::{ClaimResult, Verdict};
use crate::read::RunTables;

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

/// Everything a report says.
pub struct Report<'a> {
    pub title: String,
    /// Loud notes first: missing data sets, replacements, skipped figures.
    pub notices: Vec<String>,
    pub sections: Vec<Section<'a>>,
    /// The onset comparison across settings: verdict and evidence lines (see
    /// [`crate::claims::check_onset`]); `None` when the report has fewer than two settings.
    pub onset: Option<(String, Vec<String>)>,
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
            write_evidence(&mut out, &claim.evidence);
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
