//! [`Session`]: one conversation with one console.
//!
//! A session can watch a signal channel ([`Session::watch_signals`]): the
//! first signal makes the operation under way (or the next one) fail with
//! [`ErrorKind::Interrupted`](crate::ErrorKind::Interrupted), once; after that the session works normally, so
//! the layers above can interrupt the console command, log out and close the
//! transcript before the process exits with the signal's code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::pattern::{Found, Match, Pattern, PatternSet};
use super::terminal::{mask_across_rows, VirtualTerminal};
use crate::error::{Error, Result, Signal};
use crate::secret::Secret;
use crate::text::{floor_char_boundary, tail_chars, EscapeStripper, Scrubber, Utf8Decoder};
use crate::transcript::Recorder;
use crate::transport::{SendKind, Transport, TransportError};

/// How many characters of recent output an error shows.
const TAIL_CHARS: usize = 200;
/// Compiled pattern lists kept for reuse (scripts expect the same lists in loops).
const PATTERN_CACHE: usize = 64;
/// Bytes asked for per read, at most: the read buffer starts at
/// [`FIRST_READ_SIZE`] and doubles each time a read fills it, so a console
/// that streams gets big reads while a quiet one (most of a fleet's
/// thousands of sessions) holds 4 KiB, not 64.
const READ_SIZE: usize = 64 * 1024;
/// The read buffer's first size: a PTY returns at most about this much.
const FIRST_READ_SIZE: usize = 4 * 1024;

/// Sending in small chunks with a pause between them, for slow UARTs that
/// drop characters when a whole line arrives at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Bytes per chunk (at least 1).
    pub chunk: usize,
    /// Pause after each chunk.
    pub delay: Duration,
}

/// Tunables of a session; [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Timeout of an expect that names none (default 30 s).
    pub default_timeout: Duration,
    /// Longest text a single match may span (default 8 KiB); bounds the
    /// work per read.
    pub search_window: usize,
    /// Most unconsumed text kept (default 1 MiB); older text is dropped.
    pub max_buffer: usize,
    /// Paced sending; off by default.
    pub pacing: Option<Pacing>,
    /// The size (columns, rows) of the screen the console's programs draw
    /// on, for [`Session::watch_screen`]: a local program's PTY size, else
    /// 80×24 (what GRUB and a serial getty assume).
    pub screen_size: (u16, u16),
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            default_timeout: Duration::from_secs(30),
            search_window: 8 * 1024,
            max_buffer: 1024 * 1024,
            pacing: None,
            screen_size: (80, 24),
        }
    }
}

/// A console conversation: send, expect, record.
pub struct Session {
    transport: Box<dyn Transport>,
    recorder: Recorder,
    options: SessionOptions,
    decoder: Utf8Decoder,
    stripper: EscapeStripper,
    /// Secrets known to this session, for scrubbing the match buffer.
    secrets: Scrubber,
    /// Decoded, stripped text not yet consumed by a match: the console's
    /// real text, secrets included (patterns and the shell layer parse it;
    /// what is shown is scrubbed on the way out, see [`Session::scrub`]).
    buffer: String,
    /// The last output seen, for error messages (scrubbed when read).
    recent: String,
    /// Scratch space for reads, reused.
    read_buf: Vec<u8>,
    eof: bool,
    patterns: HashMap<Vec<Pattern>, Arc<PatternSet>>,
    /// Signals to stop for; `None` once one has been delivered.
    signals: Option<tokio::sync::watch::Receiver<Option<Signal>>>,
    /// The rendered screen, once [`Session::watch_screen`] asked for it.
    terminal: Option<VirtualTerminal>,
}

impl Session {
    /// Starts a session over an open transport, recording with `recorder`.
    pub fn new(transport: Box<dyn Transport>, recorder: Recorder, options: SessionOptions) -> Self {
        Session {
            transport,
            recorder,
            options,
            decoder: Utf8Decoder::new(),
            stripper: EscapeStripper::new(),
            secrets: Scrubber::new(),
            buffer: String::new(),
            recent: String::new(),
            read_buf: vec![0; FIRST_READ_SIZE],
            eof: false,
            patterns: HashMap::new(),
            signals: None,
            terminal: None,
        }
    }

    /// Keeps a rendered screen of everything the console sends from now on
    /// (of [`SessionOptions::screen_size`]), for [`Session::expect_screen`]
    /// and [`Session::screen`]. Off until asked: rendering costs time per
    /// byte that stream matching does not need.
    pub fn watch_screen(&mut self) {
        if self.terminal.is_none() {
            self.terminal = Some(VirtualTerminal::new(self.options.screen_size));
        }
    }

    /// The screen as text (rows joined with `\n`), secrets scrubbed;
    /// starts watching it if it was not.
    pub fn screen(&mut self) -> String {
        self.watch_screen();
        let text = self
            .terminal
            .as_ref()
            .map(VirtualTerminal::text)
            .unwrap_or_default();
        self.scrub(&mask_across_rows(&text, self.secrets.secrets()))
    }

    /// The cursor on the screen: (row, column), from 0.
    pub fn cursor(&mut self) -> (u16, u16) {
        self.watch_screen();
        self.terminal
            .as_ref()
            .map_or((0, 0), VirtualTerminal::cursor)
    }

    /// Waits until the earliest of `patterns` matches what the screen shows
    /// (its rows joined with `\n`), for `timeout` or the default. The match's
    /// `before` is empty; the stream text received so far is consumed, since
    /// the screen is now what counts.
    pub async fn expect_screen(
        &mut self,
        patterns: &[Pattern],
        timeout: Option<Duration>,
    ) -> Result<Match> {
        let set = self.compiled(patterns)?;
        let timeout = timeout.unwrap_or(self.options.default_timeout);
        let deadline = Instant::now() + timeout;
        self.watch_screen();
        self.take_signal()?;
        loop {
            let shown = self.screen();
            if let Some(found) = set.find(&shown, 0) {
                self.buffer.clear();
                self.mark_match("expect_screen", &found, patterns);
                return Ok(found.to_match(&shown, String::new()));
            }
            let awaited = || format!("the screen to show {}", describe(patterns));
            if self.eof {
                return Err(Error::eof(awaited(), shown));
            }
            if self.read_more(deadline).await?.is_none() {
                return Err(Error::timeout(
                    awaited(),
                    timeout.as_secs_f64(),
                    last_rows(&shown),
                ));
            }
        }
    }

    /// Waits `duration` (a script's `sleep`), still reading the console so
    /// its text is recorded and kept for the next `expect`; the first
    /// signal ends the wait with its error.
    pub async fn pause(&mut self, duration: Duration) -> Result<()> {
        let deadline = Instant::now() + duration;
        self.take_signal()?;
        while !self.eof {
            if self.read_more(deadline).await?.is_none() {
                return Ok(());
            }
        }
        // The console has closed: nothing to read, but the wait still counts.
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => Ok(()),
            () = signalled(&mut self.signals) => self.take_signal(),
        }
    }

    /// Makes the session stop for the first signal `signals` carries.
    pub fn watch_signals(&mut self, signals: tokio::sync::watch::Receiver<Option<Signal>>) {
        self.signals = Some(signals);
    }

    /// The signal that arrived and has not been delivered yet, if any;
    /// delivering it stops the watch.
    fn take_signal(&mut self) -> Result<()> {
        let arrived = self.signals.as_ref().and_then(|rx| *rx.borrow());
        match arrived {
            Some(signal) => {
                self.signals = None;
                self.recorder.marker(&format!("interrupted by {signal}"));
                Err(Error::interrupted(signal))
            }
            None => Ok(()),
        }
    }

    /// The session's options.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Where the transcript goes, if anywhere.
    pub fn transcript_path(&self) -> Option<&std::path::Path> {
        self.recorder.path()
    }

    /// What the transport is connected to (never secret).
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// The last ~200 characters of console output, secrets scrubbed.
    pub fn tail(&self) -> String {
        // Scrubbed whole, then cut: a secret is never cut in two first.
        tail_chars(&self.scrub(&self.recent), TAIL_CHARS).to_string()
    }

    /// Registers a secret that is not sent by this session but may appear in
    /// output (it is scrubbed from transcript, buffer and errors).
    pub fn add_secret(&mut self, secret: &Secret) {
        self.recorder.add_secret(secret.expose());
        let short = secret.expose().chars().count() < crate::text::SHORT_SECRET;
        if self.secrets.add(secret.expose()) && short {
            tracing::warn!(
                "a secret shorter than {} characters is redacted only where it stands as a \
                 whole word (docs/security.md): use a longer one if it must never show",
                crate::text::SHORT_SECRET
            );
        }
    }

    /// Removes known secrets from a message before it is shown or logged.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }

    /// Sends text as typed.
    pub async fn send(&mut self, text: &str) -> Result<()> {
        self.take_signal()?;
        self.recorder.input(text, false);
        self.write(text.as_bytes(), SendKind::Plain).await
    }

    /// Sends `text` followed by a carriage return (what Enter sends).
    pub async fn send_line(&mut self, text: &str) -> Result<()> {
        self.send(&format!("{text}\r")).await
    }

    /// Sends a secret: recorded as `<redacted>`, scrubbed from any echo.
    pub async fn send_secret(&mut self, secret: &Secret) -> Result<()> {
        self.take_signal()?;
        self.add_secret(secret);
        self.recorder.input("", true);
        self.write(secret.expose().as_bytes(), SendKind::Secret)
            .await
    }

    /// True when the console is a recording played back (see
    /// [`Transport::is_replay`]).
    pub fn is_replay(&self) -> bool {
        self.transport.is_replay()
    }

    /// Sends a serial BREAK, where the transport supports it.
    pub async fn send_break(&mut self) -> Result<()> {
        self.recorder.marker("break");
        let what = self.describe();
        self.transport
            .send_break()
            .await
            .map_err(|e| e.into_error(format!("sending a break to {what}")))
    }

    /// Records a marker in the transcript (a script step, a note).
    pub fn mark(&mut self, label: &str) {
        self.recorder.marker(label);
    }

    /// Waits for the earliest of `patterns`, for `timeout` or the default.
    pub async fn expect(
        &mut self,
        patterns: &[Pattern],
        timeout: Option<Duration>,
    ) -> Result<Match> {
        let set = self.compiled(patterns)?;
        let timeout = timeout.unwrap_or(self.options.default_timeout);
        let deadline = Instant::now() + timeout;
        // The whole unconsumed buffer is searched once; after that only new
        // text plus the lookback window.
        let mut from = 0;
        self.take_signal()?;
        loop {
            if let Some(found) = set.find(&self.buffer, from) {
                return Ok(self.consume(found, patterns));
            }
            if self.eof {
                return Err(Error::eof(describe(patterns), self.tail()));
            }
            let old_len = self.buffer.len();
            let Some(dropped) = self.read_more(deadline).await? else {
                return Err(Error::timeout(
                    describe(patterns),
                    timeout.as_secs_f64(),
                    self.tail(),
                ));
            };
            let lookback_start = old_len
                .saturating_sub(dropped)
                .saturating_sub(self.options.search_window);
            from = floor_char_boundary(&self.buffer, lookback_start);
        }
    }

    /// Waits for literal text.
    pub async fn expect_exact(&mut self, text: &str, timeout: Option<Duration>) -> Result<Match> {
        self.expect(&[Pattern::exact(text)], timeout).await
    }

    /// Takes all unconsumed text, first waiting up to `wait` for some to
    /// arrive when there is none; `Ok(None)` means nothing arrived in time.
    ///
    /// For layers that parse the stream themselves (the shell layer filters
    /// kernel lines and finds its own markers): unlike [`Session::expect`] it
    /// records no marker per call and never keeps more than one read. The
    /// text is the console's real text, secrets included: parse it, and
    /// pass what you show through [`Session::scrub`].
    pub async fn read_text(&mut self, wait: Duration) -> Result<Option<String>> {
        self.take_signal()?;
        if self.buffer.is_empty() {
            if self.eof {
                return Err(Error::eof("more console output", self.tail()));
            }
            let read = tokio::select! {
                read = tokio::time::timeout(wait, self.transport.read(&mut self.read_buf)) => read,
                () = signalled(&mut self.signals) => {
                    self.take_signal()?;
                    return Ok(None);
                }
            };
            match read {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(self.transport_error(e)),
                Ok(Ok(n)) => {
                    self.ingest(n);
                }
            }
        }
        Ok(Some(std::mem::take(&mut self.buffer)))
    }

    /// Ends the session without closing the connection: its transport and
    /// recorder, for a caller that goes on with raw bytes (the gateway, once
    /// it has brought a console back to its login prompt). Text not yet
    /// consumed by a match is dropped.
    pub fn into_parts(self) -> (Box<dyn Transport>, Recorder) {
        (self.transport, self.recorder)
    }

    /// Closes the connection and finishes the transcript.
    pub async fn close(mut self) -> Result<()> {
        let result = self.transport.close().await;
        self.recorder.finish();
        result.map_err(|e| e.into_error(format!("closing {}", self.transport.describe())))
    }

    fn compiled(&mut self, patterns: &[Pattern]) -> Result<Arc<PatternSet>> {
        if let Some(set) = self.patterns.get(patterns) {
            return Ok(set.clone());
        }
        let set = Arc::new(PatternSet::compile(patterns)?);
        if self.patterns.len() >= PATTERN_CACHE {
            self.patterns.clear();
        }
        self.patterns.insert(patterns.to_vec(), set.clone());
        Ok(set)
    }

    /// Takes `n` freshly read bytes (0 = EOF) into the transcript and the
    /// buffer; returns how many bytes were dropped from the buffer's front.
    fn ingest(&mut self, n: usize) -> usize {
        let old_len = self.buffer.len();
        let filled = n == self.read_buf.len();
        if n == 0 {
            self.eof = true;
            let mut last = String::new();
            self.decoder.finish(&mut last);
            self.stripper.strip(&last, &mut self.buffer);
        } else {
            self.recorder.output(&self.read_buf[..n]);
            if let Some(terminal) = &mut self.terminal {
                terminal.feed(&self.read_buf[..n]);
            }
            let (stripper, buffer) = (&mut self.stripper, &mut self.buffer);
            self.decoder
                .decode_with(&self.read_buf[..n], |text| stripper.strip(text, buffer));
        }
        self.remember_recent(old_len);
        if filled && self.read_buf.len() < READ_SIZE {
            self.read_buf.resize(self.read_buf.len() * 2, 0);
        }
        self.trim()
    }

    fn remember_recent(&mut self, old_len: usize) {
        let fresh = tail_chars(&self.buffer[old_len..], 4 * TAIL_CHARS);
        self.recent.push_str(fresh);
        if self.recent.len() > 4 * TAIL_CHARS {
            let cut = floor_char_boundary(&self.recent, self.recent.len() - 2 * TAIL_CHARS);
            self.recent.drain(..cut);
        }
    }

    /// Drops the oldest unconsumed text once the buffer outgrows its cap.
    fn trim(&mut self) -> usize {
        if self.buffer.len() <= self.options.max_buffer {
            return 0;
        }
        // Cut to a quarter: trimming is amortised (one move of a quarter of
        // the cap per three quarters read; keeping three quarters moved three
        // bytes per byte read, a fifth of the in-memory workload's time), and
        // a quarter is still far more than any match may span (search_window).
        // Never more than the cap itself: the buffer is longer than the cap
        // here, whatever the options say of the window.
        let keep = (self.options.max_buffer / 4)
            .max(self.options.search_window)
            .min(self.options.max_buffer);
        let cut = floor_char_boundary(&self.buffer, self.buffer.len() - keep);
        self.buffer.drain(..cut);
        cut
    }

    fn consume(&mut self, found: Found, patterns: &[Pattern]) -> Match {
        let mut m = found.to_match(&self.buffer, self.buffer[..found.start].to_string());
        // Matched on the real text, handed on as shown (scripts log it).
        m.text = self.scrub(&m.text);
        m.before = self.scrub(&m.before);
        for group in m.groups.iter_mut().flatten() {
            *group = self.scrub(group);
        }
        self.buffer.drain(..found.end);
        self.mark_match("expect", &found, patterns);
        m
    }

    /// The transcript's marker for a match of `what` (`expect`, `expect_screen`).
    fn mark_match(&mut self, what: &str, found: &Found, patterns: &[Pattern]) {
        self.recorder.marker(&format!(
            "{what} matched #{} {}",
            found.index,
            patterns[found.index].describe()
        ));
    }

    /// Reads once more from the console, until `deadline`, and takes what
    /// came in ([`Session::ingest`]); `None` when the deadline passed first.
    /// A signal ends the wait with its error.
    async fn read_more(&mut self, deadline: Instant) -> Result<Option<usize>> {
        let read = loop {
            tokio::select! {
                read = tokio::time::timeout_at(deadline, self.transport.read(&mut self.read_buf)) => break read,
                () = signalled(&mut self.signals) => self.take_signal()?,
            }
        };
        match read {
            Err(_) => Ok(None),
            Ok(Err(e)) => Err(self.transport_error(e)),
            Ok(Ok(n)) => Ok(Some(self.ingest(n))),
        }
    }

    async fn write(&mut self, data: &[u8], kind: SendKind) -> Result<()> {
        let result = match self.options.pacing {
            None => self.transport.write(data, kind).await,
            Some(p) => {
                let mut result = Ok(());
                for chunk in data.chunks(p.chunk.max(1)) {
                    result = self.transport.write(chunk, kind).await;
                    if result.is_err() {
                        break;
                    }
                    tokio::time::sleep(p.delay).await;
                }
                result
            }
        };
        result.map_err(|e| self.transport_error(e))
    }

    fn transport_error(&self, e: TransportError) -> Error {
        match e {
            TransportError::ReplayMismatch(d) => {
                Error::replay_mismatch(d).scrubbed(&|t| self.scrub(t))
            }
            TransportError::Io(e) => Error::io(
                format!(
                    "console {} failed; last output: {:?}",
                    self.describe(),
                    self.tail()
                ),
                e,
            ),
        }
    }
}

/// Resolves when a signal has arrived on `signals`; never without a watch.
/// The non-blank rows at the bottom of a screen, for a timeout's message.
fn last_rows(shown: &str) -> String {
    let rows: Vec<&str> = shown.lines().filter(|r| !r.trim().is_empty()).collect();
    rows[rows.len().saturating_sub(6)..].join("\n")
}

async fn signalled(signals: &mut Option<tokio::sync::watch::Receiver<Option<Signal>>>) {
    match signals {
        Some(rx) => {
            // An error means the sender is gone: no signal will come.
            if rx.wait_for(Option::is_some).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn describe(patterns: &[Pattern]) -> String {
    let list: Vec<String> = patterns.iter().map(Pattern::describe).collect();
    if list.len() == 1 {
        list.into_iter().next().unwrap_or_default()
    } else {
        format!("any of [{}]", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{SendKind, TransportResult};
    use std::sync::{Arc, Mutex};

    /// A console that fills every read it is given with `x`, `total` bytes
    /// in all, then a marker, and remembers how big each read was.
    struct Streaming {
        left: usize,
        asked: Arc<Mutex<Vec<usize>>>,
    }

    #[async_trait::async_trait]
    impl Transport for Streaming {
        async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
            self.asked.lock().unwrap().push(buf.len());
            if self.left == 0 {
                buf[..3].copy_from_slice(b"END");
                self.left = usize::MAX;
                return Ok(3);
            }
            if self.left == usize::MAX {
                return Ok(0);
            }
            let n = buf.len().min(self.left);
            buf[..n].fill(b'x');
            self.left -= n;
            Ok(n)
        }
        async fn write(&mut self, _: &[u8], _: SendKind) -> TransportResult<()> {
            Ok(())
        }
        async fn close(&mut self) -> TransportResult<()> {
            Ok(())
        }
        fn describe(&self) -> String {
            "streaming".into()
        }
    }

    /// Issue 35: every session held a 64 KiB read buffer (half of a
    /// fleet's 120 KiB per session). It starts at 4 KiB and doubles only
    /// while reads fill it, up to 64 KiB for a console that streams.
    #[tokio::test]
    async fn the_read_buffer_grows_only_for_a_console_that_fills_it() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let console = Streaming {
            left: 1 << 20,
            asked: asked.clone(),
        };
        let mut s = Session::new(
            Box::new(console),
            Recorder::disabled(),
            SessionOptions::default(),
        );
        s.expect(&[Pattern::exact("END")], Some(Duration::from_secs(5)))
            .await
            .unwrap();
        let asked = asked.lock().unwrap().clone();
        assert_eq!(
            &asked[..6],
            [4096, 8192, 16384, 32768, 65536, 65536],
            "{asked:?}"
        );
        assert!(asked.iter().all(|n| *n <= READ_SIZE));
    }

    /// A cap smaller than the search window (both are the caller's to set)
    /// still trims: the text kept before a match stays within the cap.
    #[tokio::test]
    async fn a_buffer_cap_below_the_search_window_still_bounds_the_text() {
        let console = Streaming {
            left: 64 * 1024,
            asked: Arc::default(),
        };
        let options = SessionOptions {
            max_buffer: 4096,
            ..SessionOptions::default()
        };
        assert!(options.search_window > options.max_buffer);
        let mut s = Session::new(Box::new(console), Recorder::disabled(), options);
        let m = s
            .expect(&[Pattern::exact("END")], Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert!(m.before.len() <= 4096, "kept {}", m.before.len());
        assert!(m.before.ends_with("xxx"));
    }
}
