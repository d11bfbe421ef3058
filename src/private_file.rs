//! Files that hold what a console said: transcripts and reports.
//!
//! They may hold anything a console printed, so they are created private
//! (0600, in directories created 0700) and never through a link someone
//! planted at their path: a new file is opened with `O_CREAT|O_EXCL|
//! O_NOFOLLOW`; an existing file, or a link someone else could have planted,
//! is replaced atomically by renaming a fresh private file over it, so the
//! link is replaced, never followed, and an old 0644 file does not stay 0644.
//!
//! What is written *in place* instead: a device or a FIFO (`/dev/null`, a
//! pipe; renaming over it would break it for everyone), and a link only we
//! or root could have made (ours or root's, in a directory only we or root
//! can write: `/dev/stdout`, a user's own link in their own directory).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What to do with a path we are asked to write.
enum Destination {
    /// Nothing there: create it.
    New,
    /// A file, or a link that is not certainly ours: put a new file there.
    Replace,
    /// A device, a FIFO, or a link only we or root could have made.
    InPlace,
}

fn destination(path: &Path) -> io::Result<Destination> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::New),
        other => other?,
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(Destination::Replace);
    }
    if kind.is_char_device() || kind.is_fifo() {
        return Ok(Destination::InPlace);
    }
    if kind.is_symlink() {
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::fs::metadata(dir)?;
        let ours = |uid: u32| uid == 0 || uid == me;
        let trusted = ours(meta.uid()) && ours(dir.uid()) && dir.mode() & 0o022 == 0;
        let writable_target = std::fs::metadata(path).is_ok_and(|t| {
            let k = t.file_type();
            k.is_file() || k.is_char_device() || k.is_fifo()
        });
        return Ok(if trusted && writable_target {
            Destination::InPlace
        } else {
            Destination::Replace
        });
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "it is a directory or a socket, not a file",
    ))
}

/// Opens what is at `path` for writing, following a trusted link; a
/// regular file is truncated, a device or FIFO is not.
fn open_in_place(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).open(path)?;
    if file.metadata()?.is_file() {
        file.set_len(0)?;
    }
    Ok(file)
}

/// Creates (or atomically replaces) `path` as a new private file, open for
/// writing; a device, FIFO or trusted link is written in place.
pub fn create(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(dir)?;
    }
    match destination(path)? {
        Destination::New => match open_new(path) {
            // It appeared meanwhile: whatever it is, do not write through it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists || is_link_refusal(&e) => {
                replace(path)
            }
            other => other,
        },
        Destination::Replace => replace(path),
        Destination::InPlace => open_in_place(path),
    }
}

/// Writes `bytes` to `path` as [`create`] does, whole or not at all (a
/// device, FIFO or trusted link: in place).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Destination::InPlace = destination(path)? {
        return open_in_place(path)?.write_all(bytes);
    }
    write_atomically(path, bytes)
}

/// A fresh private file with `bytes`, renamed over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
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

/// Writes a secret (a generated password) to `path` as [`write`] does,
/// except that a link is never followed to a regular file: only a device
/// or FIFO (`/dev/stdout`, a pipe) is written in place; anything else
/// becomes a new 0600 file at `path` (a link there is replaced), so the
/// secret can land neither in a file someone else made nor in one that
/// keeps a readable mode.
pub fn write_secret(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let stream = matches!(destination(path)?, Destination::InPlace)
        && std::fs::metadata(path).is_ok_and(|m| {
            let kind = m.file_type();
            kind.is_char_device() || kind.is_fifo()
        });
    if stream {
        return open_in_place(path)?.write_all(bytes);
    }
    write_atomically(path, bytes)
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
    fn devices_and_fifos_are_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        // Found in review: --transcript /dev/null replaced /dev/null. The
        // test uses a null device of its own (as root), never the host's.
        let dir = tempfile::tempdir().unwrap();
        let null = dir.path().join("null");
        let made = nix::sys::stat::mknod(
            &null,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            libc::makedev(1, 3),
        );
        if made.is_ok() {
            create(&null).unwrap().write_all(b"x").unwrap();
            write(&null, b"report").unwrap();
            assert!(std::fs::metadata(&null)
                .unwrap()
                .file_type()
                .is_char_device());
        }
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || std::fs::read_to_string(fifo).unwrap()
        });
        write(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }

    /// Found in review: `--rescue-password-file ~/pw` with `~/pw` a link of
    /// the user's own to a file elsewhere (perhaps planted by someone else,
    /// perhaps 0644) wrote the password into that file, keeping its mode.
    #[test]
    fn a_secret_never_goes_through_a_link_to_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let planted = elsewhere.path().join("pw");
        std::fs::write(&planted, "someone else's").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A link only we could have made, in our own 0700 directory.
        let link = dir.path().join("pw");
        std::os::unix::fs::symlink(&planted, &link).unwrap();
        write_secret(&link, b"hunter2-generated\n").unwrap();
        assert_eq!(std::fs::read_to_string(&planted).unwrap(), "someone else's");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(
            std::fs::read_to_string(&link).unwrap(),
            "hunter2-generated\n"
        );
        assert_eq!(mode(&link), 0o600);
        // A pipe is still written in place.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || std::fs::read_to_string(fifo).unwrap()
        });
        write_secret(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
    }

    #[test]
    fn new_files_are_private_and_links_are_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        // A directory someone else could write: a link there is not trusted.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
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
