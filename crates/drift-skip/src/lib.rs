//! How a test says it cannot run here, so that no test passes silently.
//!
//! A test that lacks something it needs (a CPU feature, root, a data set) calls
//! [`skip`]`(capability, reason)` and returns. That appends the line `capability: reason` to the
//! file named by `DRIFT_SKIP_LOG` (when set; `make test` prints a summary of it at the end) and
//! prints it. When `DRIFT_REQUIRE` names the capability (a space- or comma-separated list, as a
//! CI machine that has everything sets it), the test fails instead: there, a skip is a fault.
//!
//! Capabilities are short words: `root`, `avx512`, `avx2`, `fashion-mnist`, `nightly`, `slurm`.
//! The Python tests follow the same convention (`skip` in `tests/python/conftest.py`), and so
//! does `make fuzz` (`scripts/skips.sh`).

use std::fs::OpenOptions;
use std::io::Write;

/// The file the skip lines are appended to.
pub const LOG_ENV_VAR: &str = "DRIFT_SKIP_LOG";
/// The capabilities that must be there: a skip for one of them is a failure.
pub const REQUIRE_ENV_VAR: &str = "DRIFT_REQUIRE";

/// Records that the calling test cannot run for want of `capability` (the reason says what is
/// missing and how to get it); the test should return after this call.
///
/// # Panics
/// When `DRIFT_REQUIRE` names `capability`, with a message saying it is required here; or when
/// `DRIFT_SKIP_LOG` is set but cannot be appended to (a skip must never go unrecorded).
#[track_caller]
pub fn skip(capability: &str, reason: &str) {
    let required = std::env::var(REQUIRE_ENV_VAR).unwrap_or_default();
    if requires(&required, capability) {
        panic!("{capability} is required here ({REQUIRE_ENV_VAR}={required:?}), but this test cannot run: {reason}");
    }
    let line = format!("{capability}: {reason}\n");
    if let Some(log) = std::env::var_os(LOG_ENV_VAR).filter(|p| !p.is_empty()) {
        // One write of one short line to a file opened for appending: lines of tests running at
        // the same time, in threads or processes, do not mix.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("{LOG_ENV_VAR}={}: {e}", log.to_string_lossy()));
    }
    print!("SKIPPED {line}");
    eprint!("SKIPPED {line}");
}

/// Whether the `DRIFT_REQUIRE` value `list` names `capability`.
pub fn requires(list: &str, capability: &str) -> bool {
    list.split(|c: char| c == ',' || c.is_whitespace()).any(|word| !word.is_empty() && word == capability)
}

#[cfg(test)]
mod tests {
    use super::requires;

    #[test]
    fn the_list_is_split_on_spaces_and_commas() {
        for list in ["root avx512 slurm", "root,avx512,slurm", " root, avx512\tslurm "] {
            assert!(requires(list, "avx512") && requires(list, "slurm"), "{list:?}");
            assert!(!requires(list, "avx2") && !requires(list, "avx"), "{list:?}");
        }
        assert!(!requires("", "root"));
        assert!(!requires("", ""), "an empty list names nothing");
    }
}
