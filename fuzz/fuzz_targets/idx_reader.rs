//! The IDX header check on arbitrary bytes: never a panic, never an allocation sized by a
//! claim, and whatever it accepts describes the bytes exactly.
#![no_main]

use std::path::Path;

use drift_data::idx::{parse_header, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [Kind::Images, Kind::Labels] {
        if let Ok(header) = parse_header(Path::new("fuzz-input"), data, kind) {
            let elements: usize = header.dims.iter().product();
            assert_eq!(header.data_offset + elements, data.len());
        }
    }
});
