//! One sync per environment at a time: an advisory lock on `<state_dir>/<env>.lock`.
//!
//! The lock is the operating system's file lock, so it is released when its holder exits,
//! however it exits; a killed sync never leaves a stale lock. The holder writes who it is into
//! the file, so a second sync can say whom it waited for.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// Takes the lock at `path`, waiting up to `timeout` for its holder. `holder` describes this
    /// process for others.
    pub fn acquire(path: &Path, holder: &str, timeout: Duration) -> anyhow::Result<Lock> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
        }
        let mut file = crate::owned_file::open(
            path,
            OpenOptions::new().read(true).write(true).create(true).truncate(false),
        )?;
        let started = Instant::now();
        let mut announced = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let current = read_holder(&mut file);
                    if started.elapsed() >= timeout {
                        bail!(
                            "`{}` is locked by {current}\nhelp: wait for that sync to finish, or raise `--lock-timeout`",
                            path.display()
                        );
                    }
                    if !announced {
                        eprintln!("waiting for the lock `{}`, held by {current}", path.display());
                        announced = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::Error(error)) => {
                    return Err(error).with_context(|| format!("failed to lock `{}`", path.display()));
                }
            }
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(holder.as_bytes())
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        file.flush()?;
        Ok(Lock { file })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// This process, as written into lock files: `pid 42 on host build-1 (flagops sync) since …`.
pub fn describe_self(command: &str, now: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "an unknown host".to_string());
    format!(
        "pid {} on host {host} ({command}) since {}",
        std::process::id(),
        crate::plan::render::time(now)
    )
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    // A holder describes itself in one line; more is not worth reading.
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(4096).read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() {
        "another process".to_string()
    } else {
        // Anything can write a lock file: what it says is shown on one line, escaped.
        crate::escape::one_line(&crate::escape::shown(text)).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_names_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.lock");
        let held = Lock::acquire(&path, "pid 1 on host a (test) since now", Duration::ZERO).unwrap();
        let error = Lock::acquire(&path, "second", Duration::from_millis(150)).unwrap_err();
        assert!(
            error.to_string().contains("locked by pid 1 on host a (test) since now"),
            "{error}"
        );
        drop(held);
        Lock::acquire(&path, "third", Duration::ZERO).unwrap();
    }

    #[test]
    fn a_hostile_holder_is_shown_escaped_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.lock");
        let _held = Lock::acquire(&path, "pid 1\n\u{1b}[2Jgone", Duration::ZERO).unwrap();
        let error = Lock::acquire(&path, "second", Duration::ZERO).unwrap_err().to_string();
        let first = error.lines().next().unwrap();
        assert!(first.contains("locked by pid 1\\u000a\\u001b[2Jgone"), "{error}");
        assert!(!error.contains('\u{1b}'), "{error}");
    }
}
