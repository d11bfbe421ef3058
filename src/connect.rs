//! The connect layer: from a [`Target`] and explicit options to a console.
//!
//! It sits above [`crate::transport`] (local consoles, WebSockets, replays)
//! and [`crate::ec2`] (the EC2 Serial Console: AWS calls, key push, SSH),
//! so that neither knows the other, and it takes everything it needs as a
//! [`ConnectOptions`] value: no process-wide settings. The command line, the
//! gateway, the lab and the tests all open consoles here: a bare transport
//! with [`open`] (the gateway pumps bytes itself), or a recorded
//! [`Session`] with [`open_session`] (everyone else).

use std::path::{Path, PathBuf};

use crate::ec2::{Ec2Options, Step};
use crate::error::{Error, Result};
use crate::expect::{Session, SessionOptions};
use crate::target::Target;
use crate::transcript::Recorder;
use crate::transport::{Transport, WsOptions, PTY_SIZE};

/// How to reach consoles: WebSocket authentication and TLS, and the AWS
/// side of EC2 targets.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// For `ws://` and `wss://` targets.
    pub ws: WsOptions,
    /// For `i-…` targets.
    pub ec2: Ec2Options,
    /// The terminal size (columns, rows) a local program (`exec:`) gets and
    /// a transcript's header states; the command line passes the user's
    /// own terminal's. (A serial port has no size to tell.)
    pub size: (u16, u16),
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            ws: WsOptions::default(),
            ec2: Ec2Options::default(),
            size: PTY_SIZE,
        }
    }
}

/// Opens `target` with `options`.
pub async fn open(target: &Target, options: &ConnectOptions) -> Result<Box<dyn Transport>> {
    open_reporting(target, options, &|_| {}).await
}

/// [`open`], telling `on_step` each step of an EC2 connection as it starts.
pub async fn open_reporting(
    target: &Target,
    options: &ConnectOptions,
    on_step: &(dyn Fn(Step) + Sync),
) -> Result<Box<dyn Transport>> {
    match target {
        Target::Ec2 { instance_id } => crate::ec2::open(instance_id, &options.ec2, on_step).await,
        other => crate::transport::open_sized(other, &options.ws, options.size).await,
    }
}

/// How to open a [`Session`]: how to reach the console, the session's
/// tunables, and where (if anywhere) to record the transcript.
#[derive(Debug, Clone, Default)]
pub struct SessionSpec {
    /// How to reach the console.
    pub connect: ConnectOptions,
    /// Timeouts and buffer sizes.
    pub session: SessionOptions,
    /// The transcript to write (private, replaced atomically); `None`
    /// records nothing.
    pub transcript: Option<PathBuf>,
}

/// Opens `target` and wraps it in a session recording to
/// `spec.transcript`. Refuses to record onto the transcript being replayed,
/// which recording would destroy.
pub async fn open_session(target: &Target, spec: &SessionSpec) -> Result<Session> {
    open_session_reporting(target, spec, &|_| {}).await
}

/// [`open_session`], telling `on_step` each step of an EC2 connection.
pub async fn open_session_reporting(
    target: &Target,
    spec: &SessionSpec,
    on_step: &(dyn Fn(Step) + Sync),
) -> Result<Session> {
    let transport = open_reporting(target, &spec.connect, on_step).await?;
    let mut session = spec.session.clone();
    session.screen_size = screen_size(target, spec.connect.size);
    let recorder = recorder(
        target,
        spec.transcript.as_deref(),
        &transport.describe(),
        spec.connect.size,
    )?;
    Ok(Session::new(transport, recorder, session))
}

/// The screen the console's programs draw on: a local program's PTY, a
/// recording's own size, else 80×24 (a serial console's programs, GRUB
/// and getty, assume that much).
fn screen_size(target: &Target, pty: (u16, u16)) -> (u16, u16) {
    match target {
        Target::Exec { .. } => pty,
        Target::Replay { path } => crate::transcript::cast::read_header(path)
            .map(|h| (h.width, h.height))
            .unwrap_or((80, 24)),
        _ => (80, 24),
    }
}

/// The recorder for a session on `target` (described as `description`)
/// writing to `transcript`; never onto the transcript being replayed.
pub fn recorder(
    target: &Target,
    transcript: Option<&Path>,
    description: &str,
    size: (u16, u16),
) -> Result<Recorder> {
    let Some(path) = transcript else {
        return Ok(Recorder::disabled());
    };
    if let Target::Replay { path: input } = target {
        if same_file(input, path) {
            return Err(Error::usage(format!(
                "--transcript {} is the transcript being replayed: recording would overwrite it; \
                 choose another path or pass --no-transcript",
                path.display()
            )));
        }
    }
    Recorder::create(path, description, size)
}

/// Whether two paths name the same existing file (links and `..` included).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
