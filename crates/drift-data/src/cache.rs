//! Entries of the cache under `$DRIFT_CACHE`: files drift derives from a source (a decompressed
//! `.gz`, HASYv2's decoded images) once, then memory-maps on every load.
//!
//! Each entry `NAME` has a record `NAME.check` beside it holding the size and SHA-256 the entry
//! had when it was made. [`open`] maps the entry and checks it against its record; an entry that
//! is truncated, grown, altered or without a record is rebuilt from its source, with a warning
//! that names it. A damaged cache is drift's own business, never a fault of the user's data.
//!
//! Entries and records are each written to a temporary file in the cache folder and renamed
//! into place, the record first. An entry's content is a function of its name (the name carries
//! a hash of the source), so any record that exists states the one right size and SHA-256 for it,
//! whichever process wrote it. A process killed at any point therefore leaves either nothing, a
//! record without its entry (built afresh on the next load), or a complete entry with its record;
//! two processes building one entry at once write the same bytes; and a reader that sees an entry
//! in any other state finds that it does not match and rebuilds it.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use sha2::{Digest, Sha256};

use crate::{checksums, DataError};

/// The record of `entry`: `NAME.check` in the same folder.
pub(crate) fn record_path(entry: &Path) -> PathBuf {
    let mut name = entry.file_name().unwrap_or_default().to_os_string();
    name.push(".check");
    entry.with_file_name(name)
}

/// What an entry's record says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    bytes: u64,
    sha256: String,
}

impl Record {
    fn to_text(&self) -> String {
        format!("bytes={}\nsha256={}\n", self.bytes, self.sha256)
    }

    /// The record in `text`, or `None` if it is not one this module writes.
    fn parse(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        let bytes = lines.next()?.strip_prefix("bytes=")?.parse().ok()?;
        let sha256 = lines.next()?.strip_prefix("sha256=")?;
        let hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (hex && lines.next().is_none()).then(|| Record { bytes, sha256: sha256.into() })
    }
}

/// A mapped cache entry that matched its record (or was just built), and, if it had to be
/// rebuilt, the warning that says so.
pub(crate) struct Entry {
    pub map: Mmap,
    pub warning: Option<String>,
}

/// Where a build writes an entry's bytes: a temporary file in the cache folder, hashed on the way.
pub(crate) struct Writer<'a> {
    out: BufWriter<&'a File>,
    path: &'a Path,
    hasher: Sha256,
    bytes: u64,
}

impl Writer<'_> {
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), DataError> {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes).map_err(io_at(self.path))
    }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.to_path_buf();
    move |source| DataError::Io { path, source }
}

/// Maps the entry `path` if it matches its record. Otherwise builds it with `build`, which
/// writes the entry's bytes (and fails with an error naming the source, if the source is bad),
/// and maps the new file; `source` says where a rebuilt entry came from, in the warning.
/// `expected_len`, when known, is the only length an entry can rightly have.
pub(crate) fn open(
    path: &Path,
    expected_len: Option<u64>,
    source: &str,
    build: impl FnOnce(&mut Writer) -> Result<(), DataError>,
) -> Result<Entry, DataError> {
    let damage = match check(path, expected_len)? {
        Check::Good(map) => return Ok(Entry { map, warning: None }),
        Check::Absent => None,
        Check::Damaged(reason) => Some(reason),
    };
    let map = rebuild(path, build)?;
    let warning = damage.map(|reason| format!("cache file {}: {reason}; rebuilt from {source}", path.display()));
    Ok(Entry { map, warning })
}

enum Check {
    Good(Mmap),
    /// No entry: a first build, or a cache the user cleared.
    Absent,
    /// An entry that is not what was made: why.
    Damaged(String),
}

/// The entry `path` checked against its record: size first (no reading), then SHA-256 of the
/// mapped bytes, so the bytes that passed are the very ones the caller uses.
fn check(path: &Path, expected_len: Option<u64>) -> Result<Check, DataError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Check::Absent),
        Err(e) => return Err(DataError::Io { path: path.to_path_buf(), source: e }),
    };
    let record_path = record_path(path);
    let record = match fs::read_to_string(&record_path) {
        Ok(text) => Record::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let reason = format!("no record of its size and SHA-256 ({} is missing)", record_path.display());
            return Ok(Check::Damaged(reason));
        }
        Err(e) => return Err(DataError::Io { path: record_path, source: e }),
    };
    let Some(record) = record else {
        return Ok(Check::Damaged(format!("its record {} is not readable", record_path.display())));
    };
    let len = file.metadata().map_err(io_at(path))?.len();
    if len != record.bytes {
        return Ok(Check::Damaged(format!("{len} bytes, but {} when it was made", record.bytes)));
    }
    if let Some(want) = expected_len.filter(|&want| want != len) {
        return Ok(Check::Damaged(format!("{len} bytes, but the data set needs {want}")));
    }
    let map = map(&file, path)?;
    let sha256 = checksums::sha256_bytes(&map);
    if sha256 != record.sha256 {
        let reason = format!("SHA-256 {sha256}, but {} when it was made", record.sha256);
        return Ok(Check::Damaged(reason));
    }
    Ok(Check::Good(map))
}

/// Builds the entry `path` into a temporary file, then renames its record and the entry into
/// place (see the module docs for why in this order), and maps the file just written. On an
/// error the temporary file is removed.
fn rebuild(path: &Path, build: impl FnOnce(&mut Writer) -> Result<(), DataError>) -> Result<Mmap, DataError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    let temp = tempfile::Builder::new().prefix(".partial-").tempfile_in(dir).map_err(io_at(dir))?;
    let record = {
        let mut writer =
            Writer { out: BufWriter::new(temp.as_file()), path: temp.path(), hasher: Sha256::new(), bytes: 0 };
        build(&mut writer)?;
        writer.out.flush().map_err(io_at(temp.path()))?;
        Record { bytes: writer.bytes, sha256: checksums::hex(&writer.hasher.finalize()) }
    };
    write_record(dir, &record_path(path), &record)?;
    let file = temp.persist(path).map_err(|e| DataError::Io { path: path.to_path_buf(), source: e.error })?;
    // The handle of the file we wrote: a racing process's rename cannot swap it under us.
    map(&file, path)
}

fn write_record(dir: &Path, path: &Path, record: &Record) -> Result<(), DataError> {
    let mut temp = tempfile::Builder::new().prefix(".partial-").tempfile_in(dir).map_err(io_at(dir))?;
    temp.write_all(record.to_text().as_bytes()).map_err(io_at(temp.path()))?;
    temp.persist(path).map_err(|e| DataError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

fn map(file: &File, path: &Path) -> Result<Mmap, DataError> {
    // SAFETY: the bytes behind a mapping must not change while we hold slices of them. Cache
    // entries are written to a temporary file and renamed into place, never modified in place:
    // a rebuild replaces the directory entry, and this mapping keeps the file it was made from.
    // Only something outside drift writing into the cache file itself could break this.
    unsafe { Mmap::map(file) }.map_err(io_at(path))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A damage: what it is, what it does to an entry, and what the warning must say.
    pub(crate) type Damage = (&'static str, fn(&Path), &'static str);

    /// Ways a cache entry gets damaged (a disk, a killed copy, a hand edit), each with what the
    /// warning must say.
    pub(crate) fn damages() -> Vec<Damage> {
        fn truncate(p: &Path) {
            let bytes = fs::read(p).unwrap();
            fs::write(p, &bytes[..bytes.len() - 3]).unwrap();
        }
        fn grow(p: &Path) {
            let mut bytes = fs::read(p).unwrap();
            bytes.extend_from_slice(&[0; 5]);
            fs::write(p, bytes).unwrap();
        }
        fn flip(p: &Path) {
            let mut bytes = fs::read(p).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            fs::write(p, bytes).unwrap();
        }
        fn unrecord(p: &Path) {
            fs::remove_file(record_path(p)).unwrap();
        }
        fn garble(p: &Path) {
            fs::write(record_path(p), "bytes=twelve\n").unwrap();
        }
        vec![
            ("truncated", truncate, "bytes, but"),
            ("grown", grow, "bytes, but"),
            ("same length, one byte flipped", flip, "SHA-256"),
            ("record missing", unrecord, "no record of its size and SHA-256"),
            ("record garbled", garble, "is not readable"),
        ]
    }

    fn build_with(bytes: &'static [u8]) -> impl FnOnce(&mut Writer) -> Result<(), DataError> {
        move |w| w.write(bytes)
    }

    #[test]
    fn record_round_trips_and_refuses_anything_else() {
        let record = Record { bytes: 12, sha256: checksums::sha256_bytes(b"x") };
        assert_eq!(Record::parse(&record.to_text()), Some(record.clone()));
        let text = record.to_text();
        for bad in ["", "bytes=12\n", &text.replace("12", "-1"), &text.to_uppercase(), &format!("{text}more\n")] {
            assert_eq!(Record::parse(bad), None, "{bad:?}");
        }
        assert_eq!(record_path(Path::new("/c/idx/ab-train")), Path::new("/c/idx/ab-train.check"));
    }

    #[test]
    fn first_build_is_silent_and_reuse_reads_nothing_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/entry");
        let entry = open(&path, None, "the source", build_with(b"hello")).unwrap();
        assert_eq!((&entry.map[..], entry.warning), (&b"hello"[..], None));
        assert!(record_path(&path).is_file());
        let again = open(&path, Some(5), "the source", |_| panic!("a good entry is not rebuilt")).unwrap();
        assert_eq!((&again.map[..], again.warning), (&b"hello"[..], None));
        let names: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "the entry and its record, no temporary files: {names:?}");
    }

    #[test]
    fn an_entry_of_the_wrong_expected_length_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        open(&path, None, "src", build_with(b"abc")).unwrap();
        let entry = open(&path, Some(4), "src", build_with(b"abcd")).unwrap();
        assert_eq!(&entry.map[..], b"abcd");
        assert!(entry.warning.unwrap().contains("3 bytes, but the data set needs 4"));
    }

    #[test]
    fn what_a_killed_build_leaves_is_built_afresh_or_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        // Killed after the record was renamed, before the entry was.
        open(&path, None, "src", build_with(b"data")).unwrap();
        fs::remove_file(&path).unwrap();
        // Killed while writing: a temporary file the next build does not touch.
        fs::write(dir.path().join(".partial-x"), b"da").unwrap();
        let entry = open(&path, None, "src", build_with(b"data")).unwrap();
        assert_eq!((&entry.map[..], entry.warning), (&b"data"[..], None));
    }

    #[test]
    fn processes_racing_to_build_one_entry_all_get_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let build = |w: &mut Writer| {
            for chunk in bytes.chunks(1000) {
                w.write(chunk)?;
                std::thread::yield_now();
            }
            Ok(())
        };
        std::thread::scope(|s| {
            let racers: Vec<_> = (0..4).map(|_| s.spawn(|| open(&path, None, "src", build).unwrap())).collect();
            for racer in racers {
                let entry = racer.join().unwrap();
                assert!(entry.map[..] == bytes[..] && entry.warning.is_none());
            }
        });
        let again = open(&path, None, "src", |_| panic!("the raced entry matches its record")).unwrap();
        assert!(again.map[..] == bytes[..]);
    }

    #[test]
    fn a_failed_build_leaves_neither_entry_nor_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        let fail = |w: &mut Writer| {
            w.write(b"half")?;
            Err(DataError::Gzip { path: "src.gz".into(), reason: "truncated".into() })
        };
        let e = open(&path, None, "src", fail).err().unwrap().to_string();
        assert_eq!(e, "src.gz: corrupt gzip: truncated");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
