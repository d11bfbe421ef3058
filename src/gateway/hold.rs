//! Consoles held open (`gateway --hold`): the gateway connects to each
//! console when it starts and keeps reading it, whether anyone is attached
//! or not, so what a machine prints at boot is recorded and shown to the
//! next client instead of being lost.
//!
//! One task per console owns the connection ([`hold`]). It reads the
//! console all the time: into the backlog (the scrollback clients see
//! first, and the viewers follow), into a recording rotated by size, and,
//! while a client is attached, to that client. A client attaches through
//! [`Held::attach`] and gets an [`Attached`] transport: the session code
//! (pump, logout between clients) runs over it exactly as over a console
//! it opened itself. When the console goes away the task reconnects, with
//! a backoff from 1 to 30 s.
//!
//! Backpressure stays what it was: while the attached client has not taken
//! the last output, the task reads no more (the console's own buffering,
//! or its flow control, holds the rest); it keeps taking the client's
//! input meanwhile, so neither side can wedge the other.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::bridge::SecretTyping;
use super::{ServedConsole, Shared};
use crate::transcript::Recorder;
use crate::transport::{SendKind, Transport, TransportResult};

/// How a held console is recorded.
#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// A recording is closed and a new one begun past this many bytes.
    pub record_max_bytes: u64,
}

impl Default for HoldOptions {
    fn default() -> HoldOptions {
        HoldOptions {
            record_max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The handle a served console keeps on its holding task.
pub(super) struct Held {
    commands: mpsc::Sender<Command>,
    /// Why the console is not connected, while it is not.
    down: Arc<Mutex<Option<String>>>,
    receiver: Mutex<Option<mpsc::Receiver<Command>>>,
}

/// What a session asks of the holding task.
enum Command {
    Attach(oneshot::Sender<Result<Attached, String>>),
}

/// What an attached client sends the console.
enum Input {
    Bytes(Vec<u8>),
    Resize(u16, u16),
}

/// Output queued to an attached client, in chunks: a few keep the pipe
/// full without holding more than a few reads' worth.
const QUEUED_CHUNKS: usize = 4;
/// How long attaching to a held console may take.
const ATTACH_WITHIN: Duration = Duration::from_secs(15);
/// Each read of a held console (16 KiB: 200 held consoles stay small).
const READ_CHUNK: usize = 16 * 1024;

impl Held {
    /// A handle whose task is started later by [`Held::start`].
    pub(super) fn new() -> Held {
        let (commands, receiver) = mpsc::channel(4);
        Held {
            commands,
            down: Arc::new(Mutex::new(Some("connecting".into()))),
            receiver: Mutex::new(Some(receiver)),
        }
    }

    /// Starts the holding task of console `name` (once).
    pub(super) fn start(&self, shared: Arc<Shared>, name: String, options: HoldOptions) {
        let taken = self
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(commands) = taken {
            let down = self.down.clone();
            tokio::spawn(hold(shared, name, commands, down, options));
        }
    }

    /// Why the console is not connected now, if it is not.
    pub(super) fn down(&self) -> Option<String> {
        self.down.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Attaches a client: its transport, whose [`Attached::history`] is
    /// the scrollback up to the moment it attached.
    pub(super) async fn attach(&self) -> Result<Attached, String> {
        let (reply, answer) = oneshot::channel();
        let asked = async {
            self.commands
                .send(Command::Attach(reply))
                .await
                .map_err(|_| "the gateway stopped holding this console".to_string())?;
            answer
                .await
                .map_err(|_| "the gateway stopped holding this console".to_string())?
        };
        // The task answers between reads and writes; one busy connecting
        // (a console that does not answer) is not waited for forever.
        tokio::time::timeout(ATTACH_WITHIN, asked)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the held console did not answer within {} s ({}); try again",
                    ATTACH_WITHIN.as_secs(),
                    self.down().unwrap_or_else(|| "busy".into())
                ))
            })
    }
}

/// A client's view of a held console: a [`Transport`] whose bytes come
/// from the holding task.
pub(super) struct Attached {
    output: mpsc::Receiver<Bytes>,
    input: mpsc::Sender<Input>,
    pending: Bytes,
    /// The backlog's position when the client attached: what came before
    /// is history, what comes after reaches the client live.
    attached_at: u64,
    description: String,
}

impl Attached {
    /// Where history ends and the live stream begins, in the backlog.
    pub(super) fn attached_at(&self) -> u64 {
        self.attached_at
    }
}

#[async_trait]
impl Transport for Attached {
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
        if self.pending.is_empty() {
            match self.output.recv().await {
                Some(bytes) => self.pending = bytes,
                None => return Ok(0),
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending = self.pending.slice(n..);
        Ok(n)
    }

    async fn write(&mut self, data: &[u8], _kind: SendKind) -> TransportResult<()> {
        self.input
            .send(Input::Bytes(data.to_vec()))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe).into())
    }

    async fn resize(&mut self, columns: u16, rows: u16) -> TransportResult<()> {
        let _ = self.input.send(Input::Resize(columns, rows)).await;
        Ok(())
    }

    async fn close(&mut self) -> TransportResult<()> {
        // Detaching leaves the console connected: the task holds it.
        self.output.close();
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Keeps console `name` connected for as long as the gateway runs.
async fn hold(
    shared: Arc<Shared>,
    name: String,
    mut commands: mpsc::Receiver<Command>,
    down: Arc<Mutex<Option<String>>>,
    options: HoldOptions,
) {
    let console = &shared.consoles[&name];
    let mut recording = Recording::new(shared.record_dir.clone(), &name, options);
    let mut backoff = Duration::from_secs(1);
    let set_down = |why: Option<String>| *down.lock().unwrap_or_else(|p| p.into_inner()) = why;
    loop {
        let opened = crate::connect::Console::open(&console.target)
            .connect(shared.connect.clone())
            .transport()
            .await;
        let why = match opened {
            Ok(mut transport) => {
                let description = transport.describe();
                recording.marker(&format!("held: connected to {description}"));
                tracing::info!("console {name}: held open ({description})");
                set_down(None);
                backoff = Duration::from_secs(1);
                let why = connected(&mut *transport, console, &mut commands, &mut recording).await;
                let _ = transport.close().await;
                why
            }
            Err(e) => e.to_string(),
        };
        if commands.is_closed() {
            return;
        }
        recording.marker(&format!(
            "held: disconnected ({why}); reconnecting in {} s",
            backoff.as_secs()
        ));
        tracing::warn!(
            "console {name}: {why}; reconnecting in {} s",
            backoff.as_secs()
        );
        set_down(Some(why));
        let retry_at = tokio::time::Instant::now() + backoff;
        // Clients asking meanwhile are told why, not kept waiting.
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Attach(reply)) => {
                        let why = down.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        let _ = reply.send(Err(format!(
                            "console {name} is not connected ({}); the gateway is reconnecting",
                            why.unwrap_or_default()
                        )));
                    }
                    None => return,
                },
                _ = tokio::time::sleep_until(retry_at) => break,
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// What woke the holding task.
enum Event {
    Command(Option<Command>),
    /// The client's input (`None`: it left).
    Input(Option<Input>),
    /// The queued output went to the client (false: it left).
    Sent(bool),
    Read(TransportResult<usize>),
}

/// Serves one connection to the console until it ends; says why.
async fn connected(
    transport: &mut dyn Transport,
    console: &ServedConsole,
    commands: &mut mpsc::Receiver<Command>,
    recording: &mut Recording,
) -> String {
    let description = format!("held {}", transport.describe());
    // The attached client, if any: where its output goes, where its input
    // comes from.
    let mut to_client: Option<mpsc::Sender<Bytes>> = None;
    let mut from_client: Option<mpsc::Receiver<Input>> = None;
    // Output read but not yet taken by the client.
    let mut queued: Option<Bytes> = None;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let event = tokio::select! {
            command = commands.recv() => Event::Command(command),
            input = async { from_client.as_mut()?.recv().await }, if from_client.is_some() => Event::Input(input),
            sent = send_queued(to_client.as_ref(), &mut queued), if to_client.is_some() && queued.is_some() => Event::Sent(sent),
            read = transport.read(&mut buf), if queued.is_none() => Event::Read(read),
        };
        match event {
            Event::Command(Some(Command::Attach(reply))) => {
                let (output_tx, output) = mpsc::channel(QUEUED_CHUNKS);
                let (input, input_rx) = mpsc::channel(QUEUED_CHUNKS);
                let attached = Attached {
                    output,
                    input,
                    pending: Bytes::new(),
                    attached_at: console.backlog.newest(),
                    description: description.clone(),
                };
                // A new client replaces one whose leaving is not noticed
                // yet (the console's claim keeps two sessions apart).
                if reply.send(Ok(attached)).is_ok() {
                    (to_client, from_client, queued) = (Some(output_tx), Some(input_rx), None);
                }
            }
            Event::Command(None) => return "the gateway stopped".into(),
            Event::Input(Some(Input::Bytes(bytes))) => {
                recording.input(&bytes);
                if let Err(e) = transport.write(&bytes, SendKind::Plain).await {
                    return format!("console error: {e}");
                }
            }
            Event::Input(Some(Input::Resize(columns, rows))) => {
                let _ = transport.resize(columns, rows).await;
            }
            Event::Input(None) | Event::Sent(false) => {
                (to_client, from_client, queued) = (None, None, None);
            }
            Event::Sent(true) => {}
            Event::Read(Ok(0)) => return "the console closed".into(),
            Event::Read(Ok(n)) => {
                console.backlog.push(&buf[..n]);
                recording.output(&buf[..n]);
                if to_client.is_some() {
                    queued = Some(Bytes::copy_from_slice(&buf[..n]));
                }
            }
            Event::Read(Err(e)) => return format!("console error: {e}"),
        }
    }
}

/// Hands the queued output to the client once it has room; false when it
/// has left.
async fn send_queued(to: Option<&mpsc::Sender<Bytes>>, queued: &mut Option<Bytes>) -> bool {
    let Some(to) = to else { return false };
    match to.reserve().await {
        Ok(permit) => {
            if let Some(bytes) = queued.take() {
                permit.send(bytes);
            }
            true
        }
        Err(_) => false,
    }
}

/// A held console's continuous recording in `--record-dir`, a new file
/// past the size limit; passwords typed at prompts are kept out of it as in
/// a session's own recording.
struct Recording {
    dir: Option<PathBuf>,
    name: String,
    options: HoldOptions,
    rec: Recorder,
    typing: SecretTyping,
    /// Files begun so far (two in one second must not share a name).
    files: u32,
}

impl Recording {
    fn new(dir: Option<PathBuf>, name: &str, options: HoldOptions) -> Recording {
        let mut recording = Recording {
            dir,
            name: name.to_string(),
            options,
            rec: Recorder::disabled(),
            typing: SecretTyping::default(),
            files: 0,
        };
        if let Some(path) = recording.next_path() {
            match Recorder::create(&path, &recording.command(), crate::transport::PTY_SIZE) {
                Ok(rec) => recording.rec = rec,
                Err(e) => tracing::warn!("console {name}: not recorded: {e}"),
            }
        }
        recording
    }

    fn command(&self) -> String {
        format!("gateway {} held", self.name)
    }

    fn next_path(&mut self) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        self.files += 1;
        // The process id too: a gateway restarted within the second must
        // not reuse (and replace) its predecessor's file.
        Some(dir.join(format!(
            "{}-{}-held-{}-{}.cast",
            self.name,
            super::bridge::file_stamp(),
            std::process::id(),
            self.files
        )))
    }

    fn output(&mut self, bytes: &[u8]) {
        self.typing.output(bytes, &mut self.rec);
        if self.rec.written() > self.options.record_max_bytes {
            self.rotate();
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        self.typing.input(bytes, &mut self.rec);
    }

    fn marker(&mut self, label: &str) {
        self.rec.marker(label);
    }

    fn rotate(&mut self) {
        let Some(path) = self.next_path() else { return };
        let command = self.command();
        if let Err(e) = self
            .rec
            .continue_in(&path, &command, crate::transport::PTY_SIZE)
        {
            tracing::warn!("console {}: recording not rotated: {e}", self.name);
        }
    }
}
