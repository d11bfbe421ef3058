//! Files that hold what a console said: transcripts and reports.
//!
//! They may hold anything a console printed, so they are created private
//! (0600, in directories created 0700) and never through a link someone
//! planted at their path: a new file is opened with `O_CREAT|O_EXCL|
//! O_NOFOLLOW`; an existing path (a file, or a link) is replaced atomically
//! by renaming a fresh private file over it, so a link is replaced, never
//! followed, and an old 0644 file does not stay 0644.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Creates (or atomically replaces) `path` as a new private file, open for writing.
pub fn create(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(dir)?;
    }
    match open_new(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists || is_link_refusal(&e) => replace(path),
        other => other,
    }
}

/// Writes `bytes` to `path` as [`create`] does, whole or not at all.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (temp, mut file) = temp_beside(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|_| file.sync_all())
        .and_then(|_| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_dirs(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn open_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// `O_NOFOLLOW` on a dangling link: ELOOP.
fn is_link_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// A fresh private file renamed over `path` (rename replaces a link itself).
fn replace(path: &Path) -> io::Result<File> {
    let (temp, file) = temp_beside(path)?;
    if let Err(e) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(file)
}

/// A new private file in `path`'s directory, with a name nobody else holds.
fn temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dirs(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let temp = dir.join(format!(
            ".{name}.{}.{nanos:x}{attempt}.tmp",
            std::process::id()
        ));
        match open_new(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_private_and_links_are_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let link = dir.path().join("t.cast");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        create(&link).unwrap().write_all(b"transcript").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "transcript");
        assert_eq!(mode(&link), 0o600);

        let old = dir.path().join("old.json");
        std::fs::write(&old, "old").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&old, b"new").unwrap();
        assert_eq!(
            (std::fs::read_to_string(&old).unwrap().as_str(), mode(&old)),
            ("new", 0o600)
        );

        let nested = dir.path().join("a/b/c.cast");
        create(&nested).unwrap();
        assert_eq!(
            (mode(&dir.path().join("a")), mode(&dir.path().join("a/b"))),
            (0o700, 0o700)
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
