//! SHA-256 of the official IDX files, in one table (the same values are listed in
//! `datasets/README.md`), and the hashing helper.
//!
//! Each official file is known in both forms, gzipped and raw, so that a folder holding either
//! is recognised: drift checks the file as it is given, before any decompression.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::DataError;

/// One official file: its raw name, and the SHA-256 of its `.gz` and of its raw form.
pub(crate) struct Official {
    pub set: &'static str,
    pub file: &'static str,
    pub gz: &'static str,
    /// `None` where no trustworthy published value is known.
    pub raw: Option<&'static str>,
}

/// Fashion-MNIST: the `.gz` values were verified against the files of Debian's
/// `dataset-fashion-mnist` (the official release files); the raw values are
/// `zcat FILE.gz | sha256sum` of those files.
///
/// MNIST: the `.gz` values are those of TensorFlow Datasets
/// (`tensorflow_datasets/url_checksums/mnist.txt`, the CVDF mirror of LeCun's files). The raw
/// values are not published by a maintainer; they are the ones many independent projects pin for
/// the decompressed files, all in agreement.
pub(crate) const OFFICIAL: &[Official] = &[
    Official {
        set: "fashion-mnist",
        file: "train-images-idx3-ubyte",
        gz: "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        raw: Some("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    },
    Official {
        set: "fashion-mnist",
        file: "train-labels-idx1-ubyte",
        gz: "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        raw: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    },
    Official {
        set: "fashion-mnist",
        file: "t10k-images-idx3-ubyte",
        gz: "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        raw: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    },
    Official {
        set: "fashion-mnist",
        file: "t10k-labels-idx1-ubyte",
        gz: "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        raw: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    Official {
        set: "mnist",
        file: "train-images-idx3-ubyte",
        gz: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        raw: Some("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    },
    Official {
        set: "mnist",
        file: "train-labels-idx1-ubyte",
        gz: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        raw: Some("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    },
    Official {
        set: "mnist",
        file: "t10k-images-idx3-ubyte",
        gz: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        raw: Some("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    },
    Official {
        set: "mnist",
        file: "t10k-labels-idx1-ubyte",
        gz: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        raw: Some("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
];

/// The official SHA-256 of `file` (raw name) of `set`, in its gzipped or raw form.
pub(crate) fn expected(set: &str, file: &str, gz: bool) -> Option<&'static str> {
    let entry = OFFICIAL.iter().find(|o| o.set == set && o.file == file)?;
    if gz {
        Some(entry.gz)
    } else {
        entry.raw
    }
}

/// The official `(set, hash)` whose `file` has this hash, in either form (for `idx:DIR`).
pub(crate) fn official_match(file: &str, sha256: &str) -> Option<(&'static str, &'static str)> {
    OFFICIAL.iter().find_map(|o| {
        let hash = [Some(o.gz), o.raw].into_iter().flatten().find(|h| *h == sha256)?;
        (o.file == file).then_some((o.set, hash))
    })
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of bytes already in memory (a mapped raw file).
pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of a file, read in blocks.
pub(crate) fn sha256_file(path: &Path) -> Result<String, DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(sha256_bytes(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn table_is_well_formed() {
        for o in OFFICIAL {
            for h in std::iter::once(o.gz).chain(o.raw) {
                assert_eq!(h.len(), 64, "{} {}", o.set, o.file);
                assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
        }
        assert_eq!(expected("mnist", "t10k-labels-idx1-ubyte", true), Some(OFFICIAL[7].gz));
        assert_eq!(official_match("train-images-idx3-ubyte", OFFICIAL[0].gz), Some(("fashion-mnist", OFFICIAL[0].gz)));
        assert_eq!(official_match("train-labels-idx1-ubyte", OFFICIAL[0].gz), None);
    }
}
