//! Writing a transcript as the session runs.
//!
//! Each event is written and flushed at once, so a crash keeps everything up
//! to the crash (a replayed session, which can be run again, is written in
//! blocks). The file is created with mode 0600: even redacted, a console
//! session is private. Output is decoded as UTF-8 across chunk boundaries
//! (the format requires valid UTF-8) and scrubbed of every known secret with
//! a [`Scrubber`] that holds back a possible partial secret until it is sure.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::cast::{event_line, EventCode, Header};
use crate::error::{Error, Result};
use crate::secret::REDACTED;
use crate::text::{Scrubber, Utf8Decoder};

/// The file's write buffer. Every running session holds one: 4 KiB, not
/// std's 8, is a tenth of what a replayed session costs in a fleet of a
/// thousand (issue 35), for twice the `write` calls of a replay's blocks
/// (an event larger than the buffer goes to the file directly).
const BLOCK: usize = 4 * 1024;

/// Records one session; a disabled recorder only keeps the scrubber.
pub struct Recorder {
    file: Option<BufWriter<File>>,
    path: Option<PathBuf>,
    started: Instant,
    decoder: Utf8Decoder,
    scrubber: Scrubber,
    failed: bool,
    watcher: Option<Watcher>,
    /// Bytes written to the file so far.
    written: u64,
    /// Each event flushed as it is written ([`Recorder::in_blocks`]: not).
    flush_each: bool,
}

/// One event of a session as its transcript has it (secrets redacted), told
/// live to a [`Watcher`] (the command line's `run --watch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched<'a> {
    /// Console output.
    Output(&'a str),
    /// What was sent (a secret as `<redacted>`).
    Input(&'a str),
    /// A step or a match.
    Marker(&'a str),
}

/// Who watches a session live: told every event as it is recorded (also
/// when nothing is written to a file).
pub type Watcher = std::sync::Arc<dyn Fn(Watched<'_>) + Send + Sync>;

/// The environment a transcript's header names, as asciinema records it:
/// `TERM` and `SHELL` when set, and nothing else (the environment may hold
/// credentials; these two name programs).
fn recorded_env() -> std::collections::BTreeMap<String, String> {
    ["TERM", "SHELL"]
        .iter()
        .filter_map(|k| {
            let value = std::env::var(k).ok()?;
            Some((k.to_string(), crate::secret::scrub_known(&value)))
        })
        .collect()
}

impl Recorder {
    /// Creates `path` as a private file (`crate::private_file`: 0600,
    /// directories 0700, never through a link, an existing file replaced
    /// atomically) and writes the header. `command` is scrubbed of credentials.
    pub fn create(path: &Path, command: &str, size: (u16, u16)) -> Result<Recorder> {
        let command = crate::secret::scrub_known(command);
        let file = crate::private_file::create(path).map_err(|e| {
            Error::usage(format!(
                "cannot create transcript {}: {e}; choose another --transcript path",
                path.display()
            ))
        })?;
        let header = Header {
            version: 2,
            width: size.0,
            height: size.1,
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs()),
            command: Some(command.to_string()),
            title: Some(format!("ec2-serial-expect: {command}")),
            idle_time_limit: None,
            env: Some(recorded_env()),
        };
        let mut rec = Recorder::disabled();
        rec.file = Some(BufWriter::with_capacity(BLOCK, file));
        rec.path = Some(path.to_path_buf());
        rec.write_line(&serde_json::to_string(&header).unwrap_or_default());
        Ok(rec)
    }

    /// A recorder that writes nothing (`--no-transcript`).
    pub fn disabled() -> Recorder {
        Recorder {
            file: None,
            path: None,
            started: Instant::now(),
            decoder: Utf8Decoder::new(),
            scrubber: Scrubber::new(),
            failed: false,
            watcher: None,
            written: 0,
            flush_each: true,
        }
    }

    /// Writes the file in blocks ([`BLOCK`], and what is left at the end)
    /// instead of flushing every event: for a session on a replayed
    /// transcript, which a crash cannot make unrepeatable. A replayed
    /// session's events come one echoed character at a time: 10,000
    /// replayed targets made 2.4 million `write` calls (`strace -c`), about
    /// 100,000 in blocks. A live console keeps every event flushed at once,
    /// so a crash keeps everything up to the crash.
    pub(crate) fn in_blocks(mut self) -> Recorder {
        self.flush_each = false;
        self
    }

    /// Tells `watcher` every event from now on, as recorded.
    pub fn watch(&mut self, watcher: Watcher) {
        self.watcher = Some(watcher);
    }

    /// Whether anything takes the events: a file or a watcher.
    fn is_heard(&self) -> bool {
        self.file.is_some() || self.watcher.is_some()
    }

    /// Where the transcript is written, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Registers a secret: from now on it is scrubbed from every event.
    pub fn add_secret(&mut self, secret: &str) {
        self.scrubber.add(secret);
    }

    /// Scrubs known secrets from a message (for errors and logs too).
    pub fn scrub(&self, text: &str) -> String {
        self.scrubber.scrub(text)
    }

    /// Records raw console output.
    pub fn output(&mut self, bytes: &[u8]) {
        if !self.is_heard() {
            return;
        }
        let mut text = String::with_capacity(bytes.len());
        self.decoder.decode(bytes, &mut text);
        let safe = self.scrubber.push(&text);
        if !safe.is_empty() {
            self.event(EventCode::Output, &safe);
        }
    }

    /// Records what was sent; a secret send is written as `<redacted>`.
    pub fn input(&mut self, text: &str, secret: bool) {
        let data = if secret {
            REDACTED.to_string()
        } else {
            self.scrubber.scrub(text)
        };
        self.event(EventCode::Input, &data);
    }

    /// Records a marker (a step, a match).
    pub fn marker(&mut self, label: &str) {
        let data = self.scrubber.scrub(label);
        self.event(EventCode::Marker, &data);
    }

    /// Bytes written to the file so far (a continuous recording is rotated
    /// by it).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Closes this file and goes on in a new one at `path`, header and all,
    /// still scrubbing every secret this one knew (a recording kept for
    /// days is rotated by size: `gateway --hold`).
    pub fn continue_in(&mut self, path: &Path, command: &str, size: (u16, u16)) -> Result<()> {
        let mut next = Recorder::create(path, command, size)?;
        for secret in self.scrubber.secrets() {
            next.scrubber.add(secret);
        }
        self.finish();
        *self = next;
        Ok(())
    }

    /// Writes out anything held back, the end marker, and closes the file.
    pub fn finish(&mut self) {
        if !self.is_heard() {
            return;
        }
        let mut text = String::new();
        self.decoder.finish(&mut text);
        let mut rest = self.scrubber.push(&text);
        rest += &self.scrubber.finish();
        if !rest.is_empty() {
            self.event(EventCode::Output, &rest);
        }
        // The end marker: a transcript without it was cut short.
        self.event(EventCode::Marker, END_MARKER);
        if let Some(mut f) = self.file.take() {
            let _ = f.flush();
        }
        self.watcher = None;
    }

    fn event(&mut self, code: EventCode, data: &str) {
        if let Some(watcher) = &self.watcher {
            watcher(match &code {
                EventCode::Output => Watched::Output(data),
                EventCode::Input => Watched::Input(data),
                _ => Watched::Marker(data),
            });
        }
        if self.file.is_some() {
            let line = event_line(self.started.elapsed().as_secs_f64(), &code, data);
            self.write_line(&line);
        }
    }

    fn write_line(&mut self, line: &str) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let result = file
            .write_all(line.as_bytes())
            .and_then(|_| file.write_all(b"\n"))
            .and_then(|_| {
                if self.flush_each {
                    file.flush()
                } else {
                    Ok(())
                }
            });
        self.written += line.len() as u64 + 1;
        if let Err(e) = result {
            if !self.failed {
                // Warn once; a full disk must not kill the rescue session itself.
                tracing::warn!("writing the transcript failed, recording stops: {e}");
                self.failed = true;
            }
            self.file = None;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The last event of every transcript that was closed, not cut short.
pub(super) const END_MARKER: &str = "session end";

/// The default transcript path: `<data dir>/transcripts/<UTC time>-<what>.cast`.
pub fn default_path(what: &str) -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "ec2-serial-expect").ok_or_else(|| {
        Error::usage("cannot find a data directory (is HOME set?); pass --transcript FILE.cast or --no-transcript")
    })?;
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "now".into());
    let safe: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    Ok(dirs
        .data_dir()
        .join("transcripts")
        .join(format!("{stamp}-{}-{safe}.cast", std::process::id())))
}
