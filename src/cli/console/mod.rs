//! `console`: interactive pass-through between the user's terminal and a console.
//!
//! What the console sends goes to standard output untouched; what the user
//! types goes to the console, except for escapes typed at the start of a line
//! (as in `ssh`): `~.` leaves, `~~` sends one `~`, `~B` sends a serial BREAK,
//! `~?` lists the escapes. The terminal is put in raw mode (so Ctrl-C, Ctrl-Z
//! and every key reach the console, not this process) and a [`RawMode`] guard
//! restores it on every way out: leaving, the console closing, an error, a
//! panic, SIGTERM/SIGHUP/SIGINT.
//!
//! The session is recorded like every other: console output as `o` events,
//! markers (`m`) for start, breaks and the end. **What the user types is not
//! recorded by default**, because console mode cannot tell a password from a
//! command and passwords are typed here (login prompts, `sudo`). With
//! `--record-input` the typed bytes are recorded as `i` events. Echoed
//! passwords are not an issue: consoles do not echo them.
//!
//! Standard input need not be a terminal: with piped input the bytes are sent
//! as they come, and at end of input the console's answer is still shown for
//! a short while (until it is quiet for [`LINGER_QUIET`], at most
//! [`LINGER_MAX`]) before the session ends.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, Signal, SignalKind};

mod escapes;
mod terminal;

use escapes::{EscapeScanner, KeyAction, ESCAPE_HELP};
use terminal::{Keyboard, RawMode};

use super::Common;
use crate::connect::Console;
use crate::error::{Error, ExitCode, Result};
use crate::target::Target;
use crate::text::Utf8Decoder;
use crate::transcript::Recorder;
use crate::transport::{SendKind, Transport, TransportResult};

/// After standard input ends, keep showing output until it is quiet this long…
pub(super) const LINGER_QUIET: Duration = Duration::from_millis(500);
/// …but no longer than this in all.
pub(super) const LINGER_MAX: Duration = Duration::from_secs(5);

/// Options of `console`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ConsoleOptions {
    /// Record what the user types as `i` events (off by default: passwords).
    pub record_input: bool,
}

/// Runs `console TARGET` with explicit [`ConsoleOptions`].
pub(super) async fn console_with(
    target: &str,
    common: &Common,
    options: ConsoleOptions,
) -> Result<ExitCode> {
    let target: Target = target.parse()?;
    let connect = super::connect_options(common).await?;
    let size = connect.size;
    let mut transport = Console::open(&target).connect(connect).transport().await?;
    let description = transport.describe();
    let transcript = super::transcript_path(common, "console")?;
    let mut recorder =
        crate::connect::recorder(&target, transcript.as_deref(), &description, size)?;
    recorder.marker(if options.record_input {
        "console started; typed input is recorded (--record-input)"
    } else {
        "console started; typed input is not recorded (pass --record-input to record it)"
    });
    // Raw mode first, then the banner: keys typed as soon as it shows must
    // already reach the console byte for byte (in cooked mode the tty would
    // turn Enter into a newline and hold the line back).
    let raw = RawMode::enter_if_terminal()?;
    let end = if raw.is_some() { "\r\n" } else { "\n" };
    eprint!("connected to {description}; type ~. on a new line to leave (~? for help){end}");
    let ended = {
        let mut relay = Relay::new(&mut *transport, &mut recorder, options)?;
        relay.run().await
    };
    drop(raw);
    let _ = transport.close().await;
    let ended = ended?;
    recorder.marker(ended.marker());
    recorder.finish();
    eprintln!("\n[{}]", ended.message(&description));
    Ok(match ended {
        ConsoleEnd::Signalled(signal) => signal.exit_code(),
        _ => ExitCode::Success,
    })
}

/// Why a console session ended (every one of them is a normal end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsoleEnd {
    /// The user typed `~.`.
    Left,
    /// The console closed the connection.
    ConsoleClosed,
    /// Standard input reached its end.
    InputClosed,
    /// SIGTERM, SIGHUP or SIGINT.
    Signalled(crate::error::Signal),
}

impl ConsoleEnd {
    fn marker(self) -> &'static str {
        match self {
            ConsoleEnd::Left => "console: the user left (~.)",
            ConsoleEnd::ConsoleClosed => "console: the console closed the connection",
            ConsoleEnd::InputClosed => "console: standard input ended",
            ConsoleEnd::Signalled(_) => "console: ended by a signal",
        }
    }

    fn message(self, description: &str) -> String {
        match self {
            ConsoleEnd::Left => format!("left {description}"),
            ConsoleEnd::ConsoleClosed => format!("{description} closed the connection"),
            ConsoleEnd::InputClosed => format!("input ended; disconnected from {description}"),
            ConsoleEnd::Signalled(signal) => {
                format!("interrupted by a signal ({signal}); disconnected from {description}")
            }
        }
    }
}

/// The pass-through loop between the terminal and the console.
struct Relay<'a> {
    transport: &'a mut dyn Transport,
    recorder: &'a mut Recorder,
    options: ConsoleOptions,
    keyboard: Keyboard,
    escapes: EscapeScanner,
    typed_text: Utf8Decoder,
    stdout: tokio::io::Stdout,
    buf: Vec<u8>,
}

impl<'a> Relay<'a> {
    fn new(
        transport: &'a mut dyn Transport,
        recorder: &'a mut Recorder,
        options: ConsoleOptions,
    ) -> Result<Self> {
        Ok(Relay {
            transport,
            recorder,
            options,
            keyboard: Keyboard::spawn()?,
            escapes: EscapeScanner::default(),
            typed_text: Utf8Decoder::new(),
            stdout: tokio::io::stdout(),
            buf: vec![0; 64 * 1024],
        })
    }

    async fn run(&mut self) -> Result<ConsoleEnd> {
        let mut signals = Signals::new()?;
        loop {
            tokio::select! {
                read = self.transport.read(&mut self.buf) => {
                    if !self.show(read).await? {
                        return Ok(ConsoleEnd::ConsoleClosed);
                    }
                }
                chunk = self.keyboard.next() => {
                    if let Some(ended) = self.typed(chunk).await? {
                        return Ok(ended);
                    }
                }
                signal = signals.any() => return Ok(ConsoleEnd::Signalled(signal)),
            }
        }
    }

    /// Shows and records console output; `false` when the console closed.
    async fn show(&mut self, read: TransportResult<usize>) -> Result<bool> {
        let n =
            read.map_err(|e| e.into_error(format!("reading from {}", self.transport.describe())))?;
        if n == 0 {
            return Ok(false);
        }
        self.recorder.output(&self.buf[..n]);
        let written = self.stdout.write_all(&self.buf[..n]).await;
        written
            .and(self.stdout.flush().await)
            .map_err(|e| Error::io("writing console output to standard output", e))?;
        Ok(true)
    }

    /// Handles a chunk the user typed; `Some` when the session ends.
    async fn typed(&mut self, chunk: Option<io::Result<Vec<u8>>>) -> Result<Option<ConsoleEnd>> {
        let bytes = match chunk {
            Some(Ok(bytes)) if !bytes.is_empty() => bytes,
            Some(Err(e)) => return Err(Error::io("reading standard input", e)),
            _ => {
                if let Some(action) = self.escapes.finish() {
                    self.act(action).await?;
                }
                self.linger().await?;
                return Ok(Some(ConsoleEnd::InputClosed));
            }
        };
        for action in self.escapes.feed(&bytes) {
            if action == KeyAction::Leave {
                return Ok(Some(ConsoleEnd::Left));
            }
            self.act(action).await?;
        }
        Ok(None)
    }

    async fn act(&mut self, action: KeyAction) -> Result<()> {
        match action {
            KeyAction::Send(bytes) => self.send(&bytes).await,
            KeyAction::Break => self.send_break().await,
            KeyAction::Help => {
                eprint!("{ESCAPE_HELP}");
                Ok(())
            }
            KeyAction::Leave => Ok(()),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        if self.options.record_input {
            let mut text = String::new();
            self.typed_text.decode(bytes, &mut text);
            if !text.is_empty() {
                self.recorder.input(&text, false);
            }
        }
        self.transport
            .write(bytes, SendKind::Plain)
            .await
            .map_err(|e| e.into_error(format!("writing to {}", self.transport.describe())))
    }

    async fn send_break(&mut self) -> Result<()> {
        match self.transport.send_break().await {
            Ok(()) => {
                self.recorder.marker("break");
                eprint!("\r\n[break sent]\r\n");
            }
            // Not every console can take a break: say so, carry on.
            Err(e) => eprint!("\r\n[no break sent: {e}]\r\n"),
        }
        Ok(())
    }

    /// After the end of input: shows the console's answer until it is quiet.
    async fn linger(&mut self) -> Result<()> {
        let until = tokio::time::Instant::now() + LINGER_MAX;
        loop {
            let quiet = tokio::time::Instant::now() + LINGER_QUIET;
            let deadline = quiet.min(until);
            match tokio::time::timeout_at(deadline, self.transport.read(&mut self.buf)).await {
                Err(_) => return Ok(()),
                Ok(read) => {
                    if !self.show(read).await? {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The signals that end a console session politely (restoring the terminal).
struct Signals {
    terminate: Signal,
    hangup: Signal,
    interrupt: Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        let listen = |kind: SignalKind| {
            signal(kind).map_err(|e| Error::io("installing the signal handlers", e))
        };
        Ok(Signals {
            terminate: listen(SignalKind::terminate())?,
            hangup: listen(SignalKind::hangup())?,
            interrupt: listen(SignalKind::interrupt())?,
        })
    }

    async fn any(&mut self) -> crate::error::Signal {
        use crate::error::Signal as Which;
        tokio::select! {
            _ = self.terminate.recv() => Which::Terminate,
            _ = self.hangup.recv() => Which::HangUp,
            _ = self.interrupt.recv() => Which::Interrupt,
        }
    }
}
