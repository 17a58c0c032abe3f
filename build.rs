//! Names the commit flagops is built from, for `flagops --version`: `FLAGOPS_COMMIT`.
//!
//! In order: `GIT_COMMIT` when set; git's `HEAD` when the package's folder is the top of a git
//! checkout (a clone, or cargo's checkout for `cargo install --git`); `CI_COMMIT_SHA` when GitLab
//! CI is building this very project (`CI_PROJECT_DIR` is the package's folder); else `unknown`
//! (a source tarball). Nothing but git, which may be absent.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=CI_COMMIT_SHA");
    println!("cargo:rerun-if-env-changed=CI_PROJECT_DIR");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let commit = explicit("GIT_COMMIT")
        .or_else(|| from_git(&manifest_dir))
        .or_else(|| from_gitlab_ci(&manifest_dir))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=FLAGOPS_COMMIT={commit}");
}

/// A commit id from a variable, shortened to 12 characters; only hexadecimal digits count.
fn explicit(variable: &str) -> Option<String> {
    let value = std::env::var(variable).ok()?;
    short(value.trim())
}

fn short(id: &str) -> Option<String> {
    (id.len() >= 7 && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| id.chars().take(12).collect())
}

/// `HEAD` of the git checkout whose top is `dir`, and reruns when `HEAD` moves.
fn from_git(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").args(args).current_dir(dir).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    // A tarball unpacked inside another repository must not take that repository's commit.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    let git_dir = PathBuf::from(git(&["rev-parse", "--absolute-git-dir"])?);
    let common_dir = dir.join(git(&["rev-parse", "--git-common-dir"])?);
    let mut watched = vec![git_dir.join("HEAD"), common_dir.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common_dir.join(branch));
    }
    // Cargo reruns a build script on every build while a path it watches is missing.
    for path in watched.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    short(&git(&["rev-parse", "HEAD"])?)
}

/// `CI_COMMIT_SHA`, when GitLab CI builds this project itself and git could not say.
fn from_gitlab_ci(dir: &Path) -> Option<String> {
    let project = PathBuf::from(std::env::var_os("CI_PROJECT_DIR")?);
    if std::fs::canonicalize(project).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    explicit("CI_COMMIT_SHA")
}
