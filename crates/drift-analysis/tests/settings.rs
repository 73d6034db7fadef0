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
    r
}

#[test]
fn optimisers_and_initialisations_are_settings_of_their_own() {
    let sgd = common::run(64, 0, &[2.3, 1.0, 0.5], &[0.0, 0.01, 0.02], |_| (0.0, 0.01, 0.0, 0.0));
    let sgd_seed1 = RunTables { run_id: "sgd1".into(), ..sgd.clone() };
    let adam = variant(&sgd, "adam", "adam", "glorot-uniform");
    let he = variant(&sgd, "he", "sgd", "he-normal");
    let momentum_he = variant(&sgd, "mhe", "momentum", "he-normal");
    let settings = by_setting(&[&sgd, &adam, &he, &sgd_seed1, &momentum_he]);
    let summary: Vec<(usize, &str, &str)> =
        settings.iter().map(|s| (s.runs.len(), s.tag.as_str(), s.name.as_str())).collect();
    assert_eq!(
        summary,
        [
            (1, "fixture-adam", "fixture, adam, lr 0.1, 2 epochs"),
            (1, "fixture-momentum-he-normal", "fixture, momentum, he-normal init, lr 0.1, 2 epochs"),
            (2, "fixture", "fixture, lr 0.1, 2 epochs"),
            (1, "fixture-he-normal", "fixture, he-normal init, lr 0.1, 2 epochs"),
        ]
    );
    let departures = |tag: &str| settings.iter().find(|s| s.tag == tag).unwrap().departures.clone();
    assert!(departures("fixture").is_empty());
    assert_eq!(departures("fixture-adam"), ["optimiser adam (the study: plain SGD)"]);
    assert_eq!(departures("fixture-he-normal"), ["initialisation he-normal (the study: glorot-uniform)"]);
    assert_eq!(departures("fixture-momentum-he-normal").len(), 2);
}
