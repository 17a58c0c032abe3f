//! Paths on disk: their absolute form, the names that may become one of their components, and
//! the one check every write of flagops's own files goes through, `inside`, which keeps a path
//! built from names inside the folder it belongs to.
//!
//! Paths in `flagops.yml` start at the registry root (the config's folder); paths given on the
//! command line start at the working directory. Comparing two paths always compares their
//! `absolute` forms, never the spellings shown to users.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// `path` made absolute against the working directory, with `.` dropped and `..` taken
/// lexically (links are not followed), so one place on disk has one spelling.
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() || path.as_os_str().is_empty() {
        return normalize(path);
    }
    match working_dir() {
        Some(current) => normalize(&current.join(path)),
        None => normalize(path),
    }
}

/// The working directory in absolute, normalized form, asked of the system once: flagops never
/// changes it, and reading a registry makes the path of every file absolute, twice.
pub fn working_dir() -> Option<&'static Path> {
    static CURRENT: OnceLock<Option<PathBuf>> = OnceLock::new();
    CURRENT
        .get_or_init(|| std::env::current_dir().ok().map(|current| normalize(&current)))
        .as_deref()
}

/// Whether `path` is `folder` or lies below it, compared lexically in absolute form.
pub fn is_within(path: &Path, folder: &Path) -> bool {
    absolute(path).starts_with(absolute(folder))
}

/// Whether `relative` stays inside the folder it is joined to, read lexically: not absolute, and
/// no `..` climbs above its start.
pub fn stays_inside(relative: &Path) -> bool {
    let mut depth: usize = 0;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Whether `name` can be one component of a path: not empty, not `.` or `..`, no `/` or `\`,
/// no control character. Flag, type, environment, group and owner names become file names.
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

/// `folder` joined with `relative`, refused unless the result stays inside `folder`: lexically
/// (no absolute path, no `..` above `folder`), and on disk (no folder between the two is a
/// symbolic link, which could lead anywhere).
pub fn inside(folder: &Path, relative: &Path) -> anyhow::Result<PathBuf> {
    if !stays_inside(relative) {
        bail!(
            "refusing to write `{}`: it is not inside `{}`",
            relative.display(),
            folder.display()
        );
    }
    let target = folder.join(relative);
    let mut walked = folder.to_path_buf();
    let parents: Vec<Component<'_>> = relative.parent().map(|p| p.components().collect()).unwrap_or_default();
    for component in parents {
        walked.push(component);
        match std::fs::symlink_metadata(&walked) {
            Ok(metadata) if metadata.file_type().is_symlink() => bail!(
                "refusing to write `{}`: `{}` is a symbolic link",
                target.display(),
                walked.display()
            ),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
            Err(error) => return Err(error).with_context(|| format!("failed to read `{}`", walked.display())),
        }
    }
    Ok(target)
}

/// `path` with `.` dropped and each `..` removing the component before it.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                // `..` at the root stays at the root.
                if !out.pop() && !out.has_root() {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside_refuses_climbing_and_absolute_paths() {
        assert!(stays_inside(Path::new("wip/a.yml")));
        assert!(stays_inside(Path::new("wip/../a.yml")));
        assert!(stays_inside(Path::new("./a.yml")));
        assert!(!stays_inside(Path::new("../a.yml")));
        assert!(!stays_inside(Path::new("wip/../../a.yml")));
        assert!(!stays_inside(Path::new("/etc/passwd")));
    }

    #[test]
    fn safe_components_are_single_plain_names() {
        assert!(is_safe_component("gitlab_com_derisk"));
        assert!(is_safe_component("group::source code"));
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a\nb", "a\0b", "/x"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
    }

    #[test]
    fn inside_refuses_paths_that_leave_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("public");
        std::fs::create_dir_all(folder.join("flags")).unwrap();
        assert_eq!(
            inside(&folder, Path::new("flags/a.html")).unwrap(),
            folder.join("flags/a.html")
        );
        assert_eq!(
            inside(&folder, Path::new("new/b.html")).unwrap(),
            folder.join("new/b.html")
        );
        for escaping in ["../a.html", "flags/../../a.html", "/tmp/a.html"] {
            let error = inside(&folder, Path::new(escaping)).unwrap_err();
            assert!(error.to_string().contains("is not inside"), "{error}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path(), folder.join("linked")).unwrap();
            let error = inside(&folder, Path::new("linked/a.html")).unwrap_err();
            assert!(error.to_string().contains("is a symbolic link"), "{error}");
        }
    }

    #[test]
    fn absolute_takes_parent_components_lexically() {
        assert_eq!(absolute(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(absolute(Path::new("/..")), PathBuf::from("/"));
    }
}
