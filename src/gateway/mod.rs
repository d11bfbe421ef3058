//! The gateway: serves consoles over WebSocket, one authenticated client per
//! console at a time, every session recorded server-side.
//!
//! `gateway --listen ADDR --console NAME=TARGET…` serves `/v1/consoles/NAME`
//! with the same framing the client transport speaks (binary frames of at
//! most 65,000 bytes; errors as close frames with a reason). Any target the
//! tool can open can be served: a lab VM's socket, a PTY command, a QEMU TCP
//! console. Backpressure is natural: the gateway reads the console only as
//! fast as the client takes the frames, so a slow client never makes it
//! buffer without bound; and the session limits hold while a send waits on
//! a client that stopped reading.
//!
//! Hostile networks: every connection has [`Limits::handshake_timeout`] to
//! finish TLS and the WebSocket handshake; at most [`Limits::max_connections`]
//! exist at once and [`Limits::max_per_address`] per IP address (per IPv6
//! /64) are still in their handshake. A new connection is made room for by
//! closing the oldest unauthenticated one (its address's own, or that of the
//! address holding the most), never a session, so idle half-open sockets from
//! any number of addresses cannot lock real clients out (see `slots`).
//! Credentials never cross a network in clear text unless the operator says
//! so; refusals never list the consoles.

pub mod auth;
mod backlog;
mod bridge;
mod hold;
mod presence;
mod slots;
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use auth::Auth;
pub use backlog::DEFAULT_SCROLLBACK;
pub use hold::HoldOptions;
pub use web::WebOptions;

use crate::error::{Error, Result};
use crate::target::Target;
use crate::transport::websocket::{HISTORY_HEADER, MAX_FRAME};

/// The URL path prefix of consoles.
pub const PATH_PREFIX: &str = "/v1/consoles/";

/// One console the gateway serves.
pub struct ServedConsole {
    /// Where the console really is.
    pub target: Target,
    /// Set while a client holds the console.
    in_use: AtomicBool,
    /// False once a session ended on a console that outlives it and the
    /// gateway could not prove it logged out: the next client is not
    /// handed it until a new logout is proven.
    logged_out: AtomicBool,
    /// Recent output: the scrollback a client of a held console sees
    /// first, and what read-only viewers follow.
    backlog: backlog::Backlog,
    /// Where the current session's output begins in the backlog: viewers
    /// of a console that is not held see no earlier session.
    session_start: AtomicU64,
    /// Who writes and who watches.
    presence: presence::Presence,
    /// The connection the gateway keeps open (`--hold`).
    held: Option<hold::Held>,
}

/// Everything the gateway needs to run.
pub struct GatewayConfig {
    /// Consoles by name.
    pub consoles: HashMap<String, Target>,
    /// Who may connect.
    pub auth: Auth,
    /// Where session transcripts go (none: not recorded).
    pub record_dir: Option<PathBuf>,
    /// A session idle this long is closed.
    pub idle_timeout: Duration,
    /// A session is closed after this long, like AWS's one-hour sessions.
    pub max_session: Duration,
    /// TLS, when serving `wss://`.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// The names clients reach the gateway by (`host[:port]`, as in the
    /// URL), one of which SigV4 signatures must cover; empty: the bound
    /// listening address (and `localhost:PORT` on loopback).
    pub public_hosts: Vec<String>,
    /// Connection limits.
    pub limits: Limits,
    /// Allow token/SigV4 authentication without TLS off loopback.
    pub insecure_cleartext_credentials: bool,
    /// What a session's end leaves on a console that outlives it.
    pub on_disconnect: OnDisconnect,
    /// How the gateway reaches its consoles (AWS options for EC2 ones).
    pub connect: crate::connect::ConnectOptions,
    /// Keep every console connected from the start, recorded and with its
    /// history for the next client (`--hold`).
    pub hold: Option<HoldOptions>,
    /// Bytes of each console's output kept for viewers and, when held,
    /// for the next client.
    pub scrollback: usize,
    /// Serve the web page too (`--web`; needs token authentication, or
    /// none on loopback).
    pub web: Option<WebOptions>,
}

/// What the gateway does to a console that outlives the session (`unix:`,
/// `tcp:`, EC2; an `exec:` program ends with its session anyway) when the
/// client leaves, however it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDisconnect {
    /// Bring the console back to its login prompt and prove it
    /// ([`crate::shell::Shell::log_out_console`]: Ctrl-C, pagers and
    /// editors quit, each shell left `exit`ed, also one that ignores
    /// Ctrl-D), so the next identity never inherits a logged-in shell. A
    /// console that cannot be proven logged out is refused to the next
    /// client (close code 1013, "unusable"), and tried again at each new
    /// client. The default.
    #[default]
    Logout,
    /// Leave the console as the client left it.
    Keep,
}

impl Default for GatewayConfig {
    /// No consoles, no authentication (loopback only), not recorded, the
    /// default limits; fill in what you serve.
    fn default() -> GatewayConfig {
        GatewayConfig {
            consoles: HashMap::new(),
            auth: Auth::None,
            record_dir: None,
            idle_timeout: Duration::from_secs(900),
            max_session: Duration::from_secs(3600),
            tls: None,
            public_hosts: Vec::new(),
            limits: Limits::default(),
            insecure_cleartext_credentials: false,
            on_disconnect: OnDisconnect::Logout,
            connect: crate::connect::ConnectOptions::default(),
            hold: None,
            scrollback: DEFAULT_SCROLLBACK,
            web: None,
        }
    }
}

/// How many connections, and for how long before the handshake is done.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most connections at once. When all are taken, the oldest
    /// connection still in its handshake (of the address holding the most)
    /// is closed to admit a new one; sessions are never closed for that.
    pub max_connections: usize,
    /// Most connections from one IP address (one IPv6 /64) still in their
    /// handshake; a new one from that address closes its oldest. Sessions
    /// do not count: many consoles driven from one host (a fleet) are not
    /// limited, while one address cannot hold more than its share of slots.
    pub max_per_address: usize,
    /// Time a client has for the TLS and WebSocket handshakes.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::for_connections(default_max_connections())
    }
}

impl Limits {
    /// The default limits for a gateway of `max_connections`: a sixteenth
    /// of them (at least 4) per address, 10 s for the handshakes.
    pub fn for_connections(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            max_per_address: default_max_per_address(max_connections),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A sixteenth of the slots (at least 4) per address: well below the cap,
/// so a handful of addresses cannot take every slot, and enough for a
/// fleet's burst of handshakes from one host (sessions do not count).
pub fn default_max_per_address(max_connections: usize) -> usize {
    (max_connections / 16).max(4).min(max_connections.max(1))
}

/// The names a gateway at `addr` answers to when none is configured.
fn default_public_hosts(addr: SocketAddr) -> Vec<String> {
    let mut names = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        names.push(format!("localhost:{}", addr.port()));
    }
    names
}

/// A quarter of the open-file limit (each session also opens its console,
/// and the transcript), between 16 and 1024.
fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let files = if ok { limit.rlim_cur as usize } else { 1024 };
    (files / 4).clamp(16, 1024)
}

struct Shared {
    consoles: HashMap<String, ServedConsole>,
    auth: Auth,
    record_dir: Option<PathBuf>,
    idle_timeout: Duration,
    max_session: Duration,
    on_disconnect: OnDisconnect,
    connect: crate::connect::ConnectOptions,
    tls: Option<tokio_rustls::TlsAcceptor>,
    public_hosts: Vec<String>,
    limits: Limits,
    /// The connection slots.
    slots: Mutex<slots::SlotTable>,
    /// The web page's state, when it is served.
    web: Option<web::Web>,
    /// How held consoles are recorded (`--hold`).
    hold: Option<HoldOptions>,
}

/// Binds `listen` and returns the bound address and the serving future.
pub async fn bind(
    listen: &str,
    config: GatewayConfig,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        Error::io(
            format!("cannot listen on {listen} (in use? needs privileges?)"),
            e,
        )
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    if matches!(config.auth, Auth::None) && !addr.ip().is_loopback() {
        return Err(Error::usage(format!(
            "--auth none is refused on {addr}: anyone on the network could reach the consoles; \
             listen on 127.0.0.1 or use --auth sigv4 / --auth token"
        )));
    }
    if config.auth.sends_credentials()
        && config.tls.is_none()
        && !addr.ip().is_loopback()
        && !config.insecure_cleartext_credentials
    {
        return Err(Error::usage(format!(
            "tokens and signed URLs would cross the network in clear text on {addr}: \
             serve wss:// (--tls-cert and --tls-key), listen on 127.0.0.1 behind a TLS proxy, \
             or accept the risk with --insecure-cleartext-credentials"
        )));
    }
    let web = match config.web {
        Some(options) => Some(web::Web::new(options, &config.auth, config.tls.is_some())?),
        None => None,
    };
    let limits = config.limits;
    if limits.max_connections == 0
        || limits.max_per_address == 0
        || limits.handshake_timeout.is_zero()
    {
        return Err(Error::usage(
            "--max-connections, --max-per-address and --handshake-timeout must be at least 1",
        ));
    }
    let shared = Arc::new(Shared {
        consoles: config
            .consoles
            .into_iter()
            .map(|(name, target)| {
                (
                    name,
                    ServedConsole {
                        target,
                        in_use: AtomicBool::new(false),
                        logged_out: AtomicBool::new(true),
                        backlog: backlog::Backlog::new(config.scrollback),
                        session_start: AtomicU64::new(0),
                        presence: presence::Presence::new(),
                        held: config.hold.as_ref().map(|_| hold::Held::new()),
                    },
                )
            })
            .collect(),
        auth: config.auth,
        record_dir: config.record_dir,
        idle_timeout: config.idle_timeout,
        max_session: config.max_session,
        on_disconnect: config.on_disconnect,
        connect: config.connect,
        tls: config.tls.map(tokio_rustls::TlsAcceptor::from),
        public_hosts: if config.public_hosts.is_empty() {
            default_public_hosts(addr)
        } else {
            config.public_hosts
        },
        slots: Mutex::new(slots::SlotTable::new(
            limits.max_connections,
            limits.max_per_address,
        )),
        limits,
        web,
        hold: config.hold,
    });
    Ok((addr, serve(listener, shared)))
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    if let Some(options) = &shared.hold {
        for (name, console) in &shared.consoles {
            if let Some(held) = &console.held {
                held.start(shared.clone(), name.clone(), options.clone());
            }
        }
    }
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Every slot a session: closed at once (dropping the socket).
        let Some((slot, mut evicted)) = Slot::claim(&shared, peer) else {
            tracing::debug!("connection from {peer} refused: every slot holds a session");
            continue;
        };
        tcp.set_nodelay(true).ok();
        let shared = shared.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + shared.limits.handshake_timeout;
            let result = match &shared.tls {
                Some(acceptor) => {
                    let accept = tokio::time::timeout_at(deadline, acceptor.accept(tcp));
                    let accepted = tokio::select! {
                        accepted = accept => accepted,
                        _ = &mut evicted => Ok(Err(std::io::Error::other(EVICTED))),
                    };
                    match accepted {
                        Ok(Ok(tls)) => handle(tls, deadline, slot, evicted, &shared).await,
                        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
                        Err(_) => Err("TLS handshake not done in time".into()),
                    }
                }
                None => handle(tcp, deadline, slot, evicted, &shared).await,
            };
            match result {
                // Under a flood, one line per connection closed for room
                // would flood the log too.
                Err(why) if why == EVICTED => tracing::debug!("connection from {peer}: {why}"),
                Err(why) => tracing::info!("connection from {peer}: {why}"),
                Ok(()) => {}
            }
        });
    }
}

/// Why a connection still in its handshake was closed.
const EVICTED: &str = "closed to make room for a newer connection (handshake not done)";

/// One connection's slot ([`slots::SlotTable`]); given back when dropped.
struct Slot {
    shared: Arc<Shared>,
    source: slots::Source,
    id: u64,
    /// Still in its handshake (may be closed to make room).
    pending: bool,
}

impl Slot {
    /// A slot for a new connection from `peer`, and what resolves if it is
    /// closed to make room before its handshake is done.
    fn claim(
        shared: &Arc<Shared>,
        peer: SocketAddr,
    ) -> Option<(Slot, tokio::sync::oneshot::Receiver<()>)> {
        let source = slots::Source::of(peer.ip());
        let mut table = shared.slots.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = table.admit(source)?;
        if ticket.made_room {
            tracing::debug!("an older pending connection was closed to admit {peer}");
        }
        let slot = Slot {
            shared: shared.clone(),
            source,
            id: ticket.id,
            pending: true,
        };
        Some((slot, ticket.evicted))
    }

    /// The handshake is over: a session now, never closed to make room.
    /// False when it was closed to make room meanwhile.
    fn handshake_done(&mut self) -> bool {
        let mut table = self.shared.slots.lock().unwrap_or_else(|p| p.into_inner());
        if !table.handshake_done(self.source, self.id) {
            return false;
        }
        self.pending = false;
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.shared.slots.lock().unwrap_or_else(|p| p.into_inner());
        table.close(self.source, self.id, self.pending);
    }
}

/// What the handshake decided.
struct Admitted {
    console: String,
    identity: String,
    /// The client asked for a held console's history (`X-Console-History`).
    history: bool,
}

/// Serves one connection: a WebSocket client of `/v1/consoles/`, or, with
/// `--web`, whatever the browser asks.
async fn handle<S>(
    stream: S,
    deadline: tokio::time::Instant,
    slot: Slot,
    mut evicted: tokio::sync::oneshot::Receiver<()>,
    shared: &Arc<Shared>,
) -> std::result::Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if shared.web.is_none() {
        return serve_websocket(stream, deadline, slot, evicted, shared).await;
    }
    let peeked = tokio::select! {
        peeked = tokio::time::timeout_at(deadline, web::peek_path(stream)) => peeked
            .map_err(|_| "request not sent in time".to_string())?
            .map_err(|e| format!("reading the request: {e}"))?,
        _ = &mut evicted => return Err(EVICTED.into()),
    };
    let (path, stream) = peeked;
    if path.starts_with("/v1/") {
        serve_websocket(stream, deadline, slot, evicted, shared).await
    } else {
        web::serve(stream, slot, evicted, shared.clone()).await
    }
}

/// Serves a client of `/v1/consoles/NAME`: the WebSocket handshake, then
/// the session.
async fn serve_websocket<S>(
    stream: S,
    deadline: tokio::time::Instant,
    mut slot: Slot,
    mut evicted: tokio::sync::oneshot::Receiver<()>,
    shared: &Shared,
) -> std::result::Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut admitted = None;
    // tungstenite's handshake callback fixes this error type; it is built once per refusal.
    #[allow(clippy::result_large_err)]
    let callback =
        |req: &Request, resp: Response| -> std::result::Result<Response, ErrorResponse> {
            match admit(req, shared) {
                Ok(a) => {
                    let mut resp = resp;
                    if a.history && shared.consoles[&a.console].held.is_some() {
                        resp.headers_mut()
                            .insert(HISTORY_HEADER, "context".parse().expect("a valid header"));
                    }
                    admitted = Some(Admitted {
                        history: a.history && shared.consoles[&a.console].held.is_some(),
                        ..a
                    });
                    Ok(resp)
                }
                Err((status, message)) => {
                    let mut refusal = ErrorResponse::new(Some(message));
                    *refusal.status_mut() =
                        StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
                    Err(refusal)
                }
            }
        };
    // Clients send console input in frames of at most 65,000 bytes, as AWS's
    // tunnel protocol does; a bigger frame is refused, not buffered.
    let limits = WebSocketConfig::default()
        .max_frame_size(Some(MAX_FRAME))
        .max_message_size(Some(MAX_FRAME));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(limits));
    let ws = tokio::select! {
        ws = tokio::time::timeout_at(deadline, handshake) => ws
            .map_err(|_| "WebSocket handshake not done in time".to_string())?
            .map_err(|e| format!("handshake refused or failed: {e}"))?,
        _ = &mut evicted => return Err(EVICTED.into()),
    };
    if !slot.handshake_done() {
        return Err(EVICTED.into());
    }
    let Some(admitted) = admitted else {
        return Err("handshake without admission".into());
    };
    let console = &shared.consoles[&admitted.console];
    let client = bridge::Client::Cli {
        history: admitted.history,
    };
    let result = bridge::run(
        ws,
        &admitted.console,
        console,
        &admitted.identity,
        shared,
        client,
    )
    .await;
    drop(slot);
    result
}

/// Authenticates first, then finds the console: a client that is not
/// admitted learns nothing about which consoles exist.
fn admit(req: &Request, shared: &Shared) -> std::result::Result<Admitted, (u16, String)> {
    let path = req.uri().path();
    let header = |h: &str| req.headers().get(h).and_then(|v| v.to_str().ok());
    // Signatures must be made for one of our own names, never for whatever
    // the client claims: a URL presigned for another gateway fails here.
    let host = header("host").unwrap_or("");
    // Browsers send `Origin` with every WebSocket, this tool's client
    // never does: a page on any site (or a rebound DNS name) must not
    // drive a console through this path, least of all under --auth none
    // on loopback, where the browser's own machine is "trusted".
    if header("origin").is_some() {
        return Err((
            403,
            "browsers reach consoles through the gateway's web page (gateway --web), not this path"
                .into(),
        ));
    }
    if shared.auth.sends_credentials() && !shared.public_hosts.iter().any(|h| h == host) {
        return Err((
            403,
            format!(
                "this gateway answers to {} (its --public-host), not {host:?}: connect by that name",
                shared.public_hosts.join(", ")
            ),
        ));
    }
    let presented = auth::Presented {
        host,
        path,
        query: req.uri().query().unwrap_or(""),
        authorization: header("authorization"),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let identity = shared
        .auth
        .check(&presented, now)
        .map_err(|r| (r.status, r.message))?;
    let name = path
        .strip_prefix(PATH_PREFIX)
        .filter(|n| !n.is_empty() && !n.contains('/') && shared.consoles.contains_key(*n));
    let Some(name) = name else {
        return Err((
            404,
            format!("no console at this path; consoles are served at {PATH_PREFIX}NAME (ask the operator for the name)"),
        ));
    };
    Ok(Admitted {
        console: name.to_string(),
        identity,
        history: header(HISTORY_HEADER) == Some("context"),
    })
}

impl ServedConsole {
    /// Claims the console; false when another session holds it.
    fn claim(&self) -> bool {
        self.in_use
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn release(&self) {
        self.in_use.store(false, Ordering::Release);
    }
}

/// Parses `NAME=TARGET` as given to `--console`.
pub fn parse_console(arg: &str) -> Result<(String, Target)> {
    let (name, target) = arg.split_once('=').ok_or_else(|| {
        Error::usage(format!(
            "--console {arg:?}: expected NAME=TARGET, e.g. lab=unix:/run/lab/serial.sock"
        ))
    })?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(Error::usage(format!(
            "--console: bad name {name:?}; use letters, digits, '-', '_' or '.'"
        )));
    }
    Ok((name.to_string(), target.parse()?))
}
