//! Transports: a duplex byte stream to a console, whatever carries it.
//!
//! Nothing above this layer knows whether the console is a PTY, a socket, a
//! WebSocket, an EC2 serial session or a replayed transcript. A transport
//! reads raw bytes and writes raw bytes; the only thing it learns about the
//! bytes it writes is their [`SendKind`], so that a replay can accept any
//! secret where the recording says `<redacted>`.
//!
//! `open` turns a [`Target`] into a boxed [`Transport`]; EC2 targets need
//! AWS options and go through [`crate::connect::Console`], which sits above
//! both this layer and `crate::ec2`.

mod pty;
pub mod replay;
mod spawn;
mod stream;
pub mod websocket;

use std::io;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::target::Target;

pub use pty::{PtyTransport, Start, StderrTo, PTY_SIZE};
pub use replay::ReplayTransport;
pub use spawn::Program;
pub(crate) use spawn::{is_executable, on_path};
pub use stream::StreamTransport;
pub use websocket::{WebSocketTransport, WsAuth, WsOptions};

/// What a write carries, as far as the transport needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    /// Ordinary input, recorded as sent.
    Plain,
    /// A secret, recorded as `<redacted>`.
    Secret,
}

/// Why a transport could not carry bytes: the connection failed, or (for a
/// replay) the session sent something the recording did not.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A replayed transcript and the session disagree; the message names the
    /// event, what was recorded and what was sent.
    #[error("{0}")]
    ReplayMismatch(crate::error::Divergence),
}

impl TransportError {
    /// The crate error, saying what was being done (`context`) when the
    /// connection failed; a mismatch needs no context, it names its replay.
    pub fn into_error(self, context: impl std::fmt::Display) -> Error {
        match self {
            TransportError::Io(e) => Error::io(context, e),
            TransportError::ReplayMismatch(m) => Error::replay_mismatch(m),
        }
    }
}

/// What transports return.
pub type TransportResult<T> = std::result::Result<T, TransportError>;

/// A duplex byte stream to a console.
///
/// `read` must be cancel-safe: the session races it against a deadline and
/// drops the future when time runs out, so no byte may be lost when that
/// happens.
#[async_trait]
pub trait Transport: Send {
    /// Reads some bytes into `buf`; `Ok(0)` means the console closed (EOF).
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize>;

    /// Writes all of `data` and flushes it.
    async fn write(&mut self, data: &[u8], kind: SendKind) -> TransportResult<()>;

    /// Sends a serial BREAK where the transport can (SSH RFC 4335, a TTY).
    async fn send_break(&mut self) -> TransportResult<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this console does not support sending a break",
        )
        .into())
    }

    /// Tells the console its terminal is now `columns` × `rows` (a
    /// browser's window was resized). Only a program under a PTY has a
    /// window size; a serial line has none, so by default nothing happens.
    async fn resize(&mut self, _columns: u16, _rows: u16) -> TransportResult<()> {
        Ok(())
    }

    /// What the console printed before this connection, when the other
    /// end kept it (a gateway's held console): context for the transcript,
    /// never output to match. Taken once.
    fn take_history(&mut self) -> Option<String> {
        None
    }

    /// True for a recorded console played back: it answers at once, so a
    /// session over it may run on a virtual clock (nothing is gained by
    /// really waiting, and the decisions come out the same).
    fn is_replay(&self) -> bool {
        false
    }

    /// Closes the connection politely.
    async fn close(&mut self) -> TransportResult<()>;

    /// A short description for messages and transcript headers (never secret).
    fn describe(&self) -> String;
}

/// Opens a transport to `target` (not an EC2 one: those need AWS and go
/// through [`crate::connect::Console`]); `ws` applies to WebSocket targets,
/// `size` (columns, rows) to a local program's terminal.
pub(crate) async fn open(
    target: &Target,
    ws: &WsOptions,
    size: (u16, u16),
) -> Result<Box<dyn Transport>> {
    match target {
        Target::Unix { path } => {
            let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                Error::io(
                    format!(
                        "cannot connect to the Unix socket {} (is the VM or console running?)",
                        path.display()
                    ),
                    e,
                )
            })?;
            Ok(Box::new(StreamTransport::new(stream, target.to_string())))
        }
        Target::Tcp { address } => {
            let stream = tokio::net::TcpStream::connect(address.as_str())
                .await
                .map_err(|e| {
                    Error::io(format!("cannot connect to the TCP console {address}"), e)
                })?;
            stream.set_nodelay(true).ok();
            Ok(Box::new(StreamTransport::new(stream, target.to_string())))
        }
        Target::Exec { argv } => Ok(Box::new(PtyTransport::spawn_sized(argv, size)?)),
        Target::Replay { path } => Ok(Box::new(ReplayTransport::open(path)?)),
        Target::WebSocket { url } => Ok(Box::new(WebSocketTransport::connect(url, ws).await?)),
        Target::Ec2 { .. } => Err(Error::usage(format!(
            "{target}: an EC2 Serial Console is opened with its AWS options, through \
             connect::Console, not as a plain transport"
        ))),
    }
}
