//! The configuration parsers on arbitrary text: a `--config` file, a sweep file and `--shard`.
//! Errors are fine; panics and runaway sweeps (more than `MAX_RUNS` runs) are not.
#![no_main]

use drift_train::{RunKeys, Shard, Sweep};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = toml::from_str::<RunKeys>(text);
    let _ = text.parse::<Shard>();
    if let Ok(sweep) = text.parse::<Sweep>() {
        assert!(sweep.runs.len() <= drift_train::sweep::MAX_RUNS);
    }
});
