//! Thin command wrappers: each turns its `cli` arguments into plain inputs, calls the library
//! and prints. Only this module and `cli` know clap.

mod import;
mod new;
mod validate;

use std::io::Write;
use std::path::PathBuf;

use crate::ExitStatus;
use crate::cli::{Cli, Command, SchemaName};
use crate::load::Workspace;
use crate::schema::SchemaKind;

/// Dispatches one command.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let config = cli.config.clone();
    match cli.command {
        Command::Validate(args) => validate::run(&workspace(config.as_deref())?, args),
        Command::Schema(args) => {
            let kind = match args.which {
                SchemaName::Flag => SchemaKind::Flag,
                SchemaName::Config => SchemaKind::Config,
            };
            print(kind.text())?;
            Ok(ExitStatus::Success)
        }
        Command::Checks => {
            let mut text = String::from("Semantic checks (skippable with `validate --skip ID`):\n");
            for check in crate::check::CHECKS {
                text.push_str(&format!("  {:<24} {}\n", check.id, check.summary));
            }
            text.push_str("\nReading checks:\n");
            for check in crate::check::INPUT_CHECKS {
                text.push_str(&format!("  {:<24} {}\n", check.id, check.summary));
            }
            print(&text)?;
            Ok(ExitStatus::Success)
        }
        Command::New(args) => new::run(&workspace(config.as_deref())?, args),
        Command::Import(crate::cli::ImportCommand::Gitlab(args)) => import::run(&workspace(config.as_deref())?, args),
    }
}

fn workspace(explicit: Option<&std::path::Path>) -> anyhow::Result<Workspace> {
    let current = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    Workspace::find(explicit, &current)
}

/// Writes `text` to stdout, reporting a closed pipe as an error the caller maps to success.
fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
