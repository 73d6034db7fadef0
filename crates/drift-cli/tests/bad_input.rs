//! Bad input gets exit status 2, a message naming the file or option and what was expected, and
//! leaves nothing behind: no output folder, no half-written cache file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use drift_analysis::layout::TableFile;
use drift_analysis::RunDir;

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// An IDX file: magic `00 00 type ndims`, big-endian dimensions, then the data.
fn idx(element_type: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, element_type, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn images(n: u32) -> Vec<u8> {
    idx(0x08, &[n, 4, 4], &(0..n * 16).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>())
}

fn labels(n: u32, classes: u8) -> Vec<u8> {
    idx(0x08, &[n], &(0..n).map(|i| (i % u32::from(classes)) as u8).collect::<Vec<_>>())
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    /// A valid 4-file IDX data set (200 train, 10 test, 4×4 pixels, 3 classes).
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("data")).unwrap();
        let case = Case { dir };
        case.write(TRAIN_IMAGES, &images(200));
        case.write(TRAIN_LABELS, &labels(200, 3));
        case.write(TEST_IMAGES, &images(10));
        case.write(TEST_LABELS, &labels(10, 3));
        case
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        fs::write(self.data().join(name), bytes).unwrap();
    }

    fn drift(&self, extra: &[&str]) -> Output {
        let dataset = format!("idx:{}", self.data().display());
        let out = self.out();
        let mut args = vec!["train", "--dataset", &dataset, "--width", "8", "--epochs", "1", "--threads", "1"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        Command::new(env!("CARGO_BIN_EXE_drift")).args(&args).env("DRIFT_CACHE", self.cache()).output().unwrap()
    }

    /// Exit status 2, a message with `path` and every one of `reasons`, no output, no cache debris.
    fn expect_bad_input(&self, output: Output, path: &Path, reasons: &[&str]) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "exit status; stderr: {stderr}");
        assert!(stderr.contains(&path.display().to_string()), "message names {}: {stderr}", path.display());
        for reason in reasons {
            assert!(stderr.to_lowercase().contains(&reason.to_lowercase()), "message says '{reason}': {stderr}");
        }
        assert!(!self.out().exists(), "no output folder is left behind");
        assert_eq!(leftovers(&self.cache()), Vec::<String>::new(), "no temporary file is left in the cache");
    }

    fn expect_file_error(&self, name: &str, reasons: &[&str]) {
        let output = self.drift(&[]);
        self.expect_bad_input(output, &self.data().join(name), reasons);
    }
}

/// Files in the cache that are not complete, renamed cache entries.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(leftovers(&path));
            } else {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.contains("tmp") || name.starts_with('.') {
                    found.push(name);
                }
            }
        }
    }
    found
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn valid_idx_data_trains() {
    let case = Case::new();
    let output = case.drift(&[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(RunDir::new(case.out()).table(TableFile::Runs).is_file());
}

#[test]
fn wrong_magic() {
    let case = Case::new();
    let mut bytes = images(200);
    bytes[0] = 0x1f;
    case.write(TRAIN_IMAGES, &bytes);
    case.expect_file_error(TRAIN_IMAGES, &["magic"]);
}

#[test]
fn wrong_element_type() {
    let case = Case::new();
    case.write(TRAIN_IMAGES, &idx(0x0D, &[20, 4, 4], &vec![0; 20 * 16 * 4]));
    case.expect_file_error(TRAIN_IMAGES, &["element type"]);
}

#[test]
fn header_promises_more_data_than_the_file_has() {
    let case = Case::new();
    let mut bytes = images(200);
    bytes.truncate(bytes.len() - 5);
    case.write(TRAIN_IMAGES, &bytes);
    case.expect_file_error(TRAIN_IMAGES, &["promises"]);
}

#[test]
fn trailing_bytes() {
    let case = Case::new();
    let mut bytes = labels(200, 3);
    bytes.extend_from_slice(&[1, 2, 3]);
    case.write(TRAIN_LABELS, &bytes);
    case.expect_file_error(TRAIN_LABELS, &["trailing"]);
}

#[test]
fn label_count_differs_from_image_count() {
    let case = Case::new();
    case.write(TEST_LABELS, &labels(9, 3));
    case.expect_file_error(TEST_LABELS, &["9", "10"]);
}

#[test]
fn label_not_below_the_class_count() {
    // Named MNIST-family sets have 10 classes; check it through --data-dir with a label of 10.
    let case = Case::new();
    let mut bytes = labels(200, 3);
    let last = bytes.len() - 1;
    bytes[last] = 10;
    case.write(TRAIN_LABELS, &bytes);
    // MNIST-shaped images, so that the shape check passes.
    case.write(TRAIN_IMAGES, &idx(0x08, &[200, 28, 28], &vec![0; 200 * 784]));
    case.write(TEST_IMAGES, &idx(0x08, &[10, 28, 28], &vec![0; 10 * 784]));
    let data = case.data();
    let output = Command::new(env!("CARGO_BIN_EXE_drift"))
        .args(["train", "--dataset", "mnist", "--data-dir", data.to_str().unwrap(), "--epochs", "1"])
        .args(["--out", case.out().to_str().unwrap()])
        .env("DRIFT_CACHE", case.cache())
        .output()
        .unwrap();
    case.expect_bad_input(output, &data.join(TRAIN_LABELS), &["label", "10"]);
}

#[test]
fn corrupt_gzip() {
    let case = Case::new();
    fs::remove_file(case.data().join(TRAIN_IMAGES)).unwrap();
    let mut gz = gzip(&images(200));
    let middle = gz.len() / 2;
    gz[middle..].iter_mut().for_each(|b| *b = !*b);
    let name = format!("{TRAIN_IMAGES}.gz");
    case.write(&name, &gz);
    case.expect_file_error(&name, &["gzip"]);
}

#[test]
fn gzip_is_accepted_and_cached() {
    let case = Case::new();
    fs::remove_file(case.data().join(TRAIN_IMAGES)).unwrap();
    case.write(&format!("{TRAIN_IMAGES}.gz"), &gzip(&images(200)));
    let output = case.drift(&[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(leftovers(&case.cache()), Vec::<String>::new());
}

#[test]
fn missing_file() {
    let case = Case::new();
    fs::remove_file(case.data().join(TEST_IMAGES)).unwrap();
    case.expect_file_error(TEST_IMAGES, &[]);
}

#[test]
fn empty_file() {
    let case = Case::new();
    case.write(TRAIN_LABELS, &[]);
    case.expect_file_error(TRAIN_LABELS, &["empty"]);
}

#[test]
fn huge_claimed_dimensions() {
    let case = Case::new();
    case.write(TRAIN_IMAGES, &idx(0x08, &[u32::MAX, u32::MAX, u32::MAX], &[0; 64]));
    case.expect_file_error(TRAIN_IMAGES, &[]);
}

#[test]
fn bad_options_name_the_option() {
    let case = Case::new();
    for (args, option) in [
        (&["--lr=-1"][..], "--lr"),
        (&["--loss", "hinge"][..], "--loss"),
        (&["--mask", "ab"][..], "--mask"),
        (&["--snapshots", "1,x"][..], "--snapshots"),
        (&["--train-size", "999"][..], "train-size"),
        (&["--width", "0"][..], "width"),
        (&["--kernel", "sse9"][..], "--kernel"),
        (&["--optimizer", "rmsprop"][..], "--optimizer: unknown optimizer 'rmsprop', expected sgd, momentum or adam"),
        (&["--init", "xavier"][..], "--init: unknown initialisation 'xavier', expected glorot-uniform"),
        (&["--optimizer", "adam", "--beta2", "1.5"][..], "--beta2: must be in [0, 1), got 1.5"),
        (&["--beta1=-0.1"][..], "--beta1: must be in [0, 1)"),
        (&["--optimizer", "momentum", "--momentum", "1"][..], "--momentum: must be in [0, 1), got 1"),
        (&["--eps", "0"][..], "--eps: must be a positive finite number"),
        (&["--target-loss", "0"][..], "--target-loss: must be a positive finite number, got 0"),
        (&["--target-loss", "inf"][..], "--target-loss: must be a positive finite number"),
    ] {
        let output = case.drift(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(option), "{args:?}: message names {option}: {stderr}");
        assert!(!case.out().exists(), "{args:?} left output behind");
    }
}

#[test]
fn config_file_errors_name_the_file_and_key() {
    let case = Case::new();
    let config = case.dir.path().join("run.toml");
    fs::write(&config, "width = 8\nwidht = 9\n").unwrap();
    let output = case.drift(&["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("run.toml") && stderr.contains("widht"), "{stderr}");
    assert!(!case.out().exists());
}

#[test]
fn a_finished_run_is_never_overwritten() {
    let case = Case::new();
    assert!(case.drift(&[]).status.success());
    let before = fs::read(RunDir::new(case.out()).table(TableFile::Runs)).unwrap();
    let output = case.drift(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
    assert_eq!(fs::read(RunDir::new(case.out()).table(TableFile::Runs)).unwrap(), before);
}

#[test]
fn config_values_of_the_wrong_type_or_out_of_range() {
    let case = Case::new();
    let config = case.dir.path().join("run.toml");
    for (text, key) in [
        ("width = \"wide\"", "width"),
        ("width = 0", "width"),
        ("depth = 0", "depth"),
        ("epochs = 0", "epochs"),
        ("epochs = -3", "epochs"),
        ("lr = 0.0", "lr"),
        ("lr = -0.1", "lr"),
        ("lr = nan", "lr"),
        ("batch = 0", "batch"),
        ("batch = 201", "batch"),
        ("seed = 1.5", "seed"),
        ("mask = 7", "mask"),
    ] {
        fs::write(&config, format!("{text}\n")).unwrap();
        // No flags that would override the file's keys.
        let output = Command::new(env!("CARGO_BIN_EXE_drift"))
            .args(["train", "--dataset", &format!("idx:{}", case.data().display()), "--config"])
            .args([config.to_str().unwrap(), "--out", case.out().to_str().unwrap()])
            .env("DRIFT_CACHE", case.cache())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(key), "{text}: message names {key}: {stderr}");
        assert!(!case.out().exists(), "{text} left output behind");
    }
}

#[test]
fn a_data_folder_that_is_a_file() {
    let case = Case::new();
    let file = case.data().join(TRAIN_IMAGES);
    let idx = format!("idx:{}", file.display());
    for args in [vec!["--dataset", &idx], vec!["--dataset", "mnist", "--data-dir", file.to_str().unwrap()]] {
        let output = Command::new(env!("CARGO_BIN_EXE_drift"))
            .args(["train", "--epochs", "1"])
            .args(&args)
            .args(["--out", case.out().to_str().unwrap()])
            .env("DRIFT_CACHE", case.cache())
            .output()
            .unwrap();
        case.expect_bad_input(output, &file, &["not a directory"]);
    }
}

#[test]
fn idx_files_of_the_wrong_shape_for_the_data_set() {
    // Valid IDX files, but 4×4 images: not MNIST.
    let case = Case::new();
    let output = Command::new(env!("CARGO_BIN_EXE_drift"))
        .args(["train", "--dataset", "mnist", "--epochs", "1", "--out", case.out().to_str().unwrap()])
        .env("MNIST_DIR", case.data())
        .env("DRIFT_CACHE", case.cache())
        .output()
        .unwrap();
    case.expect_bad_input(output, &case.data().join(TRAIN_IMAGES), &["28×28", "4×4"]);
}

#[test]
fn an_output_folder_that_holds_another_run() {
    let case = Case::new();
    assert!(case.drift(&[]).status.success());
    let output = case.drift(&["--seed", "5", "--resume"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--out") && stderr.contains("another configuration"), "{stderr}");
    let finished = case.drift(&["--resume"]);
    assert!(finished.status.success());
    assert!(String::from_utf8_lossy(&finished.stderr).contains("already finished"));
}

/// Runs `body` with a fresh tmpfs mounted at a folder under `root` (root only; otherwise the
/// skip is recorded, capability `root`, and the test passes).
fn with_tmpfs(root: &Path, options: &str, body: impl FnOnce(&Path)) {
    let mount_point = root.join("mnt");
    fs::create_dir_all(&mount_point).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(&mount_point).output();
    match mounted {
        Ok(out) if out.status.success() => {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mount_point)));
            let _ = Command::new("umount").arg(&mount_point).status();
            if let Err(panic) = result {
                std::panic::resume_unwind(panic);
            }
        }
        other => {
            eprintln!("mount -t tmpfs: {other:?}");
            drift_skip::skip("root", "cannot mount a tmpfs here (needs root)");
        }
    }
}

#[test]
fn a_read_only_results_folder() {
    let case = Case::new();
    with_tmpfs(case.dir.path(), "ro,size=1m", |ro| {
        let out = ro.join("results").join("run");
        let dataset = format!("idx:{}", case.data().display());
        let output = Command::new(env!("CARGO_BIN_EXE_drift"))
            .args(["train", "--dataset", &dataset, "--width", "8", "--epochs", "1", "--out", out.to_str().unwrap()])
            .env("DRIFT_CACHE", case.cache())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--out") && stderr.contains(&out.display().to_string()), "{stderr}");
        assert!(stderr.to_lowercase().contains("read-only"), "{stderr}");
    });
}

#[test]
fn a_full_disk_stops_the_run_keeps_the_checkpoint_and_resume_continues() {
    let case = Case::new();
    let reference = case.dir.path().join("reference");
    let dataset = format!("idx:{}", case.data().display());
    let train = |out: &Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_drift"))
            .args(["train", "--dataset", &dataset, "--width", "96", "--epochs", "12", "--batch", "50"])
            .args(["--snapshots", "every:1", "--threads", "1", "--out", out.to_str().unwrap()])
            .args(extra)
            .env("DRIFT_CACHE", case.cache())
            .output()
            .unwrap()
    };
    assert!(train(&reference, &[]).status.success());
    with_tmpfs(case.dir.path(), "size=256k", |disk| {
        let out = disk.join("run");
        let full = train(&out, &[]);
        let stderr = String::from_utf8_lossy(&full.stderr);
        assert_eq!(full.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("No space left on device") && stderr.contains(&out.display().to_string()), "{stderr}");
        // The last good checkpoint is there, and every file under a final name is whole.
        let run = RunDir::new(&out);
        assert!(run.checkpoint_path().is_file() && !run.is_finished());
        let snapshots = run.snapshot_epochs();
        assert!(!snapshots.is_empty() && snapshots.len() < 13, "{snapshots:?}");
        for epoch in &snapshots {
            let path = run.snapshot_path(*epoch);
            drift_analysis::read::read_weight_matrix(&path, 2).unwrap_or_else(|e| panic!("{e}"));
        }
        // Space is back: the run continues and ends as if nothing had happened.
        let grown = Command::new("mount").args(["-o", "remount,size=64m"]).arg(disk).status().unwrap();
        assert!(grown.success());
        let resumed = train(&out, &["--resume"]);
        assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
        for epoch in 0..=12 {
            let [a, b] = [&out, &reference].map(|dir| fs::read(RunDir::new(dir).snapshot_path(epoch)).unwrap());
            assert!(a == b, "snapshot of epoch {epoch}");
        }
    });
}
