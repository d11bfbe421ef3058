//! The gateway's web page (`gateway --web`): sign in with the gateway's
//! token, list the consoles, open one in a terminal in the browser (or
//! watch it read-only), and play the recordings.
//!
//! It shares the gateway's listening address and TLS: a connection whose
//! first request is for `/v1/…` is a WebSocket client of the tool and goes
//! where it always went; any other is served here over HTTP/1.1 (hyper),
//! where a console page's WebSocket is upgraded to the same session code
//! (`bridge`) the tool's clients get.
//!
//! Browsers bring their own attacks, answered here once for every route:
//! the `Host` must be one of the gateway's own names (a rebound DNS name
//! reaches nothing); a form post and a WebSocket must come from the page's
//! own origin (`Origin`), on top of the `SameSite=Strict` cookie; every
//! response forbids framing and sniffing, and pages run only the gateway's
//! own scripts (Content-Security-Policy). A request that is not signed in
//! is sent to the sign-in form and learns no console's name.

mod assets;
mod pages;
mod recordings;
mod signin;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::{bridge, Auth, Shared, Slot, EVICTED};
use crate::error::{Error, Result};
use pages::Viewer;
use signin::{Refused, Sessions, WebSession};

/// How the web page behaves.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// How long a sign-in lasts.
    pub session_lifetime: Duration,
}

impl Default for WebOptions {
    fn default() -> WebOptions {
        WebOptions {
            session_lifetime: Duration::from_secs(8 * 3600),
        }
    }
}

/// The web page's state.
pub(super) struct Web {
    sessions: Sessions,
    /// Whether pages are served over TLS (the cookie is then `Secure`).
    secure: bool,
    /// Whether a sign-in is needed (`--auth token`); `--auth none` on
    /// loopback serves the pages to anyone who reaches them.
    signs_in: bool,
}

impl Web {
    /// The page's state for a gateway with `auth`, refusing what a browser
    /// cannot sign in with.
    pub(super) fn new(options: WebOptions, auth: &Auth, tls: bool) -> Result<Web> {
        let signs_in = match auth {
            Auth::Token(_) => true,
            Auth::None => false,
            Auth::SigV4 { .. } => return Err(Error::usage(
                "--web needs --auth token (people sign in to the page with the gateway's token); \
                     a browser cannot sign SigV4 requests",
            )),
        };
        if options.session_lifetime.is_zero() {
            return Err(Error::usage("--web-session must be at least 1 second"));
        }
        Ok(Web {
            sessions: Sessions::new(options.session_lifetime),
            secure: tls,
            signs_in,
        })
    }
}

/// The longest request head read before deciding where a connection goes.
const MAX_HEAD: usize = 16 * 1024;

/// Reads a connection's first request head, and returns its path and the
/// connection with those bytes put back.
pub(super) async fn peek_path<S>(mut stream: S) -> std::io::Result<(String, Rewound<S>)>
where
    S: AsyncRead + Unpin,
{
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        // Only the new bytes (and the three before them) can end the head.
        let scan_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if head[scan_from..].windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_HEAD {
            break;
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let path = String::from_utf8_lossy(line)
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((
        path,
        Rewound {
            head,
            at: 0,
            stream,
        },
    ))
}

/// A connection whose first bytes were read already and are read again.
pub(super) struct Rewound<S> {
    head: Vec<u8>,
    at: usize,
    stream: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewound<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.head.len() {
            let n = (self.head.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.head[at..at + n]);
            self.at += n;
            if self.at == self.head.len() {
                self.head = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewound<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// One browser connection: requests until it closes, or until it upgrades
/// to a console's WebSocket (which then takes the connection's slot).
pub(super) async fn serve<S>(
    stream: S,
    slot: Slot,
    evicted: tokio::sync::oneshot::Receiver<()>,
    shared: Arc<Shared>,
) -> std::result::Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let source = slot.source;
    // The handshake limit bounds each request head, as it bounds a
    // WebSocket client's handshake.
    let head_within = shared.limits.handshake_timeout;
    let slot = Arc::new(Mutex::new(Some(slot)));
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        let slot = slot.clone();
        async move {
            let conn = Conn {
                shared,
                slot,
                source,
            };
            Ok::<_, Infallible>(conn.answer(req).await)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_within)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        done = connection => done.map_err(|e| format!("HTTP: {e}")),
        _ = evicted => Err(EVICTED.into()),
    }
}

/// A response's body: a page in memory, or a recording streamed from disk.
pub(super) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A body of `bytes`.
pub(super) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A file's bytes as they are read, 64 KiB at a time: a recording of tens
/// of MiB is never held whole, however many download it at once.
fn streamed(file: std::fs::File) -> Body {
    let chunks =
        futures_util::stream::unfold(tokio::fs::File::from_std(file), |mut file| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(hyper::body::Frame::data(Bytes::from(buf))), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
    StreamBody::new(chunks).boxed_unsync()
}

/// What a request is answered with.
struct Conn {
    shared: Arc<Shared>,
    slot: Arc<Mutex<Option<Slot>>>,
    source: super::slots::Source,
}

/// Who made a request, when signed in.
struct SignedIn {
    /// The session's id (none without sign-in).
    id: Option<String>,
    identity: String,
    form_key: Option<String>,
}

impl SignedIn {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            identity: &self.identity,
            form_key: self.form_key.as_deref(),
        }
    }
}

impl Conn {
    fn web(&self) -> &Web {
        self.shared.web.as_ref().expect("served only with --web")
    }

    /// Routes one request.
    async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !self.shared.public_hosts.iter().any(|h| h == host) {
            return text(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this gateway answers to {}, not {host:?}",
                    self.shared.public_hosts.join(", ")
                ),
            );
        }
        let path = req.uri().path().to_string();
        if let Some(file) = path.strip_prefix("/assets/") {
            return assets::serve(file);
        }
        let same_origin = self.same_origin(&req, host);
        match (req.method(), path.as_str()) {
            (&Method::POST, "/sign-in") if same_origin => return self.sign_in(req).await,
            (&Method::POST, _) if !same_origin => {
                return text(
                    StatusCode::FORBIDDEN,
                    "a form must be sent from this gateway's own page",
                )
            }
            _ => {}
        }
        let Some(who) = self.signed_in(&req) else {
            return match (req.method(), path.as_str()) {
                (&Method::GET, "/") => html(StatusCode::OK, pages::sign_in(None)),
                // Nothing else is said, not even whether the path exists.
                _ => see_other("/"),
            };
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (req.method(), segments.as_slice()) {
            (&Method::GET, [""]) => html(StatusCode::OK, self.consoles_page(&who)),
            (&Method::POST, ["sign-out"]) => self.sign_out(req, &who).await,
            (&Method::GET, ["consoles", name]) => self.console_page(&req, &who, name),
            (&Method::GET, ["consoles", name, "ws"]) if same_origin => {
                self.upgrade(req, &who, name)
            }
            (&Method::GET, ["recordings"]) => self.recordings_page(&who).await,
            (&Method::GET, ["recordings", file]) => self.player_page(&who, file),
            (&Method::GET, ["recordings", file, "cast"]) => self.recording(&req, &who, file),
            _ => html(
                StatusCode::NOT_FOUND,
                pages::problem(
                    &who.viewer(),
                    "Not found",
                    "Nothing is served at this address.",
                ),
            ),
        }
    }

    /// Whether the request comes from this gateway's own pages: its
    /// `Origin` is this very scheme and host (browsers always send it on a
    /// form post and a WebSocket; other clients may not post at all).
    fn same_origin(&self, req: &Request<Incoming>, host: &str) -> bool {
        // Either scheme: behind a TLS proxy the browser's origin is
        // https:// while this gateway speaks plain HTTP to the proxy. The
        // host is what keeps other sites out.
        req.headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .and_then(|origin| {
                origin
                    .strip_prefix("https://")
                    .or(origin.strip_prefix("http://"))
            })
            .is_some_and(|origin_host| origin_host == host)
    }

    fn signed_in(&self, req: &Request<Incoming>) -> Option<SignedIn> {
        let web = self.web();
        if !web.signs_in {
            return Some(SignedIn {
                id: None,
                identity: "anonymous".into(),
                form_key: None,
            });
        }
        let cookie = req
            .headers()
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok());
        let (
            id,
            WebSession {
                identity, form_key, ..
            },
        ) = web.sessions.find(cookie)?;
        Some(SignedIn {
            id: Some(id),
            identity,
            form_key: Some(form_key),
        })
    }

    async fn sign_in(&self, req: Request<Incoming>) -> Response<Body> {
        let web = self.web();
        if !web.signs_in {
            return see_other("/");
        }
        let form = read_form(req).await;
        let token = form_field(&form, "token").unwrap_or_default();
        let name: String = form_field(&form, "name")
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ' '))
            .take(40)
            .collect();
        let right = self.shared.auth.accepts_token(&token);
        let identity = match name.trim() {
            "" => "token".to_string(),
            name => format!("{name} (token)"),
        };
        match web.sessions.sign_in(self.source, right, &identity) {
            Ok(id) => {
                tracing::info!("web: {identity} signed in");
                let mut response = see_other("/");
                set_cookie(&mut response, Some(&id), web);
                response
            }
            Err(Refused::Wrong) => {
                tracing::info!("web: a sign-in with a wrong token");
                html(
                    StatusCode::UNAUTHORIZED,
                    pages::sign_in(Some("That is not this gateway's token.")),
                )
            }
            Err(Refused::TooMany(wait)) => {
                let mut response = html(
                    StatusCode::TOO_MANY_REQUESTS,
                    pages::sign_in(Some(&format!(
                        "Too many wrong tokens from your address: wait {} s before trying again.",
                        wait.as_secs().max(1)
                    ))),
                );
                if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
                response
            }
        }
    }

    async fn sign_out(&self, req: Request<Incoming>, who: &SignedIn) -> Response<Body> {
        let form = read_form(req).await;
        if form_field(&form, "form_key").as_deref() != who.form_key.as_deref() {
            return text(
                StatusCode::FORBIDDEN,
                "this sign-out form is stale: reload the page",
            );
        }
        let web = self.web();
        if let Some(id) = &who.id {
            web.sessions.sign_out(id);
        }
        let mut response = see_other("/");
        set_cookie(&mut response, None, web);
        response
    }

    fn consoles_page(&self, who: &SignedIn) -> String {
        let mut rows: Vec<pages::ConsoleRow> = self
            .shared
            .consoles
            .iter()
            .map(|(name, console)| pages::ConsoleRow {
                name: name.clone(),
                writer: console.presence.writer(),
                viewers: console.presence.viewers().len(),
                down: console.held.as_ref().and_then(|h| h.down()),
                held: console.held.is_some(),
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        pages::consoles(&who.viewer(), &rows)
    }

    fn console_page(&self, req: &Request<Incoming>, who: &SignedIn, name: &str) -> Response<Body> {
        let Some(console) = self.shared.consoles.get(name) else {
            return html(
                StatusCode::NOT_FOUND,
                pages::problem(
                    &who.viewer(),
                    "No such console",
                    "This gateway serves no console by that name.",
                ),
            );
        };
        // Asked to watch, or someone else writes: watch.
        let watch = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch"))
            || console.presence.writer().is_some();
        html_under(Policy::Terminal, pages::console(&who.viewer(), name, watch))
    }

    /// A console page's WebSocket: `?mode=write` (the default) or `watch`.
    fn upgrade(&self, mut req: Request<Incoming>, who: &SignedIn, name: &str) -> Response<Body> {
        if !self.shared.consoles.contains_key(name) {
            return text(StatusCode::NOT_FOUND, "no such console");
        }
        let key = req
            .headers()
            .get(header::SEC_WEBSOCKET_KEY)
            .map(|k| k.as_bytes().to_vec());
        let upgrade = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|u| u.to_str().ok())
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        let Some(key) = key.filter(|_| upgrade) else {
            return text(StatusCode::BAD_REQUEST, "this address takes a WebSocket");
        };
        let watch = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "mode=watch"));
        let on_upgrade = hyper::upgrade::on(&mut req);
        let shared = self.shared.clone();
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        let name = name.to_string();
        let identity = who.identity.clone();
        tokio::spawn(async move {
            let Some(mut slot) = slot else { return };
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            if !slot.handshake_done() {
                return;
            }
            let limits = WebSocketConfig::default()
                .max_frame_size(Some(crate::transport::websocket::MAX_FRAME))
                .max_message_size(Some(crate::transport::websocket::MAX_FRAME));
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(limits),
            )
            .await;
            let console = &shared.consoles[&name];
            let result = if watch {
                bridge::watch(ws, &name, console, &identity, &shared).await
            } else {
                bridge::run(
                    ws,
                    &name,
                    console,
                    &identity,
                    &shared,
                    bridge::Client::Browser,
                )
                .await
            };
            if let Err(why) = result {
                tracing::info!("web: {identity} on {name}: {why}");
            }
            drop(slot);
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
        let mut response = Response::new(full(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        response
    }

    async fn recordings_page(&self, who: &SignedIn) -> Response<Body> {
        // Reading a directory of files is blocking work: off the runtime.
        let dir = self.shared.record_dir.clone();
        let listed = tokio::task::spawn_blocking(move || {
            dir.as_deref().map(recordings::list).unwrap_or_default()
        })
        .await
        .unwrap_or_default();
        html(
            StatusCode::OK,
            pages::recordings(&who.viewer(), &listed, self.shared.record_dir.is_some()),
        )
    }

    fn player_page(&self, who: &SignedIn, file: &str) -> Response<Body> {
        let exists = self
            .shared
            .record_dir
            .as_deref()
            .and_then(|dir| recordings::open(dir, file))
            .is_some();
        if !exists {
            return html(
                StatusCode::NOT_FOUND,
                pages::problem(
                    &who.viewer(),
                    "No such recording",
                    "There is no recording by that name.",
                ),
            );
        }
        html_under(Policy::Player, pages::player(&who.viewer(), file))
    }

    fn recording(&self, req: &Request<Incoming>, who: &SignedIn, file: &str) -> Response<Body> {
        let opened = self
            .shared
            .record_dir
            .as_deref()
            .and_then(|dir| recordings::open(dir, file));
        let Some(opened) = opened else {
            return html(
                StatusCode::NOT_FOUND,
                pages::problem(
                    &who.viewer(),
                    "No such recording",
                    "There is no recording by that name.",
                ),
            );
        };
        let mut response = Response::new(streamed(opened));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-asciicast"),
        );
        if req.uri().query() == Some("download") {
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
        }
        secure_headers(&mut response, Policy::Strict);
        response
    }
}

/// A form post's fields (at most 4 KiB of it).
async fn read_form(req: Request<Incoming>) -> Vec<(String, String)> {
    let Ok(body) = Limited::new(req.into_body(), 4096).collect().await else {
        return Vec::new();
    };
    let body = body.to_bytes();
    body.split(|&b| b == b'&')
        .filter_map(|pair| {
            let pair = String::from_utf8_lossy(pair).replace('+', " ");
            let (k, v) = pair.split_once('=')?;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some((decode(k), decode(v)))
        })
        .collect()
}

fn form_field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn set_cookie(response: &mut Response<Body>, id: Option<&str>, web: &Web) {
    let cookie = signin::set_cookie(id, web.sessions.lifetime(), web.secure);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// The Content-Security-Policy a response runs under: only the gateway's
/// own scripts, connections only back to the gateway, no framing, no
/// plugin, no inline script anywhere. Two pages need one thing more each
/// (read off the shipped libraries): xterm.js's DOM renderer places
/// `<style>` elements and style attributes, and the player runs its
/// terminal emulator as WebAssembly.
#[derive(Clone, Copy)]
enum Policy {
    Strict,
    /// A console page: styles set by xterm.js.
    Terminal,
    /// A recording's page: asciinema-player's WebAssembly.
    Player,
}

impl Policy {
    fn header(self) -> &'static str {
        match self {
            Policy::Strict => {
                "default-src 'none'; script-src 'self'; style-src 'self'; \
                connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            }
            Policy::Terminal => {
                "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            }
            Policy::Player => {
                "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            }
        }
    }
}

/// Headers every response carries.
fn secure_headers(response: &mut Response<Body>, policy: Policy) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy.header()),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with a
    // form post, and the page's own forms could not prove their origin.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

fn html(status: StatusCode, page: String) -> Response<Body> {
    respond(status, "text/html; charset=utf-8", page.into())
}

/// A page that runs under a policy of its own.
fn html_under(policy: Policy, page: String) -> Response<Body> {
    let mut response = html(StatusCode::OK, page);
    secure_headers(&mut response, policy);
    response
}

fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", message.into().into())
}

fn respond(status: StatusCode, kind: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    secure_headers(&mut response, Policy::Strict);
    response
}

fn see_other(to: &'static str) -> Response<Body> {
    let mut response = respond(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Bytes::new(),
    );
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    response
}
