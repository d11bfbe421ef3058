//! `ws://` and `wss://` targets: a console behind a WebSocket.
//!
//! The framing follows AWS's EC2 Instance Connect tunnel: console bytes
//! travel in **binary** frames of at most 65,000 bytes; a **text** frame from
//! the server is an error; a close with a code other than 1000 carries the
//! reason. Authentication is a SigV4-presigned query (as AWS does) or a bearer
//! token, whichever the gateway expects. A connection that drops mid-session
//! is an error naming what was happening, never a hang.

use std::io;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::{SendKind, Transport, TransportResult};
use crate::aws::credentials::Credentials;
use crate::aws::sigv4;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Largest binary frame sent, as AWS's tunnel protocol specifies.
pub const MAX_FRAME: usize = 65_000;

/// The request header by which this client asks our gateway for a held
/// console's history, and the answer header saying it comes.
pub const HISTORY_HEADER: &str = "x-console-history";

/// How a WebSocket client proves who it is.
#[derive(Debug, Clone, Default)]
pub enum WsAuth {
    /// No authentication (loopback gateways in `--auth none` mode).
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// A SigV4-presigned URL (service `ec2-instance-connect`, 60 s).
    SigV4 {
        /// The signing credentials.
        credentials: Credentials,
        /// The Region in the credential scope.
        region: String,
    },
}

/// Options for connecting to WebSocket consoles.
#[derive(Debug, Clone, Default)]
pub struct WsOptions {
    /// Authentication.
    pub auth: WsAuth,
    /// Whom to trust for `wss://`: the system's roots and `--ca-file`.
    pub trust: crate::tls::ClientTrust,
    /// Send a token or signed URL over plain `ws://` to a host that is not
    /// this machine (refused otherwise: anyone on the path could read it).
    pub allow_cleartext_credentials: bool,
}

/// Any byte stream a WebSocket can run over (TCP or TLS over TCP).
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// A console over a WebSocket.
pub struct WebSocketTransport {
    ws: WebSocketStream<Box<dyn ByteStream>>,
    /// Bytes of a binary frame not yet handed to the reader.
    pending: Vec<u8>,
    pending_at: usize,
    description: String,
    /// A held console's scrollback, sent before the live stream.
    history: Option<String>,
}

impl WebSocketTransport {
    /// Connects to `url` and completes the WebSocket handshake.
    pub async fn connect(url: &str, options: &WsOptions) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::usage(format!("bad WebSocket URL: {e}")))?;
        let description = uri_without_query(&uri);
        let tls = uri.scheme_str() == Some("wss");
        let host = uri
            .host()
            .ok_or_else(|| Error::usage(format!("WebSocket URL {description} has no host")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        if !tls
            && !matches!(options.auth, WsAuth::None)
            && !options.allow_cleartext_credentials
            && !is_this_machine(&host)
        {
            return Err(Error::usage(format!(
                "{description}: the token or signed URL would cross the network in clear text; \
                 use wss://, or accept the risk with --insecure-cleartext-credentials"
            )));
        }
        let url = signed_url(&uri, options)?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::usage(format!("bad WebSocket URL {description}: {e}")))?;
        if let WsAuth::Bearer(token) = &options.auth {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    Error::usage("the bearer token holds characters not allowed in an HTTP header")
                })?;
            value.set_sensitive(true);
            request.headers_mut().insert("authorization", value);
        }
        // A gateway holding the console sends what it printed before, as
        // context apart from the live stream (gateways that do not know
        // the header ignore it).
        request
            .headers_mut()
            .insert(HISTORY_HEADER, HeaderValue::from_static("context"));
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| Error::io(format!("cannot connect to {description}"), e))?;
        tcp.set_nodelay(true).ok();
        let stream: Box<dyn ByteStream> = if tls {
            let config = options.trust.config();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| {
                    Error::usage(format!("{host:?} is not a valid TLS server name: {e}"))
                })?;
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
                Error::io(format!("TLS handshake with {description} failed (for a private CA pass --ca-file)"), e)
            })?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut ws, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| handshake_error(&description, e))?;
        let history = match response.headers().get(HISTORY_HEADER) {
            Some(_) => Some(read_history(&mut ws, &description).await?),
            None => None,
        };
        Ok(WebSocketTransport {
            ws,
            pending: Vec::new(),
            pending_at: 0,
            description,
            history,
        })
    }
}

/// Reads the history frame a gateway promised (`{"history": TEXT}`, the
/// first frame after the handshake). A gateway that refuses the session
/// instead (the console in use, unusable, not connected) closes with its
/// reason, which is what the user is told.
async fn read_history(
    ws: &mut WebSocketStream<Box<dyn ByteStream>>,
    description: &str,
) -> Result<String> {
    let frame = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
        .await
        .map_err(|_| {
            Error::io(
                format!(
                    "{description}: the gateway promised the console's history but sent nothing"
                ),
                io::ErrorKind::TimedOut.into(),
            )
        })?;
    let not_history = |what: String| {
        Error::io(
            format!("{description}: {what}"),
            io::ErrorKind::InvalidData.into(),
        )
    };
    match frame {
        Some(Ok(Message::Text(text))) => serde_json::from_str::<serde_json::Value>(text.as_str())
            .ok()
            .and_then(|v| v["history"].as_str().map(str::to_string))
            .ok_or_else(|| {
                not_history(
                    "the gateway's first frame is not the console's history it promised".into(),
                )
            }),
        Some(Ok(Message::Close(Some(f)))) => Err(Error::io(
            format!(
                "{description}: the server closed the console (code {}): {}",
                u16::from(f.code),
                f.reason
            ),
            io::ErrorKind::ConnectionAborted.into(),
        )),
        Some(Err(e)) => Err(Error::io(
            format!("{description}: reading the console's history"),
            to_io(e),
        )),
        _ => Err(not_history(
            "the gateway closed before sending the console's history it promised".into(),
        )),
    }
}

/// The URL to dial: with a SigV4-presigned query when that is the auth.
fn signed_url(uri: &Uri, options: &WsOptions) -> Result<String> {
    let WsAuth::SigV4 {
        credentials,
        region,
    } = &options.auth
    else {
        return Ok(uri.to_string());
    };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let query: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect();
    // Two connections in the same second would otherwise carry the same
    // URL, and a gateway that refuses replays would refuse the second. The
    // nonce is signed like every parameter; gateways need not know it.
    let mut query = query;
    query.push((NONCE_PARAM.into(), nonce()));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = sigv4::presign(authority, uri.path(), query, credentials, region, now);
    Ok(format!(
        "{}://{authority}{}?{signed}",
        uri.scheme_str().unwrap_or("wss"),
        uri.path()
    ))
}

/// Whether `host` (as in a URL) names this machine: credentials sent there
/// in clear text cross no network.
fn is_this_machine(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The query parameter that makes each presigned URL unique.
const NONCE_PARAM: &str = "X-Ese-Nonce";

/// 16 random bytes as hex (the time, if the system has no random source).
fn nonce() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
    }
    hex::encode(bytes)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The URL as shown anywhere: without its query (signatures, `?token=`)
/// and without userinfo (a password).
fn uri_without_query(uri: &Uri) -> String {
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!(
        "{}://{host}{}",
        uri.scheme_str().unwrap_or("ws"),
        uri.path()
    )
}

fn handshake_error(description: &str, e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .trim()
                        .chars()
                        .take(300)
                        .collect::<String>()
                })
                .unwrap_or_default();
            Error::io(
                format!("the WebSocket gateway at {description} refused the connection"),
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("HTTP {status}: {body}"),
                ),
            )
        }
        other => Error::io(
            format!("WebSocket handshake with {description} failed"),
            io::Error::other(other.to_string()),
        ),
    }
}

fn to_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        other => io::Error::other(other.to_string()),
    }
}

#[async_trait]
impl Transport for WebSocketTransport {
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
        loop {
            if self.pending_at < self.pending.len() {
                let rest = &self.pending[self.pending_at..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.pending_at += n;
                return Ok(n);
            }
            // `next` is cancel-safe: a frame is either fully received or not at all.
            match self.ws.next().await {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the WebSocket connection dropped without a close frame",
                    )
                    .into())
                }
                Some(Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ))) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the WebSocket connection was reset",
                    )
                    .into())
                }
                Some(Err(e)) => return Err(to_io(e).into()),
                Some(Ok(Message::Binary(data))) => {
                    self.pending = data.to_vec();
                    self.pending_at = 0;
                }
                Some(Ok(Message::Text(text))) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                        "the server sent a text frame, which this protocol treats as an error: {}",
                        text.as_str().chars().take(300).collect::<String>()
                    ),
                    )
                    .into())
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) if f.code != CloseCode::Normal => Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            format!(
                                "the server closed the console (code {}): {}",
                                u16::from(f.code),
                                f.reason
                            ),
                        )
                        .into()),
                        _ => Ok(0),
                    };
                }
                // Pings are answered by tungstenite itself on the next read or write.
                Some(Ok(_)) => {}
            }
        }
    }

    async fn write(&mut self, data: &[u8], _kind: SendKind) -> TransportResult<()> {
        for chunk in data.chunks(MAX_FRAME) {
            self.ws
                .feed(Message::Binary(chunk.to_vec().into()))
                .await
                .map_err(to_io)?;
        }
        Ok(self.ws.flush().await.map_err(to_io)?)
    }

    async fn close(&mut self) -> TransportResult<()> {
        match self.ws.close(None).await {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed)
            | Err(tungstenite::Error::AlreadyClosed) => Ok(()),
            Err(e) => Err(to_io(e).into()),
        }
    }

    fn take_history(&mut self) -> Option<String> {
        self.history.take()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
