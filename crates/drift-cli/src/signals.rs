//! SIGINT and SIGTERM: the first asks every run to stop after its current batch and leave a
//! checkpoint; the process then exits with 130 (SIGINT) or 143 (SIGTERM), as shells expect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

struct Flags {
    stop: Arc<AtomicBool>,
    terminate: Arc<AtomicBool>,
}

fn flags() -> &'static Flags {
    static FLAGS: OnceLock<Flags> = OnceLock::new();
    FLAGS.get_or_init(|| Flags { stop: Arc::new(AtomicBool::new(false)), terminate: Arc::new(AtomicBool::new(false)) })
}

/// Installs the handlers; without them the signals keep their default (immediate) effect.
pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let f = flags();
    for (signal, flag) in [(SIGINT, &f.stop), (SIGTERM, &f.stop), (SIGTERM, &f.terminate)] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(flag)) {
            eprintln!("drift: warning: cannot handle signal {signal}: {e}");
        }
    }
}

/// Set once the process has been asked to stop.
pub fn stop_flag() -> &'static AtomicBool {
    &flags().stop
}

/// The exit status of a process that stopped on request.
pub fn exit_status() -> u8 {
    if flags().terminate.load(Ordering::Relaxed) {
        143
    } else {
        130
    }
}
