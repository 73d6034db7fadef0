//! Where untrainability begins, compared across settings: does the onset line up in lr or in
//! lr · ‖x‖²? The rule is in [`check_onset`].

use crate::read::RunTables;
use crate::regimes::phase_map;

/// Item of the onset comparison: one setting's name, mean ‖x‖² and onset interval in lr.
#[derive(Clone, Debug, PartialEq)]
pub struct Onset {
    pub name: String,
    pub sq_norm: f64,
    /// `(below, at]`; `None`: no untrainable cell up to `max_lr`.
    pub interval: Option<(f64, f64)>,
    pub max_lr: f64,
}

impl Onset {
    /// The interval in units of `scale · lr`: `(lo, hi]`, `hi = ∞` when no onset was seen.
    fn scaled(&self, scale: f64) -> (f64, f64) {
        match self.interval {
            Some((lo, hi)) => (lo * scale, hi * scale),
            None => (self.max_lr * scale, f64::INFINITY),
        }
    }
}

/// The onset of every setting's phase map.
pub fn onsets(settings: &[(String, Vec<&RunTables>)]) -> Vec<Onset> {
    settings
        .iter()
        .filter_map(|(name, runs)| {
            let map = phase_map(runs)?;
            Some(Onset {
                name: name.clone(),
                sq_norm: map.sq_norm,
                interval: map.onset(),
                max_lr: map.lrs.last().copied().unwrap_or(f64::NAN),
            })
        })
        .collect()
}

/// Whether intervals `(lo, hi]` share a point.
fn overlap(intervals: &[(f64, f64)]) -> bool {
    let lo = intervals.iter().map(|i| i.0).fold(f64::NEG_INFINITY, f64::max);
    let hi = intervals.iter().map(|i| i.1).fold(f64::INFINITY, f64::min);
    lo < hi
}

/// The hypothesis that the onset of untrainability is set by the step relative to the input
/// scale: does it line up across settings in `lr · ‖x‖²` rather than in `lr`? Each setting's
/// onset is an interval (the learning rates tested bracket it); the onsets *line up* in a unit
/// when all intervals share a point in it. Verdict: the hypothesis is supported when they line up
/// in `lr · ‖x‖²` and not in `lr`, refuted when the reverse, undecided when both or neither
/// do. Needs two settings whose onsets are not both unbounded.
pub fn check_onset(onsets: &[Onset]) -> (String, Vec<String>) {
    let mut evidence = vec![
        "| setting | mean ‖x‖² | learning rates tested up to | onset in lr | onset in lr · ‖x‖² |".into(),
        "|---|---|---|---|---|".into(),
    ];
    let show = |(lo, hi): (f64, f64)| {
        if hi.is_infinite() {
            format!("> {lo:.3}")
        } else {
            format!("({lo:.3}, {hi:.3}]")
        }
    };
    for o in onsets {
        evidence.push(format!(
            "| {} | {:.1} | {} | {} | {} |",
            o.name,
            o.sq_norm,
            o.max_lr,
            show(o.scaled(1.0)),
            show(o.scaled(o.sq_norm))
        ));
    }
    let bounded = onsets.iter().filter(|o| o.interval.is_some()).count();
    if onsets.len() < 2 || bounded == 0 {
        let verdict = "not testable: it needs two settings and an untrainable cell in at least one".to_string();
        return (verdict, evidence);
    }
    let in_lr = overlap(&onsets.iter().map(|o| o.scaled(1.0)).collect::<Vec<_>>());
    let in_scaled = overlap(&onsets.iter().map(|o| o.scaled(o.sq_norm)).collect::<Vec<_>>());
    let verdict = match (in_lr, in_scaled) {
        (false, true) => "supported: the onsets line up in lr · ‖x‖² and not in lr",
        (true, false) => "refuted: the onsets line up in lr and not in lr · ‖x‖²",
        (true, true) => {
            "undecided: the onsets line up in both units (the learning rates tested bracket them too loosely)"
        }
        (false, false) => "undecided: the onsets line up in neither unit",
    };
    evidence.push(
        "An onset `(a, b]` means: no width was untrainable at lr a (or below), some width was at lr b; `> a`: none up to a. The onsets line up in a unit when one value lies in every interval.".into(),
    );
    (verdict.to_string(), evidence)
}
