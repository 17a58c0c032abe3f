//! flagops: a GitOps feature-flag registry.
//!
//! The pipeline is `load` (YAML with spans, via `source`) → `schema` → `check`, giving a
//! `model::Registry` and every `diagnostic::Diagnostic`; then `resolve` (the desired state at a
//! time) → `plan::diff` against a backend's state → `sync` (apply, record); and `history` (git)
//! → `site`. Each command in `cmd` is a thin wrapper that turns its `cli` arguments into plain
//! inputs and calls these modules.
//! See ARCHITECTURE.md for the code map and the invariants.

pub mod backends;
pub mod chatops;
pub mod check;
pub mod cli;
mod cmd;
pub mod config;
pub mod diagnostic;
pub mod edit;
pub mod emergency;
pub mod escape;
pub mod eval;
pub mod graph;
pub mod guard;
pub mod hashing;
pub mod history;
pub mod hold;
pub mod import;
pub mod init;
pub mod lifecycle;
pub mod load;
pub mod lock;
pub mod model;
pub mod notify;
pub mod owned_file;
pub mod paths;
pub mod plan;
pub mod prometheus;
pub mod publish;
pub mod resolve;
pub mod review;
pub mod schema;
pub mod site;
pub mod source;
pub mod state;
pub mod status;
pub mod steps;
pub mod sync;
pub mod template;

use std::process::ExitCode;

/// What `flagops --version` prints after the name: the package's version and the commit it was
/// built from (`build.rs`), such as `0.1.0 (commit 0123456789ab)`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("FLAGOPS_COMMIT"), ")");

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It did its job and found nothing: exit 0.
    Success,
    /// It did its job and found problems (invalid files, drift): exit 1.
    Failure,
    /// It could not do its job: exit 2.
    Error,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Error => ExitCode::from(2),
        }
    }
}

/// Parses the process's command line, with the environment switches `flagops.yml` declares
/// (read only for the commands that take them, `cli::SWITCH_COMMANDS`).
pub fn parse_cli() -> cli::Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let switches = if args
        .iter()
        .any(|arg| cli::SWITCH_COMMANDS.iter().any(|command| arg == command))
    {
        cmd::environment_switches(&args)
    } else {
        Vec::new()
    };
    cli::parse_with_switches(args, &switches)
}

/// Runs one command.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitStatus> {
    cmd::run(cli)
}

/// Whether the error is a closed stdout (`flagops ... | head`), which is not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
