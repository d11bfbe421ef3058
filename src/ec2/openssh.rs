//! The SSH leg through the system's OpenSSH client (`--ssh-client openssh`),
//! for what the built-in client cannot do: the RFC 4335 `break` request
//! (OpenSSH's `~B`), which the serial console turns into a serial BREAK —
//! the start of a Magic SysRq on the instance.
//!
//! `ssh -tt` runs under a PTY of ours, so it sends the console's bytes both
//! ways exactly as the built-in client does; its standard error is a pipe of
//! its own, so its messages never mix with what the console says. It is set
//! up to trust and reveal no more than the built-in client:
//! - **Host key**: fetched first over russh and kept only if it hashes to the
//!   pinned fingerprint ([`super::ssh::pinned_host_key`]); the client gets a
//!   known_hosts file holding that key alone and `StrictHostKeyChecking yes`.
//! - **The ephemeral private key never touches the disk**: this process
//!   serves an SSH agent (russh's agent server) holding it, on a socket in a
//!   fresh 0700 directory; the agent takes no other key once it has this
//!   one, and the client selects the key by its public half.
//! - **Nothing else reaches the client**: its environment is cleared (no AWS
//!   credentials, no `SSH_AUTH_SOCK`), no configuration file is read, no
//!   forwarding, no multiplexing.
//!
//! OpenSSH reads a `~` that follows a newline as an escape (`~.` hangs up):
//! every such `~` is doubled on the way in ([`Tildes`]), so the console gets
//! exactly the bytes sent. A break is `~B`, only at a line start (it is
//! refused elsewhere); the client confirms it by echoing `~B` on its
//! standard error.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::server::{serve, Agent, MessageType};
use russh::keys::PrivateKey;

use super::endpoints::SerialEndpoint;
use super::ssh::{key_refused_error, pinned_host_key, CONNECT_TIMEOUT};
use crate::error::{Error, Result};
use crate::transport::PTY_SIZE;
use crate::transport::{
    Program, PtyTransport, SendKind, Start, StderrTo, Transport, TransportResult,
};

/// The name the host key is filed under in the client's known_hosts.
const HOST_ALIAS: &str = "ec2-serial-console";

/// How long the client may take to confirm a break it was asked for.
const BREAK_CONFIRMATION: Duration = Duration::from_secs(5);

/// How much of the client's messages is kept for errors (the end of them).
const MESSAGES_KEPT: usize = 8 * 1024;

/// An open serial console session through `ssh`.
pub(crate) struct OpenSshTransport {
    pty: PtyTransport,
    tildes: Tildes,
    stderr: Arc<ClientMessages>,
    agent: tokio::task::JoinHandle<()>,
    /// The agent socket, known_hosts and public key; removed on drop.
    _dir: tempfile::TempDir,
    description: String,
}

/// What the client wrote on its standard error: the breaks it confirmed,
/// and the end of everything else (for errors).
#[derive(Default)]
struct ClientMessages {
    breaks: AtomicUsize,
    text: Mutex<String>,
}

impl ClientMessages {
    fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Connects through `ssh` and opens the console, as [`super::ssh::connect`] does.
pub(crate) async fn connect(
    endpoint: &SerialEndpoint,
    instance_id: &str,
    key: PrivateKey,
) -> Result<OpenSshTransport> {
    let user = format!("{instance_id}.port0");
    let place = format!("{user}@{}:{}", endpoint.host, endpoint.port);
    let host_key = pinned_host_key(endpoint).await?;
    // 0700 whatever the umask: the agent socket and the pinned known_hosts
    // inside are for this user alone.
    let dir = tempfile::Builder::new()
        .prefix("ec2-serial-expect-ssh-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| Error::io("creating a private directory for the OpenSSH client", e))?;
    let public = |k: &russh::keys::PublicKey| {
        k.to_openssh()
            .map_err(|e| Error::io("encoding a public key", io::Error::other(e.to_string())))
    };
    let files = [
        (
            "known_hosts",
            format!("{HOST_ALIAS} {}\n", public(&host_key)?),
        ),
        ("id.pub", format!("{}\n", public(key.public_key())?)),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text)
            .map_err(|e| Error::io(format!("writing the OpenSSH client's {name}"), e))?;
    }
    let agent = serve_one_key(&dir.path().join("agent"), key).await?;
    let command = client_command(endpoint, &user, dir.path());
    let description = format!("EC2 serial console {place} (OpenSSH client)");
    let mut pty = match PtyTransport::start(command, description.clone(), PTY_SIZE, StderrTo::Pipe)
    {
        Ok(pty) => pty,
        Err(e) => {
            agent.abort();
            return Err(match e {
                Start::Spawn(e) => Error::usage(format!(
                    "--ssh-client openssh: cannot run `ssh` ({e}); install the OpenSSH client \
                     (Debian/Ubuntu: openssh-client) or leave out --ssh-client"
                )),
                Start::Other(e) => e,
            });
        }
    };
    let stderr = Arc::new(ClientMessages::default());
    if let Some(pipe) = pty.take_stderr() {
        let sink = stderr.clone();
        std::thread::spawn(move || collect_messages(pipe, &sink));
    }
    let mut transport = OpenSshTransport {
        pty,
        tildes: Tildes::default(),
        stderr,
        agent,
        _dir: dir,
        description,
    };
    transport.wait_until_open(&place).await?;
    Ok(transport)
}

/// `ssh -tt` to the endpoint with everything it may use named here.
fn client_command(endpoint: &SerialEndpoint, user: &str, dir: &Path) -> Program {
    let file = |name: &str| dir.join(name).display().to_string();
    let options = [
        "BatchMode=yes".to_string(),
        "PreferredAuthentications=publickey".into(),
        "IdentitiesOnly=yes".into(),
        format!("IdentityFile={}", file("id.pub")),
        format!("IdentityAgent={}", file("agent")),
        format!("UserKnownHostsFile={}", file("known_hosts")),
        "GlobalKnownHostsFile=/dev/null".into(),
        "StrictHostKeyChecking=yes".into(),
        format!("HostKeyAlias={HOST_ALIAS}"),
        "CheckHostIP=no".into(),
        "UpdateHostKeys=no".into(),
        format!("ConnectTimeout={}", CONNECT_TIMEOUT.as_secs()),
        "ServerAliveInterval=30".into(),
        "EscapeChar=~".into(),
        "LogLevel=ERROR".into(),
        "ControlMaster=no".into(),
        "ControlPath=none".into(),
        "ForwardAgent=no".into(),
        "ForwardX11=no".into(),
        "ClearAllForwardings=yes".into(),
        "PermitLocalCommand=no".into(),
    ];
    let mut argv: Vec<String> = ["ssh", "-tt", "-F", "/dev/null"].map(String::from).into();
    for option in options {
        argv.extend(["-o".to_string(), option]);
    }
    argv.extend([
        "-p".to_string(),
        endpoint.port.to_string(),
        "-l".to_string(),
        user.to_string(),
        "--".to_string(),
        endpoint.host.clone(),
    ]);
    // Nothing of ours but PATH; the terminal type the built-in client asks
    // for too.
    let mut program = Program::new(&argv).without_env();
    if let Some(path) = std::env::var_os("PATH") {
        program = program.env("PATH", path);
    }
    program.env("TERM", "vt220")
}

impl OpenSshTransport {
    /// The client puts its terminal in raw mode once it is authenticated
    /// and its session is on the way: that is "open". Ending first is a
    /// failure its messages explain.
    async fn wait_until_open(&mut self, place: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT + Duration::from_secs(5);
        loop {
            if self.pty.in_raw_mode() {
                return Ok(());
            }
            if self.pty.exited() {
                // Let the collector read the last words.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Err(open_error(place, &self.stderr.text()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::io(
                    format!("cannot open the serial console session {place}"),
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no session within {} s", CONNECT_TIMEOUT.as_secs()),
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Why the client ended before the session opened, in its own words.
fn open_error(place: &str, messages: &str) -> Error {
    if messages.contains("Permission denied") {
        return key_refused_error(place);
    }
    let said = messages.trim();
    let said = if said.is_empty() {
        "it ended without a message"
    } else {
        said
    };
    Error::io(
        format!("serial console {place}: the OpenSSH client could not open the session"),
        io::Error::new(io::ErrorKind::ConnectionRefused, said.to_string()),
    )
}

fn collect_messages(pipe: impl io::Read, sink: &ClientMessages) {
    for line in BufReader::new(pipe).split(b'\n').map_while(|l| l.ok()) {
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        if line == "~B" {
            sink.breaks.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        tracing::debug!("ssh: {line}");
        let mut text = sink.text.lock().unwrap_or_else(|e| e.into_inner());
        text.push_str(line);
        text.push('\n');
        if text.len() > MESSAGES_KEPT {
            let cut = text.len() - MESSAGES_KEPT;
            let cut = (cut..text.len())
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(text.len());
            text.drain(..cut);
        }
    }
}

/// The agent's rule: it takes one key (ours, added first) and then only
/// lists it and signs with it.
#[derive(Clone)]
struct OneKey {
    sealed: Arc<AtomicBool>,
}

impl Agent for OneKey {
    fn confirm_request(
        &self,
        message: MessageType,
    ) -> impl std::future::Future<Output = bool> + Send {
        let allowed = match message {
            MessageType::RequestKeys | MessageType::Sign => true,
            MessageType::AddKeys => !self.sealed.load(Ordering::SeqCst),
            _ => false,
        };
        async move { allowed }
    }
}

/// Serves an agent holding `key` alone on `socket`, until aborted.
async fn serve_one_key(socket: &Path, key: PrivateKey) -> Result<tokio::task::JoinHandle<()>> {
    let failed = |e: &dyn std::fmt::Display| {
        Error::io(
            "starting the SSH agent for the OpenSSH client",
            io::Error::other(e.to_string()),
        )
    };
    let listener = tokio::net::UnixListener::bind(socket).map_err(|e| failed(&e))?;
    let sealed = Arc::new(AtomicBool::new(false));
    let incoming = Box::pin(futures_util::stream::unfold(
        listener,
        |listener| async move {
            let next = listener.accept().await.map(|(stream, _)| stream);
            Some((next, listener))
        },
    ));
    let agent = OneKey {
        sealed: sealed.clone(),
    };
    let task = tokio::spawn(async move {
        let _ = serve(incoming, agent).await;
    });
    let added = async {
        let stream = tokio::net::UnixStream::connect(socket).await?;
        AgentClient::connect(stream).add_identity(&key, &[]).await
    };
    if let Err(e) = added.await {
        task.abort();
        return Err(failed(&e));
    }
    sealed.store(true, Ordering::SeqCst);
    Ok(task)
}

/// OpenSSH's escape rule, undone: a `~` right after a newline (or first of
/// all) starts an escape, so it is sent twice, which the client turns back
/// into one. `line_start` follows the client's own notion of it.
#[derive(Debug)]
struct Tildes {
    line_start: bool,
}

impl Default for Tildes {
    fn default() -> Self {
        Tildes { line_start: true }
    }
}

impl Tildes {
    /// `data` as the client must read it to send `data`.
    fn escape<'a>(&mut self, data: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Option<Vec<u8>> = None;
        for (i, &byte) in data.iter().enumerate() {
            if byte == b'~' && self.line_start {
                out.get_or_insert_with(|| data[..i].to_vec()).push(b'~');
            }
            if let Some(out) = out.as_mut() {
                out.push(byte);
            }
            self.line_start = byte == b'\r' || byte == b'\n';
        }
        out.map_or(Cow::Borrowed(data), Cow::Owned)
    }
}

#[async_trait]
impl Transport for OpenSshTransport {
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
        self.pty.read(buf).await
    }

    async fn write(&mut self, data: &[u8], kind: SendKind) -> TransportResult<()> {
        let escaped = self.tildes.escape(data);
        self.pty.write(&escaped, kind).await
    }

    /// `~B`, which the client takes only at a line start: after anything
    /// but a line end it is refused (sending a line end here would submit
    /// whatever was typed, unrecorded).
    async fn send_break(&mut self) -> TransportResult<()> {
        if !self.tildes.line_start {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the OpenSSH client sends a break only at the start of a line: send a line end \
                 (\\r) first",
            )
            .into());
        }
        let confirmed = self.stderr.breaks.load(Ordering::SeqCst);
        self.pty.write(b"~B", SendKind::Plain).await?;
        // The client stays at a line start after an escape.
        self.tildes.line_start = true;
        let deadline = tokio::time::Instant::now() + BREAK_CONFIRMATION;
        while self.stderr.breaks.load(Ordering::SeqCst) == confirmed {
            if tokio::time::Instant::now() >= deadline || self.pty.exited() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the OpenSSH client did not confirm sending the break",
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    async fn close(&mut self) -> TransportResult<()> {
        self.agent.abort();
        self.pty.close().await
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl Drop for OpenSshTransport {
    fn drop(&mut self) {
        self.agent.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escape_all(chunks: &[&[u8]]) -> Vec<u8> {
        let mut tildes = Tildes::default();
        chunks
            .iter()
            .flat_map(|c| tildes.escape(c).into_owned())
            .collect()
    }

    #[test]
    fn a_tilde_at_a_line_start_is_doubled() {
        assert_eq!(escape_all(&[b"~."]), b"~~.");
        assert_eq!(escape_all(&[b"ls\r~.\r"]), b"ls\r~~.\r");
        assert_eq!(escape_all(&[b"a\n~~b"]), b"a\n~~~b");
        assert_eq!(escape_all(&[b"cd ~/x\r"]), b"cd ~/x\r");
    }

    #[test]
    fn the_line_start_carries_across_writes() {
        assert_eq!(escape_all(&[b"echo\r", b"~B"]), b"echo\r~~B");
        assert_eq!(escape_all(&[b"echo", b"~B"]), b"echo~B");
    }

    #[test]
    fn nothing_to_escape_borrows() {
        let mut tildes = Tildes::default();
        assert!(matches!(tildes.escape(b"plain\r"), Cow::Borrowed(_)));
    }
}
