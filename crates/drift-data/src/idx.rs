//! The IDX format of LeCun's MNIST files (shared by Fashion-MNIST, KMNIST, EMNIST):
//! a big-endian header `0x00 0x00 TYPE NDIMS`, then `NDIMS` u32 sizes, then the elements in
//! row-major order. drift reads only unsigned bytes (`TYPE = 0x08`): images with 3 dimensions
//! (count, rows, columns) and labels with 1 (count).
//!
//! A file is opened by memory-mapping it; a `.gz` is first decompressed once into the cache (see
//! [`open`]). Every size in a header is checked against the real file length with overflow-checked
//! arithmetic before anything is read, so a hostile header can neither overflow nor make us
//! allocate.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use memmap2::Mmap;

use crate::{cache, checksums, DataError};

/// The four files of an IDX data set directory: `(role, file name)`, in the order train images,
/// train labels, test images, test labels. Each may also be present as `NAME.gz`.
pub const FILES: [(&str, &str); 4] = [
    ("train-images", "train-images-idx3-ubyte"),
    ("train-labels", "train-labels-idx1-ubyte"),
    ("test-images", "t10k-images-idx3-ubyte"),
    ("test-labels", "t10k-labels-idx1-ubyte"),
];

/// The only element type drift reads.
const UNSIGNED_BYTE: u8 = 0x08;

/// What a file must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `count × rows × columns` unsigned bytes.
    Images,
    /// `count` unsigned bytes.
    Labels,
}

impl Kind {
    fn ndims(self) -> u8 {
        match self {
            Kind::Images => 3,
            Kind::Labels => 1,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Images => "unsigned-byte images with 3 dimensions",
            Kind::Labels => "unsigned-byte labels with 1 dimension",
        }
    }

    /// The magic number a valid file of this kind starts with.
    pub fn magic(self) -> u32 {
        u32::from(UNSIGNED_BYTE) << 8 | u32::from(self.ndims())
    }
}

/// A checked header: sizes, and where the data start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Sizes, outermost first (`[count, rows, columns]` or `[count]`).
    pub dims: Vec<usize>,
    /// Byte offset of the first element (`4 + 4 * dims.len()`).
    pub data_offset: usize,
}

/// Names of the element types the IDX format defines.
fn type_name(t: u8) -> Option<&'static str> {
    match t {
        0x08 => Some("unsigned byte"),
        0x09 => Some("i8"),
        0x0B => Some("i16"),
        0x0C => Some("i32"),
        0x0D => Some("f32"),
        0x0E => Some("f64"),
        _ => None,
    }
}

/// Parses and checks the header of a whole IDX file held in `bytes` for `kind`: magic number,
/// element type, number of dimensions, positive image sizes, and that the file length equals
/// header plus data exactly. `path` only names the file in errors.
pub fn parse_header(path: &Path, bytes: &[u8], kind: Kind) -> Result<Header, DataError> {
    let fail = |reason: String| Err(DataError::Format { path: path.to_path_buf(), reason });
    if bytes.is_empty() {
        return fail("empty file".into());
    }
    if bytes.len() < 4 {
        return fail(format!("truncated header: the file has {} bytes, an IDX header needs at least 4", bytes.len()));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (elem, ndims) = (bytes[2], bytes[3]);
    let want = format!("expected 0x{:08X} ({})", kind.magic(), kind.describe());
    if bytes[0] != 0 || bytes[1] != 0 {
        return fail(format!("bad magic number 0x{magic:08X}, {want}; not an IDX file"));
    }
    match type_name(elem) {
        None => {
            return fail(format!(
                "bad element type 0x{elem:02X} in magic number 0x{magic:08X}, expected 0x08 (unsigned byte)"
            ))
        }
        Some(name) if elem != UNSIGNED_BYTE => {
            return fail(format!("element type 0x{elem:02X} ({name}) is not supported, expected 0x08 (unsigned byte)"))
        }
        Some(_) => {}
    }
    if ndims != kind.ndims() {
        return fail(format!("bad magic number 0x{magic:08X} ({ndims} dimensions), {want}"));
    }
    let data_offset = 4 + 4 * usize::from(ndims);
    if bytes.len() < data_offset {
        return fail(format!(
            "truncated header: the file has {} bytes, the header of a {ndims}-dimensional IDX file needs {data_offset}",
            bytes.len()
        ));
    }
    let dims: Vec<u32> =
        bytes[4..data_offset].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
    let shown = dims.iter().map(u32::to_string).collect::<Vec<_>>().join("×");
    if kind == Kind::Images && (dims[1] == 0 || dims[2] == 0) {
        return fail(format!("images of {}×{} pixels: rows and columns must be positive", dims[1], dims[2]));
    }
    // u32 sizes multiplied in u64 with overflow checks: a hostile header is refused here,
    // never trusted with an allocation.
    let promised = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)));
    let Some(promised) = promised else {
        return fail(format!("header claims {shown} elements, more bytes than can be addressed"));
    };
    let have = (bytes.len() - data_offset) as u64;
    if have < promised {
        return fail(format!("header promises {promised} bytes of data ({shown}) but the file has only {have}"));
    }
    if have > promised {
        return fail(format!("{} trailing bytes after the data the header describes ({shown})", have - promised));
    }
    // The data fit in the file, so every size fits in usize.
    let dims = dims.iter().map(|&d| d as usize).collect();
    Ok(Header { dims, data_offset })
}

/// The file to read for `name` in `dir`: the raw file if present, else `NAME.gz`.
pub fn locate(dir: &Path, name: &str) -> Option<PathBuf> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Some(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    gz.is_file().then_some(gz)
}

/// An opened, checked IDX file.
#[derive(Debug)]
pub struct IdxFile {
    /// The file as given (a raw file or a `.gz`).
    pub path: PathBuf,
    /// SHA-256 (lower-case hex) of the file as given.
    pub sha256: String,
    /// The header, checked against the data.
    pub header: Header,
    /// Set when the decompressed copy in the cache was damaged and has been rebuilt: the warning
    /// that says so, for the user.
    pub rebuilt: Option<String>,
    pub(crate) map: Mmap,
}

impl IdxFile {
    /// The elements after the header.
    pub fn data(&self) -> &[u8] {
        &self.map[self.header.data_offset..]
    }
}

/// Opens `path` as an IDX file of `kind`, hashing it as given. A `.gz` is decompressed once into
/// `cache_dir` (see [`cached_raw`]) and the cached raw file is mapped; a raw file is mapped in place.
pub fn open(path: &Path, kind: Kind, cache_dir: &Path) -> Result<IdxFile, DataError> {
    let is_gz = path.extension().is_some_and(|e| e == "gz");
    if is_gz {
        let sha256 = checksums::sha256_file(path)?;
        let cached = cached_raw(path, &sha256, cache_dir)?;
        let header = parse_header(path, &cached.map, kind)?;
        return Ok(IdxFile { path: path.to_path_buf(), sha256, header, rebuilt: cached.warning, map: cached.map });
    }
    let map = map_file(path)?;
    let header = parse_header(path, &map, kind)?;
    let sha256 = checksums::sha256_bytes(&map);
    Ok(IdxFile { path: path.to_path_buf(), sha256, header, rebuilt: None, map })
}

/// Maps the user's raw file `path` read-only.
fn map_file(path: &Path) -> Result<Mmap, DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the bytes behind a mapping must not change while we hold slices of them. A raw
    // file the user supplies could be modified or truncated by another process while mapped,
    // which would break that promise (wrong pixels, or SIGBUS); we accept this, as ripgrep does
    // for its mmap search path, because copying 47 MB per run to guard against it is not worth
    // it for read-only data sets. (Cache files keep the promise: see `cache`.)
    unsafe { Mmap::map(&file) }.map_err(io)
}

/// The largest IDX file drift reads (8 GiB; EMNIST, the largest of the family, is under 1 GiB).
pub const MAX_IDX_BYTES: u64 = 1 << 33;

/// The total file length an IDX header promises, once `head` holds the whole header (magic
/// and dimensions); `None` before that, or if the header is not one drift reads (the full
/// check after decompression then says why).
fn promised_length(head: &[u8]) -> Option<u64> {
    let ndims = usize::from(*head.get(3)?);
    if head[0] != 0 || head[1] != 0 || ndims == 0 || ndims > 3 || head.len() < 4 + 4 * ndims {
        return None;
    }
    let data = head[4..4 + 4 * ndims]
        .chunks_exact(4)
        .try_fold(1u64, |acc, c| acc.checked_mul(u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))));
    Some(data.map_or(u64::MAX, |d| d.saturating_add(4 + 4 * ndims as u64)))
}

/// The decompressed copy of `gz` in the cache: `<cache_dir>/idx/<first 16 hex of sha256>-<name>`,
/// keyed by the hash of the `.gz` content so that different sources never collide, and checked
/// against its record on every open (see [`crate::cache`]): a missing copy is decompressed, a
/// damaged one decompressed again with a warning. A decoding error names the `.gz` and leaves no
/// cache file.
pub(crate) fn cached_raw(gz: &Path, gz_sha256: &str, cache_dir: &Path) -> Result<cache::Entry, DataError> {
    let stem = gz.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let target = cache_dir.join("idx").join(format!("{}-{stem}", &gz_sha256[..16]));
    cache::open(&target, None, &gz.display().to_string(), |out| decompress(gz, out))
}

/// Streams `gz` decompressed into `out`, no further than the length its IDX header promises.
fn decompress(gz: &Path, out: &mut cache::Writer) -> Result<(), DataError> {
    let input = File::open(gz).map_err(|source| DataError::Io { path: gz.to_path_buf(), source })?;
    let mut decoder = MultiGzDecoder::new(BufReader::new(input));
    let mut buf = vec![0u8; 1 << 16];
    // The first bytes are the IDX header; once it is in, the length it promises bounds what we
    // accept, so a small .gz that inflates without end (a "gzip bomb") cannot fill the disk.
    let mut head = Vec::with_capacity(16);
    let mut limit = MAX_IDX_BYTES;
    let mut written = 0u64;
    let gzip_error = |reason: String| DataError::Gzip { path: gz.to_path_buf(), reason };
    loop {
        // Decoder errors (bad header, bad deflate data, CRC, truncation) are the .gz's fault.
        let n = decoder.read(&mut buf).map_err(|e| gzip_error(e.to_string()))?;
        if n == 0 {
            return Ok(());
        }
        if head.len() < 16 {
            let take = (16 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
            if let Some(promised) = promised_length(&head) {
                limit = limit.min(promised);
                if promised > MAX_IDX_BYTES {
                    return Err(gzip_error(format!(
                        "its IDX header claims {promised} bytes, more than drift reads ({MAX_IDX_BYTES})"
                    )));
                }
            }
        }
        written += n as u64;
        if written > limit {
            return Err(gzip_error(format!("decompresses to more than the {limit} bytes its IDX header promises")));
        }
        out.write(&buf[..n])?;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    /// Header + data of an unsigned-byte IDX file with these sizes.
    pub(crate) fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn err_of(bytes: &[u8], kind: Kind) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f-idx3-ubyte");
        fs::write(&path, bytes).unwrap();
        let e = open(&path, kind, &dir.path().join("cache")).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        e
    }

    #[test]
    fn good_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-images-idx3-ubyte");
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8 * 10).collect();
        fs::write(&path, idx_bytes(&[2, 3, 4], &data)).unwrap();
        let f = open(&path, Kind::Images, dir.path()).unwrap();
        assert_eq!(f.header.dims, vec![2, 3, 4]);
        assert_eq!(f.data(), &data[..]);
        assert_eq!(f.sha256, checksums::sha256_bytes(&fs::read(&path).unwrap()));
    }

    #[test]
    fn wrong_magic() {
        let mut b = idx_bytes(&[1, 1, 1], &[0]);
        b[0] = 0x12;
        let e = err_of(&b, Kind::Images);
        assert!(e.contains("bad magic number 0x12000803, expected 0x00000803"), "{e}");
        // A labels file where images are expected.
        let e = err_of(&idx_bytes(&[1], &[0]), Kind::Images);
        assert!(e.contains("bad magic number 0x00000801 (1 dimensions), expected 0x00000803"), "{e}");
    }

    #[test]
    fn wrong_element_type() {
        let mut b = idx_bytes(&[1], &[0, 0, 0, 0]);
        b[2] = 0x0D;
        let e = err_of(&b, Kind::Labels);
        assert!(e.contains("element type 0x0D (f32) is not supported, expected 0x08 (unsigned byte)"), "{e}");
        b[2] = 0x2A;
        let e = err_of(&b, Kind::Labels);
        assert!(e.contains("bad element type 0x2A"), "{e}");
    }

    #[test]
    fn header_promises_more_than_the_file_has() {
        let e = err_of(&idx_bytes(&[2, 2, 2], &[0; 7]), Kind::Images);
        assert!(e.contains("header promises 8 bytes of data (2×2×2) but the file has only 7"), "{e}");
    }

    #[test]
    fn trailing_bytes() {
        let e = err_of(&idx_bytes(&[3], &[0; 5]), Kind::Labels);
        assert!(e.contains("2 trailing bytes after the data the header describes"), "{e}");
    }

    #[test]
    fn empty_and_truncated_header() {
        let e = err_of(&[], Kind::Images);
        assert!(e.ends_with(": empty file"), "{e}");
        let e = err_of(&[0, 0], Kind::Images);
        assert!(e.contains("truncated header"), "{e}");
        let e = err_of(&[0, 0, 8, 3, 0, 0, 0, 1], Kind::Images);
        assert!(e.contains("truncated header: the file has 8 bytes"), "{e}");
    }

    #[test]
    fn huge_claimed_dims_are_refused_without_allocating() {
        let e = err_of(&idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]), Kind::Images);
        assert!(e.contains("more bytes than can be addressed"), "{e}");
        let e = err_of(&idx_bytes(&[60_000, 65_535, 65_535], &[1, 2, 3]), Kind::Images);
        assert!(
            e.contains("header promises 257690173500000 bytes of data (60000×65535×65535) but the file has only 3"),
            "{e}"
        );
        let e = err_of(&idx_bytes(&[5, 0, 28], &[]), Kind::Images);
        assert!(e.contains("rows and columns must be positive"), "{e}");
    }

    /// The one cache entry under `cache/idx` (its record beside it is not counted).
    pub(crate) fn only_entry(cache: &Path) -> PathBuf {
        let entries: Vec<PathBuf> = fs::read_dir(cache.join("idx"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_none_or(|e| e != "check"))
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    }

    #[test]
    fn gz_is_decompressed_once_and_reused() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let raw = idx_bytes(&[4], &[1, 2, 3, 4]);
        let gz = dir.path().join("train-labels-idx1-ubyte.gz");
        fs::write(&gz, gzip(&raw)).unwrap();
        let cache = dir.path().join("cache");
        let first = open(&gz, Kind::Labels, &cache).unwrap();
        assert_eq!(
            (first.sha256.as_str(), first.rebuilt.as_ref()),
            (checksums::sha256_file(&gz).unwrap().as_str(), None)
        );
        let cached = only_entry(&cache);
        assert!(cached.file_name().unwrap().to_string_lossy().ends_with("-train-labels-idx1-ubyte"));
        assert!(cached.file_name().unwrap().to_string_lossy().starts_with(&first.sha256[..16]));
        assert_eq!(fs::read(&cached).unwrap(), raw);
        let record = fs::read_to_string(cache::record_path(&cached)).unwrap();
        assert_eq!(record, format!("bytes=12\nsha256={}\n", checksums::sha256_bytes(&raw)));
        let before = fs::metadata(&cached).unwrap();
        let second = open(&gz, Kind::Labels, &cache).unwrap();
        let after = fs::metadata(&cached).unwrap();
        assert_eq!((second.data(), second.rebuilt.as_ref()), (&[1u8, 2, 3, 4][..], None));
        assert_eq!((before.ino(), before.mtime_nsec()), (after.ino(), after.mtime_nsec()));
        assert_eq!(fs::read_dir(cache.join("idx")).unwrap().count(), 2, "the entry and its record");
    }

    #[test]
    fn a_damaged_cache_entry_is_rebuilt_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let raw = idx_bytes(&[3, 2, 2], &(0..12).collect::<Vec<u8>>());
        let gz = dir.path().join("train-images-idx3-ubyte.gz");
        fs::write(&gz, gzip(&raw)).unwrap();
        let cache = dir.path().join("cache");
        open(&gz, Kind::Images, &cache).unwrap();
        let entry = only_entry(&cache);
        for (what, damage, says) in cache::tests::damages() {
            damage(&entry);
            let file = open(&gz, Kind::Images, &cache).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(file.data(), &raw[16..], "{what}");
            let warning = file.rebuilt.unwrap_or_else(|| panic!("{what}: no warning"));
            let start = format!("cache file {}: ", entry.display());
            assert!(warning.starts_with(&start) && warning.contains(says), "{what}: {warning}");
            assert!(warning.ends_with(&format!("; rebuilt from {}", gz.display())), "{what}: {warning}");
            assert_eq!(fs::read(&entry).unwrap(), raw, "{what}: healed on disk");
            assert_eq!(open(&gz, Kind::Images, &cache).unwrap().rebuilt, None, "{what}: healed for good");
        }
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_length_its_header_promises() {
        let dir = tempfile::tempdir().unwrap();
        // A label file promising 10 bytes, followed by a megabyte of zeros.
        let mut bytes = idx_bytes(&[10], &[0; 10]);
        bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
        let gz = dir.path().join("train-labels-idx1-ubyte.gz");
        std::fs::write(&gz, gzip(&bytes)).unwrap();
        let err = open(&gz, Kind::Labels, &dir.path().join("cache")).unwrap_err().to_string();
        assert!(err.contains("more than the 18 bytes"), "{err}");
        // A header claiming more than drift reads is refused at once.
        let huge = idx_bytes(&[u32::MAX, 1 << 16, 1 << 16], &[]);
        std::fs::write(&gz, gzip(&huge)).unwrap();
        let err = open(&gz, Kind::Images, &dir.path().join("cache")).unwrap_err().to_string();
        assert!(err.contains("more than drift reads"), "{err}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("cache/idx")).unwrap().collect();
        assert!(leftovers.is_empty(), "no partial cache file");
    }

    #[test]
    fn corrupt_gzip_leaves_no_cache_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let good = gzip(&idx_bytes(&[300], &[7; 300]));
        let cases: [(&str, Vec<u8>); 2] =
            [("garbage", b"this is not gzip at all".to_vec()), ("truncated", good[..good.len() / 2].to_vec())];
        for (what, bytes) in cases {
            let gz = dir.path().join(format!("{what}-labels-idx1-ubyte.gz"));
            fs::write(&gz, bytes).unwrap();
            let e = open(&gz, Kind::Labels, &cache).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{}: corrupt gzip: ", gz.display())), "{what}: {e}");
            let left: Vec<_> = fs::read_dir(cache.join("idx")).unwrap().collect();
            assert!(left.is_empty(), "{what}: left behind {left:?}");
        }
    }
}
