//! The SSH leg: russh to `<instance-id>.port0@<endpoint>`, host key pinned.
//!
//! The server's host key must hash (SHA256) to the fingerprint AWS publishes
//! for the Region, or the connection is refused before authentication. Then
//! we authenticate with the ephemeral key, open a session channel, request a
//! PTY and a shell, and keep the channel open (no EOF) until [`close`], as the
//! serial endpoint ends the session otherwise.
//!
//! RFC 4335 `break`: russh 0.65 has no way to send a `break` channel request
//! (its channel API sends only the requests it models), so
//! [`Transport::send_break`] says so plainly and names `--ssh-client
//! openssh` ([`super::openssh`]), which can.
//!
//! [`close`]: Transport::close

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use russh::client::{self, Handle, Msg};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Disconnect};

use super::aws_error;
use super::endpoints::SerialEndpoint;
use crate::error::{Error, Result};
use crate::transport::{SendKind, Transport, TransportResult, PTY_SIZE};

/// How long the TCP connect, key exchange and authentication may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The russh callbacks: only the host-key check matters here.
struct PinnedHostKey {
    expected: String,
    seen: Arc<Mutex<Option<PublicKey>>>,
    /// Stop after the check, whatever it found ([`pinned_host_key`]).
    probe_only: bool,
}

impl client::Handler for PinnedHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = key.public_key().clone();
        let matches = fingerprint(&key) == self.expected;
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
        Ok(matches && !self.probe_only)
    }
}

impl PinnedHostKey {
    /// The handler, and where it leaves the key the server showed.
    fn new(endpoint: &SerialEndpoint, probe_only: bool) -> (Self, Arc<Mutex<Option<PublicKey>>>) {
        let seen = Arc::new(Mutex::new(None));
        let handler = PinnedHostKey {
            expected: endpoint.fingerprint.clone(),
            seen: seen.clone(),
            probe_only,
        };
        (handler, seen)
    }
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn client_config() -> Arc<client::Config> {
    Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..Default::default()
    })
}

/// The endpoint's host key, when it hashes to the pinned fingerprint; the
/// connection ends right after the key exchange. The OpenSSH client is told
/// to trust this key and no other ([`super::openssh`]): it cannot pin a
/// fingerprint itself.
pub(crate) async fn pinned_host_key(endpoint: &SerialEndpoint) -> Result<PublicKey> {
    let place = format!("{}:{}", endpoint.host, endpoint.port);
    let (handler, seen) = PinnedHostKey::new(endpoint, true);
    let address = (endpoint.host.as_str(), endpoint.port);
    let ended = tokio::time::timeout(
        CONNECT_TIMEOUT,
        client::connect(client_config(), address, handler),
    )
    .await;
    let key = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (key, ended) {
        (Some(key), _) if fingerprint(&key) == endpoint.fingerprint => Ok(key),
        (Some(key), _) => Err(mismatch_error(endpoint, &fingerprint(&key))),
        (None, Ok(Err(e))) => Err(ssh_error(&place, "cannot connect", e)),
        (None, _) => Err(Error::io(
            format!("cannot reach the serial console endpoint {place}"),
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no host key within {} s", CONNECT_TIMEOUT.as_secs()),
            ),
        )),
    }
}

/// An open serial console session over SSH.
pub(crate) struct SerialSshTransport {
    handle: Handle<PinnedHostKey>,
    channel: Channel<Msg>,
    pending: Vec<u8>,
    pending_at: usize,
    closed: bool,
    description: String,
}

/// Connects, verifies the host key, authenticates and opens the console.
pub(crate) async fn connect(
    endpoint: &SerialEndpoint,
    instance_id: &str,
    key: PrivateKey,
) -> Result<SerialSshTransport> {
    let user = format!("{instance_id}.port0");
    let place = format!("{user}@{}:{}", endpoint.host, endpoint.port);
    match tokio::time::timeout(CONNECT_TIMEOUT, open(endpoint, &user, &place, key)).await {
        Ok(result) => result,
        Err(_) => Err(Error::io(
            format!("cannot open the serial console session {place}"),
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no session within {} s", CONNECT_TIMEOUT.as_secs()),
            ),
        )),
    }
}

async fn open(
    endpoint: &SerialEndpoint,
    user: &str,
    place: &str,
    key: PrivateKey,
) -> Result<SerialSshTransport> {
    let (handler, seen) = PinnedHostKey::new(endpoint, false);
    let address = (endpoint.host.as_str(), endpoint.port);
    let mut handle = match client::connect(client_config(), address, handler).await {
        Ok(h) => h,
        Err(e) => {
            let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Err(match seen.map(|key| fingerprint(&key)) {
                Some(seen) if seen != endpoint.fingerprint => mismatch_error(endpoint, &seen),
                _ => ssh_error(place, "cannot connect", e),
            });
        }
    };
    let auth = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .map_err(|e| ssh_error(place, "authentication failed", e))?;
    if !auth.success() {
        return Err(key_refused_error(place));
    }
    let channel = open_console(&handle, place).await?;
    Ok(SerialSshTransport {
        handle,
        channel,
        pending: Vec::new(),
        pending_at: 0,
        closed: false,
        description: format!("EC2 serial console {place}"),
    })
}

async fn open_console(handle: &Handle<PinnedHostKey>, place: &str) -> Result<Channel<Msg>> {
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| ssh_error(place, "cannot open the session channel", e))?;
    let (cols, rows) = PTY_SIZE;
    channel
        .request_pty(false, "vt220", u32::from(cols), u32::from(rows), 0, 0, &[])
        .await
        .map_err(|e| ssh_error(place, "cannot request a terminal", e))?;
    channel
        .request_shell(false)
        .await
        .map_err(|e| ssh_error(place, "cannot start the console", e))?;
    Ok(channel)
}

fn mismatch_error(endpoint: &SerialEndpoint, seen: &str) -> Error {
    aws_error(format!(
        "refusing the serial console endpoint {}:{}: its host key {seen} does not match the pinned \
         fingerprint {} — this is not the AWS endpoint you meant (or AWS rotated its key: compare \
         with the EC2 User Guide, \"EC2 Serial Console endpoints and fingerprints\", and pass \
         --host-key-fingerprint if it changed)",
        endpoint.host, endpoint.port, endpoint.fingerprint
    ))
}

/// The endpoint took the connection but not the pushed key.
pub(super) fn key_refused_error(place: &str) -> Error {
    aws_error(format!(
        "the serial console endpoint {place} refused the pushed key; a pushed key is valid for \
         60 s, so the connection came too late or went to an endpoint of another Region \
         (check --region / --serial-endpoint), then try again"
    ))
}

fn ssh_error(place: &str, what: &str, e: russh::Error) -> Error {
    let kind = match &e {
        russh::Error::IO(io) => io.kind(),
        _ => io::ErrorKind::Other,
    };
    Error::io(
        format!("serial console {place}: {what}"),
        io::Error::new(kind, e.to_string()),
    )
}

fn closed_error(e: russh::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("the serial console SSH session failed: {e}"),
    )
}

#[async_trait]
impl Transport for SerialSshTransport {
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
        loop {
            if self.pending_at < self.pending.len() {
                let n = buf.len().min(self.pending.len() - self.pending_at);
                buf[..n].copy_from_slice(&self.pending[self.pending_at..self.pending_at + n]);
                self.pending_at += n;
                return Ok(n);
            }
            if self.closed {
                return Ok(0);
            }
            // `wait` is a channel receive: cancel-safe, nothing is lost if dropped.
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    self.pending = data.to_vec();
                    self.pending_at = 0;
                }
                Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                    self.closed = true;
                }
                Some(_) => {}
            }
        }
    }

    async fn write(&mut self, data: &[u8], _kind: SendKind) -> TransportResult<()> {
        Ok(self.channel.data(data).await.map_err(closed_error)?)
    }

    async fn send_break(&mut self) -> TransportResult<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the built-in SSH client cannot send an RFC 4335 break (russh has no `break` channel \
             request); connect with --ssh-client openssh to send breaks over the EC2 serial console",
        )
        .into())
    }

    async fn close(&mut self) -> TransportResult<()> {
        if !self.closed {
            self.closed = true;
            let _ = self.channel.close().await;
        }
        self.handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await
            .map_err(|e| closed_error(e).into())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
