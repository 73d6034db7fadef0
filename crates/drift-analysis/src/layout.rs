//! The folders drift writes, and every rule about them: [`RunDir`] for one run, [`SweepDir`] for
//! a sweep. No other code spells a file name of the layout.
//!
//! ```text
//! RUN/                       SWEEP/
//!   run.json                   sweep.toml         the sweep file, as given
//!   run.lock                   runs/<run_id>/     one RUN folder per run
//!   checkpoint.bin             figures/           drift figures, drift reproduce
//!   runs.parquet               REPORT.md          drift reproduce
//!   history.parquet …
//!   snapshots/epoch=NNNNNN.parquet
//! ```
//! A run is finished once `runs.parquet` exists: it is the last file a run writes. `run.lock` is
//! an operating-system file lock (flock) held by the one process writing the folder; it goes
//! when that process dies, however it dies.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::parquet_file::write_atomic;

/// A table file of a run folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFile {
    Runs,
    History,
    Deviation,
    Conditional,
    Hist2d,
    Spectrum,
}

impl TableFile {
    pub const ALL: [TableFile; 6] = [
        TableFile::Runs,
        TableFile::History,
        TableFile::Deviation,
        TableFile::Conditional,
        TableFile::Hist2d,
        TableFile::Spectrum,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            TableFile::Runs => "runs.parquet",
            TableFile::History => "history.parquet",
            TableFile::Deviation => "deviation.parquet",
            TableFile::Conditional => "conditional.parquet",
            TableFile::Hist2d => "hist2d.parquet",
            TableFile::Spectrum => "spectrum.parquet",
        }
    }
}

const RECORD_FILE: &str = "run.json";
const LOCK_FILE: &str = "run.lock";
const CHECKPOINT_FILE: &str = "checkpoint.bin";
const SNAPSHOT_DIR: &str = "snapshots";
const SWEEP_FILE: &str = "sweep.toml";
const RUNS_DIR: &str = "runs";
const FIGURES_DIR: &str = "figures";
const REPORT_FILE: &str = "REPORT.md";

/// Why a folder of the layout cannot be used. Every variant names the path; [`Self::is_bad_input`]
/// tells the user's mistakes (exit status 2) from failures of the machine.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{}: is a symbolic link to {}, which does not exist", path.display(), target.display())]
    DanglingSymlink { path: PathBuf, target: PathBuf },
    #[error("{}: does not exist, expected a folder", path.display())]
    Missing { path: PathBuf },
    #[error("{}: is a file, expected a folder", path.display())]
    NotAFolder { path: PathBuf },
    #[error("{}: cannot be a folder, {} is a file", path.display(), file.display())]
    InsideFile { path: PathBuf, file: PathBuf },
    #[error("{}: cannot write in {}: {source}", path.display(), folder.display())]
    Unwritable { path: PathBuf, folder: PathBuf, source: std::io::Error },
    #[error("{}: is being written by another drift process ({holder}); wait for it or use another folder", path.display())]
    Busy { path: PathBuf, holder: String },
    #[error("{}: folder is not empty; drift never overwrites a run: choose a new folder, or add --resume to continue the run in it", path.display())]
    NotEmpty { path: PathBuf },
    #[error("{}: {problem}", path.display())]
    BadRecord { path: PathBuf, problem: String },
    #[error("{}: holds a different sweep ({}); use a new folder for a new sweep", path.display(), file.display())]
    DifferentSweep { path: PathBuf, file: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl LayoutError {
    /// Whether the error is about what the user gave (a path, a folder's contents), not the machine.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, LayoutError::Io { .. })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io { path: path.to_path_buf(), source }
}

/// Checks, before any work, that `path` is or can become a folder drift can write: not a dangling
/// symbolic link, not a file, not below a file, its nearest existing ancestor writable (a
/// read-only or full file system is refused here, not after the first epoch). Creates nothing
/// that stays.
pub fn check_output_folder(path: &Path) -> Result<(), LayoutError> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() && !path.exists() {
            let target = fs::read_link(path).unwrap_or_default();
            return Err(LayoutError::DanglingSymlink { path: path.to_path_buf(), target });
        }
    }
    let existing = nearest_existing(path);
    if !existing.is_dir() {
        return Err(if existing == path {
            LayoutError::NotAFolder { path: path.to_path_buf() }
        } else {
            LayoutError::InsideFile { path: path.to_path_buf(), file: existing.to_path_buf() }
        });
    }
    let probe = existing.join(format!(".drift-write-probe-{}", std::process::id()));
    match File::create(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => {
            Err(LayoutError::Unwritable { path: path.to_path_buf(), folder: existing.to_path_buf(), source })
        }
    }
}

/// The nearest ancestor of `path` that exists (`.` for a relative path with none).
fn nearest_existing(path: &Path) -> &Path {
    let mut existing = path;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => return Path::new("."),
        }
    }
    existing
}

/// Checks that `path` is an existing folder to read from.
pub fn check_input_folder(path: &Path) -> Result<(), LayoutError> {
    let path_buf = || path.to_path_buf();
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(LayoutError::NotAFolder { path: path_buf() }),
        Err(_) if fs::symlink_metadata(path).is_ok() => {
            Err(LayoutError::DanglingSymlink { path: path_buf(), target: fs::read_link(path).unwrap_or_default() })
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            match nearest_existing(path) {
                file if !file.is_dir() => Err(LayoutError::InsideFile { path: path_buf(), file: file.to_path_buf() }),
                _ => Err(LayoutError::Missing { path: path_buf() }),
            }
        }
        Err(source) => Err(LayoutError::Io { path: path_buf(), source }),
    }
}

/// What `run.json` records of a run: its configuration (as the trainer serialises it), the data
/// and where and how it ran. The configuration is kept as JSON so that this crate need not know
/// every key; [`RunRecord::run_id`] and [`RunRecord::status`] are what the layout reads back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// `running`, `completed`, `diverged` or `interrupted`.
    pub status: String,
    pub epochs_done: u32,
    pub wall_seconds: f64,
    pub config: serde_json::Value,
    pub result_keys: serde_json::Map<String, serde_json::Value>,
    pub snapshots: String,
    pub bins: usize,
    pub data: serde_json::Value,
    pub provenance: serde_json::Value,
    /// Each time the run was continued: the epoch it continued after and the options that may
    /// differ from the first start because they never change a result (threads, snapshots).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumes: Vec<serde_json::Value>,
}

/// One run's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

/// What a run folder holds, as far as starting or continuing a run is concerned.
#[derive(Debug, PartialEq)]
pub enum RunContents {
    /// No folder, or nothing in it but the lock.
    Empty,
    /// `runs.parquet` exists.
    Finished,
    /// Started: files but no `runs.parquet`; the record if it can be read, the reason if not.
    Started { record: Box<Result<RunRecord, String>>, checkpoint: bool },
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn table(&self, table: TableFile) -> PathBuf {
        self.path.join(table.file_name())
    }

    pub fn record_path(&self) -> PathBuf {
        self.path.join(RECORD_FILE)
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.join(CHECKPOINT_FILE)
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.path.join(SNAPSHOT_DIR)
    }

    /// The snapshot of `epoch`: `snapshots/epoch=NNNNNN.parquet` (the epoch is also in the file's
    /// metadata, `drift.epoch`).
    pub fn snapshot_path(&self, epoch: u32) -> PathBuf {
        self.snapshot_dir().join(format!("epoch={epoch:06}.parquet"))
    }

    /// The epochs that have a snapshot, ascending.
    pub fn snapshot_epochs(&self) -> Vec<u32> {
        let mut epochs: Vec<u32> = fs::read_dir(self.snapshot_dir())
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e.ok()?.file_name().to_str()?.strip_prefix("epoch=")?.strip_suffix(".parquet")?.parse().ok()
            })
            .collect();
        epochs.sort_unstable();
        epochs
    }

    /// A run is finished once its `runs.parquet` exists: it is the last file a run writes.
    pub fn is_finished(&self) -> bool {
        self.table(TableFile::Runs).is_file()
    }

    /// Whether anything is at the checkpoint's path (a file, or something that is not one and
    /// must then be refused rather than ignored).
    pub fn has_checkpoint(&self) -> bool {
        fs::symlink_metadata(self.checkpoint_path()).is_ok()
    }

    /// The record in `run.json`: `None` if there is none, the reason if it cannot be read.
    pub fn read_record(&self) -> Option<Result<RunRecord, String>> {
        let path = self.record_path();
        let text = match fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("cannot read it: {e}"))),
            Ok(text) => text,
        };
        Some(serde_json::from_str(&text).map_err(|e| format!("is not a drift run record ({e})")))
    }

    pub fn write_record(&self, record: &RunRecord) -> Result<(), LayoutError> {
        let path = self.record_path();
        let text = serde_json::to_string_pretty(record)
            .map_err(|e| LayoutError::BadRecord { path: path.clone(), problem: format!("cannot encode: {e}") })?;
        write_atomic(&path, |w| {
            w.write_all(text.as_bytes())?;
            w.write_all(b"\n")
        })
        .map_err(|e| match e {
            crate::AnalysisError::Io { path, source } => LayoutError::Io { path, source },
            other => LayoutError::BadRecord { path, problem: other.to_string() },
        })
    }

    /// What the folder holds; an unreadable folder is an error.
    pub fn contents(&self) -> Result<RunContents, LayoutError> {
        match fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunContents::Empty),
            Err(source) => return Err(LayoutError::Io { path: self.path.clone(), source }),
            Ok(_) => check_input_folder(&self.path)?,
        }
        let mut entries = fs::read_dir(&self.path).map_err(io(&self.path))?;
        let other = entries.any(|e| e.is_ok_and(|e| e.file_name() != LOCK_FILE));
        if !other {
            return Ok(RunContents::Empty);
        }
        if self.is_finished() {
            return Ok(RunContents::Finished);
        }
        let record = match self.read_record() {
            None => Err("is missing".to_string()),
            Some(record) => record,
        };
        Ok(RunContents::Started { record: Box::new(record), checkpoint: self.has_checkpoint() })
    }

    /// Takes the folder's lock (creating the folder): `Busy` if another process holds it. The
    /// holder's process id and host are written into the lock file for that message.
    pub fn lock(&self) -> Result<RunLock, LayoutError> {
        fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        let path = self.path.join(LOCK_FILE);
        let mut file =
            OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder =
                    if holder.trim().is_empty() { "unknown process".into() } else { holder.trim().to_string() };
                return Err(LayoutError::Busy { path: self.path.clone(), holder });
            }
            Err(fs::TryLockError::Error(source)) => return Err(LayoutError::Io { path, source }),
        }
        let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let holder = format!("process {} on {}", std::process::id(), host.trim());
        let written = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(holder.as_bytes()));
        written.map_err(io(&path))?;
        Ok(RunLock { _file: file })
    }

    /// Removes everything but the lock: a run that stopped before its first checkpoint starts
    /// again from nothing. Needs the lock, so no other process is writing.
    pub fn clear(&self, _lock: &RunLock) -> Result<(), LayoutError> {
        for entry in fs::read_dir(&self.path).map_err(io(&self.path))? {
            let entry = entry.map_err(io(&self.path))?;
            if entry.file_name() == LOCK_FILE {
                continue;
            }
            let path = entry.path();
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(io(&path))?;
        }
        Ok(())
    }
}

/// The lock of a run folder, held while the value lives (and released by the operating system
/// if the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// A sweep's folder: `sweep.toml` and one run folder per run under `runs/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepDir {
    path: PathBuf,
}

impl SweepDir {
    pub fn new(path: impl Into<PathBuf>) -> SweepDir {
        SweepDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.path.join(RUNS_DIR)
    }

    /// The folder of the run `run_id`.
    pub fn run(&self, run_id: &str) -> RunDir {
        RunDir::new(self.runs_dir().join(run_id))
    }

    /// `sweep.toml`: the sweep file as given.
    pub fn sweep_file(&self) -> PathBuf {
        self.path.join(SWEEP_FILE)
    }

    pub fn figures_dir(&self) -> PathBuf {
        self.path.join(FIGURES_DIR)
    }

    pub fn report_path(&self) -> PathBuf {
        self.path.join(REPORT_FILE)
    }

    /// Every run folder of the sweep (finished or not), in name order.
    pub fn runs(&self) -> Result<Vec<RunDir>, LayoutError> {
        let runs = self.runs_dir();
        check_input_folder(&runs)?;
        let mut out = Vec::new();
        for entry in fs::read_dir(&runs).map_err(io(&runs))? {
            let entry = entry.map_err(io(&runs))?;
            if entry.path().is_dir() {
                out.push(RunDir::new(entry.path()));
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Writes `sweep.toml` (and `runs/`), or checks that the one there is this sweep: shards on
    /// several machines share the folder, and a folder holds one sweep.
    pub fn record_sweep(&self, text: &str) -> Result<(), LayoutError> {
        let path = self.sweep_file();
        match fs::read_to_string(&path) {
            Ok(existing) if existing == text => Ok(()),
            Ok(_) => Err(LayoutError::DifferentSweep { path: self.path.clone(), file: path }),
            Err(_) => {
                let runs = self.runs_dir();
                fs::create_dir_all(&runs).map_err(io(&runs))?;
                write_atomic(&path, |w| w.write_all(text.as_bytes()))
                    .map_err(|e| LayoutError::BadRecord { path: path.clone(), problem: e.to_string() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_tell_empty_started_and_finished_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("r"));
        assert_eq!(run.contents().unwrap(), RunContents::Empty);
        let lock = run.lock().unwrap();
        assert_eq!(run.contents().unwrap(), RunContents::Empty, "the lock alone is not content");
        fs::write(run.table(TableFile::History), b"x").unwrap();
        match run.contents().unwrap() {
            RunContents::Started { record, checkpoint: false } => assert_eq!(*record, Err("is missing".into())),
            other => panic!("{other:?}"),
        }
        fs::write(run.record_path(), b"{not json").unwrap();
        match run.contents().unwrap() {
            RunContents::Started { record, .. } => {
                let why = record.unwrap_err();
                assert!(why.starts_with("is not a drift run record"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        fs::create_dir(run.checkpoint_path()).unwrap();
        assert!(matches!(run.contents().unwrap(), RunContents::Started { checkpoint: true, .. }));
        fs::write(run.table(TableFile::Runs), b"x").unwrap();
        assert_eq!(run.contents().unwrap(), RunContents::Finished);
        run.clear(&lock).unwrap();
        assert_eq!(run.contents().unwrap(), RunContents::Empty);
        assert!(run.path().join(LOCK_FILE).is_file(), "clear keeps the lock");
    }

    #[test]
    fn a_second_lock_on_one_folder_is_refused_and_names_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("r"));
        let held = run.lock().unwrap();
        let err = run.lock().unwrap_err();
        assert!(matches!(err, LayoutError::Busy { .. }) && err.is_bad_input());
        assert!(err.to_string().contains(&format!("process {}", std::process::id())), "{err}");
        drop(held);
        run.lock().expect("free again once the holder is gone");
    }

    #[test]
    fn output_folder_problems_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(check_output_folder(&file), Err(LayoutError::NotAFolder { .. })));
        let below = file.join("a/b");
        match check_output_folder(&below) {
            Err(e @ LayoutError::InsideFile { .. }) => assert!(e.to_string().contains("file is a file"), "{e}"),
            other => panic!("{other:?}"),
        }
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path().join("gone"), &link).unwrap();
        let e = check_output_folder(&link).unwrap_err();
        assert!(matches!(e, LayoutError::DanglingSymlink { .. }) && e.to_string().contains("gone"), "{e}");
        check_output_folder(&tmp.path().join("new/deeper")).unwrap();
        assert!(!tmp.path().join("new").exists(), "the check creates nothing");
        assert!(matches!(check_input_folder(&file), Err(LayoutError::NotAFolder { .. })));
        assert!(matches!(check_input_folder(&link), Err(LayoutError::DanglingSymlink { .. })));
        assert!(matches!(check_input_folder(&below), Err(LayoutError::InsideFile { .. })));
        assert!(matches!(check_input_folder(&tmp.path().join("gone")), Err(LayoutError::Missing { .. })));
    }

    #[test]
    fn a_sweep_folder_holds_one_sweep() {
        let tmp = tempfile::tempdir().unwrap();
        let sweep = SweepDir::new(tmp.path().join("s"));
        sweep.record_sweep("width = 4\n").unwrap();
        sweep.record_sweep("width = 4\n").unwrap();
        assert!(matches!(sweep.record_sweep("width = 5\n"), Err(LayoutError::DifferentSweep { .. })));
        assert!(sweep.runs().unwrap().is_empty());
        sweep.run("abc").lock().unwrap();
        assert_eq!(sweep.runs().unwrap(), vec![sweep.run("abc")]);
    }
}
