//! Settings: runs of another optimiser or initialisation than the study's are never compared
//! with the study's runs, and their report sections and figure names say what departs.

mod common;

use drift_analysis::read::RunTables;
use drift_analysis::setting::by_setting;

fn variant(base: &RunTables, id: &str, optimizer: &str, init: &str) -> RunTables {
    let mut r = base.clone();
    r.run_id = id.into();
    r.run.optimizer = optimizer.into();
    r.run.init = init.into();
    match optimizer {
        "momentum" => r.run.momentum = Some(0.9),
        "adam" => (r.run.beta1, r.run.beta2, r.run.eps) = (Some(0.9), Some(0.999), Some(1e-7)),
        _ => {}
    }
    r
}

#[test]
fn optimisers_and_initialisations_are_settings_of_their_own() {
    let sgd = common::run(64, 0, &[2.3, 1.0, 0.5], &[0.0, 0.01, 0.02], |_| (0.0, 0.01, 0.0, 0.0));
    let sgd_seed1 = RunTables { run_id: "sgd1".into(), ..sgd.clone() };
    let adam = variant(&sgd, "adam", "adam", "glorot-uniform");
    let he = variant(&sgd, "he", "sgd", "he-normal");
    let momentum_he = variant(&sgd, "mhe", "momentum", "he-normal");
    let mut adam_beta2 = variant(&sgd, "adam2", "adam", "glorot-uniform");
    adam_beta2.run.beta2 = Some(0.99);
    let settings = by_setting(&[&sgd, &adam, &he, &sgd_seed1, &momentum_he, &adam_beta2]);
    let summary: Vec<(usize, &str, &str)> =
        settings.iter().map(|s| (s.runs.len(), s.tag.as_str(), s.name.as_str())).collect();
    assert_eq!(
        summary,
        [
            (1, "fixture-adam", "fixture, adam (β1 0.9, β2 0.99, ε 1e-7), lr 0.1, 2 epochs"),
            (1, "fixture-adam-2", "fixture, adam (β1 0.9, β2 0.999, ε 1e-7), lr 0.1, 2 epochs"),
            (1, "fixture-momentum-he-normal", "fixture, momentum (μ 0.9), he-normal init, lr 0.1, 2 epochs"),
            (2, "fixture", "fixture, lr 0.1, 2 epochs"),
            (1, "fixture-he-normal", "fixture, he-normal init, lr 0.1, 2 epochs"),
        ]
    );
    let departures = |tag: &str| settings.iter().find(|s| s.tag == tag).unwrap().departures.clone();
    assert!(departures("fixture").is_empty());
    assert_eq!(departures("fixture-adam-2"), ["optimiser adam with β1 0.9, β2 0.999, ε 1e-7 (the study: plain SGD)"]);
    assert_eq!(departures("fixture-he-normal"), ["initialisation he-normal (the study: glorot-uniform)"]);
    assert_eq!(departures("fixture-momentum-he-normal").len(), 2);
}
