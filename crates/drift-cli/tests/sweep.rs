//! `drift sweep` and `drift reproduce` end to end, on the synthetic data set: shards add up to
//! the whole sweep with identical tables, `--resume` skips finished runs, bad sweep options are
//! refused with exit status 2, and a reproduction writes its figures and a report that names a
//! missing data set.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use drift_analysis::layout::TableFile;
use drift_analysis::read::{read_sweep, RunTables};
use drift_analysis::{RunDir, SweepDir};

const SWEEP: &str = r#"
dataset = "synthetic"
train-size = 400
epochs = 4
snapshots = "0,2,last"
threads = 1

[[grid]]
width = [8, 16, 24]
seed = [0, 1]

[[grid]]
width = 24
mask = "a"
"#;

fn drift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drift")).args(args).env_remove("MNIST_DIR").output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sweep(file: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    drift(&args)
}

/// Tables of a sweep by run id, wall-clock columns zeroed.
fn tables(dir: &Path) -> BTreeMap<String, RunTables> {
    read_sweep(&SweepDir::new(dir))
        .unwrap()
        .into_iter()
        .map(|mut t| {
            t.dir = RunDir::new("");
            t.run.wall_seconds = 0.0;
            t.history.iter_mut().for_each(|h| h.seconds = 0.0);
            (t.run_id.clone(), t)
        })
        .collect()
}

#[test]
fn three_shards_make_the_whole_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    fs::write(&file, SWEEP).unwrap();
    let (whole, sharded) = (tmp.path().join("whole"), tmp.path().join("sharded"));
    let out = sweep(&file, &whole, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut per_shard = vec![];
    for shard in ["1/3", "2/3", "3/3"] {
        let out = sweep(&file, &sharded, &["--shard", shard]);
        assert!(out.status.success(), "{}", stderr(&out));
        per_shard.push(SweepDir::new(&sharded).runs().unwrap().len());
    }
    assert_eq!(per_shard, [3, 5, 7], "disjoint slices of 7 runs");
    let (a, b) = (tables(&whole), tables(&sharded));
    assert_eq!(a.len(), 7);
    assert_eq!(a, b, "identical tables but for the wall-clock columns");
    for id in a.keys() {
        for epoch in [0, 2, 4] {
            let path = |root: &Path| SweepDir::new(root).run(id).snapshot_path(epoch);
            assert_eq!(fs::read(path(&whole)).unwrap(), fs::read(path(&sharded)).unwrap(), "{id} {epoch}");
        }
    }
    assert_eq!(fs::read_to_string(SweepDir::new(&sharded).sweep_file()).unwrap(), SWEEP);
}

#[test]
fn resume_skips_finished_runs_and_restarts_unfinished_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    fs::write(&file, SWEEP).unwrap();
    let out_dir = tmp.path().join("out");
    assert!(sweep(&file, &out_dir, &["--shard", "1/2"]).status.success());
    // An unfinished run: a folder without its runs table.
    let victim = SweepDir::new(&out_dir).runs().unwrap().remove(0);
    fs::remove_file(victim.table(TableFile::Runs)).unwrap();
    let again = sweep(&file, &out_dir, &[]);
    assert_eq!(again.status.code(), Some(2), "existing runs need --resume");
    assert!(stderr(&again).contains("--resume"), "{}", stderr(&again));
    let resumed = sweep(&file, &out_dir, &["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("4 runs to train, 3 already finished"), "{}", stderr(&resumed));
    assert_eq!(read_sweep(&SweepDir::new(&out_dir)).unwrap().len(), 7);
    let noop = sweep(&file, &out_dir, &["--resume"]);
    assert!(stderr(&noop).contains("0 runs to train, 7 already finished"), "{}", stderr(&noop));
}

#[test]
fn bad_sweeps_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    fs::write(&file, SWEEP).unwrap();
    let out_dir = tmp.path().join("out");
    for shard in ["0/3", "4/3", "x"] {
        let out = sweep(&file, &out_dir, &["--shard", shard]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("--shard"), "{}", stderr(&out));
    }
    fs::write(&file, "width = [8, 0]\nepochs = 1\ndataset = 'synthetic'").unwrap();
    let out = sweep(&file, &out_dir, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("run 2 of the sweep") && stderr(&out).contains("--width"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "nothing written");
    // Another sweep into the folder of the first.
    fs::write(&file, SWEEP).unwrap();
    assert!(sweep(&file, &out_dir, &["--shard", "1/7"]).status.success());
    let other = tmp.path().join("other.toml");
    fs::write(&other, SWEEP.replace("epochs = 4", "epochs = 5")).unwrap();
    let out = sweep(&other, &out_dir, &["--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("different sweep"), "{}", stderr(&out));
}

#[test]
fn reproduce_writes_figures_and_a_report_naming_missing_data() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("tiny.toml");
    fs::write(&profile, SWEEP.replace("dataset = \"synthetic\"", "dataset = [\"synthetic\", \"mnist\"]")).unwrap();
    let out_dir = tmp.path().join("results");
    let out = drift(&["reproduce", "--profile", profile.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("data set mnist is NOT AVAILABLE"), "loud in the terminal");
    let report = fs::read_to_string(SweepDir::new(&out_dir).report_path()).unwrap();
    assert!(report.contains("data set mnist is NOT AVAILABLE"), "and in the report");
    for n in 1..=6 {
        assert!(report.contains(&format!("### {n}. ")), "claim {n} in the report");
    }
    for figure in ["F1-mask", "F2-regimes", "F3-w-vs-w0", "F4-moments", "F5-evolution", "F6-width", "F7-phase"] {
        for ext in ["png", "svg"] {
            let path = SweepDir::new(&out_dir).figures_dir().join(format!("{figure}-synthetic.{ext}"));
            assert!(path.is_file(), "{}", path.display());
            assert!(report.contains(&format!("figures/{figure}-synthetic.png")));
        }
    }
    // Interrupted or not, a second call resumes: nothing is trained again.
    let again = drift(&["reproduce", "--profile", profile.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("0 runs to train, 7 already finished"), "{}", stderr(&again));
}

#[test]
fn two_processes_on_one_sweep_train_each_run_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    // Longer runs, so the two processes overlap.
    fs::write(
        &file,
        SWEEP.replace("epochs = 4", "epochs = 12").replace("snapshots = \"0,2,last\"", "snapshots = \"0,last\""),
    )
    .unwrap();
    let (shared, reference) = (tmp.path().join("shared"), tmp.path().join("reference"));
    let spawn = |extra: &[&str]| {
        let mut args =
            vec!["sweep".to_string(), file.display().to_string(), "--out".into(), shared.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["--jobs".into(), "1".into()]);
        Command::new(env!("CARGO_BIN_EXE_drift")).args(&args).stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    // Two shards started at once, and a --resume of the whole sweep started by mistake.
    let children =
        [spawn(&["--shard", "1/2", "--resume"]), spawn(&["--shard", "2/2", "--resume"]), spawn(&["--resume"])];
    let mut trained = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        let line = err.lines().find(|l| l.contains("runs trained in")).unwrap_or_else(|| panic!("{err}"));
        trained += line.split_whitespace().find_map(|w| w.parse::<usize>().ok()).unwrap();
    }
    assert_eq!(trained, 7, "every run trained exactly once");
    assert!(sweep(&file, &reference, &[]).status.success());
    assert_eq!(tables(&shared), tables(&reference), "no corrupt or duplicated run");
}

#[test]
fn diverging_runs_are_results_and_the_sweep_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    fs::write(
        &file,
        "dataset = 'synthetic'\ntrain-size = 400\nepochs = 5\nwidth = 16\nthreads = 1\nsnapshots = 'every:1'\n\
         lr = [0.1, 500.0]\nloss = ['keras-clipped', 'logits']\n",
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let out = sweep(&file, &out_dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let runs = read_sweep(&SweepDir::new(&out_dir)).unwrap();
    assert_eq!(runs.len(), 4, "every run finished");
    for run in &runs {
        let diverging = run.run.lr > 1.0;
        assert_eq!(
            run.run.status == "diverged",
            diverging,
            "{} lr {}: {}",
            run.run.loss_mode,
            run.run.lr,
            run.run.status
        );
        if diverging {
            let at = run.run.divergence_epoch.expect("divergence epoch recorded");
            // The tables are intact up to the epoch it diverged at.
            let epochs: Vec<i32> = run.history.iter().map(|h| h.epoch).collect();
            assert_eq!(epochs, (0..=run.run.epochs_done).collect::<Vec<_>>());
            assert!(at <= run.run.epochs_done);
            assert!(run.deviation.iter().all(|d| d.epoch <= run.run.epochs_done));
        }
    }
}
