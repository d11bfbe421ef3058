//! `replay:` targets: a recorded transcript played back as the console.
//!
//! Output events are served as console output at full speed; each input
//! event gates the output recorded after it until the session sends the same
//! input, so a replay is deterministic: the script under test meets exactly
//! the console it met when the transcript was recorded. A send that differs
//! from the recording fails at once with the event index, what was expected
//! and what was sent. A `<redacted>` input accepts any secret send (and only
//! a secret send), so recorded logins replay without the password.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{SendKind, Transport, TransportError, TransportResult};
use crate::error::{Divergence, Error, Result};
use crate::secret::REDACTED;
use crate::transcript::cast::{Cast, EventCode};

/// One output or input event of the recording. Its bytes are
/// `data[previous step's end..end]`: all of a recording's events live in one
/// buffer, because a thousand replays at once each held a few hundred small
/// allocations (one per event, most of them one echoed character) and the
/// event list they were read into — 25 KiB a replay, measured with
/// heaptrack, against 14 KiB now (issue 35: memory per concurrent session).
#[derive(Debug, Clone, Copy)]
struct Step {
    /// The event's index in the file (for messages).
    event: u32,
    /// Where its bytes end in `data`.
    end: u32,
    /// Typed by the session (an input event), or shown by the console.
    input: bool,
}

/// A transcript served as a console.
pub struct ReplayTransport {
    path: PathBuf,
    data: Vec<u8>,
    steps: Vec<Step>,
    /// Next step to read, and how much of it (an output step) was served.
    read_at: usize,
    read_offset: usize,
    /// Next input step to match, and how many of its bytes were matched.
    input_at: usize,
    input_offset: usize,
}

impl ReplayTransport {
    /// Loads `path` (an asciicast v2 transcript).
    pub fn open(path: &Path) -> Result<Self> {
        let cast = Cast::read(path)?;
        let too_big = || {
            Error::usage(format!(
                "transcript {}: too large to replay (4 GiB of events at most); cut it in parts",
                path.display()
            ))
        };
        let mut data = Vec::new();
        let mut steps = Vec::new();
        for (i, e) in cast.events.iter().enumerate() {
            let input = match e.code {
                EventCode::Output => false,
                EventCode::Input => true,
                _ => continue,
            };
            // An empty output would read as the end of the console.
            if !input && e.data.is_empty() {
                continue;
            }
            data.extend_from_slice(e.data.as_bytes());
            steps.push(Step {
                event: u32::try_from(i).map_err(|_| too_big())?,
                end: u32::try_from(data.len()).map_err(|_| too_big())?,
                input,
            });
        }
        data.shrink_to_fit();
        steps.shrink_to_fit();
        let mut replay = ReplayTransport {
            path: path.to_path_buf(),
            data,
            steps,
            read_at: 0,
            read_offset: 0,
            input_at: 0,
            input_offset: 0,
        };
        replay.seek_input();
        Ok(replay)
    }

    /// The bytes of step `at`.
    fn bytes(&self, at: usize) -> &[u8] {
        let start = at.checked_sub(1).map_or(0, |p| self.steps[p].end as usize);
        &self.data[start..self.steps[at].end as usize]
    }

    /// Moves `input_at` to the next input step at or after it.
    fn seek_input(&mut self) {
        while self.input_at < self.steps.len() && !self.steps[self.input_at].input {
            self.input_at += 1;
        }
    }

    fn mismatch(&self, why: String) -> TransportError {
        TransportError::ReplayMismatch(Divergence::said(self.place(), self.say_mismatch(&why)))
    }

    /// A mismatch of typed text: the recording's and the session's, kept
    /// apart for whoever can read them (the shell knows its commands).
    fn text_mismatch(&self, recorded: &[u8], sent: &[u8]) -> TransportError {
        let (recorded, sent) = (
            String::from_utf8_lossy(recorded).into_owned(),
            String::from_utf8_lossy(sent).into_owned(),
        );
        TransportError::ReplayMismatch(Divergence {
            place: self.place(),
            message: self.say_mismatch(&format!("expected {recorded:?}, sent {sent:?}")),
            recorded: Some(recorded),
            sent: Some(sent),
        })
    }

    fn say_mismatch(&self, why: &str) -> String {
        format!(
            "replay {}: the session's send differs from the recording {}: {why}; \
             the recorded console showed just before: {:?} (a recording replays the script \
             that made it; docs/testing.md)",
            self.path.display(),
            self.event(),
            self.console_before(self.input_at)
        )
    }

    /// `at event #N (line L)` of the next input, or `after the last event`.
    fn event(&self) -> String {
        match self.steps.get(self.input_at) {
            Some(step) => format!("at event #{} (line {})", step.event, step.event as u64 + 2),
            None => "after the last event".to_string(),
        }
    }

    /// `replay FILE at event #N (line L)`.
    fn place(&self) -> String {
        format!("replay {} {}", self.path.display(), self.event())
    }

    /// The last lines the recording's console showed before step `at`, as a
    /// person reads them (escape sequences and carriage returns removed).
    fn console_before(&self, at: usize) -> String {
        // Only the tail is shown: walk back until there is enough of it.
        let mut chunks = Vec::new();
        let mut len = 0;
        for i in (0..at.min(self.steps.len())).rev() {
            if !self.steps[i].input {
                let bytes = self.bytes(i);
                chunks.push(bytes);
                len += bytes.len();
                if len >= 4096 {
                    break;
                }
            }
        }
        let raw: Vec<u8> = chunks.into_iter().rev().flatten().copied().collect();
        let mut shown = String::new();
        crate::text::EscapeStripper::new().strip(&String::from_utf8_lossy(&raw), &mut shown);
        let shown = shown.replace('\r', "");
        crate::text::tail_chars(shown.trim_end_matches('\n'), 240).to_string()
    }

    fn accept(&mut self, mut data: &[u8], kind: SendKind) -> TransportResult<()> {
        while !data.is_empty() {
            if self.input_at >= self.steps.len() {
                return Err(self.mismatch(format!(
                    "the recording has no more input, but the session sent {}",
                    shown(data, kind)
                )));
            }
            let expected = self.bytes(self.input_at);
            if expected == REDACTED.as_bytes() && self.input_offset == 0 {
                if kind != SendKind::Secret {
                    return Err(self.mismatch(format!(
                        "expected a secret (recorded as {REDACTED}), sent {}",
                        shown(data, kind)
                    )));
                }
                data = &[];
            } else {
                if kind == SendKind::Secret {
                    return Err(self.mismatch(format!(
                        "expected {:?}, sent a secret",
                        String::from_utf8_lossy(&expected[self.input_offset..])
                    )));
                }
                let want = &expected[self.input_offset..];
                let n = want.len().min(data.len());
                if want[..n] != data[..n] {
                    return Err(self.text_mismatch(want, data));
                }
                let whole = expected.len();
                data = &data[n..];
                self.input_offset += n;
                if self.input_offset < whole {
                    return Ok(());
                }
            }
            self.input_at += 1;
            self.input_offset = 0;
            self.seek_input();
        }
        Ok(())
    }
}

fn shown(data: &[u8], kind: SendKind) -> String {
    match kind {
        SendKind::Secret => "a secret".to_string(),
        SendKind::Plain => format!("{:?}", String::from_utf8_lossy(data)),
    }
}

#[async_trait]
impl Transport for ReplayTransport {
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
        loop {
            match self.steps.get(self.read_at) {
                None => return Ok(0),
                Some(step) if !step.input => {
                    let bytes = self.bytes(self.read_at);
                    let rest = &bytes[self.read_offset..];
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    let whole = bytes.len();
                    self.read_offset += n;
                    if self.read_offset == whole {
                        self.read_at += 1;
                        self.read_offset = 0;
                    }
                    return Ok(n);
                }
                Some(_) if self.read_at < self.input_at => self.read_at += 1,
                // The recording waits for input here: so does the console.
                Some(_) => std::future::pending::<()>().await,
            }
        }
    }

    async fn write(&mut self, data: &[u8], kind: SendKind) -> TransportResult<()> {
        self.accept(data, kind)
    }

    async fn close(&mut self) -> TransportResult<()> {
        Ok(())
    }

    fn is_replay(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("replay:{}", self.path.display())
    }
}

impl ReplayTransport {
    /// Input events the session has not sent yet (for a strict end-of-test check).
    pub fn unsent_inputs(&self) -> usize {
        self.steps[self.input_at.min(self.steps.len())..]
            .iter()
            .filter(|s| s.input)
            .count()
    }
}
