//! The `drift` binary: parses the command line, hands the work to `drift-runs`, shows progress,
//! and turns every outcome into an exit status in one place: 0 success, 1 runtime failure,
//! 2 usage or bad input, 130/143 stopped by SIGINT/SIGTERM with a checkpoint to resume from.

mod args;
mod commands;
mod data_cmd;
mod progress;
mod signals;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use drift_runs::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    signals::install();
    let result = match cli.command {
        Command::Train(args) => commands::train(*args),
        Command::Sweep(args) => commands::sweep(args),
        Command::Analyze(args) => commands::analyze(args),
        Command::Figures(args) => commands::figures(args),
        Command::Reproduce(args) => commands::reproduce(args),
        Command::Data(args) => data_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Interrupted(message)) => {
            eprintln!("drift: {message}");
            ExitCode::from(signals::exit_status())
        }
        Err(err) => {
            eprintln!("drift: error: {err}");
            ExitCode::from(if err.is_bad_input() { 2 } else { 1 })
        }
    }
}
