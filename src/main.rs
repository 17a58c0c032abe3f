//! The `flagops` binary: parse arguments, run, print the error chain, map to an exit code.

use std::process::ExitCode;

/// mimalloc instead of the system's allocator: reading a registry builds and drops many small
/// trees on several threads, where glibc's malloc spends a third of the time (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = flagops::parse_cli();
    match flagops::run(cli) {
        Ok(status) => status.into(),
        Err(error) => {
            if flagops::is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            // A cause may quote a server's answer or a URL: print it as any output is printed.
            eprintln!("error: {}", flagops::escape::shown(&error.to_string()));
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {}", flagops::escape::shown(&cause.to_string()));
            }
            flagops::ExitStatus::Error.into()
        }
    }
}
