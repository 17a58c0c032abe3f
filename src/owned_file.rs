//! The files flagops keeps for itself (state documents, audit logs, locks, sync records and
//! caches) and the templates a site is built from: every one is opened here.
//!
//! A symbolic link named like one of them could point anywhere: writing through it would truncate
//! or append to its target, and reading through it would publish the target or never end
//! (`/dev/zero`). So the last component of the path is never followed (`O_NOFOLLOW`), only
//! regular files are accepted, and reads stop at a limit. Replacing a file writes a temporary
//! file named after it (`.<name>.flagops-XXXXXX.tmp`) and renames it over the path, which
//! replaces a link instead of writing through it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Take, Write};
use std::path::Path;

use anyhow::{Context, bail};

/// The most a state document, a sync record, an actor cache or a template may hold: 64 MiB,
/// dozens of times the state document of an environment of 8,000 flags.
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// The most an audit log or the history cache may hold: 512 MiB, about a million audit records.
/// Logs grow for as long as an environment lives, but are read a line at a time.
pub const MAX_LOG_BYTES: u64 = 512 << 20;

/// Opens `path` with `options`, never following a symbolic link at `path` itself, and refuses
/// anything but a regular file.
pub fn open(path: &Path, options: &mut OpenOptions) -> anyhow::Result<File> {
    match open_existing(path, options)? {
        Some(file) => Ok(file),
        None => bail!("`{}` does not exist", path.display()),
    }
}

/// [`open`], but `None` when `path` does not exist.
pub fn open_existing(path: &Path, options: &mut OpenOptions) -> anyhow::Result<Option<File>> {
    no_follow(options);
    if cfg!(not(unix)) && is_link(path) {
        return Err(link_error(path));
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) if is_link(path) => return Err(link_error(path)),
        Err(error) => return Err(error).with_context(|| format!("failed to open `{}`", path.display())),
    };
    let metadata = file
        .metadata()
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    if !metadata.is_file() {
        bail!(
            "`{}` is not a regular file\nhelp: put a regular file there, or remove it",
            path.display()
        );
    }
    Ok(Some(file))
}

/// Opens `path` to read at most `limit` bytes; `None` when it does not exist. A file larger than
/// `limit` is an error naming the file and the limit.
pub fn open_limited(path: &Path, limit: u64) -> anyhow::Result<Option<Take<File>>> {
    let Some(file) = open_existing(path, OpenOptions::new().read(true))? else {
        return Ok(None);
    };
    let length = file
        .metadata()
        .with_context(|| format!("failed to read `{}`", path.display()))?
        .len();
    if length > limit {
        bail!(
            "`{}` is {length} bytes, more than the {} MiB flagops reads from such a file\nhelp: check what wrote it, and move it away",
            path.display(),
            limit >> 20
        );
    }
    Ok(Some(file.take(limit)))
}

/// Reads all of `path` within `limit` bytes; `None` when it does not exist.
pub fn read(path: &Path, limit: u64) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(mut reader) = open_limited(path, limit)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(Some(bytes))
}

/// Replaces `path` with `bytes` through a temporary file and a rename, so readers never see half
/// of it; `durable` also syncs the file and its folder to disk before and after the rename.
pub fn replace(path: &Path, bytes: &[u8], durable: bool) -> anyhow::Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
    let (prefix, suffix) = temporary_affixes(path);
    let mut temporary = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(suffix)
        .rand_bytes(TEMPORARY_RANDOM)
        .tempfile_in(folder)
        .with_context(|| format!("failed to create a file in `{}`", folder.display()))?;
    temporary
        .write_all(bytes)
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    if durable {
        temporary
            .as_file()
            .sync_all()
            .with_context(|| format!("failed to sync `{}`", path.display()))?;
    }
    temporary
        .persist(path)
        .with_context(|| format!("failed to replace `{}`", path.display()))?;
    if durable {
        File::open(folder)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("failed to sync `{}`", folder.display()))?;
    }
    Ok(())
}

/// Removes the temporary files a `replace` of `path` left when it was killed before its rename,
/// and only those: `.<name>.flagops-XXXXXX.tmp` beside it. Call it only while holding the lock
/// that keeps every other writer of `path` away.
pub fn remove_stale_temporaries(path: &Path) -> anyhow::Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (prefix, suffix) = temporary_affixes(path);
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("failed to read `{}`", folder.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read `{}`", folder.display()))?;
        let name = entry.file_name();
        let Some(random) = name
            .to_str()
            .and_then(|name| name.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(suffix))
        else {
            continue;
        };
        if random.len() == TEMPORARY_RANDOM && random.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            let stale = entry.path();
            std::fs::remove_file(&stale).with_context(|| format!("failed to remove `{}`", stale.display()))?;
        }
    }
    Ok(())
}

/// Refuses `path` if it is itself a symbolic link, such as a folder of templates linked elsewhere.
pub fn refuse_link(path: &Path) -> anyhow::Result<()> {
    if is_link(path) {
        return Err(link_error(path));
    }
    Ok(())
}

/// Whether `path` itself is a symbolic link.
pub fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_symlink())
}

/// How many random characters name a temporary file.
const TEMPORARY_RANDOM: usize = 6;

/// The start and end of the names of `path`'s temporary files: `.<name>.flagops-` and `.tmp`.
fn temporary_affixes(path: &Path) -> (String, &'static str) {
    let name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    (format!(".{name}.flagops-"), ".tmp")
}

fn link_error(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` is a symbolic link: flagops does not follow links to the files it keeps or reads templates from\nhelp: put the file itself there instead of a link, or remove it",
        path.display()
    )
}

/// Makes `options` refuse a link at the path's last component, and not wait on a FIFO or a
/// device, which are then refused as not regular files.
#[cfg(unix)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
}

#[cfg(not(unix))]
fn no_follow(_options: &mut OpenOptions) {}
