//! `drift analyze`: which run folders a folder names, and the recomputation of their snapshot
//! tables ([`drift_analysis::analyze_run`]) one after another.

use std::path::Path;

use drift_analysis::layout::check_input_folder;
use drift_analysis::{analyze_run, AnalyzeOptions, Analyzed, RunDir, SweepDir};

use crate::Error;

/// The run folders `path` names: itself if it is a run folder (it has `run.json`), the runs of
/// a sweep folder (it has `runs/`) otherwise. Refuses anything else before any work starts.
pub fn analysis_targets(path: &Path) -> Result<Vec<RunDir>, Error> {
    check_input_folder(path)?;
    let run = RunDir::new(path);
    if run.record_path().exists() {
        return Ok(vec![run]);
    }
    let sweep = SweepDir::new(path);
    if sweep.runs_dir().is_dir() {
        return Ok(sweep.runs()?);
    }
    Err(Error::File {
        path: path.to_path_buf(),
        line: None,
        message: "neither a run folder (no run.json) nor a sweep folder (no runs/)".into(),
    })
}

/// What became of one run folder.
#[derive(Debug)]
pub enum AnalysisOutcome {
    Analyzed(Analyzed),
    /// A run of a sweep that has not finished, left as it is.
    Unfinished,
}

/// Recomputes the snapshot tables of every finished run among `runs`, calling `done` after each.
/// A lone unfinished run is an error; in a sweep, unfinished runs are passed over.
pub fn analyze_runs(
    runs: &[RunDir],
    options: AnalyzeOptions,
    mut done: impl FnMut(&RunDir, &AnalysisOutcome),
) -> Result<usize, Error> {
    options.resolve(1).map_err(Error::Analyze)?;
    let mut analyzed = 0;
    for run in runs {
        let outcome = match analyze_run(run, options) {
            Ok(a) => AnalysisOutcome::Analyzed(a),
            Err(drift_analysis::AnalyzeError::Unfinished(_)) if runs.len() > 1 => AnalysisOutcome::Unfinished,
            Err(e) => return Err(Error::Analyze(e)),
        };
        analyzed += matches!(outcome, AnalysisOutcome::Analyzed(_)) as usize;
        done(run, &outcome);
    }
    Ok(analyzed)
}
