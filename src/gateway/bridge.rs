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

use super::{Console, OnDisconnect, Shared};
use crate::transcript::Recorder;
use crate::transport::{websocket::MAX_FRAME, SendKind};

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

/// Runs a session for an admitted client until either side ends it.
pub(super) async fn run<S>(
    mut ws: Ws<S>,
    name: &str,
    console: &Console,
    identity: &str,
    shared: &Shared,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    if !console.claim() {
        let msg = format!("console {name} is in use by another session (one session per console); retry after it closes");
        send_briefly(&mut ws, close(CloseCode::Policy, msg.clone())).await;
        return Err(msg);
    }
    let result = pump(&mut ws, name, console, identity, shared).await;
    console.release();
    let (code, reason) = match &result {
        Ok(reason) => (CloseCode::Normal, reason.clone()),
        Err(reason) => (CloseCode::Error, reason.clone()),
    };
    send_briefly(&mut ws, close(code, reason.clone())).await;
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
    tracing::info!("session on {name} for {identity} ended: {reason}");
    result.map(|_| ())
}

fn recorder(shared: &Shared, name: &str, identity: &str, target: &str) -> Result<Recorder, String> {
    let Some(dir) = &shared.record_dir else {
        return Ok(Recorder::disabled());
    };
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
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

/// Ctrl-C, then Ctrl-D three times, a moment apart: whatever the client
/// left running stops, a root shell and the user's shell exit, and at
/// `login:` the extra Ctrl-D only makes getty start over.
async fn log_out(transport: &mut dyn crate::transport::Transport, rec: &mut Recorder) {
    rec.marker("gateway: logging the console out for the next client (Ctrl-C, Ctrl-D x3)");
    for key in [b"\x03", b"\x04", b"\x04", b"\x04"] {
        if transport.write(key, SendKind::Plain).await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

/// Moves bytes both ways; returns why the session ended normally.
async fn pump<S>(
    ws: &mut Ws<S>,
    name: &str,
    console: &Console,
    identity: &str,
    shared: &Shared,
) -> Result<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let mut transport = crate::connect::open(&console.target, &shared.connect)
        .await
        .map_err(|e| format!("console {name} is unreachable: {e}"))?;
    // Typed input is not recorded: the gateway cannot tell a password from a
    // command. The console's output (which does not echo passwords) is.
    let mut rec = recorder(shared, name, identity, &transport.describe())?;
    rec.marker(&format!("session opened by {identity}"));
    let ends_at = Instant::now() + shared.max_session;
    let mut last_activity = Instant::now();
    let mut buf = vec![0u8; MAX_FRAME];
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
    let outcome = loop {
        let idle_at = last_activity + shared.idle_timeout;
        tokio::select! {
            read = transport.read(&mut buf) => match read {
                Ok(0) => break Ok("the console closed".to_string()),
                Ok(n) => {
                    rec.output(&buf[..n]);
                    // Awaiting the send is the backpressure: no unbounded
                    // queue; the limits bound the wait.
                    let frame = Message::Binary(buf[..n].to_vec().into());
                    match tokio::time::timeout_at(idle_at.min(ends_at), ws.send(frame)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break Err(format!("client gone: {e}")),
                        Err(_) => break Ok(format!("{} (the client stopped reading)", limit_reached())),
                    }
                }
                Err(e) => break Err(format!("console error: {e}")),
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    last_activity = Instant::now();
                    if let Err(e) = transport.write(&data, SendKind::Plain).await {
                        break Err(format!("console error: {e}"));
                    }
                }
                Some(Ok(Message::Text(_))) => break Err("text frames are not accepted: send console bytes in binary frames".to_string()),
                Some(Ok(Message::Close(_))) | None => break Ok("the client closed the session".to_string()),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(format!("client error: {e}")),
            },
            _ = tokio::time::sleep_until(idle_at.min(ends_at)) => {
                break Ok(limit_reached());
            }
        }
    };
    if shared.on_disconnect == OnDisconnect::Logout && outlives_the_session(&console.target) {
        log_out(&mut *transport, &mut rec).await;
    }
    let _ = transport.close().await;
    rec.marker(&format!(
        "session closed: {}",
        outcome.as_ref().unwrap_or_else(|e| e)
    ));
    rec.finish();
    outcome
}
