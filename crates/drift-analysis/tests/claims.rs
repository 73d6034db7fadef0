//! Each claim check on hand-made tables whose verdict is known: one that supports the claim, one
//! that refutes it, and (where it applies) one that cannot test it.

use std::collections::BTreeMap;

mod common;

use common::*;
use drift_analysis::claims::*;
use drift_analysis::query::{mask_visibility, rel_change_fit, MaskPoint};
use drift_analysis::read::RunTables;

fn regime_map(result: &ClaimResult) -> &RegimeMap {
    match &result.evidence {
        Evidence::Regimes(RegimesEvidence::Map(m)) => m,
        other => panic!("no phase map: {other:?}"),
    }
}

fn evolution_of(result: &ClaimResult) -> &EvolutionEvidence {
    match &result.evidence {
        Evidence::Evolution(e) => e,
        other => panic!("not claim 5: {other:?}"),
    }
}

#[test]
fn mask_persistence() {
    let mut stable = run(512, 0, &learning(0.2), &steady_dev(0.01), faithful);
    stable.run.mask = Some("a".into());
    let trace =
        |end: f64| (0..=10).map(|e| MaskPoint { epoch: e, visibility: 1.0 + (end - 1.0) * e as f64 / 10.0 }).collect();
    let runs = vec![stable];
    let masks = BTreeMap::from([("w512s0".to_string(), trace(0.9))]);
    let result = check_mask(&refs(&runs), &masks);
    assert_eq!(result.verdict, Verdict::Supported);
    let Evidence::Mask(MaskEvidence::Tested { stable, unstable, other_diverged: 0 }) = &result.evidence else {
        panic!("{:?}", result.evidence)
    };
    assert_eq!((stable.run_id.as_str(), stable.initial), ("w512s0", 1.0));
    assert_eq!(stable.last.epoch, 10);
    assert!((stable.last.visibility - 0.9).abs() < 1e-12);
    assert!(unstable.is_empty());
    let masks = BTreeMap::from([("w512s0".to_string(), trace(0.1))]);
    assert_eq!(check_mask(&refs(&runs), &masks).verdict, Verdict::NotSupported);
    let untested = check_mask(&refs(&runs), &BTreeMap::new());
    assert_eq!(
        (untested.verdict, untested.evidence),
        (Verdict::NotTestable, Evidence::Mask(MaskEvidence::NoStableRun))
    );

    // A diverging masked run whose letter survives the jump refutes the second half.
    let mut unstable = run(256, 0, &diverging(), &steady_dev(0.01), faithful);
    unstable.run.mask = Some("a".into());
    let runs = vec![runs[0].clone(), unstable];
    let vanishing = (0..=10).map(|e| MaskPoint { epoch: e, visibility: if e < 6 { 0.9 } else { 0.1 } }).collect();
    let masks = BTreeMap::from([("w512s0".to_string(), trace(0.9)), ("w256s0".to_string(), vanishing)]);
    let result = check_mask(&refs(&runs), &masks);
    assert_eq!(result.verdict, Verdict::Supported);
    let Evidence::Mask(MaskEvidence::Tested { unstable, .. }) = &result.evidence else {
        panic!("{:?}", result.evidence)
    };
    assert_eq!(unstable.len(), 1);
    let u = &unstable[0];
    assert_eq!((u.run_id.as_str(), u.divergence, u.vanished_at), ("w256s0", 6, Some(6)));
    assert_eq!(
        (u.before, u.after),
        (Some(MaskPoint { epoch: 5, visibility: 0.9 }), Some(MaskPoint { epoch: 6, visibility: 0.1 }))
    );
    let masks = BTreeMap::from([("w512s0".to_string(), trace(0.9)), ("w256s0".to_string(), trace(0.9))]);
    assert_eq!(check_mask(&refs(&runs), &masks).verdict, Verdict::NotSupported);
}

#[test]
fn mask_visibility_is_one_for_an_untouched_mask_and_zero_when_filled_in() {
    let w0 = [0.0, 0.0, 0.5, -0.5];
    assert_eq!(mask_visibility(&w0, &w0), Some(1.0));
    assert_eq!(mask_visibility(&w0, &[0.5, -0.5, 0.5, -0.5]), Some(0.0));
    assert_eq!(mask_visibility(&[0.1, 0.2], &[0.1, 0.2]), None);
}

#[test]
fn regimes() {
    let three = |mid: Vec<f64>| {
        vec![
            run(16, 0, &learning(0.6), &steady_dev(0.03), faithful),
            run(64, 0, &mid, &steady_dev(0.02), faithful),
            run(256, 0, &learning(0.2), &steady_dev(0.01), faithful),
        ]
    };
    let result = check_regimes(&refs(&three(diverging())));
    assert_eq!(result.verdict, Verdict::Supported);
    let map = regime_map(&result);
    assert_eq!((map.testable.as_slice(), map.mid.as_slice()), (&[0.1][..], &[(0.1, vec![64])][..]));
    // The widest trains best, the untrainable mid width worst: ranks 1, 2, 0 against 0, 1, 2.
    assert_eq!(map.width_vs_min_loss, Some(-0.5));
    assert_eq!(check_regimes(&refs(&three(learning(0.4)))).verdict, Verdict::NotSupported);
    let result = check_regimes(&refs(&three(diverging())[..2]));
    assert_eq!(result.verdict, Verdict::NotTestable);
    assert_eq!(result.evidence, Evidence::Regimes(RegimesEvidence::TooFewWidths { widths: vec![16, 64] }));
}

#[test]
fn final_vs_initial() {
    let good = vec![run(256, 0, &learning(0.2), &steady_dev(0.01), faithful)];
    let result = check_w_vs_w0(&refs(&good));
    assert_eq!(result.verdict, Verdict::Supported);
    let Evidence::WVsW0(WVsW0Evidence::Bins { width: 256, runs }) = &result.evidence else {
        panic!("{:?}", result.evidence)
    };
    // The mode sits at 0 in every bin; |skew| = 2c² in the outer bins (|c| > 0.75: ±0.85, ±0.95, and
    // −0.75, whose centre lands a rounding error beyond the edge) and the central ones (|c| < 0.25:
    // ±0.05, ±0.15 and −0.25 likewise).
    assert_eq!((runs.len(), runs[0].peak), (1, 0.0));
    let mean_2c2 = |cs: &[f64]| cs.iter().map(|c| 2.0 * c * c).sum::<f64>() / cs.len() as f64;
    assert!((runs[0].skew_outer - mean_2c2(&[0.75, 0.85, 0.95, 0.85, 0.95])).abs() < 1e-9, "{runs:?}");
    assert!((runs[0].skew_central - mean_2c2(&[0.25, 0.15, 0.05, 0.05, 0.15])).abs() < 1e-9, "{runs:?}");
    // Peak far from w_f = w_i: the mode sits two standard deviations away.
    let shifted = vec![run(256, 0, &learning(0.2), &steady_dev(0.01), |c| (0.0, 0.1, 2.0 * c.abs(), 0.2))];
    assert_eq!(check_w_vs_w0(&refs(&shifted)).verdict, Verdict::NotSupported);
    // Skew largest at the centre.
    let central_skew = vec![run(256, 0, &learning(0.2), &steady_dev(0.01), |c| (0.0, 0.1, 1.0 - c.abs(), 0.0))];
    assert_eq!(check_w_vs_w0(&refs(&central_skew)).verdict, Verdict::NotSupported);
}

#[test]
fn moments() {
    let good = vec![run(256, 0, &learning(0.2), &steady_dev(0.01), faithful)];
    let result = check_moments(&refs(&good));
    assert_eq!(result.verdict, Verdict::Supported);
    let Evidence::Moments(MomentsEvidence::Correlations(runs)) = &result.evidence else {
        panic!("{:?}", result.evidence)
    };
    // mean Δw = 0.05 c is linear in c: a correlation of one.
    assert_eq!(runs.len(), 1);
    assert!((runs[0].sign - 1.0).abs() < 1e-12 && runs[0].size > 0.9, "{runs:?}");
    let mut sparse = good.clone();
    sparse[0].conditional.iter_mut().for_each(|c| c.count = drift_analysis::query::MIN_BIN_COUNT - 1);
    let result = check_moments(&refs(&sparse));
    assert_eq!((result.verdict, result.evidence), (Verdict::NotTestable, Evidence::Moments(MomentsEvidence::NoRun)));
    let result = check_w_vs_w0(&refs(&sparse));
    assert_eq!(result.evidence, Evidence::WVsW0(WVsW0Evidence::SparseBins { width: 256 }));
    let against_sign =
        vec![run(256, 0, &learning(0.2), &steady_dev(0.01), |c| (-0.05 * c, 0.1 + 0.05 * c.abs(), 0.0, 0.0))];
    assert_eq!(check_moments(&refs(&against_sign)).verdict, Verdict::NotSupported);
}

#[test]
fn evolution() {
    // Five crossover runs diverging at epoch 20 (to the plateau); `hits` of them jump there, the
    // others at epoch 10.
    let crossovers = |hits: usize| {
        (0..5)
            .map(|k| run(64, k, &learn_then(20, 16.1), &step_at(if (k as usize) < hits { 20 } else { 10 }), faithful))
            .collect::<Vec<_>>()
    };
    // 4 of 5 = 80%: the rule's share.
    let result = check_evolution(&refs(&crossovers(4)));
    assert_eq!(result.verdict, Verdict::Supported, "{:?}", result.evidence);
    let e = evolution_of(&result);
    assert_eq!((e.records.len(), e.crossovers, e.coinciding, e.early, e.dead), (5, 5, 4, 0, 0), "{e:?}");
    assert_eq!(e.records[0].divergence.epoch, 20);
    assert_eq!(e.records[0].mean_abs.map(|j| j.0), Some(20));
    assert_eq!(e.records[4].mean_abs.map(|j| j.0), Some(10));
    // Trapped on the plateau: every run counts as frozen.
    assert_eq!(e.frozen.len(), 5);
    assert_eq!(check_evolution(&refs(&crossovers(3))).verdict, Verdict::NotSupported);
    // A jump one or two epochs late still coincides; three does not.
    let late = |by: usize| vec![run(64, 0, &learn_then(20, 16.1), &step_at(20 + by), faithful)];
    assert_eq!(check_evolution(&refs(&late(2))).verdict, Verdict::Supported);
    assert_eq!(check_evolution(&refs(&late(3))).verdict, Verdict::NotSupported);
    // Dead networks and early collapses are reported apart: alone they leave the claim untestable,
    // even where their jumps coincide.
    let early: Vec<f64> = (0..=30).map(|e| if e == 0 { 2.3 } else { 14.5 }).collect();
    let apart = vec![
        run(64, 0, &learn_then(20, std::f64::consts::LN_10), &step_at(20), faithful),
        run(64, 1, &early, &step_at(20), faithful),
    ];
    let result = check_evolution(&refs(&apart));
    assert_eq!(result.verdict, Verdict::NotTestable);
    let e = evolution_of(&result);
    assert_eq!((e.records.len(), e.crossovers, e.early, e.dead), (2, 0, 1, 1), "{e:?}");
    // Adding them to the supporting runs changes nothing.
    let mut mixed = crossovers(4);
    mixed.extend(apart.iter().map(|r| RunTables { run_id: format!("{}x", r.run_id), ..r.clone() }));
    assert_eq!(check_evolution(&refs(&mixed)).verdict, Verdict::Supported);
    let calm = vec![run(64, 0, &learning(0.3), &step_at(1), faithful)];
    assert_eq!(check_evolution(&refs(&calm)).verdict, Verdict::NotTestable);
}

#[test]
fn regimes_tell_the_three_pictures_apart() {
    let at = |width: i64, lr: f64, train: Vec<f64>| {
        let mut r = run(width, 0, &train, &steady_dev(0.01), faithful);
        r.run.lr = lr;
        r.run_id = format!("w{width}lr{lr}");
        r
    };
    let ok = || learning(0.2);
    // lr 0.1 trains everywhere; lr 1 loses every width: untrainable above a step size.
    let all = vec![
        at(16, 0.1, ok()),
        at(64, 0.1, ok()),
        at(256, 0.1, ok()),
        at(16, 1.0, diverging()),
        at(64, 1.0, diverging()),
        at(256, 1.0, diverging()),
    ];
    let result = check_regimes(&refs(&all));
    assert_eq!(result.verdict, Verdict::NotSupported);
    let map = regime_map(&result);
    assert_eq!((map.all.as_slice(), map.testable.as_slice()), (&[1.0][..], &[0.1, 1.0][..]));
    assert!(map.mid.is_empty() && map.wide.is_empty() && map.narrow.is_empty());
    // Only the widest lost.
    let wide = vec![at(16, 1.0, ok()), at(64, 1.0, ok()), at(256, 1.0, diverging())];
    let result = check_regimes(&refs(&wide));
    assert_eq!((result.verdict, regime_map(&result).wide.as_slice()), (Verdict::NotSupported, &[1.0][..]));
    // Nothing lost.
    let none = vec![at(16, 0.1, ok()), at(64, 0.1, ok()), at(256, 0.1, ok())];
    let result = check_regimes(&refs(&none));
    let map = regime_map(&result);
    assert_eq!(result.verdict, Verdict::NotSupported);
    assert!(map.mid.is_empty() && map.all.is_empty() && map.wide.is_empty() && map.narrow.is_empty());
    // The study's picture at one lr among others is enough.
    let mut mid = all.clone();
    mid.retain(|r| r.run.lr == 0.1);
    mid.extend([at(16, 0.5, ok()), at(64, 0.5, diverging()), at(256, 0.5, ok())]);
    let result = check_regimes(&refs(&mid));
    assert_eq!(result.verdict, Verdict::Supported);
    assert_eq!(regime_map(&result).mid, [(0.5, vec![64])]);
}

#[test]
fn onset_lines_up_in_one_unit_or_the_other() {
    let onset = |name: &str, sq_norm: f64, interval: Option<(f64, f64)>| Onset {
        name: name.into(),
        sq_norm,
        interval,
        max_lr: 1.0,
    };
    // Onset at lr 0.5 with |x|² 100 and at 0.17 with |x|² 300: the same in lr·|x|².
    let scaled = [onset("a", 100.0, Some((0.4, 0.5))), onset("b", 300.0, Some((0.1, 0.17)))];
    assert!(check_onset(&scaled).0.starts_with("supported"));
    // The same lr for three times the norm.
    let in_lr = [onset("a", 100.0, Some((0.4, 0.5))), onset("b", 300.0, Some((0.4, 0.5)))];
    assert!(check_onset(&in_lr).0.starts_with("refuted"));
    // No onset up to lr 1 for the larger norm fits neither: both predict one below 1.
    let beyond = [onset("a", 100.0, Some((0.4, 0.5))), onset("b", 300.0, None)];
    assert!(check_onset(&beyond).0.contains("neither"));
    assert!(check_onset(&[onset("a", 100.0, None), onset("b", 300.0, None)]).0.starts_with("not testable"));
    let loose = [onset("a", 100.0, Some((0.0, 1.0))), onset("b", 300.0, Some((0.0, 1.0)))];
    assert!(check_onset(&loose).0.starts_with("undecided"));
}

#[test]
fn width() {
    let make = |scales: [f64; 3]| {
        [16, 64, 256]
            .iter()
            .zip(scales)
            .flat_map(|(&w, s)| (0..2).map(move |seed| run(w, seed, &learning(0.2), &steady_dev(s), faithful)))
            .collect::<Vec<_>>()
    };
    let wider_moves_less = make([0.03, 0.02, 0.01]);
    let result = check_width(&refs(&wider_moves_less));
    assert_eq!(result.verdict, Verdict::Supported, "{:?}", result.evidence);
    let Evidence::Width(e) = &result.evidence else { panic!("{:?}", result.evidence) };
    // Every run reaches losses down to 0.3 (learning(0.2) ends at 0.21): six levels.
    let levels: Vec<f64> = e.levels.iter().map(|l| l.level).collect();
    assert_eq!(levels, [1.0, 0.8, 0.6, 0.5, 0.4, 0.3]);
    for l in &e.levels {
        assert_eq!(l.per_width.iter().map(|p| (p.0, p.1.len())).collect::<Vec<_>>(), [(16, 2), (64, 2), (256, 2)]);
        assert_eq!(l.rho, Some(-1.0));
    }
    assert_eq!(check_width(&refs(&make([0.01, 0.02, 0.03]))).verdict, Verdict::NotSupported);
    let result = check_width(&refs(&make([0.03, 0.02, 0.01])[..2]));
    assert_eq!(result.verdict, Verdict::NotTestable);
    let Evidence::Width(e) = &result.evidence else { panic!("{:?}", result.evidence) };
    assert!(e.levels.is_empty());
    // rel_change = mean|Δw| / W here, so the log-log slope against width is below −1.
    let fit = rel_change_fit(&refs(&wider_moves_less));
    assert_eq!(fit.points.len(), 6);
    assert!(fit.slope().unwrap() < -1.0);
    assert_eq!(e.slope, None, "one width has no slope");
}
