//! The `.gz` path: arbitrary bytes as a gzipped IDX file, decompressed into a cache and opened.
//! Never a panic, never more written than the header promises, and no partial cache file.
#![no_main]

use drift_data::idx::{open, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temporary folder");
    let gz = dir.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&gz, data).expect("write input");
    let cache = dir.path().join("cache");
    let kind = if data.first().is_some_and(|b| b % 2 == 0) { Kind::Images } else { Kind::Labels };
    let opened = open(&gz, kind, &cache);
    if let Ok(entries) = std::fs::read_dir(cache.join("idx")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".partial-"), "partial cache file {name} left behind");
        }
    }
    if let Ok(file) = opened {
        let elements: usize = file.header.dims.iter().product();
        assert_eq!(file.data().len(), elements);
    }
});
