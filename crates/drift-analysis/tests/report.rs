//! The report of hand-made settings against a committed copy (`tests/golden/REPORT.md`): one
//! setting whose runs support the claims, one whose runs refute them and one that can test none,
//! so that every kind of evidence is rendered. A change to the report's text fails here.
//!
//! To accept a deliberate change of the text, regenerate the copy and review its diff:
//! `DRIFT_BLESS=1 cargo test --release -p drift-analysis --test report`.

use std::collections::BTreeMap;
use std::path::Path;

mod common;

use common::*;
use drift_analysis::claims::{check_all, check_onset, MaskPoint, Onset};
use drift_analysis::read::RunTables;
use drift_analysis::report::{render, FigureLink, Report, Section};

const GOLDEN: &str = "tests/golden/REPORT.md";

/// A mask contrast falling linearly from 1 to `end` over epochs 0–10.
fn fading(end: f64) -> Vec<MaskPoint> {
    (0..=10).map(|e| MaskPoint { epoch: e, visibility: 1.0 + (end - 1.0) * f64::from(e) / 10.0 }).collect()
}

/// A contrast that holds at 0.9 until `epoch`, then drops to 0.1.
fn dropping_at(epoch: i32) -> Vec<MaskPoint> {
    (0..=10).map(|e| MaskPoint { epoch: e, visibility: if e < epoch { 0.9 } else { 0.1 } }).collect()
}

fn masked(mut r: RunTables) -> RunTables {
    r.run.mask = Some("a".into());
    r.run_id = format!("{}m", r.run_id);
    r
}

fn at_lr(mut r: RunTables, lr: f64) -> RunTables {
    r.run.lr = lr;
    r.run_id = format!("{}lr{lr}", r.run_id);
    r
}

/// Runs that support the claims: a masked run that keeps its letter and one that loses it at
/// its divergence; trainable narrow and wide widths around an untrainable mid width whose
/// deviations jump at the divergence; wider runs moving less.
fn supporting() -> (Vec<RunTables>, BTreeMap<String, Vec<MaskPoint>>) {
    let runs = vec![
        masked(run(512, 0, &learning(0.2), &steady_dev(0.01), faithful)),
        masked(run(256, 0, &diverging(), &steady_dev(0.01), faithful)),
        run(16, 0, &learning(0.6), &steady_dev(0.03), faithful),
        run(16, 1, &learning(0.6), &steady_dev(0.032), faithful),
        run(64, 0, &learn_then(20, 16.1), &step_at(20), faithful),
        run(64, 1, &learn_then(20, 16.1), &step_at(21), faithful),
        run(256, 0, &learning(0.2), &steady_dev(0.01), faithful),
        run(256, 1, &learning(0.2), &steady_dev(0.011), faithful),
    ];
    let masks = BTreeMap::from([("w512s0m".to_string(), fading(0.9)), ("w256s0m".to_string(), dropping_at(6))]);
    (runs, masks)
}

/// Deviations against the sign of w0, peaked away from w_f = w_i, skewed at the centre.
fn unfaithful(c: f64) -> (f64, f64, f64, f64) {
    (-0.05 * c, 0.1 + 0.05 * c.abs(), 1.0 - c.abs(), 0.2)
}

/// Runs that refute the claims: the letters fade in the stable run and survive the divergence;
/// only the widest width is lost, with jumps of the deviations far from the divergence; wider
/// runs move more; a second learning rate.
fn refuting() -> (Vec<RunTables>, BTreeMap<String, Vec<MaskPoint>>) {
    let runs = vec![
        masked(run(512, 0, &learning(0.2), &steady_dev(0.01), faithful)),
        masked(run(256, 0, &diverging(), &steady_dev(0.01), faithful)),
        run(16, 0, &learning(0.3), &steady_dev(0.01), unfaithful),
        run(64, 0, &learning(0.3), &steady_dev(0.02), unfaithful),
        run(64, 1, &learning(0.3), &steady_dev(0.021), unfaithful),
        run(256, 0, &learn_then(20, 16.1), &step_at(10), unfaithful),
        run(256, 1, &learn_then(20, 16.1), &step_at(12), unfaithful),
        at_lr(run(64, 0, &learning(0.3), &steady_dev(0.02), unfaithful), 0.5),
    ];
    let masks = BTreeMap::from([("w512s0m".to_string(), fading(0.1)), ("w256s0m".to_string(), fading(0.9))]);
    (runs, masks)
}

/// Runs that can test nothing: no masked run, two widths, bins too sparse, and only runs that
/// collapsed before learning or learned and then died.
fn untestable() -> Vec<RunTables> {
    let mut sparse = run(16, 0, &learning(0.3), &steady_dev(0.01), faithful);
    sparse.conditional.iter_mut().for_each(|c| c.count = 50);
    let early: Vec<f64> = (0..=30).map(|e| if e == 0 { 2.3 } else { 14.5 }).collect();
    vec![
        sparse,
        run(64, 0, &early, &step_at(20), faithful),
        run(64, 1, &learn_then(20, std::f64::consts::LN_10), &step_at(20), faithful),
    ]
}

fn section<'a>(name: &str, runs: &'a [RunTables], masks: &BTreeMap<String, Vec<MaskPoint>>) -> Section<'a> {
    let runs: Vec<&RunTables> = runs.iter().collect();
    Section {
        name: name.into(),
        departures: if name == "supporting" { vec![] } else { vec![format!("{name} fixture")] },
        claims: check_all(&runs, masks),
        figures: vec![],
        runs,
    }
}

fn report_text() -> String {
    let (support, support_masks) = supporting();
    let (refute, refute_masks) = refuting();
    let none = untestable();
    let mut sections =
        vec![section("supporting", &support, &support_masks), section("refuting", &refute, &refute_masks)];
    sections.push(section("untestable", &none, &BTreeMap::new()));
    sections[0].figures = ["mask", "regimes", "w-vs-w0", "moments", "evolution", "width", "phase"]
        .iter()
        .enumerate()
        .map(|(i, name)| FigureLink {
            id: format!("F{}", i + 1),
            path: format!("figures/F{}-{name}-fixture.png", i + 1),
            caption: format!("F{} {name} of the fixture", i + 1),
        })
        .collect();
    let onset = |name: &str, sq_norm: f64, interval| Onset { name: name.into(), sq_norm, interval, max_lr: 1.0 };
    let onsets = [onset("supporting", 100.0, Some((0.4, 0.5))), onset("refuting", 300.0, Some((0.1, 0.17)))];
    render(&Report {
        title: "drift reproduction report — fixture".into(),
        notices: vec!["a fixture, not a reproduction".into()],
        sections,
        onset: Some(check_onset(&onsets)),
        optimizers: vec![],
        command: "cargo test --test report".into(),
    })
}

#[test]
fn the_report_of_fixed_tables_is_the_committed_one() {
    let text = report_text();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("DRIFT_BLESS").is_some_and(|v| v != "0") {
        std::fs::write(&path, &text).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let want =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (DRIFT_BLESS=1 writes it)", path.display()));
    if text != want {
        let line = text.lines().zip(want.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "the report differs from {GOLDEN} from line {}:\n  got:  {:?}\n  want: {:?}\n(DRIFT_BLESS=1 regenerates it if the change is meant)",
            line + 1,
            text.lines().nth(line),
            want.lines().nth(line)
        );
    }
}
