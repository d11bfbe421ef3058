//! The recordings of `--record-dir`, as the web page lists and serves them.
//!
//! Only plain `.cast` files directly in the directory are listed or served,
//! and a file is opened without following a link: a name from the URL is
//! checked against that rule, never joined blindly to the directory.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// One recording, as the list shows it.
pub(super) struct Listed {
    pub file: String,
    pub console: String,
    pub identity: String,
    /// Unix seconds the recording began, from its header.
    pub started: Option<i64>,
    /// Seconds from its start to its last event.
    pub length: f64,
    pub bytes: u64,
}

/// Whether `name` may name a recording: a plain file name ending `.cast`.
pub(super) fn valid_name(name: &str) -> bool {
    name.ends_with(".cast")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Opens recording `name` in `dir` (a regular file, not through a link).
pub(super) fn open(dir: &Path, name: &str) -> Option<std::fs::File> {
    if !valid_name(name) {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(name))
        .ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

/// Every recording in `dir`, newest first.
pub(super) fn list(dir: &Path) -> Vec<Listed> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut listed: Vec<Listed> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            describe(dir, &name)
        })
        .collect();
    listed.sort_by(|a, b| b.started.cmp(&a.started).then(a.file.cmp(&b.file)));
    listed
}

/// Reads what the list shows of one recording: its header, and the time of
/// its last event (from the file's end, so a long recording costs a read
/// of a few KiB, not of all of it).
fn describe(dir: &Path, name: &str) -> Option<Listed> {
    let mut file = open(dir, name)?;
    let bytes = file.metadata().ok()?.len();
    let mut head = vec![0u8; 4096.min(bytes as usize)];
    file.read_exact(&mut head).ok()?;
    let first = head.split(|&b| b == b'\n').next()?;
    let header: serde_json::Value = serde_json::from_slice(first).ok()?;
    let command = header["command"].as_str().unwrap_or_default();
    let (console, identity) = who(command);
    let tail_from = bytes.saturating_sub(4096);
    file.seek(SeekFrom::Start(tail_from)).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let length = tail
        .split(|&b| b == b'\n')
        .rev()
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .find_map(|event| event.get(0)?.as_f64())
        .unwrap_or(0.0);
    Some(Listed {
        file: name.to_string(),
        console,
        identity,
        started: header["timestamp"].as_i64(),
        length,
        bytes,
    })
}

/// The console and identity of a gateway recording's command line:
/// `gateway NAME (TARGET) for IDENTITY`, or `gateway NAME held`.
fn who(command: &str) -> (String, String) {
    let Some(rest) = command.strip_prefix("gateway ") else {
        return (String::new(), String::new());
    };
    let console = rest.split(' ').next().unwrap_or_default().to_string();
    let identity = match rest.rsplit_once(" for ") {
        Some((_, identity)) => identity.to_string(),
        None if rest.ends_with(" held") => "(held: everything it printed)".to_string(),
        None => String::new(),
    };
    (console, identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_cast_names_in_the_directory_are_served() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lab-1.cast"), "{\"version\":2}\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.cast")).unwrap();
        assert!(open(dir.path(), "lab-1.cast").is_some());
        assert!(
            open(dir.path(), "link.cast").is_none(),
            "a link is not followed"
        );
        for bad in [
            "../x.cast",
            "/etc/passwd",
            ".hidden.cast",
            "a b.cast",
            "lab-1",
        ] {
            assert!(open(dir.path(), bad).is_none(), "{bad}");
        }
        let listed = list(dir.path());
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].file, "lab-1.cast");
    }

    #[test]
    fn the_list_reads_console_identity_start_and_length() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lab-x.cast"),
            "{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":1700000000,\"command\":\"gateway lab (exec:sh) for alice\"}\n[0.5,\"o\",\"hi\"]\n[2.25,\"m\",\"session end\"]\n",
        )
        .unwrap();
        let l = &list(dir.path())[0];
        assert_eq!(
            (l.console.as_str(), l.identity.as_str(), l.started, l.length),
            ("lab", "alice", Some(1_700_000_000), 2.25)
        );
    }
}
