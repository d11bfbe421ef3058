//! The gateway: serves consoles over WebSocket, one authenticated client per
//! console at a time, every session recorded server-side.
//!
//! `gateway --listen ADDR --console NAME=TARGET…` serves `/v1/consoles/NAME`
//! with the same framing the client transport speaks (binary frames of at
//! most 65,000 bytes; errors as close frames with a reason). Any target the
//! tool can open can be served: a lab VM's socket, a PTY command, a QEMU TCP
//! console. Backpressure is natural: the gateway reads the console only as
//! fast as the client takes the frames, so a slow client never makes it
//! buffer without bound.

pub mod auth;
mod bridge;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use auth::Auth;

use crate::error::{Error, ExitCode, Result};
use crate::target::Target;
use crate::transport::websocket::MAX_FRAME;

/// The URL path prefix of consoles.
pub const PATH_PREFIX: &str = "/v1/consoles/";

/// One console the gateway serves.
pub struct Console {
    /// Where the console really is.
    pub target: Target,
    /// Set while a client holds the console.
    in_use: AtomicBool,
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
}

struct Shared {
    consoles: HashMap<String, Console>,
    auth: Auth,
    record_dir: Option<PathBuf>,
    idle_timeout: Duration,
    max_session: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
    let shared = Arc::new(Shared {
        consoles: config
            .consoles
            .into_iter()
            .map(|(name, target)| {
                (
                    name,
                    Console {
                        target,
                        in_use: AtomicBool::new(false),
                    },
                )
            })
            .collect(),
        auth: config.auth,
        record_dir: config.record_dir,
        idle_timeout: config.idle_timeout,
        max_session: config.max_session,
        tls: config.tls.map(tokio_rustls::TlsAcceptor::from),
    });
    Ok((addr, serve(listener, shared)))
}

/// Runs `gateway` until interrupted.
pub async fn run(listen: &str, config: GatewayConfig) -> Result<ExitCode> {
    let names: Vec<String> = config.consoles.keys().cloned().collect();
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    let (addr, server) = bind(listen, config).await?;
    for name in &names {
        eprintln!("serving {scheme}://{addr}{PATH_PREFIX}{name}");
    }
    tokio::select! {
        _ = server => {}
        _ = tokio::signal::ctrl_c() => eprintln!("gateway stopping"),
    }
    Ok(ExitCode::Success)
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tcp.set_nodelay(true).ok();
        let shared = shared.clone();
        tokio::spawn(async move {
            let result = match &shared.tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => handle(tls, &shared).await,
                    Err(e) => Err(format!("TLS handshake failed: {e}")),
                },
                None => handle(tcp, &shared).await,
            };
            if let Err(why) = result {
                tracing::info!("connection from {peer}: {why}");
            }
        });
    }
}

/// What the handshake decided.
struct Admitted {
    console: String,
    identity: String,
}

async fn handle<S>(stream: S, shared: &Shared) -> std::result::Result<(), String>
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
                    admitted = Some(a);
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
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(limits))
        .await
        .map_err(|e| format!("handshake refused or failed: {e}"))?;
    let Some(admitted) = admitted else {
        return Err("handshake without admission".into());
    };
    let console = &shared.consoles[&admitted.console];
    bridge::run(ws, &admitted.console, console, &admitted.identity, shared).await
}

fn admit(req: &Request, shared: &Shared) -> std::result::Result<Admitted, (u16, String)> {
    let path = req.uri().path();
    let name = path
        .strip_prefix(PATH_PREFIX)
        .filter(|n| !n.is_empty() && !n.contains('/'));
    let Some(name) = name.filter(|n| shared.consoles.contains_key(*n)) else {
        let mut known: Vec<&String> = shared.consoles.keys().collect();
        known.sort();
        return Err((
            404,
            format!(
                "no console at {path}; this gateway serves {PATH_PREFIX}NAME for NAME in {known:?}"
            ),
        ));
    };
    let header = |h: &str| req.headers().get(h).and_then(|v| v.to_str().ok());
    let presented = auth::Presented {
        host: header("host").unwrap_or(""),
        path,
        query: req.uri().query().unwrap_or(""),
        authorization: header("authorization"),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let identity = shared
        .auth
        .check(&presented, now)
        .map_err(|r| (r.status, r.message))?;
    Ok(Admitted {
        console: name.to_string(),
        identity,
    })
}

impl Console {
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
