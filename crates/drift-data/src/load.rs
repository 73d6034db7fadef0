//! Finding the files of a data set, loading them into [`Dataset`]s, checking them against the
//! official checksums, and the file-by-file report behind `drift data info|verify|prepare`.

use std::path::{Path, PathBuf};

use crate::idx::{self, IdxFile, Kind};
use crate::{checksums, synthetic, DataError, Dataset, DatasetSpec, LoadOptions, Split};

/// Where Debian's `dataset-fashion-mnist` installs the four `.gz` files.
const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Classes of the MNIST family.
const MNIST_CLASSES: usize = 10;

/// A located IDX data set: its directory, display name, and the official set its files must
/// match (`None` for `idx:DIR`, where any file is accepted).
struct Location {
    dir: PathBuf,
    name: String,
    official: Option<&'static str>,
}

/// Finds the directory of an IDX-based spec; `None` for synthetic data.
fn locate(spec: &DatasetSpec, opts: &LoadOptions) -> Result<Option<Location>, DataError> {
    let unavailable = |dataset: &str, reason: String| DataError::Unavailable { dataset: dataset.into(), reason };
    let location = match spec {
        DatasetSpec::Synthetic | DatasetSpec::Hasyv2 => return Ok(None),
        DatasetSpec::FashionMnist => {
            let dir = opts.data_dir.clone().unwrap_or_else(|| PathBuf::from(FASHION_DIR));
            if !dir.is_dir() {
                let reason = match opts.data_dir {
                    Some(_) => format!("--data-dir {} is not a directory", dir.display()),
                    None => format!(
                        "{FASHION_DIR} does not exist; install the Debian package dataset-fashion-mnist or pass --data-dir"
                    ),
                };
                return Err(unavailable("fashion-mnist", reason));
            }
            Location { dir, name: "fashion-mnist".into(), official: Some("fashion-mnist") }
        }
        DatasetSpec::Mnist => {
            let from_env = std::env::var_os("MNIST_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
            let (dir, via) = match (&opts.data_dir, from_env) {
                (Some(dir), _) => (dir.clone(), "--data-dir"),
                (None, Some(dir)) => (dir, "MNIST_DIR"),
                (None, None) => {
                    return Err(unavailable(
                        "mnist",
                        "no location: set MNIST_DIR or pass --data-dir (a folder with the four standard IDX files)"
                            .into(),
                    ))
                }
            };
            if !dir.is_dir() {
                return Err(unavailable("mnist", format!("{via} {} is not a directory", dir.display())));
            }
            Location { dir, name: "mnist".into(), official: Some("mnist") }
        }
        DatasetSpec::Idx(dir) => {
            let shown = format!("idx:{}", dir.display());
            if !dir.is_dir() {
                return Err(unavailable(&shown, format!("{} is not a directory", dir.display())));
            }
            let abs = dir.canonicalize().map_err(|source| DataError::Io { path: dir.clone(), source })?;
            Location { name: format!("idx:{}", abs.display()), dir: abs, official: None }
        }
    };
    Ok(Some(location))
}

fn kind_of(role: &str) -> Kind {
    if role.ends_with("images") {
        Kind::Images
    } else {
        Kind::Labels
    }
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Loads a data set: generates synthetic data, or opens, checks and maps the four IDX files.
///
/// For fashion-mnist and mnist a file that is not the official one is an error; a file whose
/// official checksum is unknown, and any unrecognised file under `idx:DIR`, gives a warning.
pub fn load(spec: &DatasetSpec, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let data = match (spec, locate(spec, opts)?) {
        (DatasetSpec::Hasyv2, _) => load_hasy(opts)?,
        (_, None) => synthetic::generate(opts.seed, &opts.synthetic)?,
        (_, Some(location)) => load_idx(&location, &opts.cache_dir)?,
    };
    Ok(data.with_input(opts.input))
}

/// The HASYv2 release in `--data-dir` or `$HASYV2_DIR`.
fn load_hasy(opts: &LoadOptions) -> Result<Dataset, DataError> {
    let unavailable = |reason: String| DataError::Unavailable { dataset: "hasyv2".into(), reason };
    let from_env = std::env::var_os("HASYV2_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
    let (dir, via) =
        match (&opts.data_dir, from_env) {
            (Some(dir), _) => (dir.clone(), "--data-dir"),
            (None, Some(dir)) => (dir, "HASYV2_DIR"),
            (None, None) => return Err(unavailable(
                "no location: set HASYV2_DIR or pass --data-dir (the unpacked HASYv2 release, see datasets/README.md)"
                    .into(),
            )),
        };
    if !dir.is_dir() {
        return Err(unavailable(format!("{via} {} is not a directory", dir.display())));
    }
    crate::hasy::load(&dir, opts.fold, &opts.cache_dir)
}

/// Makes a data set ready (decompresses into the cache) and checks it: the same as [`load`].
pub fn prepare(spec: &DatasetSpec, opts: &LoadOptions) -> Result<Dataset, DataError> {
    load(spec, opts)
}

fn load_idx(location: &Location, cache_dir: &Path) -> Result<Dataset, DataError> {
    let open = |(role, name): (&str, &str)| -> Result<IdxFile, DataError> {
        let path =
            idx::locate(&location.dir, name).ok_or_else(|| DataError::Missing { path: location.dir.join(name) })?;
        idx::open(&path, kind_of(role), cache_dir)
    };
    let [train_images, train_labels, test_images, test_labels] = idx::FILES;
    let train_images = open(train_images)?;
    let train_labels = open(train_labels)?;
    let test_images = open(test_images)?;
    let test_labels = open(test_labels)?;
    let files = [&train_images, &train_labels, &test_images, &test_labels];
    let mut warnings: Vec<String> = files.iter().filter_map(|f| f.rebuilt.clone()).collect();
    // Structure is checked before checksums: its messages say more about what is wrong.
    let hashes: Vec<(PathBuf, String)> = files.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect();
    let source = format!(
        "{}: {}",
        location.dir.display(),
        files.map(|f| f.path.file_name().unwrap_or_default().to_string_lossy().into_owned()).join(", ")
    );

    let (dims, test_dims) = (&train_images.header.dims, &test_images.header.dims);
    if dims[1..] != test_dims[1..] {
        return Err(DataError::Format {
            path: test_images.path.clone(),
            reason: format!(
                "images of {}×{} pixels, but the training images ({}) have {}×{}",
                test_dims[1],
                test_dims[2],
                train_images.path.display(),
                dims[1],
                dims[2]
            ),
        });
    }
    if location.official.is_some() && dims[1..] != [28, 28] {
        return Err(DataError::Format {
            path: train_images.path.clone(),
            reason: format!("{} images are 28×28 pixels, these are {}×{}", location.name, dims[1], dims[2]),
        });
    }
    let limit = location.official.map(|set| (set, MNIST_CLASSES));
    let labels_paths = (train_labels.path.clone(), test_labels.path.clone());
    let train = split(train_images, train_labels, limit)?;
    let test = split(test_images, test_labels, limit)?;
    if let Some(reason) = crate::single_class(train.labels()) {
        return Err(DataError::Format { path: labels_paths.0, reason });
    }
    let classes = match limit {
        Some((_, classes)) => classes,
        None => infer_classes((&labels_paths.0, train.labels()), (&labels_paths.1, test.labels()), &mut warnings)?,
    };

    for ((_, name), (path, sha256)) in idx::FILES.iter().zip(&hashes) {
        check_official(location.official, name, path, sha256, &mut warnings)?;
    }
    Ok(Dataset { name: location.name.clone(), input_dim: train.dim(), train, test, classes, source, warnings })
}

/// The class count of an `idx:` set, whose files do not say it: the largest label plus one.
/// Refused when that is more than twice the number of distinct training labels, since such
/// labels are not class indices (255 for "unknown" would make 256 classes, most of them never
/// seen); a class below the largest without a training sample is a warning.
fn infer_classes(
    (train_path, train): (&Path, &[u16]),
    (test_path, test): (&Path, &[u16]),
    warnings: &mut Vec<String>,
) -> Result<usize, DataError> {
    let (train_max, test_max) = (train.iter().max().copied(), test.iter().max().copied());
    let (path, max) = match (train_max, test_max) {
        (Some(a), Some(b)) if b > a => (test_path, b),
        (Some(a), _) => (train_path, a),
        (None, _) => return Ok(0),
    };
    let classes = usize::from(max) + 1;
    let mut seen = vec![false; classes];
    train.iter().for_each(|&l| seen[usize::from(l)] = true);
    let distinct = seen.iter().filter(|&&s| s).count();
    if classes > 2 * distinct {
        let held = if path == train_path {
            format!("the file holds only {distinct} distinct labels")
        } else {
            format!("the training labels ({}) hold only {distinct} distinct labels", train_path.display())
        };
        let reason = format!(
            "largest label {max} implies {classes} classes, but {held}; labels must be class indices \
             0..C-1, with at most half of the classes missing from training"
        );
        return Err(DataError::Format { path: path.to_path_buf(), reason });
    }
    let missing: Vec<String> = (0..classes).filter(|&c| !seen[c]).map(|c| c.to_string()).collect();
    if !missing.is_empty() {
        const SHOWN: usize = 10;
        let more = missing.len().saturating_sub(SHOWN);
        let mut list = missing[..missing.len().min(SHOWN)].join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        warnings.push(format!(
            "{}: {} of the {classes} classes (labels 0..={max}) have no training sample: {list}",
            train_path.display(),
            missing.len()
        ));
    }
    Ok(classes)
}

/// Pairs an images file with its labels file, checking counts and (for named sets) label range.
fn split(images: IdxFile, labels: IdxFile, limit: Option<(&str, usize)>) -> Result<Split, DataError> {
    let (n, dim) = (images.header.dims[0], images.header.dims[1] * images.header.dims[2]);
    let m = labels.header.dims[0];
    if m != n {
        return Err(DataError::Format {
            path: labels.path.clone(),
            reason: format!("{m} labels, but {} holds {n} images", images.path.display()),
        });
    }
    if n == 0 {
        return Err(DataError::Format { path: images.path.clone(), reason: "no images (count 0)".into() });
    }
    if let Some((set, classes)) = limit {
        if let Some((i, &v)) = labels.data().iter().enumerate().find(|(_, &v)| usize::from(v) >= classes) {
            return Err(DataError::Format {
                path: labels.path.clone(),
                reason: format!(
                    "label {v} at index {i} is out of range: {set} has {classes} classes (0..={})",
                    classes - 1
                ),
            });
        }
    }
    let label_values = labels.data().iter().map(|&v| u16::from(v)).collect();
    Ok(Split::mapped(images.map, images.header.data_offset, label_values, dim))
}

/// Applies the checksum policy to one opened file: named sets must match (error), unknown
/// official values and unrecognised `idx:` files are warnings.
fn check_official(
    official: Option<&'static str>,
    name: &str,
    path: &Path,
    sha256: &str,
    warnings: &mut Vec<String>,
) -> Result<(), DataError> {
    let gz = is_gz(path);
    match official {
        Some(set) => match checksums::expected(set, name, gz) {
            Some(expected) if expected == sha256 => {}
            Some(expected) => {
                return Err(DataError::Checksum {
                    path: path.to_path_buf(),
                    dataset: set.into(),
                    actual: sha256.into(),
                    expected: expected.into(),
                })
            }
            None => warnings.push(format!(
                "{}: unknown file: no official SHA-256 is known for this form of {set}'s {name}, so it was not checked",
                path.display()
            )),
        },
        None => {
            if checksums::official_match(name, sha256).is_none() {
                warnings.push(format!(
                    "{}: checksum mismatch: SHA-256 {sha256} matches no official {name} of fashion-mnist or mnist",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

/// One file of a data set as `drift data info|verify` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileReport {
    /// `"train-images"`, `"train-labels"`, `"test-images"` or `"test-labels"`.
    pub role: &'static str,
    /// The file found (raw preferred over `.gz`), or the raw name expected when missing.
    pub path: PathBuf,
    pub bytes: u64,
    /// SHA-256 of the file as it is, when hashing was asked for.
    pub sha256: Option<String>,
    /// The official SHA-256 of this file in this form, where known.
    pub expected_sha256: Option<String>,
    /// `"ok"`, `"checksum mismatch"`, `"missing"`, `"unknown file (no official checksum)"`, or
    /// `"present"` (found, not hashed).
    pub status: String,
}

/// Reports each file of a data set, hashing it when `hash` is set; synthetic data has no files.
/// Fails only when the data set cannot be located at all or a file cannot be read.
pub fn inspect(spec: &DatasetSpec, opts: &LoadOptions, hash: bool) -> Result<Vec<FileReport>, DataError> {
    let Some(location) = locate(spec, opts)? else {
        return Ok(Vec::new());
    };
    let mut reports = Vec::with_capacity(idx::FILES.len());
    for (role, name) in idx::FILES {
        let Some(path) = idx::locate(&location.dir, name) else {
            reports.push(FileReport {
                role,
                path: location.dir.join(name),
                bytes: 0,
                sha256: None,
                expected_sha256: None,
                status: "missing".into(),
            });
            continue;
        };
        let bytes = path.metadata().map_err(|source| DataError::Io { path: path.clone(), source })?.len();
        let mut expected = location.official.and_then(|set| checksums::expected(set, name, is_gz(&path)));
        let (sha256, status) = if hash {
            let sha = checksums::sha256_file(&path)?;
            let status = match (location.official, expected) {
                (Some(_), Some(e)) if e == sha => "ok",
                (Some(_), Some(_)) => "checksum mismatch",
                (None, _) => match checksums::official_match(name, &sha) {
                    Some((_, hash)) => {
                        expected = Some(hash);
                        "ok"
                    }
                    None => "unknown file (no official checksum)",
                },
                (Some(_), None) => "unknown file (no official checksum)",
            };
            (Some(sha), status)
        } else {
            (None, "present")
        };
        reports.push(FileReport {
            role,
            path,
            bytes,
            sha256,
            expected_sha256: expected.map(String::from),
            status: status.into(),
        });
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::tests::{gzip, idx_bytes};
    use std::fs;

    /// A well-formed but unofficial set: 6 train and 4 test images of 2×2 pixels, labels 0..=3.
    fn fake_set(dir: &Path) {
        fs::write(dir.join("train-images-idx3-ubyte"), idx_bytes(&[6, 2, 2], &[200; 24])).unwrap();
        fs::write(dir.join("train-labels-idx1-ubyte"), idx_bytes(&[6], &[0, 1, 2, 3, 0, 1])).unwrap();
        fs::write(dir.join("t10k-images-idx3-ubyte"), idx_bytes(&[4, 2, 2], &[100; 16])).unwrap();
        fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_bytes(&[4], &[3, 2, 1, 0])).unwrap();
    }

    /// The same with MNIST-shaped (28×28) images, as the named sets require.
    fn mnist_shaped_set(dir: &Path) {
        fake_set(dir);
        fs::write(dir.join("train-images-idx3-ubyte"), idx_bytes(&[6, 28, 28], &[200; 6 * 784])).unwrap();
        fs::write(dir.join("t10k-images-idx3-ubyte"), idx_bytes(&[4, 28, 28], &[100; 4 * 784])).unwrap();
    }

    fn options(dir: &Path) -> LoadOptions {
        LoadOptions { data_dir: Some(dir.to_path_buf()), cache_dir: dir.join("cache"), ..LoadOptions::new(0) }
    }

    fn idx_err(dir: &Path) -> String {
        load(&DatasetSpec::Idx(dir.to_path_buf()), &options(dir)).unwrap_err().to_string()
    }

    #[test]
    fn checksum_mismatch_is_an_error_for_a_named_set() {
        let dir = tempfile::tempdir().unwrap();
        mnist_shaped_set(dir.path());
        for (spec, set) in [(DatasetSpec::Mnist, "mnist"), (DatasetSpec::FashionMnist, "fashion-mnist")] {
            let e = load(&spec, &options(dir.path())).unwrap_err().to_string();
            let path = dir.path().join("train-images-idx3-ubyte");
            assert!(e.starts_with(&format!("{}: checksum mismatch: SHA-256 ", path.display())), "{e}");
            let expected = checksums::expected(set, "train-images-idx3-ubyte", false).unwrap();
            assert!(e.contains(&format!("expected {expected} (the official {set} file)")), "{e}");
        }
    }

    #[test]
    fn checksum_mismatch_is_a_warning_for_idx() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        let data = load(&DatasetSpec::Idx(dir.path().to_path_buf()), &options(dir.path())).unwrap();
        assert_eq!(data.warnings.len(), 4, "{:?}", data.warnings);
        assert!(data.warnings[0].contains("train-images-idx3-ubyte: checksum mismatch"), "{:?}", data.warnings);
        assert_eq!((data.train.len(), data.test.len(), data.input_dim, data.classes), (6, 4, 4, 4));
        assert_eq!(data.name, format!("idx:{}", dir.path().canonicalize().unwrap().display()));
        assert_eq!(data.test.labels(), &[3, 2, 1, 0]);
        assert_eq!((data.train.image(5), data.test.image(0)), (&[200u8; 4][..], &[100u8; 4][..]));
    }

    #[test]
    fn gz_and_raw_files_mix_in_one_directory() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        let raw = dir.path().join("t10k-images-idx3-ubyte");
        fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), gzip(&fs::read(&raw).unwrap())).unwrap();
        fs::remove_file(raw).unwrap();
        let data = load(&DatasetSpec::Idx(dir.path().to_path_buf()), &options(dir.path())).unwrap();
        assert_eq!(data.test.image(3), &[100; 4]);
        assert!(data.source.contains("t10k-images-idx3-ubyte.gz"), "{}", data.source);
    }

    #[test]
    fn a_damaged_cache_entry_is_rebuilt_not_blamed_on_the_data() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        let raw = dir.path().join("train-images-idx3-ubyte");
        fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gzip(&fs::read(&raw).unwrap())).unwrap();
        fs::remove_file(raw).unwrap();
        let spec = DatasetSpec::Idx(dir.path().to_path_buf());
        let fresh = load(&spec, &options(dir.path())).unwrap();
        let entry = crate::idx::tests::only_entry(&dir.path().join("cache"));
        // Cut into the IDX data: read as it is, this would be "header promises 24 bytes…".
        let bytes = fs::read(&entry).unwrap();
        fs::write(&entry, &bytes[..20]).unwrap();
        let data = load(&spec, &options(dir.path())).unwrap();
        assert_eq!(data.warnings.len(), fresh.warnings.len() + 1, "{:?}", data.warnings);
        let rebuilt = format!("cache file {}: 20 bytes, but 40 when it was made; rebuilt from ", entry.display());
        assert!(data.warnings[0].starts_with(&rebuilt), "{:?}", data.warnings);
        assert_eq!(data.train.image(5), &[200; 4]);
    }

    #[test]
    fn label_count_must_match_image_count() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_bytes(&[5], &[0, 1, 2, 3, 0])).unwrap();
        let e = idx_err(dir.path());
        let labels = dir.path().join("train-labels-idx1-ubyte");
        assert!(e.starts_with(&format!("{}: 5 labels, but ", labels.display())), "{e}");
        assert!(e.contains("train-images-idx3-ubyte holds 6 images"), "{e}");
    }

    #[test]
    fn label_at_or_above_the_class_count_is_rejected_for_named_sets() {
        let dir = tempfile::tempdir().unwrap();
        mnist_shaped_set(dir.path());
        fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx_bytes(&[4], &[3, 10, 1, 0])).unwrap();
        let e = load(&DatasetSpec::Mnist, &options(dir.path())).unwrap_err().to_string();
        let labels = dir.path().join("t10k-labels-idx1-ubyte");
        assert!(e.starts_with(&format!("{}: label 10 at index 1 is out of range", labels.display())), "{e}");
        // Under idx: the same file would imply 11 classes, of which training has 4: refused too.
        let e = idx_err(dir.path());
        assert!(e.starts_with(&format!("{}: largest label 10 implies 11 classes", labels.display())), "{e}");
    }

    /// Writes the training labels of `fake_set` (6 samples) as `train` and the test labels
    /// (4 samples) as `test`.
    fn relabel(dir: &Path, train: [u8; 6], test: [u8; 4]) {
        fs::write(dir.join("train-labels-idx1-ubyte"), idx_bytes(&[6], &train)).unwrap();
        fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_bytes(&[4], &test)).unwrap();
    }

    #[test]
    fn training_labels_of_a_single_class_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        relabel(dir.path(), [2; 6], [0, 1, 2, 3]);
        let labels = dir.path().join("train-labels-idx1-ubyte");
        let want = format!("{}: all 6 training labels are 2: a single class", labels.display());
        assert!(idx_err(dir.path()).starts_with(&want), "{}", idx_err(dir.path()));
        // A named set too, before its checksums are looked at.
        mnist_shaped_set(dir.path());
        relabel(dir.path(), [7; 6], [0, 1, 2, 3]);
        let e = load(&DatasetSpec::Mnist, &options(dir.path())).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: all 6 training labels are 7", labels.display())), "{e}");
    }

    #[test]
    fn idx_labels_far_above_the_labels_present_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        let (train, test) = (dir.path().join("train-labels-idx1-ubyte"), dir.path().join("t10k-labels-idx1-ubyte"));
        // 255 for "unknown" among 0..=2: 256 classes from 4 distinct labels.
        relabel(dir.path(), [0, 1, 2, 255, 0, 1], [0, 1, 2, 0]);
        let e = idx_err(dir.path());
        let want = format!(
            "{}: largest label 255 implies 256 classes, but the file holds only 4 distinct labels",
            train.display()
        );
        assert!(e.starts_with(&want), "{e}");
        // The largest label in the test file: that file is named, with the training count.
        relabel(dir.path(), [0, 1, 2, 3, 0, 1], [0, 1, 2, 9]);
        let e = idx_err(dir.path());
        let want = format!(
            "{}: largest label 9 implies 10 classes, but the training labels ({}) hold only 4 distinct labels",
            test.display(),
            train.display()
        );
        assert!(e.starts_with(&want), "{e}");
    }

    #[test]
    fn idx_classes_without_training_samples_are_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        let spec = DatasetSpec::Idx(dir.path().to_path_buf());
        // Twice as many classes as training labels present is the most accepted.
        relabel(dir.path(), [0, 3, 0, 3, 0, 3], [0, 1, 2, 3]);
        let data = load(&spec, &options(dir.path())).unwrap();
        assert_eq!(data.classes, 4);
        let train = dir.path().join("train-labels-idx1-ubyte");
        let want = format!("{}: 2 of the 4 classes (labels 0..=3) have no training sample: 1, 2", train.display());
        assert!(data.warnings.contains(&want), "{:?}", data.warnings);
        // A full set of classes gives no such warning.
        fake_set(dir.path());
        let data = load(&spec, &options(dir.path())).unwrap();
        assert!(!data.warnings.iter().any(|w| w.contains("no training sample")), "{:?}", data.warnings);
    }

    #[test]
    fn a_long_list_of_empty_classes_is_cut_short() {
        let mut warnings = Vec::new();
        let train: Vec<u16> = (0..21).chain([40]).collect();
        let classes = infer_classes((Path::new("tr"), &train), (Path::new("te"), &[0]), &mut warnings).unwrap();
        assert_eq!(classes, 41);
        let list = "21, 22, 23, 24, 25, 26, 27, 28, 29, 30 and 9 more";
        assert_eq!(warnings, [format!("tr: 19 of the 41 classes (labels 0..=40) have no training sample: {list}")]);
    }

    #[test]
    fn named_sets_must_have_28_by_28_images() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        let e = load(&DatasetSpec::Mnist, &options(dir.path())).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte") && e.contains("28×28") && e.contains("2×2"), "{e}");
    }

    #[test]
    fn train_and_test_image_sizes_must_match() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_bytes(&[4, 1, 4], &[100; 16])).unwrap();
        let e = idx_err(dir.path());
        assert!(e.contains("t10k-images-idx3-ubyte: images of 1×4 pixels, but the training images"), "{e}");
    }

    #[test]
    fn missing_file_names_the_path_and_the_expected_files() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        let path = dir.path().join("t10k-images-idx3-ubyte");
        fs::remove_file(&path).unwrap();
        let e = idx_err(dir.path());
        assert!(e.starts_with(&format!("{}: no such file (nor .gz)", path.display())), "{e}");
        assert!(e.contains("train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte"), "{e}");
    }

    #[test]
    fn bad_file_in_a_set_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        let path = dir.path().join("train-labels-idx1-ubyte");
        fs::write(&path, b"").unwrap();
        assert_eq!(idx_err(dir.path()), format!("{}: empty file", path.display()));
    }

    #[test]
    fn locations_say_how_to_fix_them() {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = dir.path().join("nowhere");
        let e = load(&DatasetSpec::Idx(nowhere.clone()), &options(dir.path())).unwrap_err().to_string();
        assert!(e.contains("is not a directory") && e.contains("nowhere"), "{e}");
        let e = load(&DatasetSpec::FashionMnist, &options(&nowhere)).unwrap_err().to_string();
        assert!(e.starts_with("fashion-mnist: --data-dir") && e.contains("nowhere"), "{e}");
        if std::env::var_os("MNIST_DIR").is_some() {
            drift_skip::skip("no-mnist-dir", "MNIST_DIR is set, so the message for a missing MNIST is not checked");
            return;
        }
        let opts = LoadOptions { data_dir: None, ..options(dir.path()) };
        let e = load(&DatasetSpec::Mnist, &opts).unwrap_err().to_string();
        assert!(e.contains("set MNIST_DIR or pass --data-dir"), "{e}");
    }

    #[test]
    fn inspect_reports_each_file() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path());
        fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
        let spec = DatasetSpec::Idx(dir.path().to_path_buf());
        let hashed = inspect(&spec, &options(dir.path()), true).unwrap();
        let roles: Vec<_> = hashed.iter().map(|f| f.role).collect();
        assert_eq!(roles, ["train-images", "train-labels", "test-images", "test-labels"]);
        assert_eq!(hashed[0].status, "unknown file (no official checksum)");
        assert_eq!(hashed[0].bytes, 16 + 24);
        assert_eq!(hashed[0].sha256.as_deref().map(str::len), Some(64));
        assert_eq!((hashed[3].status.as_str(), hashed[3].bytes), ("missing", 0));
        let named = inspect(&DatasetSpec::Mnist, &options(dir.path()), true).unwrap();
        assert_eq!(named[1].status, "checksum mismatch");
        assert_eq!(named[1].expected_sha256.as_deref(), checksums::expected("mnist", "train-labels-idx1-ubyte", false));
        let quick = inspect(&spec, &options(dir.path()), false).unwrap();
        assert_eq!((quick[0].status.as_str(), quick[0].sha256.as_ref()), ("present", None));
        assert!(inspect(&DatasetSpec::Synthetic, &options(dir.path()), true).unwrap().is_empty());
    }

    #[test]
    fn real_fashion_mnist_loads_and_verifies() {
        if !Path::new(FASHION_DIR).is_dir() {
            drift_skip::skip(
                "fashion-mnist",
                &format!("{FASHION_DIR} is missing; install the Debian package dataset-fashion-mnist"),
            );
            return;
        }
        let cache = tempfile::tempdir().unwrap();
        let opts = LoadOptions { cache_dir: cache.path().to_path_buf(), ..LoadOptions::new(0) };
        let data = load(&DatasetSpec::FashionMnist, &opts).unwrap();
        assert_eq!((data.train.len(), data.test.len(), data.input_dim, data.classes), (60_000, 10_000, 784, 10));
        assert!(data.warnings.is_empty(), "{:?}", data.warnings);
        let mut counts = [0usize; 10];
        data.train.labels().iter().for_each(|&l| counts[usize::from(l)] += 1);
        assert_eq!(counts, [6000; 10]);
        // The same files as idx:DIR are recognised as official, and the cache is reused.
        let as_idx = load(&DatasetSpec::Idx(FASHION_DIR.into()), &opts).unwrap();
        assert!(as_idx.warnings.is_empty(), "{:?}", as_idx.warnings);
        assert_eq!((as_idx.classes, as_idx.train.image(123)), (10, data.train.image(123)));
        assert_eq!(fs::read_dir(cache.path().join("idx")).unwrap().count(), 8, "4 entries and their records");
        let report = inspect(&DatasetSpec::FashionMnist, &opts, true).unwrap();
        assert!(report.iter().all(|f| f.status == "ok" && f.sha256 == f.expected_sha256), "{report:?}");
    }
}
