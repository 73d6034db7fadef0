//! Run and sweep folders under hostile use: runs too big for the machine, two writers on one
//! folder, paths that are not folders, damaged checkpoints and records, input that means nothing.
//! Each refusal is exit status 2 with a message naming the culprit, and nothing is lost.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use drift_analysis::RunDir;

fn drift() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drift"));
    cmd.env_remove("DRIFT_SKIP_LOG");
    cmd
}

/// A small synthetic run of `epochs` epochs (2 000 samples, width 16), `extra` flags replacing
/// or adding to those.
fn train_args(out: &Path, epochs: u32, extra: &[&str]) -> Vec<String> {
    let epochs = epochs.to_string();
    let mut flags = vec![["--dataset", "synthetic"], ["--train-size", "2000"], ["--width", "16"], ["--threads", "1"]];
    flags.extend([["--snapshots", "0,last"], ["--epochs", &epochs]]);
    for pair in extra.chunks(2) {
        match flags.iter_mut().find(|f| f[0] == pair[0]) {
            Some(flag) => flag[1] = pair[1],
            None => flags.push([pair[0], pair[1]]),
        }
    }
    let mut args = vec!["train".to_string()];
    args.extend(flags.iter().flatten().map(|s| s.to_string()));
    args.extend(["--out".to_string(), out.display().to_string()]);
    args
}

fn run(args: &[String]) -> Output {
    drift().args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Exit status 2 and a message holding every one of `parts`.
fn refused(output: &Output, parts: &[&str]) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(2), "exit status; stderr: {text}");
    for part in parts {
        assert!(text.contains(part), "message says '{part}': {text}");
    }
}

/// Every file of a folder with a hash of its bytes, for "nothing was touched" (the lock file,
/// which names its latest holder, aside).
fn contents(dir: &Path) -> Vec<(PathBuf, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(contents(&path));
        } else if path.extension().is_none_or(|e| e != "lock") {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            fs::read(&path).unwrap_or_default().hash(&mut hasher);
            out.push((path.clone(), hasher.finish()));
        }
    }
    out.sort();
    out
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(args: &[String]) -> Child {
    drift().args(args).stderr(Stdio::piped()).spawn().unwrap()
}

/// An interrupted run in `out`: started, stopped by SIGTERM once it has a checkpoint.
fn interrupted_run(out: &Path, epochs: u32) {
    interrupted_run_with(out, epochs, &[]);
}

/// [`interrupted_run`] with `extra` flags.
fn interrupted_run_with(out: &Path, epochs: u32, extra: &[&str]) {
    let mut child = spawn(&train_args(out, epochs, extra));
    wait_for("the first checkpoint", || RunDir::new(out).checkpoint_path().is_file());
    unsafe_kill(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "SIGTERM leaves a checkpoint and exits 143");
    assert!(RunDir::new(out).checkpoint_path().is_file() && !RunDir::new(out).is_finished());
}

fn unsafe_kill(pid: u32, signal: &str) {
    assert!(Command::new("kill").args(["-s", signal, &pid.to_string()]).status().unwrap().success());
}

#[test]
fn a_network_too_big_for_memory_is_refused_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let output = run(&train_args(&out, 1, &["--width", "1000000"]));
    refused(&output, &["--width: ", "needs about", "TiB of memory", "available here"]);
    assert!(!out.exists(), "no half-made folder");
    // And the same --out works at once with a sane width.
    assert!(run(&train_args(&out, 1, &[])).status.success());
}

#[test]
fn threads_far_above_the_cores_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run(&train_args(&tmp.path().join("out"), 1, &["--threads", "10000000000"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("--threads 10000000000: this machine has"), "{}", stderr(&output));
}

#[test]
fn one_impossible_run_stops_a_sweep_before_any_run_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    fs::write(&file, "dataset = \"synthetic\"\nsynthetic-train = 500\nepochs = 1\nwidth = [8, 1000000, 16]\n").unwrap();
    let out = tmp.path().join("out");
    for resume in [false, true] {
        let mut cmd = drift();
        cmd.arg("sweep").arg(&file).arg("--out").arg(&out);
        if resume {
            cmd.arg("--resume");
        }
        let output = cmd.output().unwrap();
        refused(&output, &["run 2 of the sweep", "--width: ", "memory"]);
        assert!(!out.exists(), "nothing started, nothing created");
    }
}

#[test]
fn two_trainers_on_one_folder_the_second_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // Long enough never to finish while the second one tries: it is stopped at the end.
    let args = train_args(&out, 1000, &["--train-size", "20000", "--width", "64"]);
    let mut first = spawn(&args);
    wait_for("the first trainer's record", || RunDir::new(&out).record_path().is_file());
    for second_args in [args.clone(), [args.clone(), vec!["--resume".into()]].concat()] {
        let second = run(&second_args);
        assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
        let text = stderr(&second);
        assert!(
            text.contains("is being written by another drift process") || text.contains("folder is not empty"),
            "{text}"
        );
    }
    // With --resume the second must see the lock, not the files.
    let resumed = run(&[args.clone(), vec!["--resume".into()]].concat());
    assert!(stderr(&resumed).contains(&format!("process {}", first.id())), "names the holder: {}", stderr(&resumed));
    unsafe_kill(first.id(), "TERM");
    assert_eq!(first.wait().unwrap().code(), Some(143));
}

#[test]
fn output_paths_that_cannot_be_folders_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let dangling = tmp.path().join("dangling");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).unwrap();
    let cases: [(PathBuf, &[&str]); 3] = [
        (file.clone(), &["a-file: is a file, expected a folder"]),
        (file.join("run"), &["a-file/run: cannot be a folder", "a-file is a file"]),
        (dangling.clone(), &["dangling: is a symbolic link to", "nowhere, which does not exist"]),
    ];
    for (out, parts) in &cases {
        refused(&run(&train_args(out, 1, &[])), parts);
        let sweep = tmp.path().join("s.toml");
        fs::write(&sweep, "dataset = \"synthetic\"\nepochs = 1\nwidth = 4\n").unwrap();
        refused(&drift().arg("sweep").arg(&sweep).arg("--out").arg(out).output().unwrap(), parts);
        refused(&drift().arg("figures").arg(out).output().unwrap(), &[&out.display().to_string()]);
    }
    assert_eq!(fs::read(&file).unwrap(), b"x", "the file is untouched");
}

#[test]
fn figures_into_a_file_or_below_one_are_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("s.toml");
    fs::write(&sweep, "dataset = \"synthetic\"\nsynthetic-train = 500\nepochs = 2\nwidth = 4\n").unwrap();
    let out = tmp.path().join("out");
    assert!(drift().arg("sweep").arg(&sweep).arg("--out").arg(&out).output().unwrap().status.success());
    let file = tmp.path().join("figs");
    fs::write(&file, b"x").unwrap();
    let figures = |to: &Path| drift().arg("figures").arg(&out).arg("--out").arg(to).output().unwrap();
    refused(&figures(&file), &["figs: is a file, expected a folder"]);
    refused(&figures(&file.join("deeper")), &["figs/deeper: cannot be a folder", "figs is a file"]);
    assert!(figures(&tmp.path().join("fine")).status.success());
}

#[test]
fn a_checkpoint_that_cannot_be_read_is_refused_and_the_tables_stay() {
    for damage in ["directory", "truncated", "empty"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        interrupted_run(&out, 200);
        let checkpoint = RunDir::new(&out).checkpoint_path();
        match damage {
            "directory" => {
                fs::remove_file(&checkpoint).unwrap();
                fs::create_dir(&checkpoint).unwrap();
            }
            "truncated" => {
                let bytes = fs::read(&checkpoint).unwrap();
                fs::write(&checkpoint, &bytes[..bytes.len() / 2]).unwrap();
            }
            _ => fs::write(&checkpoint, b"").unwrap(),
        }
        let before = contents(&out);
        let output = run(&[train_args(&out, 200, &[]), vec!["--resume".into()]].concat());
        refused(&output, &["cannot resume", &checkpoint.display().to_string()]);
        assert_eq!(contents(&out), before, "{damage} checkpoint: nothing in the folder changed");
    }
}

#[test]
fn a_missing_or_damaged_run_json_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    interrupted_run(&out, 200);
    // Without a checkpoint, the folder cannot be told from someone else's: refused, naming the record.
    fs::rename(RunDir::new(&out).checkpoint_path(), tmp.path().join("kept.bin")).unwrap();
    fs::remove_file(RunDir::new(&out).record_path()).unwrap();
    let resume = [train_args(&out, 200, &[]), vec!["--resume".into()]].concat();
    let record = RunDir::new(&out).record_path();
    let (missing, damaged) =
        (format!("{}: is missing", record.display()), format!("{}: is not a drift run record", record.display()));
    refused(&run(&resume), &[&missing, "cannot tell which run"]);
    fs::write(&record, b"{\"run_id\": 7").unwrap();
    refused(&run(&resume), &[&damaged]);
    // With its checkpoint back, the checkpoint names the run: resumed with a warning.
    fs::rename(tmp.path().join("kept.bin"), RunDir::new(&out).checkpoint_path()).unwrap();
    let output = run(&resume);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains(&damaged), "{}", stderr(&output));
    assert!(stderr(&output).contains("resumed after epoch"), "{}", stderr(&output));
}

#[test]
fn resuming_records_thread_changes_and_refuses_result_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    interrupted_run(&out, 200);
    let other_lr = [train_args(&out, 200, &["--lr", "0.05"]), vec!["--resume".into()]].concat();
    let before = contents(&out);
    refused(&run(&other_lr), &["holds run", "another configuration"]);
    assert_eq!(contents(&out), before);
    let more_threads = [train_args(&out, 200, &["--threads", "2"]), vec!["--resume".into()]].concat();
    let output = run(&more_threads);
    assert!(output.status.success(), "{}", stderr(&output));
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(RunDir::new(&out).record_path()).unwrap()).unwrap();
    let resumes = record["resumes"].as_array().expect("resumes recorded");
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0]["threads"], 2.min(std::thread::available_parallelism().unwrap().get()));
}

/// The run id names the arithmetic, not the instruction set: a run started with the AVX-512
/// kernel continues with the AVX2 kernel (another machine, say) as the same run, to the bits of a
/// run trained with AVX2 throughout; a kernel of another arithmetic is another run.
#[test]
fn a_run_resumes_with_another_kernel_of_its_arithmetic() {
    #[cfg(target_arch = "x86_64")]
    let both = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let both = false;
    if !both {
        return drift_skip::skip("avx512", "resuming an AVX-512 run with AVX2 needs both instruction sets");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (moved, straight) = (tmp.path().join("moved"), tmp.path().join("straight"));
    let epochs = 200;
    interrupted_run_with(&moved, epochs, &["--kernel", "avx512"]);
    let portable = [train_args(&moved, epochs, &["--kernel", "portable"]), vec!["--resume".into()]].concat();
    refused(&run(&portable), &["holds run", "another configuration"]);
    let avx2 = [train_args(&moved, epochs, &["--kernel", "avx2"]), vec!["--resume".into()]].concat();
    let output = run(&avx2);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&train_args(&straight, epochs, &["--kernel", "avx2"]));
    assert!(output.status.success(), "{}", stderr(&output));

    let (moved, straight) = (RunDir::new(&moved), RunDir::new(&straight));
    let record =
        |dir: &RunDir| -> serde_json::Value { serde_json::from_slice(&fs::read(dir.record_path()).unwrap()).unwrap() };
    let (a, b) = (record(&moved), record(&straight));
    assert_eq!(a["run_id"], b["run_id"], "one run id for both instruction sets");
    assert_eq!((&a["provenance"]["kernel"], &a["resumes"][0]["kernel"]), (&"avx2".into(), &"avx2".into()));
    let last = *straight.snapshot_epochs().last().unwrap();
    assert_eq!(last, epochs);
    assert_eq!(fs::read(moved.snapshot_path(last)).unwrap(), fs::read(straight.snapshot_path(last)).unwrap());
}

#[test]
fn input_that_means_nothing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let empty = tmp.path().join("empty.toml");
    fs::write(&empty, "# nothing here\n\n").unwrap();
    refused(&drift().arg("sweep").arg(&empty).arg("--out").arg(&out).output().unwrap(), &["empty.toml", "no run keys"]);
    refused(
        &run(&train_args(&out, 3, &["--snapshots", "10,20"])),
        &["--snapshots: '10,20' selects no epoch of a run of 3 epochs"],
    );
    refused(
        &run(&train_args(&out, 3, &["--data-dir", "/srv/data"])),
        &["--data-dir: /srv/data: the synthetic data set is generated"],
    );
    assert!(!out.exists());
    let output = run(&train_args(&out, 3, &["--snapshots", "0,2,10"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("epochs 10 are past --epochs 3 and are ignored"), "{}", stderr(&output));
}
