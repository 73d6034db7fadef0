//! The figures of a small fixture sweep: every file is written, is a valid PNG or SVG, and has
//! the figure's size.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use drift_analysis::claims::mask_trace;
use drift_analysis::read::read_sweep;
use drift_analysis::{RunMeta, RunWriter, SnapshotSchedule};
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
        let out = dir.join("runs").join(&meta.run_id);
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
    let runs = read_sweep(dir.path()).unwrap();
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
    let (written, skipped) = drift_figures::draw_all(&refs, &masks, &out, "synthetic").unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let ids: Vec<_> = written.iter().map(|w| w.id).collect();
    assert_eq!(ids, ["F1", "F2", "F3", "F4", "F5", "F6"]);
    let expected: BTreeMap<&str, (u32, u32)> = BTreeMap::from([
        ("F1", (1700, 520)),
        ("F2", (1600, 1100)),
        ("F3", (1500, 820)),
        ("F4", (1800, 940)),
        ("F5", (1650, 560)),
        ("F6", (1600, 700)),
    ]);
    for w in &written {
        let png = fs::read(&w.png).unwrap();
        assert_eq!(png_size(&png), expected[w.id], "{}", w.png.display());
        let svg = fs::read_to_string(&w.svg).unwrap();
        let (width, height) = expected[w.id];
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", w.svg.display());
        assert!(svg.contains(&format!("width=\"{width}\"")) && svg.contains(&format!("height=\"{height}\"")));
        assert!(svg.contains("<text"), "the SVG has its labels");
        assert!(png.len() > 20_000, "{} looks empty", w.png.display());
    }
    // Nothing but the figures: temporary files were renamed.
    assert_eq!(fs::read_dir(&out).unwrap().count(), 12);
}
