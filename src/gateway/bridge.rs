//! One gateway session: pumping bytes between a WebSocket client and a console.
//!
//! The idle and maximum-session limits bound every wait, sends included: a
//! client that stops reading makes `send` wait (that is the backpressure),
//! and it must not hold the console past its limits. The close frame gets
//! [`CLOSE_GRACE`], then the connection is dropped.

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use std::sync::atomic::Ordering;

use super::{OnDisconnect, ServedConsole, Shared};
use crate::expect::{Session, SessionOptions};
use crate::shell::{Screen, Shell};
use crate::transcript::Recorder;
use crate::transport::{websocket::MAX_FRAME, SendKind, Transport};

type Ws<S> = WebSocketStream<S>;

/// How long a client gets to take the close frame.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends `message` to a client that may have stopped reading, for at most
/// [`CLOSE_GRACE`].
async fn send_briefly<S>(ws: &mut Ws<S>, message: Message)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.send(message)).await;
}

/// Why a session ended, sent to the client as the close frame.
fn close(code: CloseCode, reason: impl Into<String>) -> Message {
    let mut reason: String = reason.into();
    // A close reason must fit a control frame (125 bytes with the code).
    while reason.len() > 120 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Runs a session for an admitted client until either side ends it; then,
/// the client told why, logs out a console that outlives the session.
pub(super) async fn run<S>(
    mut ws: Ws<S>,
    name: &str,
    console: &ServedConsole,
    identity: &str,
    shared: &Shared,
    client: Client,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    if !console.claim() {
        let msg = match console.presence.writer() {
            Some((who, _)) if client == Client::Browser => format!("console {name} is in use by {who}; watch it read-only, or retry after that session closes"),
            _ => format!("console {name} is in use by another session (one session per console); retry after it closes"),
        };
        send_briefly(&mut ws, close(CloseCode::Policy, msg.clone())).await;
        return Err(msg);
    }
    console.presence.set_writer(Some(identity));
    let (result, left) = session(&mut ws, name, console, identity, shared, client).await;
    let (code, reason) = match &result {
        Ok(reason) => (CloseCode::Normal, reason.clone()),
        Err(SessionRefusal::Unusable(reason)) => (CloseCode::Again, reason.clone()),
        Err(SessionRefusal::Error(reason)) => (CloseCode::Error, reason.clone()),
    };
    // The client is told why while the console is logged out: neither
    // waits for the other (a client that stopped reading takes the grace).
    let closing = async {
        send_briefly(&mut ws, close(code, reason.clone())).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
    };
    let logging_out = async {
        if let Some(Left { transport, rec }) = left {
            // The console stays claimed until it is proven logged out (or
            // marked as not), so no client can slip in meanwhile.
            let (proven, mut transport, mut rec) = log_out(name, transport, rec).await;
            match proven {
                Ok(()) => logged_out(console),
                Err(why) => tracing::warn!(
                    "console {name} could not be logged out after the session of {identity}: {why}; \
                     it is not handed to another client until it is (log it out by hand)"
                ),
            }
            let _ = transport.close().await;
            rec.finish();
        }
        console.presence.set_writer(None);
        console.release();
    };
    tokio::join!(closing, logging_out);
    tracing::info!("session on {name} for {identity} ended: {reason}");
    result.map(|_| ()).map_err(|r| match r {
        SessionRefusal::Unusable(s) | SessionRefusal::Error(s) => s,
    })
}

/// Who is on the other end of a session's WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Client {
    /// This tool (`ws://` targets): binary frames only. With `history`, it
    /// asked for a held console's scrollback, which comes first as one
    /// text frame `{"history": TEXT}` (context, never matched).
    Cli { history: bool },
    /// The web page's terminal: binary frames of console bytes both ways;
    /// text frames carry JSON: the page's `{"type":"resize"}`, and the
    /// gateway's `{"type":"live"}` (history ends, the live stream begins),
    /// `{"type":"viewers","names":[…]}`.
    Browser,
}

/// How a session ended early.
enum SessionRefusal {
    /// The console was not proven logged out after the last session.
    Unusable(String),
    /// Anything else.
    Error(String),
}

/// What a session leaves for the gateway to log out.
struct Left {
    transport: Box<dyn Transport>,
    rec: Recorder,
}

/// How long proving a console logged out may take.
const LOGOUT_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Brings the console back to its login prompt, with proof (the shell
/// layer's [`Shell::log_out_console`]); on failure, says why. The transport
/// and the recording come back either way.
async fn log_out(
    name: &str,
    transport: Box<dyn Transport>,
    rec: Recorder,
) -> (Result<(), String>, Box<dyn Transport>, Recorder) {
    let mut session = Session::new(transport, rec, SessionOptions::default());
    session.mark(&format!(
        "gateway: logging console {name} out for the next client"
    ));
    let result = Shell::log_out_console(&mut session, LOGOUT_WITHIN).await;
    match &result {
        Ok(()) => session.mark("gateway: logged out; the console may be handed to the next client"),
        Err(e) => session.mark(&format!(
            "gateway: NOT logged out ({e}); the console is refused to clients until it is"
        )),
    }
    let (transport, rec) = session.into_parts();
    // The error quotes the console's last text: scrubbed of the passwords
    // the recording knows (typed at prompts) before it reaches the log.
    (
        result.map_err(|e| rec.scrub(&e.to_string())),
        transport,
        rec,
    )
}

/// Opens the console for an admitted client, makes sure the last session
/// left no shell on it, and pumps. Returns why the session ended and, for
/// a console that outlives the session, what to log out.
async fn session<S>(
    ws: &mut Ws<S>,
    name: &str,
    console: &ServedConsole,
    identity: &str,
    shared: &Shared,
    client: Client,
) -> (Result<String, SessionRefusal>, Option<Left>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let (mut transport, history_end) = match open(name, console, shared).await {
        Ok(opened) => opened,
        Err(e) => return (Err(SessionRefusal::Error(e)), None),
    };
    let mut rec = match recorder(shared, name, identity, &transport.describe()) {
        Ok(rec) => rec,
        Err(e) => return (Err(SessionRefusal::Error(e)), None),
    };
    rec.marker(&format!("session opened by {identity}"));
    let logs_out = shared.on_disconnect == OnDisconnect::Logout
        && (console.held.is_some() || outlives_the_session(&console.target));
    if logs_out && !console.logged_out.load(Ordering::Acquire) {
        // The last session's logout was not proven: try again before this
        // client sees anything; refuse it rather than hand over a shell.
        rec.marker("gateway: the last session was not proven logged out; trying again");
        let (proven, t, r) = log_out(name, transport, rec).await;
        (transport, rec) = (t, r);
        match proven {
            Ok(()) => {
                logged_out(console);
                rec.marker(&format!("session of {identity} starts"));
            }
            Err(why) => {
                let _ = transport.close().await;
                rec.marker("session refused: the console is not logged out");
                rec.finish();
                tracing::warn!("console {name} refused to {identity}: still not logged out: {why}");
                return (
                    Err(SessionRefusal::Unusable(format!(
                        "console {name} is unusable: the last session could not be logged out; ask the operator"
                    ))),
                    None,
                );
            }
        }
    }
    // Only now, the console proven logged out if it had to be: what it
    // printed before this client, since the last logout.
    if let Some(end) = history_end {
        if let Err(e) = send_history(ws, client, history(console, end)).await {
            let _ = transport.close().await;
            rec.finish();
            return (Err(SessionRefusal::Error(e)), None);
        }
    } else if client == Client::Browser {
        let _ = send_history(ws, client, Vec::new()).await;
    }
    let mut secrets = SecretTyping::default();
    if console.held.is_none() {
        // Viewers of this session see no earlier one.
        console
            .session_start
            .store(console.backlog.newest(), Ordering::Release);
    }
    let mut link = Link {
        transport: &mut *transport,
        rec: &mut rec,
        secrets: &mut secrets,
        console,
        client,
    };
    let outcome = pump(ws, &mut link, shared).await;
    secrets.finish(&mut rec);
    rec.marker(&format!(
        "session closed: {}",
        outcome.as_ref().unwrap_or_else(|e| e)
    ));
    let outcome = outcome.map_err(SessionRefusal::Error);
    if logs_out {
        // Marked not logged out until proven: a gateway that dies during
        // the logout leaves nothing to trust.
        console.logged_out.store(false, Ordering::Release);
        return (outcome, Some(Left { transport, rec }));
    }
    let _ = transport.close().await;
    rec.finish();
    (outcome, None)
}

/// Knows a password being typed at a password prompt, so that its echo
/// stays out of the recording (issue 32): the gateway sees no secret sends
/// (the client's `send_secret` is plain bytes on the wire), but a line typed
/// while the console's last line is a password prompt (`Password: `,
/// `[sudo] password for …: `) is one. While it is typed, console output
/// goes to the client at once but is held back from the recording; at its
/// end (Enter, Ctrl-C) the line becomes a secret of the recording, scrubbed
/// from everything held and everything after.
#[derive(Default)]
pub(super) struct SecretTyping {
    decoder: crate::text::Utf8Decoder,
    stripper: crate::text::EscapeStripper,
    /// The console's latest text, escapes removed (at most [`TAIL`] bytes).
    tail: String,
    /// The line typed at a password prompt so far.
    typing: Option<Vec<u8>>,
    /// Console output held back from the recording while it is typed.
    held: Vec<u8>,
}

/// Console text kept to recognise a password prompt.
const TAIL: usize = 1024;
/// Most output held back while a password is typed.
const MAX_HELD: usize = 64 * 1024;
/// Shorter lines are not scrubbed (as with logs, `secret::remember`):
/// they would redact ordinary text throughout the recording.
const MIN_SECRET: usize = 4;

impl SecretTyping {
    /// Console output: to the recording, or held back while a password is typed.
    pub(super) fn output(&mut self, bytes: &[u8], rec: &mut Recorder) {
        let mut text = String::new();
        self.decoder.decode(bytes, &mut text);
        self.stripper.strip(&text, &mut self.tail);
        if self.tail.len() > 2 * TAIL {
            let cut = crate::text::floor_char_boundary(&self.tail, self.tail.len() - TAIL);
            self.tail.drain(..cut);
        }
        match &self.typing {
            Some(_) if self.held.len() + bytes.len() <= MAX_HELD => {
                self.held.extend_from_slice(bytes)
            }
            Some(_) => {
                // Too much to hold: what was typed so far is the secret.
                self.end_line(rec);
                rec.output(bytes);
            }
            None => rec.output(bytes),
        }
    }

    /// Client input, watched for a line typed at a password prompt. The
    /// screen is read once per frame (a paste costs one reading, not one
    /// per byte); a line that ends in this frame needs a new prompt.
    pub(super) fn input(&mut self, bytes: &[u8], rec: &mut Recorder) {
        if self.typing.is_none() {
            if !matches!(crate::shell::classify(&self.tail), Screen::PasswordPrompt) {
                return;
            }
            self.typing = Some(Vec::new());
            // The next password needs a prompt of its own.
            self.tail.clear();
        }
        for &b in bytes {
            let Some(line) = &mut self.typing else {
                return;
            };
            match b {
                b'\r' | b'\n' | 0x03 | 0x04 => self.end_line(rec),
                0x7f | 0x08 => {
                    line.pop();
                }
                0x15 => line.clear(),
                _ => line.push(b),
            }
        }
    }

    /// The password line ended: scrub it, then record what was held back.
    fn end_line(&mut self, rec: &mut Recorder) {
        if let Some(line) = self.typing.take() {
            let secret = String::from_utf8_lossy(&line);
            if secret.len() >= MIN_SECRET {
                rec.add_secret(&secret);
            }
        }
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            rec.output(&held);
        }
    }

    /// The session ended: a line still being typed counts as the secret.
    fn finish(&mut self, rec: &mut Recorder) {
        self.end_line(rec);
    }
}

/// One session's side of the console: what it reads and writes, where it
/// records, and who it serves.
struct Link<'a> {
    transport: &'a mut dyn Transport,
    rec: &'a mut Recorder,
    secrets: &'a mut SecretTyping,
    console: &'a ServedConsole,
    client: Client,
}

/// Opens the console for a session: a held one is attached to (with what
/// it printed before), any other connected anew.
/// Returns the transport, and for a held console where in its backlog the
/// client attached (history before, live after).
async fn open(
    name: &str,
    console: &ServedConsole,
    shared: &Shared,
) -> Result<(Box<dyn Transport>, Option<u64>), String> {
    if let Some(held) = &console.held {
        let attached = held.attach().await?;
        let end = attached.attached_at();
        return Ok((Box::new(attached), Some(end)));
    }
    crate::connect::Console::open(&console.target)
        .connect(shared.connect.clone())
        .transport()
        .await
        .map(|t| (t, None))
        .map_err(|e| format!("console {name} is unreachable: {e}"))
}

/// The console was proven logged out: nothing before this point is shown
/// to the next client or to viewers (it was another identity's session).
fn logged_out(console: &ServedConsole) {
    console.logged_out.store(true, Ordering::Release);
    console
        .session_start
        .store(console.backlog.newest(), Ordering::Release);
}

/// A held console's history for a client that attached at `end`: what it
/// printed since the last logout (at most the backlog).
fn history(console: &ServedConsole, end: u64) -> Vec<u8> {
    let from = console
        .backlog
        .oldest()
        .max(console.session_start.load(Ordering::Acquire));
    if end <= from {
        return Vec::new();
    }
    console.backlog.read_from(from, (end - from) as usize).bytes
}

/// Gives the client what the console printed before it attached, in the
/// client's own way (see [`Client`]).
async fn send_history<S>(ws: &mut Ws<S>, client: Client, history: Vec<u8>) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let frames: Vec<Message> = match client {
        Client::Cli { history: false } => return Ok(()),
        Client::Cli { history: true } => vec![Message::Text(
            serde_json::json!({ "history": String::from_utf8_lossy(&history) })
                .to_string()
                .into(),
        )],
        Client::Browser => history
            .chunks(MAX_FRAME)
            .map(|c| Message::Binary(c.to_vec().into()))
            .chain([Message::Text(r#"{"type":"live"}"#.into())])
            .collect(),
    };
    for frame in frames {
        match tokio::time::timeout(CLOSE_GRACE * 5, ws.send(frame)).await {
            Ok(Ok(())) => {}
            _ => return Err("the client did not take the console's history".into()),
        }
    }
    Ok(())
}

/// A browser's text frame: a control message.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { cols: u16, rows: u16 },
}

/// The browser writer's `{"type":"viewers"}` message.
fn viewers_message(console: &ServedConsole) -> Message {
    let names = console.presence.viewers();
    Message::Text(
        serde_json::json!({ "type": "viewers", "names": names })
            .to_string()
            .into(),
    )
}

/// Moves bytes both ways; returns why the session ended normally.
async fn pump<S>(ws: &mut Ws<S>, link: &mut Link<'_>, shared: &Shared) -> Result<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    // Typed input is not recorded: the gateway cannot tell every password
    // from a command. The console's output is (see [`SecretTyping`]).
    let ends_at = Instant::now() + shared.max_session;
    let mut last_activity = Instant::now();
    let mut buf = vec![0u8; MAX_FRAME];
    let browser = link.client == Client::Browser;
    let mut people = link.console.presence.subscribe();
    people.mark_changed();
    let limit_reached = || {
        if Instant::now() >= ends_at {
            format!(
                "maximum session length ({} s) reached",
                shared.max_session.as_secs()
            )
        } else {
            format!("idle for {} s", shared.idle_timeout.as_secs())
        }
    };
    loop {
        let idle_at = last_activity + shared.idle_timeout;
        let mut send = None;
        tokio::select! {
            read = link.transport.read(&mut buf) => match read {
                Ok(0) => return Ok("the console closed".to_string()),
                Ok(n) => {
                    link.secrets.output(&buf[..n], link.rec);
                    if link.console.held.is_none() && shared.web.is_some() {
                        // For the web page's viewers (a held console's own
                        // reader keeps its backlog).
                        link.console.backlog.push(&buf[..n]);
                    }
                    send = Some(Message::Binary(buf[..n].to_vec().into()));
                }
                Err(e) => return Err(format!("console error: {e}")),
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    last_activity = Instant::now();
                    link.secrets.input(&data, link.rec);
                    if let Err(e) = link.transport.write(&data, SendKind::Plain).await {
                        return Err(format!("console error: {e}"));
                    }
                }
                Some(Ok(Message::Text(text))) if browser => {
                    if let Ok(Control::Resize { cols, rows }) = serde_json::from_str(text.as_str()) {
                        let _ = link.transport.resize(cols, rows).await;
                    }
                }
                Some(Ok(Message::Text(_))) => return Err("text frames are not accepted: send console bytes in binary frames".to_string()),
                Some(Ok(Message::Close(_))) | None => return Ok("the client closed the session".to_string()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("client error: {e}")),
            },
            Ok(()) = people.changed(), if browser => send = Some(viewers_message(link.console)),
            _ = tokio::time::sleep_until(idle_at.min(ends_at)) => {
                return Ok(limit_reached());
            }
        }
        if let Some(frame) = send {
            // Awaiting the send is the backpressure: no unbounded queue;
            // the limits bound the wait.
            match tokio::time::timeout_at(idle_at.min(ends_at), ws.send(frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("client gone: {e}")),
                Err(_) => return Ok(format!("{} (the client stopped reading)", limit_reached())),
            }
        }
    }
}

/// A read-only viewer: follows the console's output from the backlog
/// (what this session printed so far, then live) until it leaves; what it
/// sends is dropped. Viewers never slow the writer: each keeps its own
/// place in the one backlog, and one that falls behind skips ahead.
pub(super) async fn watch<S>(
    mut ws: Ws<S>,
    name: &str,
    console: &ServedConsole,
    identity: &str,
    shared: &Shared,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let Some(_viewing) = console.presence.watch(identity) else {
        let reason = format!(
            "console {name} has {} viewers already; try again later",
            super::presence::MAX_VIEWERS
        );
        send_briefly(&mut ws, close(CloseCode::Again, reason.clone())).await;
        return Err(reason);
    };
    tracing::info!("{identity} watches console {name}");
    let mut written = console.backlog.subscribe();
    let mut at = console
        .backlog
        .oldest()
        .max(console.session_start.load(Ordering::Acquire));
    let ends_at = Instant::now() + shared.max_session;
    let mut live_told = false;
    loop {
        let catchup = console.backlog.read_from(at, MAX_FRAME);
        at = catchup.next;
        let frame = if catchup.missed > 0 {
            Some(Message::Text(
                serde_json::json!({ "type": "missed", "bytes": catchup.missed })
                    .to_string()
                    .into(),
            ))
        } else {
            None
        };
        let frames = frame
            .into_iter()
            .chain((!catchup.bytes.is_empty()).then(|| Message::Binary(catchup.bytes.into())));
        for frame in frames {
            match tokio::time::timeout_at(ends_at, ws.send(frame)).await {
                Ok(Ok(())) => {}
                _ => return Ok(()),
            }
        }
        if at < console.backlog.newest() {
            continue;
        }
        if !live_told {
            live_told = true;
            if ws
                .send(Message::Text(r#"{"type":"live"}"#.into()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        tokio::select! {
            changed = written.changed() => if changed.is_err() { return Ok(()) },
            msg = ws.next() => match msg {
                // Read-only: what a viewer types goes nowhere.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            },
            _ = tokio::time::sleep_until(ends_at) => {
                send_briefly(&mut ws, close(CloseCode::Normal, "maximum session length reached")).await;
                return Ok(());
            }
        }
    }
}

fn recorder(shared: &Shared, name: &str, identity: &str, target: &str) -> Result<Recorder, String> {
    let Some(dir) = &shared.record_dir else {
        return Ok(Recorder::disabled());
    };
    let stamp = file_stamp();
    let who: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!(
        "{name}-{stamp}-{who}-{}.cast",
        std::process::id() ^ rand_suffix()
    ));
    Recorder::create(
        &path,
        &format!("gateway {name} ({target}) for {identity}"),
        crate::transport::PTY_SIZE,
    )
    .map_err(|e| e.to_string())
}

/// The UTC time in a recording's file name.
pub(super) fn file_stamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default()
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// Whether the console stays as the session leaves it (a program under a
/// PTY ends with its session; a replay is gone).
fn outlives_the_session(target: &crate::target::Target) -> bool {
    use crate::target::Target;
    !matches!(target, Target::Exec { .. } | Target::Replay { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_typed_at_a_password_prompt_is_scrubbed_from_the_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.cast");
        let mut rec = Recorder::create(&path, "test", (80, 24)).unwrap();
        let mut typing = SecretTyping::default();
        typing.output(b"login: ", &mut rec);
        typing.input(b"alice\r", &mut rec);
        typing.output(b"alice\r\n\x1b[1mPassword: \x1b[0m", &mut rec);
        // Typed in pieces, with a correction; echoed in pieces meanwhile.
        typing.input(b"passwX", &mut rec);
        typing.output(b"pa", &mut rec);
        typing.output(b"sswX", &mut rec);
        typing.input(b"\x7ford-1\r", &mut rec);
        typing.output(b"\x08 \x08ord-1\r\n$ ", &mut rec);
        // At a shell prompt: not a secret.
        typing.input(b"echo visible-words; echo password-1\r", &mut rec);
        typing.output(b"visible-words\r\npassword-1\r\n$ ", &mut rec);
        // A prompt, then a line that never ends: still a secret.
        typing.output(b"[sudo] password for alice: ", &mut rec);
        typing.input(b"second-secret", &mut rec);
        typing.output(b"second-secret", &mut rec);
        typing.finish(&mut rec);
        rec.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("password-1"), "{text}");
        assert!(!text.contains("second-secret"), "{text}");
        assert!(
            text.contains("visible-words") && text.contains("alice"),
            "{text}"
        );
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn short_lines_and_lines_typed_elsewhere_are_not_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.cast");
        let mut rec = Recorder::create(&path, "test", (80, 24)).unwrap();
        let mut typing = SecretTyping::default();
        typing.output(b"Password: ", &mut rec);
        typing.input(b"ab\r", &mut rec);
        typing.output(
            b"ab\r\nPassword prompts say Password: and then\r\n$ ",
            &mut rec,
        );
        typing.input(b"cabbage\r", &mut rec);
        typing.output(b"cabbage\r\n", &mut rec);
        typing.finish(&mut rec);
        rec.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("ab\\r\\n") && text.contains("cabbage"),
            "{text}"
        );
    }
}
