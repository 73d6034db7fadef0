//! The figures of a small fixture sweep: every file is written, is a valid PNG or SVG, and has
//! the figure's size.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use drift_analysis::claims::mask_trace;
use drift_analysis::read::{read_sweep, RunTables};
use drift_analysis::setting::by_setting;
use drift_analysis::tables::{HistoryRow, RunRow};
use drift_analysis::{RunMeta, RunWriter, SnapshotSchedule, SweepDir};
use drift_data::synthetic::SyntheticConfig;
use drift_data::{DatasetSpec, LoadOptions};
use drift_train::{train, TrainConfig};

fn fixture_sweep(dir: &Path) {
    let mut opts = LoadOptions::new(0);
    opts.synthetic = SyntheticConfig { train: 300, test: 100, ..SyntheticConfig::default() };
    let data = drift_data::load(&DatasetSpec::Synthetic, &opts).unwrap();
    let mut configs = vec![];
    for width in [8, 16, 32] {
        for seed in [0, 1] {
            configs.push(TrainConfig {
                dataset: "synthetic".into(),
                width,
                seed,
                epochs: 6,
                threads: 1,
                ..TrainConfig::default()
            });
        }
    }
    configs.push(TrainConfig {
        dataset: "synthetic".into(),
        width: 32,
        mask: Some('a'),
        epochs: 6,
        threads: 1,
        ..TrainConfig::default()
    });
    for config in configs {
        let meta = RunMeta::new(&config, &data, 300, "fixture");
        let out = SweepDir::new(dir).run(&meta.run_id);
        let mut writer = RunWriter::create(&out, meta, "every:2".parse::<SnapshotSchedule>().unwrap(), 10).unwrap();
        train(&config, &data, &mut writer).unwrap();
    }
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn every_figure_is_a_valid_png_and_svg_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    fixture_sweep(dir.path());
    let runs = read_sweep(&SweepDir::new(dir.path())).unwrap();
    assert_eq!(runs.len(), 7);
    let mut masks = BTreeMap::new();
    for run in &runs {
        if let Some(trace) = mask_trace(run).unwrap() {
            assert_eq!(trace[0].epoch, 0);
            assert_eq!(trace[0].visibility, 1.0);
            masks.insert(run.run_id.clone(), trace);
        }
    }
    assert_eq!(masks.len(), 1, "one masked run");
    let refs: Vec<_> = runs.iter().collect();
    let out = dir.path().join("figures");
    let settings = by_setting(&refs);
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0].tag, "synthetic");
    let (written, skipped) = drift_figures::draw_all(&settings[0], &masks, &out).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let ids: Vec<_> = written.iter().map(|w| w.id).collect();
    assert_eq!(ids, ["F1", "F2", "F3", "F4", "F5", "F6", "F7"]);
    let expected: BTreeMap<&str, (u32, u32)> = BTreeMap::from([
        ("F1", (1700, 520)),
        ("F2", (1600, 1100)),
        ("F3", (1500, 820)),
        ("F4", (1800, 940)),
        ("F5", (1650, 560)),
        ("F6", (1600, 700)),
        ("F7", (870, 420)),
    ]);
    for w in &written {
        let png = fs::read(&w.png).unwrap();
        assert_eq!(png_size(&png), expected[w.id], "{}", w.png.display());
        let svg = fs::read_to_string(&w.svg).unwrap();
        let (width, height) = expected[w.id];
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", w.svg.display());
        assert!(svg.contains(&format!("width=\"{width}\"")) && svg.contains(&format!("height=\"{height}\"")));
        assert!(svg.contains("<text"), "the SVG has its labels");
        assert!(png.len() > 15_000, "{} looks empty", w.png.display());
    }
    // Nothing but the figures: temporary files were renamed.
    assert_eq!(fs::read_dir(&out).unwrap().count(), 14);
}

/// A finished run of `width` at `lr` with the train losses `train` (only what F7 reads).
fn run(width: i64, lr: f64, seed: u64, train: &[f64]) -> RunTables {
    let history: Vec<HistoryRow> = train
        .iter()
        .enumerate()
        .map(|(e, &l)| HistoryRow {
            epoch: e as i32,
            train_loss: l,
            train_acc: 0.5,
            test_loss: l,
            test_acc: 0.5,
            seconds: 0.1,
        })
        .collect();
    let min = train.iter().copied().fold(f64::INFINITY, f64::min);
    RunTables {
        dir: drift_analysis::RunDir::new("/nonexistent"),
        run_id: format!("w{width}lr{lr}s{seed}"),
        run: RunRow {
            dataset: "fixture".into(),
            train_size: 100,
            test_size: 10,
            input_dim: 784,
            classes: 10,
            width,
            depth: 2,
            seed,
            lr,
            batch_size: 10,
            epochs: train.len() as i32 - 1,
            loss_mode: "keras-clipped".into(),
            init: "glorot-uniform".into(),
            mask: None,
            kernel: "portable".into(),
            input: "raw".into(),
            input_sq_norm: 100.0,
            status: "completed".into(),
            epochs_done: train.len() as i32 - 1,
            min_train_loss: min,
            epoch_min_train_loss: 1,
            min_test_loss: min,
            epoch_min_test_loss: 1,
            divergence_epoch: drift_analysis::divergence_epoch(&history, 10),
            wall_seconds: 1.0,
        },
        history,
        deviation: vec![],
        conditional: vec![],
        hist2d: vec![],
    }
}

/// Pixels of a decoded RGB(A) PNG close to `colour`.
fn count_colour(path: &Path, colour: (u8, u8, u8)) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[0].abs_diff(colour.0) < 4 && p[1].abs_diff(colour.1) < 4 && p[2].abs_diff(colour.2) < 4)
        .count()
}

#[test]
fn phase_diagram_colours_each_cell_by_its_regime() {
    let trained = [2.3, 0.5, 0.05, 0.02, 0.01];
    let poor = [2.3, 1.5, 1.0, 0.9, 0.8];
    let lost = [2.3, 0.5, 0.3, 14.5, 14.5];
    // lr 0.1: W 16 trains poorly, W 64 and 256 well; lr 1: W 64 is lost in both seeds, W 256 in one.
    let runs = [
        run(16, 0.1, 0, &poor),
        run(64, 0.1, 0, &trained),
        run(256, 0.1, 0, &trained),
        run(16, 1.0, 0, &poor),
        run(64, 1.0, 0, &lost),
        run(64, 1.0, 1, &lost),
        run(256, 1.0, 0, &trained),
        run(256, 1.0, 1, &lost),
    ];
    let refs: Vec<&RunTables> = runs.iter().collect();
    let figure = drift_figures::phase_diagram(&refs, "fixture").unwrap();
    use drift_analysis::regimes::Regime::*;
    let regimes: Vec<_> = figure.map.cells.iter().map(|c| (c.width, c.lr, c.regime, c.diverged)).collect();
    assert_eq!(
        regimes,
        [
            (16, 0.1, Low, 0),
            (64, 0.1, High, 0),
            (256, 0.1, High, 0),
            (16, 1.0, Low, 0),
            (64, 1.0, Untrainable, 2),
            (256, 1.0, Untrainable, 1)
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let (png, svg) = drift_figures::save(&figure, dir.path(), "F7").unwrap();
    let colour = |r| {
        let c = drift_figures::regime_colour(r);
        (c.0, c.1, c.2)
    };
    // Two cells of each colour, each far more than the key's swatch (20 × 14 pixels).
    let (high, low, lost) =
        (count_colour(&png, colour(High)), count_colour(&png, colour(Low)), count_colour(&png, colour(Untrainable)));
    let cell = 2 * 200 * 80;
    for (name, n) in [("high", high), ("low", low), ("untrainable", lost)] {
        assert!(n > cell, "{name}: {n} pixels");
    }
    let text = fs::read_to_string(svg).unwrap();
    assert!(text.contains("2/2 diverged, 2 crossover") && text.contains("1/2 diverged, 1 crossover"), "cell labels");
    // Without an untrainable cell there is no red.
    let calm: Vec<&RunTables> = refs.iter().filter(|r| r.run.lr == 0.1).copied().collect();
    let (png, _) =
        drift_figures::save(&drift_figures::phase_diagram(&calm, "calm").unwrap(), dir.path(), "calm").unwrap();
    assert!(count_colour(&png, colour(Untrainable)) < 400, "only the key's swatch");
}
