//! The `flagops` binary: parse arguments, run, print the error chain, map to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = flagops::cli::Cli::parse();
    match flagops::run(cli) {
        Ok(status) => status.into(),
        Err(error) => {
            if flagops::is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            flagops::ExitStatus::Error.into()
        }
    }
}
