//! The connect layer: from a [`Target`] and explicit options to a console.
//!
//! It sits above [`crate::transport`] (local consoles, WebSockets, replays)
//! and `crate::ec2` (the EC2 Serial Console: AWS calls, key push, SSH),
//! so that neither knows the other, and it takes everything it needs as a
//! [`ConnectOptions`] value: no process-wide settings. The command line, the
//! gateway, the lab, the benches and the tests all open consoles with one
//! builder, [`Console`]: a bare transport (the gateway pumps bytes itself)
//! or a recorded [`Session`] (everyone else).

use std::path::{Path, PathBuf};

pub use crate::ec2::config::{Ec2Options, SshClient};
pub use crate::ec2::Step;
use crate::error::{Error, Result};
use crate::expect::{Session, SessionOptions};
use crate::target::Target;
pub use crate::tls::ClientTrust;
use crate::transcript::{Recorder, Watcher};
use crate::transport::PTY_SIZE;
pub use crate::transport::{Transport, WsAuth, WsOptions};

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

/// One way to open a console: name the target, set what differs from the
/// defaults, then take a bare [`Transport`] ([`Console::transport`], for a
/// caller that pumps bytes itself, like the gateway) or a recorded
/// [`Session`] ([`Console::session`], for everyone else).
///
/// ```no_run
/// use ec2_serial_expect::connect::Console;
/// use ec2_serial_expect::Target;
///
/// # async fn example() -> ec2_serial_expect::Result<()> {
/// let target: Target = "exec:sh -i".parse()?;
/// let mut session = Console::open(&target)
///     .transcript(std::path::PathBuf::from("session.cast"))
///     .session()
///     .await?;
/// session.send("echo hi\n").await?;
/// session.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a console opens only when `session()` or `transport()` is awaited"]
pub struct Console<'a> {
    target: &'a Target,
    connect: ConnectOptions,
    session: SessionOptions,
    transcript: Option<PathBuf>,
    on_step: &'a (dyn Fn(Step) + Sync),
    watcher: Option<Watcher>,
}

impl<'a> Console<'a> {
    /// Starts opening `target` with the default options: no WebSocket
    /// authentication, default AWS settings, a 200×50 terminal for a local
    /// program, the default session timeouts, no transcript.
    pub fn open(target: &'a Target) -> Console<'a> {
        Console {
            target,
            connect: ConnectOptions::default(),
            session: SessionOptions::default(),
            transcript: None,
            on_step: &|_| {},
            watcher: None,
        }
    }

    /// How to reach the console (WebSocket auth and TLS, AWS, terminal size).
    pub fn connect(mut self, options: ConnectOptions) -> Self {
        self.connect = options;
        self
    }

    /// The session's timeouts, buffer sizes and pacing.
    pub fn options(mut self, options: SessionOptions) -> Self {
        self.session = options;
        self
    }

    /// Records the session to `path` (private, replaced atomically);
    /// `None` records nothing (the default).
    pub fn transcript(mut self, path: impl Into<Option<PathBuf>>) -> Self {
        self.transcript = path.into();
        self
    }

    /// Tells `on_step` each step of an EC2 connection as it starts (AWS
    /// preflight, key push, SSH), for progress lines.
    pub fn on_step(mut self, on_step: &'a (dyn Fn(Step) + Sync)) -> Self {
        self.on_step = on_step;
        self
    }

    /// Tells `watcher` every event of the session live, as its transcript
    /// has them (secrets redacted), whether or not a transcript is written.
    pub fn watch(mut self, watcher: Watcher) -> Self {
        self.watcher = Some(watcher);
        self
    }

    /// Opens the console as a bare transport (nothing recorded: the caller
    /// pumps the bytes).
    pub async fn transport(self) -> Result<Box<dyn Transport>> {
        open_transport(self.target, &self.connect, self.on_step).await
    }

    /// Opens the console as a [`Session`] recording to the transcript, if
    /// one was given. Refuses to record onto the transcript being replayed,
    /// which recording would destroy.
    pub async fn session(self) -> Result<Session> {
        let mut transport = open_transport(self.target, &self.connect, self.on_step).await?;
        let history = transport.take_history();
        let mut options = self.session;
        options.screen_size = screen_size(self.target, self.connect.size);
        let mut recorder = recorder(
            self.target,
            self.transcript.as_deref(),
            &transport.describe(),
            self.connect.size,
        )?;
        if let Some(watcher) = self.watcher {
            recorder.watch(watcher);
        }
        let mut session = Session::new(transport, recorder, options);
        if let Some(history) = history {
            session.mark(&format!(
                "the console's history before this session (kept by the gateway; context, never matched):\n{history}"
            ));
        }
        Ok(session)
    }
}

async fn open_transport(
    target: &Target,
    options: &ConnectOptions,
    on_step: &(dyn Fn(Step) + Sync),
) -> Result<Box<dyn Transport>> {
    match target {
        Target::Ec2 { instance_id } => crate::ec2::open(instance_id, &options.ec2, on_step).await,
        other => crate::transport::open(other, &options.ws, options.size).await,
    }
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
        return Ok(Recorder::create(path, description, size)?.in_blocks());
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
