//! The git program, run with explicit arguments and never through a shell.
//!
//! Every run sets `GIT_TERMINAL_PROMPT=0`, so a push that needs a password fails instead of
//! waiting for one, and `LC_ALL=C`, so messages are git's own. What git prints is passed on
//! through `escape::redact_urls`, since a remote's URL may carry a credential.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::escape::redact_urls;

/// A repository's work tree, where git runs.
#[derive(Debug)]
pub(super) struct Git {
    /// The folder git runs in (the registry's root, somewhere inside the work tree).
    dir: PathBuf,
}

/// What a run of git printed.
#[derive(Debug)]
pub(super) struct Ran {
    /// Whether it exited with 0.
    pub(super) ok: bool,
    /// Its standard output.
    pub(super) stdout: String,
    /// Its standard error, with credentials in URLs hidden.
    pub(super) stderr: String,
}

impl Git {
    /// git in `dir`.
    pub(super) fn new(dir: &Path) -> Git {
        Git { dir: dir.to_path_buf() }
    }

    /// Runs `git ARGS`, with `input` on its standard input.
    pub(super) fn try_run(
        &self,
        args: &[&str],
        input: Option<&str>,
        environment: &[(&str, &str)],
    ) -> anyhow::Result<Ran> {
        let mut command = Command::new("git");
        command
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .envs(environment.iter().copied())
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to run `git {}`", args.first().unwrap_or(&"")))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(text.as_bytes())
                .with_context(|| format!("failed to write to `git {}`", args.first().unwrap_or(&"")))?;
        }
        let output = child
            .wait_with_output()
            .with_context(|| format!("failed to run `git {}`", args.first().unwrap_or(&"")))?;
        Ok(Ran {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: redact_urls(String::from_utf8_lossy(&output.stderr).trim()).into_owned(),
        })
    }

    /// Runs `git ARGS` and returns its output, trimmed; failing is an error quoting git.
    pub(super) fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        self.run_with(args, None, &[])
    }

    /// `run`, with standard input and extra environment variables.
    pub(super) fn run_with(
        &self,
        args: &[&str],
        input: Option<&str>,
        environment: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let ran = self.try_run(args, input, environment)?;
        if !ran.ok {
            anyhow::bail!("`git {}` failed: {}", shown_args(args), ran.stderr);
        }
        Ok(ran.stdout.trim_end().to_string())
    }

    /// Whether `git ARGS` succeeds, for questions such as whether a ref exists.
    pub(super) fn succeeds(&self, args: &[&str]) -> anyhow::Result<bool> {
        Ok(self.try_run(args, None, &[])?.ok)
    }
}

/// The arguments as a message shows them: the first few, which say what was run.
fn shown_args(args: &[&str]) -> String {
    args.iter().take(3).copied().collect::<Vec<_>>().join(" ")
}
