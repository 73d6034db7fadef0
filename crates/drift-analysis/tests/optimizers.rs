//! The optimiser comparison: which settings it compares, which runs are matched at the target
//! loss, the rule for "stays near its initial weights", and how the report says it.

mod common;

use drift_analysis::optimizers::{compare_optimizers, NEAR};
use drift_analysis::query::HIDDEN_LAYER;
use drift_analysis::read::RunTables;
use drift_analysis::report::{render, FigureLink, OptimizerSection, Report};
use drift_analysis::setting::by_setting;

/// A run of `optimizer` trained to a target loss of 0.5: it ends at the first epoch of its
/// learning curve at or below 0.5 (none if `reaches` is false), with hidden→hidden rel_change
/// `rel` there and mean |Δw| `rel / 10`.
fn run(optimizer: &str, width: i64, seed: u64, rel: f64, reaches: bool) -> RunTables {
    let curve: Vec<f64> = if reaches { vec![2.3, 1.2, 0.7, 0.45] } else { vec![2.3, 1.2, 0.7, 0.6] };
    let dev = [0.0, 0.3 * rel, 0.6 * rel, rel];
    let mut r = common::run(width, seed, &curve, &dev.map(|d| d / 10.0), common::faithful);
    r.run_id = format!("{optimizer}-w{width}s{seed}");
    r.run.optimizer = optimizer.into();
    r.run.target_loss = Some(0.5);
    match optimizer {
        "momentum" => (r.run.momentum, r.run.lr) = (Some(0.9), 0.01),
        "adam" => (r.run.beta1, r.run.beta2, r.run.eps, r.run.lr) = (Some(0.9), Some(0.999), Some(1e-7), 0.001),
        _ => {}
    }
    for d in r.deviation.iter_mut().filter(|d| d.layer == HIDDEN_LAYER) {
        d.rel_change = Some(dev[d.epoch as usize]);
    }
    r
}

fn sweep() -> Vec<RunTables> {
    let mut runs = vec![];
    for width in [64, 128, 256] {
        for seed in 0..3 {
            // SGD stays near everywhere; Adam moves past W0 at W = 64 only (two seeds of three).
            runs.push(run("sgd", width, seed, 0.2 * 64.0 / width as f64, true));
            runs.push(run("momentum", width, seed, 0.3 * 64.0 / width as f64, true));
            let adam = if width == 64 && seed < 2 { 1.5 } else { 0.5 };
            runs.push(run("adam", width, seed, adam, true));
        }
    }
    // A momentum run that never reached the target is left out, and named.
    runs.push(run("momentum", 256, 3, 0.1, false));
    runs
}

#[test]
fn optimisers_are_compared_at_the_target_by_the_fixed_rule() {
    let runs = sweep();
    let settings = by_setting(&runs.iter().collect::<Vec<_>>());
    assert_eq!(settings.len(), 3);
    let comparisons = compare_optimizers(&settings);
    assert_eq!(comparisons.len(), 1);
    let c = &comparisons[0];
    assert_eq!(c.target, 0.5);
    assert_eq!((c.data.as_str(), c.tag.as_str()), ("fixture", "fixture-loss0.5"));
    let names: Vec<&str> = c.optimizers.iter().map(|o| o.optimizer.as_str()).collect();
    assert_eq!(names, ["sgd", "adam", "momentum"], "SGD first");
    let [sgd, adam, momentum] = &c.optimizers[..] else { unreachable!() };
    assert_eq!((sgd.matched.len(), momentum.matched.len(), momentum.unmatched.len()), (9, 9, 1));
    assert_eq!(momentum.unmatched[0].run_id, "momentum-w256s3");
    assert!(sgd.matched.iter().all(|m| m.epoch == 3 && m.train_loss == 0.45));
    assert_eq!(sgd.stays_near(), Some(true));
    assert_eq!(momentum.stays_near(), Some(true));
    // The median of 1.5, 1.5 and 0.5 is 1.5 > NEAR; at the other widths 0.5.
    assert_eq!(adam.stays_near(), Some(false));
    assert_eq!(adam.far_widths(), [(64, 1.5)]);
    const { assert!(1.5 > NEAR && 0.5 <= NEAR) };
    let ratio = c.ratio_to_sgd(adam, |r| Some(r.rel_change)).unwrap();
    assert_eq!(ratio.len(), 3);
    assert!((ratio[0].1 - 1.5 / 0.2).abs() < 1e-12, "{ratio:?}");
    // Claims 3 and 4 are computed per run from the last snapshot's bins.
    assert!(sgd.matched.iter().all(|m| m.shape.is_some() && m.correlation.as_ref().is_some_and(|k| k.sign > 0.0)));

    let text = render(&Report {
        title: "t".into(),
        notices: vec![],
        sections: vec![],
        onset: None,
        optimizers: comparisons
            .into_iter()
            .map(|comparison| OptimizerSection {
                comparison,
                figure: Some(FigureLink { id: "F9".into(), path: "figures/F9.png".into(), caption: "cap".into() }),
            })
            .collect(),
        command: "c".into(),
    });
    assert!(text.contains("## Optimisers at matched train loss: fixture"), "{text}");
    assert!(text.contains("- **sgd (lr 0.1)**: stays near its initial weights at every width"), "{text}");
    assert!(text.contains("- **adam (β1 0.9, β2 0.999, ε 1e-7, lr 0.001)**: does **not** stay near its initial weights: median rel_change 1.500 at W = 64."), "{text}");
    assert!(text.contains("| 64 | adam | 3 | 3 | 0.1500 (×7.50) | 1.500 (×7.50) |"), "{text}");
    assert!(text.contains("![F9](figures/F9.png)\n\n*cap*"), "{text}");
    assert!(text.contains("Not compared: momentum run momentum-w256s3 (W = 256, seed 3) did not reach the target: best train loss 0.6000 in 3 epochs"), "{text}");
}

#[test]
fn without_a_common_target_or_a_second_optimiser_there_is_no_comparison() {
    let runs = sweep();
    let untargeted: Vec<RunTables> = runs
        .iter()
        .cloned()
        .map(|mut r| {
            r.run.target_loss = None;
            r
        })
        .collect();
    assert!(compare_optimizers(&by_setting(&untargeted.iter().collect::<Vec<_>>())).is_empty());
    let sgd_only: Vec<&RunTables> = runs.iter().filter(|r| r.run.optimizer == "sgd").collect();
    assert!(compare_optimizers(&by_setting(&sgd_only)).is_empty());
    // Two targets are two comparisons' worth of settings, never mixed.
    let mut mixed = runs.clone();
    for r in mixed.iter_mut().filter(|r| r.run.optimizer == "adam") {
        r.run.target_loss = Some(0.4);
    }
    let c = compare_optimizers(&by_setting(&mixed.iter().collect::<Vec<_>>()));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].optimizers.iter().map(|o| o.optimizer.as_str()).collect::<Vec<_>>(), ["sgd", "momentum"]);
}
