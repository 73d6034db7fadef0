//! The `drift` binary: parses the command line, wires the crates together, and turns every
//! outcome into an exit status in one place: 0 success, 1 runtime failure, 2 usage or bad input,
//! 130/143 stopped by SIGINT/SIGTERM with a checkpoint to resume from.

mod args;
mod data_cmd;
mod progress;
mod reproduce_cmd;
mod run;
mod signals;
mod sweep_cmd;
mod train_cmd;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// An error caused by what the user gave us (an option, a file): exit status 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Shorthand for a [`BadInput`] error.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    BadInput(message.into()).into()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    signals::install();
    let result = match cli.command {
        Command::Train(args) => train_cmd::run(*args),
        Command::Sweep(args) => sweep_cmd::run(args),
        Command::Figures(args) => reproduce_cmd::figures(args),
        Command::Reproduce(args) => reproduce_cmd::reproduce(args),
        Command::Data(args) => data_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(stopped) = err.downcast_ref::<signals::Interrupted>() {
                eprintln!("drift: {stopped}");
                return ExitCode::from(signals::exit_status());
            }
            eprintln!("drift: error: {err:#}");
            if err.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
