//! `drift analyze`: the snapshot tables recomputed from the saved snapshots are the bytes
//! training wrote (with or without an epoch-0 snapshot), another resolution gives the tables of
//! that resolution, a sweep's unfinished runs are passed over, and bad input is refused with
//! exit status 2 before anything is touched.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use drift_analysis::read::read_run;
use drift_analysis::RunDir;

const SNAPSHOT_TABLES: [&str; 3] = ["conditional.parquet", "hist2d.parquet", "spectrum.parquet"];

fn drift(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drift"));
    cmd.env_remove("DRIFT_SKIP_LOG").args(args).output().unwrap()
}

fn succeeded(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "drift failed: {text}");
    text
}

fn refused(output: &Output, parts: &[&str]) {
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status; stderr: {text}");
    for part in parts {
        assert!(text.contains(part), "message says '{part}': {text}");
    }
}

/// A small synthetic run (depth 2, width 24, 3 epochs) into `out`.
fn train(out: &Path, snapshots: &str, extra: &[&str]) {
    let out = out.to_str().unwrap();
    let mut args = vec!["train", "--dataset", "synthetic", "--train-size", "1500", "--width", "24"];
    args.extend(["--epochs", "3", "--threads", "2", "--snapshots", snapshots, "--out", out]);
    args.extend(extra);
    succeeded(&drift(&args));
}

fn tables(dir: &Path) -> Vec<Vec<u8>> {
    SNAPSHOT_TABLES.iter().map(|t| fs::read(dir.join(t)).unwrap()).collect()
}

#[test]
fn analyze_writes_the_bytes_training_wrote() {
    let root = tempfile::tempdir().unwrap();
    // With an epoch-0 snapshot W0 is read back; without one (and with a mask) it is regenerated.
    let he_adam = &["--init", "he-normal", "--optimizer", "adam", "--lr", "0.001"][..];
    let cases =
        [("with0", "0,1,last", &[][..]), ("without0", "2,last", &["--mask", "a"][..]), ("he", "2,last", he_adam)];
    for (name, snapshots, extra) in cases {
        let dir = root.path().join(name);
        train(&dir, snapshots, extra);
        let written = tables(&dir);
        for table in SNAPSHOT_TABLES {
            fs::remove_file(dir.join(table)).unwrap();
        }
        let text = succeeded(&drift(&["analyze", dir.to_str().unwrap()]));
        assert!(text.contains("1 of 1 runs recomputed"), "{text}");
        assert!(tables(&dir) == written, "{name}: analyze wrote other bytes than training");
        let t = read_run(&RunDir::new(&dir)).unwrap();
        assert!(!t.spectrum.is_empty(), "{name}");
        // The w0 bins span the initialisation's range: ±2σ of He's truncated normal, not the
        // Glorot limit, so no weight is clamped into an edge bin.
        let first = t.conditional.iter().find(|r| r.layer == 1 && r.bin == 0).unwrap();
        let range = match name {
            "he" => 2.0 * (2.0f64 / 784.0).sqrt() / 0.879_625_661_034_239_8,
            _ => (6.0f64 / (784.0 + 24.0)).sqrt(),
        };
        assert!((first.w0_lo + range).abs() < 1e-12, "{name}: {first:?}");
    }
}

#[test]
fn analyze_at_another_resolution_and_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    train(&dir, "0,last", &[]);
    let written = tables(&dir);
    let path = dir.to_str().unwrap();
    succeeded(&drift(&["analyze", path, "--bins", "10", "--w-bins", "40"]));
    let t = read_run(&RunDir::new(&dir)).unwrap();
    let shapes = [(24usize, 784usize), (24, 24), (10, 24)];
    for epoch in [0, 3] {
        for (l, &(rows, cols)) in shapes.iter().enumerate() {
            let layer = l as i32 + 1;
            let bins: Vec<_> = t.conditional.iter().filter(|r| r.epoch == epoch && r.layer == layer).collect();
            assert_eq!(bins.len(), 10, "epoch {epoch} layer {layer}");
            assert_eq!(bins.iter().map(|r| r.count).sum::<i64>(), (rows * cols) as i64);
            let cells: Vec<_> = t.hist2d.iter().filter(|r| r.epoch == epoch && r.layer == layer).collect();
            assert_eq!(cells.iter().map(|r| r.count).sum::<i64>(), (rows * cols) as i64);
            let glorot = (6.0 / (rows + cols) as f64).sqrt();
            for c in &cells {
                assert!((c.w_hi - c.w_lo - glorot / 20.0).abs() < 1e-12, "w cells of 2l/40: {c:?}");
                assert!((c.w0_hi - c.w0_lo - glorot / 5.0).abs() < 1e-12, "w0 bins of 2l/10: {c:?}");
            }
        }
    }
    // The spectrum does not depend on the bins.
    assert_eq!(tables(&dir)[2], written[2]);
    // Without options, the run's own resolution again.
    succeeded(&drift(&["analyze", path]));
    assert!(tables(&dir) == written);
}

#[test]
fn analyze_a_sweep_passes_over_unfinished_runs() {
    let root = tempfile::tempdir().unwrap();
    let runs = root.path().join("sweep/runs");
    let (done, open) = (runs.join("a"), runs.join("b"));
    train(&done, "0,last", &[]);
    train(&open, "0,last", &["--seed", "1"]);
    fs::remove_file(open.join("runs.parquet")).unwrap();
    let before = tables(&open);
    for table in SNAPSHOT_TABLES {
        fs::remove_file(done.join(table)).unwrap();
    }
    let text = succeeded(&drift(&["analyze", root.path().join("sweep").to_str().unwrap()]));
    assert!(text.contains("is not finished") && text.contains("1 of 2 runs recomputed"), "{text}");
    assert!(SNAPSHOT_TABLES.iter().all(|t| done.join(t).is_file()));
    assert!(tables(&open) == before, "an unfinished run is left as it is");
    // Alone, an unfinished run is an error.
    refused(&drift(&["analyze", open.to_str().unwrap()]), &["not finished", "--resume"]);
}

#[test]
fn analyze_refuses_bad_input_and_touches_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    train(&dir, "0,last", &[]);
    let written = tables(&dir);
    let path = dir.to_str().unwrap();
    refused(&drift(&["analyze", path, "--bins", "0"]), &["--bins", "at least 1"]);
    refused(&drift(&["analyze", path, "--w-bins", "0"]), &["--w-bins", "at least 1"]);
    refused(&drift(&["analyze", root.path().to_str().unwrap()]), &["neither a run folder", "run.json"]);
    let missing = root.path().join("nothing");
    refused(&drift(&["analyze", missing.to_str().unwrap()]), &["does not exist"]);
    refused(&drift(&["analyze", dir.join("run.json").to_str().unwrap()]), &["is a file"]);
    fs::write(dir.join("run.json"), "{").unwrap();
    refused(&drift(&["analyze", path]), &["run.json"]);
    assert!(tables(&dir) == written);
}
