//! WebSocket end to end: the client transport against the project's gateway
//! (and against raw tokio-tungstenite servers for protocol edge cases), with
//! real consoles behind it: programs under a PTY and Unix socket servers.

use crate::support::pki;

use std::collections::HashMap;
use std::time::Duration;

use ec2_serial_expect::aws::credentials::{self, Credentials};
use ec2_serial_expect::connect::{ConnectOptions, Console};
use ec2_serial_expect::gateway::{self, Auth, GatewayConfig};
use ec2_serial_expect::transport::{self, WsAuth, WsOptions};
use ec2_serial_expect::{Error, ErrorKind, Pattern, Secret, Session, Target};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const CREDENTIALS: &str =
    "[ops]\naws_access_key_id = AKIDGATEWAYTEST\naws_secret_access_key = gw-secret-Key/123\n";

fn config(consoles: &[(&str, &str)], auth: Auth) -> GatewayConfig {
    GatewayConfig {
        consoles: consoles
            .iter()
            .map(|(n, t)| (n.to_string(), t.parse::<Target>().unwrap()))
            .collect::<HashMap<_, _>>(),
        auth,
        record_dir: None,
        idle_timeout: Duration::from_secs(60),
        max_session: Duration::from_secs(600),
        tls: None,
        ..GatewayConfig::default()
    }
}

async fn start(config: GatewayConfig) -> std::net::SocketAddr {
    let (addr, server) = gateway::bind("127.0.0.1:0", config).await.unwrap();
    tokio::spawn(server);
    addr
}

async fn connect(url: &str, options: &WsOptions) -> Result<Session, Error> {
    let connect = ConnectOptions {
        ws: options.clone(),
        ..ConnectOptions::default()
    };
    crate::support::open_session_with(url, connect).await
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

async fn converse(session: &mut Session) {
    session
        .expect(&[Pattern::regex(r"[#$] $")], secs(10))
        .await
        .unwrap();
    session.send_line("echo via-$((6*7))").await.unwrap();
    session
        .expect(&[Pattern::exact("via-42")], secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_shell_through_the_gateway_without_auth_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&[("sh", "exec:sh")], Auth::None);
    cfg.record_dir = Some(dir.path().to_path_buf());
    let addr = start(cfg).await;
    let mut s = connect(
        &format!("ws://{addr}/v1/consoles/sh"),
        &WsOptions::default(),
    )
    .await
    .unwrap();
    converse(&mut s).await;
    s.send_line("exit").await.unwrap();
    let err = s
        .expect(&[Pattern::exact("never")], secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Eof { .. }),
        "console exit ends the session cleanly: {err:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The server-side transcript holds the console output, not the typed input.
    let casts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(casts.len(), 1, "{casts:?}");
    let name = casts[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("sh-") && name.contains("anonymous"),
        "{name}"
    );
    let text = std::fs::read_to_string(&casts[0]).unwrap();
    assert!(text.contains("via-42"), "{text}");
    assert!(
        !text.contains("\"i\""),
        "typed input is not recorded by the gateway"
    );
}

#[tokio::test]
async fn auth_none_is_refused_off_loopback() {
    let err = match gateway::bind("0.0.0.0:0", config(&[("sh", "exec:sh")], Auth::None)).await {
        Err(e) => e,
        Ok(_) => panic!("bound without auth on all interfaces"),
    };
    assert_eq!(err.exit_code().code(), 2);
    assert!(err.to_string().contains("--auth none is refused"), "{err}");
}

#[tokio::test]
async fn bearer_tokens_admit_and_refuse_with_the_http_status() {
    let addr = start(config(
        &[("sh", "exec:sh")],
        Auth::Token(Secret::new("token", "team-token-1")),
    ))
    .await;
    let url = format!("ws://{addr}/v1/consoles/sh");
    let good = WsOptions {
        auth: WsAuth::Bearer(Secret::new("token", "team-token-1")),
        trust: Default::default(),
        ..WsOptions::default()
    };
    converse(&mut connect(&url, &good).await.unwrap()).await;

    let bad = WsOptions {
        auth: WsAuth::Bearer(Secret::new("token", "guess")),
        trust: Default::default(),
        ..WsOptions::default()
    };
    let msg = connect(&url, &bad).await.err().unwrap().to_string();
    assert!(
        msg.contains("HTTP 403") && msg.contains("not valid"),
        "{msg}"
    );
    assert!(
        !msg.contains("team-token-1") && !msg.contains("guess"),
        "tokens never shown: {msg}"
    );
    let msg = connect(&url, &WsOptions::default())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("HTTP 401") && msg.contains("--token-env"),
        "{msg}"
    );
    let msg = connect(&format!("ws://{addr}/v1/consoles/nope"), &good)
        .await
        .err()
        .unwrap()
        .to_string();
    // Issue 11: a refusal names no console (it used to list them all).
    assert!(msg.contains("HTTP 404") && !msg.contains("\"sh\""), "{msg}");
}

#[tokio::test]
async fn sigv4_presigned_urls_are_verified_and_cannot_be_replayed() {
    let identities = credentials::parse(CREDENTIALS).unwrap();
    let auth = Auth::sigv4(identities.clone(), Some("eu-west-1".into()), 0).unwrap();
    let addr = start(config(&[("sh", "exec:sh")], auth)).await;
    let url = format!("ws://{addr}/v1/consoles/sh");
    let signed = |c: Credentials, region: &str| WsOptions {
        auth: WsAuth::SigV4 {
            credentials: c,
            region: region.into(),
        },
        trust: Default::default(),
        ..WsOptions::default()
    };
    converse(
        &mut connect(&url, &signed(identities[0].clone(), "eu-west-1"))
            .await
            .unwrap(),
    )
    .await;

    let mut wrong = identities[0].clone();
    wrong.secret_access_key = Secret::new("k", "not-the-key");
    let msg = connect(&url, &signed(wrong, "eu-west-1"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("HTTP 403") && msg.contains("does not match"),
        "{msg}"
    );
    let msg = connect(&url, &signed(identities[0].clone(), "us-east-1"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("--region eu-west-1"), "{msg}");
    assert!(!msg.contains("gw-secret-Key"), "{msg}");
}

#[tokio::test]
async fn a_second_client_is_told_the_console_is_in_use() {
    let addr = start(config(&[("sh", "exec:sh")], Auth::None)).await;
    let url = format!("ws://{addr}/v1/consoles/sh");
    let mut first = connect(&url, &WsOptions::default()).await.unwrap();
    converse(&mut first).await;
    let mut second = connect(&url, &WsOptions::default()).await.unwrap();
    let err = second
        .expect(&[Pattern::exact("$")], secs(5))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("in use by another session") && msg.contains("code 1008"),
        "{msg}"
    );
    // The first session is unaffected.
    first.send_line("echo still-$((1+1))").await.unwrap();
    first
        .expect(&[Pattern::exact("still-2")], secs(5))
        .await
        .unwrap();
}

/// A raw WebSocket server that runs `script` against the first client.
async fn raw_server<F, Fut>(script: F) -> String
where
    F: FnOnce(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        script(ws).await;
    });
    format!("ws://{addr}/console")
}

#[tokio::test]
async fn text_frames_close_codes_and_drops_become_clear_errors() {
    let url = raw_server(|mut ws| async move {
        ws.send(Message::Binary(b"login: ".to_vec().into()))
            .await
            .unwrap();
        ws.send(Message::Text("InvalidInstanceState".into()))
            .await
            .unwrap();
    })
    .await;
    let mut s = connect(&url, &WsOptions::default()).await.unwrap();
    s.expect(&[Pattern::exact("login: ")], secs(5))
        .await
        .unwrap();
    let msg = s
        .expect(&[Pattern::exact("x")], secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("text frame")
            && msg.contains("InvalidInstanceState")
            && msg.contains("login: "),
        "{msg}"
    );

    let url = raw_server(|mut ws| async move {
        let frame = CloseFrame {
            code: CloseCode::Library(4003),
            reason: "session limit exceeded".into(),
        };
        ws.send(Message::Close(Some(frame))).await.unwrap();
    })
    .await;
    let mut s = connect(&url, &WsOptions::default()).await.unwrap();
    let msg = s
        .expect(&[Pattern::exact("x")], secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("code 4003") && msg.contains("session limit exceeded"),
        "{msg}"
    );

    let url = raw_server(|mut ws| async move {
        ws.send(Message::Binary(b"booting".to_vec().into()))
            .await
            .unwrap();
        drop(ws); // no close frame: the TCP connection just goes away
    })
    .await;
    let mut s = connect(&url, &WsOptions::default()).await.unwrap();
    let err = s
        .expect(&[Pattern::exact("login:")], secs(5))
        .await
        .unwrap_err();
    assert!(
        !matches!(err.kind(), ErrorKind::Timeout { .. }),
        "a drop is an error, not a hang: {err:?}"
    );
    assert!(
        err.to_string().contains("booting"),
        "names the last output: {err}"
    );
}

#[tokio::test]
async fn large_sends_are_split_into_frames_of_at_most_65000_bytes() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let url = raw_server(|mut ws| async move {
        let mut sizes = Vec::new();
        let mut total = 0;
        while total < 200_000 {
            if let Some(Ok(Message::Binary(d))) = ws.next().await {
                total += d.len();
                sizes.push(d.len());
            }
        }
        tx.send(sizes).unwrap();
    })
    .await;
    let mut s = connect(&url, &WsOptions::default()).await.unwrap();
    s.send(&"x".repeat(200_000)).await.unwrap();
    let sizes = rx.await.unwrap();
    assert_eq!(sizes, vec![65_000, 65_000, 65_000, 5_000]);
}

#[tokio::test]
async fn wss_with_a_private_ca_and_sigv4() {
    let dir = tempfile::tempdir().unwrap();
    pki::make_test_pki(dir.path());
    let identities = credentials::parse(CREDENTIALS).unwrap();
    let mut cfg = config(
        &[("sh", "exec:sh")],
        Auth::sigv4(identities.clone(), None, 0).unwrap(),
    );
    cfg.tls = Some(
        ec2_serial_expect::tls::server_config(
            &dir.path().join("server.pem"),
            &dir.path().join("server.key"),
        )
        .unwrap(),
    );
    let addr = start(cfg).await;
    let url = format!("wss://localhost:{}/v1/consoles/sh", addr.port());
    let auth = WsAuth::SigV4 {
        credentials: identities[0].clone(),
        region: "us-west-2".into(),
    };
    let options = WsOptions {
        auth: auth.clone(),
        trust: ec2_serial_expect::tls::ClientTrust::new(Some(&dir.path().join("ca.pem"))).unwrap(),
        ..WsOptions::default()
    };
    converse(&mut connect(&url, &options).await.unwrap()).await;

    // Without the private CA the certificate is not trusted, and the error says what to do.
    let msg = connect(
        &url,
        &WsOptions {
            auth,
            trust: Default::default(),
            ..WsOptions::default()
        },
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        msg.contains("TLS handshake") && msg.contains("--ca-file"),
        "{msg}"
    );
}

/// A raw WebSocket client (no session layer) to poke the gateway with bad frames.
async fn raw_client(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The close reason the gateway ends a raw client's session with (or the error).
async fn close_reason<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return "no close within 10 s".into(),
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                return format!("{} {}", u16::from(f.code), f.reason)
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return format!("error {e}"),
            Ok(None) => return "dropped".into(),
        }
    }
}

#[tokio::test]
async fn client_faults_are_refused_and_free_the_console() {
    let addr = start(config(&[("sh", "exec:sh")], Auth::None)).await;
    let url = format!("ws://{addr}/v1/consoles/sh");

    // A text frame from a client ends its session with the reason.
    let mut ws = raw_client(&url).await;
    ws.send(Message::Text("echo hi".into())).await.unwrap();
    let reason = close_reason(&mut ws).await;
    assert!(
        reason.starts_with("1011") && reason.contains("text frames are not accepted"),
        "{reason}"
    );

    // An oversized frame (more than 65,000 bytes) is refused, not buffered.
    let mut ws = raw_client(&url).await;
    let _ = ws.send(Message::Binary(vec![b'x'; 70_000].into())).await;
    let reason = close_reason(&mut ws).await;
    assert!(
        reason.starts_with("1011") && reason.contains("70000 > 65000"),
        "{reason}"
    );

    // A client that vanishes mid-session (no close frame) frees the console.
    let mut s = connect(&url, &WsOptions::default()).await.unwrap();
    converse(&mut s).await;
    drop(s);
    let started = std::time::Instant::now();
    let mut next = loop {
        let mut candidate = connect(&url, &WsOptions::default()).await.unwrap();
        match candidate
            .expect(&[Pattern::regex(r"[#$] $")], secs(5))
            .await
        {
            Ok(_) => break candidate,
            Err(e)
                if started.elapsed() < Duration::from_secs(10)
                    && e.to_string().contains("in use") =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the console was not freed: {e}"),
        }
    };
    next.send_line("echo free-$((2+2))").await.unwrap();
    next.expect(&[Pattern::exact("free-4")], secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn one_byte_frames_and_a_sixteen_mib_burst() {
    let addr = start(config(
        &[
            ("cat", "exec:cat"),
            ("burst", "exec:sh -c 'read go; head -c 16777216 /dev/zero | tr \"\\0\" x; echo; echo BURST-END'"),
        ],
        Auth::None,
    ))
    .await;

    // Input split into 1-byte frames arrives whole.
    let mut ws = raw_client(&format!("ws://{addr}/v1/consoles/cat")).await;
    for b in b"one-byte-frames\r" {
        ws.send(Message::Binary(vec![*b].into())).await.unwrap();
    }
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("one-byte-frames\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Binary(d)))) => seen.extend_from_slice(&d),
            other => panic!(
                "no echo: {other:?}; seen {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }

    // 16 MiB of console output reaches a client, every frame within the limit.
    let mut s = connect(
        &format!("ws://{addr}/v1/consoles/burst"),
        &WsOptions::default(),
    )
    .await
    .unwrap();
    s.send_line("go").await.unwrap();
    let m = s
        .expect(&[Pattern::exact("BURST-END")], secs(60))
        .await
        .unwrap();
    assert!(m.before.ends_with("xxxx\r\n"));
}

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_many_concurrent_sessions_through_one_gateway() {
    // Bounded: N sessions × R round trips on loopback, each against its own PTY.
    const N: usize = 48;
    const R: usize = 50;
    let names: Vec<String> = (0..N).map(|i| format!("c{i}")).collect();
    let consoles: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "exec:cat")).collect();
    let addr = start(config(&consoles, Auth::None)).await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for name in names.clone() {
        tasks.push(tokio::spawn(async move {
            let mut s = connect(
                &format!("ws://{addr}/v1/consoles/{name}"),
                &WsOptions::default(),
            )
            .await
            .unwrap();
            for r in 0..R {
                s.send_line(&format!("{name}-round-{r}")).await.unwrap();
                s.expect(&[Pattern::exact(format!("{name}-round-{r}\r\n"))], secs(30))
                    .await
                    .unwrap();
            }
            s.close().await.unwrap();
        }));
    }
    let all = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(tasks),
    )
    .await;
    let elapsed = started.elapsed();
    for t in all.expect("the load test must finish within 120 s") {
        t.unwrap();
    }
    let trips = (N * R) as f64;
    eprintln!(
        "gateway load: {N} concurrent sessions, {} round trips in {:.2} s ({:.0} round trips/s), peak RSS {} KiB (client and gateway in one process)",
        N * R,
        elapsed.as_secs_f64(),
        trips / elapsed.as_secs_f64(),
        peak_rss_kib()
    );
}

// ---- A gateway under hostile load (issue 11): deadlines, caps, limits
// ---- that hold while sends block, and SigV4 bound to the public name.

/// A TCP connection to `addr` from the loopback source address `from`.
async fn connect_from(from: &str, addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the gateway closed `tcp` (EOF or reset) within `within`.
async fn closed_within(tcp: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, tcp.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn a_thousand_half_open_sockets_do_not_lock_a_real_client_out() {
    let mut cfg = config(&[("sh", "exec:sh")], Auth::None);
    cfg.limits.handshake_timeout = Duration::from_secs(1);
    let per_address = cfg.limits.max_per_address;
    assert!(
        per_address * 8 <= cfg.limits.max_connections,
        "the per-address share is well below the cap: {:?}",
        cfg.limits
    );
    let addr = start(cfg).await;
    // 1,000 connections that send half a request and then nothing, from
    // one address (127.0.0.3): the address keeps only its share, each new
    // one closing its oldest at once; the newest are closed at the
    // handshake deadline.
    let mut idle = Vec::new();
    for _ in 0..1000 {
        let mut tcp = connect_from("127.0.0.3", addr).await;
        use tokio::io::AsyncWriteExt;
        let _ = tcp
            .write_all(b"GET /v1/consoles/sh HTTP/1.1\r\nHost: x\r\n")
            .await;
        idle.push(tcp);
    }
    let started = std::time::Instant::now();
    let mut session = connect(
        &format!("ws://{addr}/v1/consoles/sh"),
        &WsOptions::default(),
    )
    .await
    .unwrap();
    converse(&mut session).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "a real client took {took:?} among 1,000 idle sockets"
    );
    session.close().await.unwrap();
    let mut closed_at_once = 0;
    for tcp in idle.iter_mut().take(100) {
        if closed_within(tcp, Duration::from_millis(200)).await {
            closed_at_once += 1;
        }
    }
    assert_eq!(closed_at_once, 100, "the oldest are closed at once");
    assert!(
        closed_within(idle.last_mut().unwrap(), Duration::from_secs(3)).await,
        "an admitted half-open socket is closed at the handshake deadline"
    );
}

#[tokio::test]
async fn a_full_table_closes_the_oldest_pending_connection_never_a_session() {
    let mut cfg = config(&[("sh", "exec:sh")], Auth::None);
    cfg.limits.max_connections = 9;
    cfg.limits.max_per_address = 1000;
    let addr = start(cfg).await;
    let url = format!("ws://{addr}/v1/consoles/sh");
    let mut session = connect(&url, &WsOptions::default()).await.unwrap();
    converse(&mut session).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect_from("127.0.0.4", addr).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Full (one session, eight pending): a new connection closes the
    // oldest pending one, not the session.
    let mut extra = connect_from("127.0.0.5", addr).await;
    assert!(closed_within(&mut held[0], Duration::from_millis(500)).await);
    assert!(
        !closed_within(&mut extra, Duration::from_millis(300)).await,
        "the newcomer waits for its handshake"
    );
    assert!(!closed_within(&mut held[1], Duration::from_millis(100)).await);
    session.send_line("echo session-$((3*3))").await.unwrap();
    session
        .expect(&[Pattern::exact("session-9")], secs(5))
        .await
        .unwrap();
    drop(held);
    drop(extra);
    tokio::time::sleep(Duration::from_millis(200)).await;
    session.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = connect(&url, &WsOptions::default()).await.unwrap();
    converse(&mut next).await;
}

/// Issue 32: 128 half-open sockets from each of eight addresses filled all
/// 1,024 slots (and one address filled 128 of them), so a real client with
/// a valid token was reset. Scaled down: 64 slots, 8 per address, 16
/// addresses with 40 half-open sockets each, and a session that was open
/// before the flood.
#[tokio::test]
async fn half_open_sockets_from_many_addresses_do_not_lock_out_a_client_with_a_token() {
    let token = "fair-share-token-0123456789";
    let mut cfg = config(
        &[("a", "exec:sh"), ("b", "exec:sh")],
        Auth::token(Secret::new("t", token)).unwrap(),
    );
    cfg.limits.max_connections = 64;
    cfg.limits.max_per_address = 8;
    cfg.limits.handshake_timeout = Duration::from_secs(60);
    let addr = start(cfg).await;
    let options = WsOptions {
        auth: WsAuth::Bearer(Secret::new("t", token)),
        trust: Default::default(),
        ..WsOptions::default()
    };
    let mut before = connect(&format!("ws://{addr}/v1/consoles/a"), &options)
        .await
        .unwrap();
    converse(&mut before).await;
    let mut idle = Vec::new();
    for round in 0..40 {
        for host in 2..18 {
            let mut tcp = connect_from(&format!("127.0.0.{host}"), addr).await;
            if round % 2 == 0 {
                use tokio::io::AsyncWriteExt;
                let _ = tcp
                    .write_all(b"GET /v1/consoles/b HTTP/1.1\r\nHost: x\r\n")
                    .await;
            }
            idle.push(tcp);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let mut real = connect(&format!("ws://{addr}/v1/consoles/b"), &options)
        .await
        .expect("a client with a valid token gets its console among 640 half-open sockets");
    converse(&mut real).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // The session opened before the flood was never closed to make room.
    before.send_line("echo still-$((5*5))").await.unwrap();
    before
        .expect(&[Pattern::exact("still-25")], secs(5))
        .await
        .unwrap();
    drop(idle);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_ended_by_the_session_limits() {
    let mut cfg = config(
        &[("flood", "exec:yes console-output-that-nobody-reads")],
        Auth::None,
    );
    cfg.idle_timeout = Duration::from_secs(1);
    cfg.max_session = Duration::from_secs(2);
    let addr = start(cfg).await;
    let url = format!("ws://{addr}/v1/consoles/flood");
    // Connects, then never reads: the gateway's sends block on it.
    let stalled = raw_client(&url).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The console is free again: the stalled session ended at its limit.
    let mut next = raw_client(&url).await;
    let first = tokio::time::timeout(Duration::from_secs(5), next.next())
        .await
        .expect("the console answers the next client");
    match first {
        Some(Ok(Message::Binary(data))) => {
            assert!(String::from_utf8_lossy(&data).contains("console-output"))
        }
        other => panic!("the console is still held by the stalled client: {other:?}"),
    }
    drop(stalled);
}

#[tokio::test]
async fn cleartext_credentials_off_loopback_and_short_tokens_are_refused() {
    let token = || Auth::token(Secret::new("t", "0123456789abcdef0123")).unwrap();
    let cfg = |auth| GatewayConfig {
        consoles: [("sh".to_string(), "exec:sh".parse().unwrap())]
            .into_iter()
            .collect(),
        auth,
        ..GatewayConfig::default()
    };
    let err = gateway::bind("0.0.0.0:0", cfg(token()))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("clear text") && err.contains("--insecure-cleartext-credentials"),
        "{err}"
    );
    let mut allowed = cfg(token());
    allowed.insecure_cleartext_credentials = true;
    assert!(gateway::bind("0.0.0.0:0", allowed).await.is_ok());
    assert!(gateway::bind("127.0.0.1:0", cfg(token())).await.is_ok());
    let short = Auth::token(Secret::new("t", "too-short")).unwrap_err();
    assert!(short.contains("at least 16"), "{short}");
}

#[tokio::test]
async fn sigv4_is_bound_to_the_public_host_and_each_presigned_url_is_unique() {
    let identities = credentials::parse(CREDENTIALS).unwrap();
    let mut cfg = config(
        &[("sh", "exec:sh")],
        Auth::sigv4(identities.clone(), Some("eu-west-1".into()), 0).unwrap(),
    );
    cfg.public_hosts = vec!["console-gw.example:443".into()];
    let addr = start(cfg).await;
    // A URL presigned for another gateway, sent with that gateway's Host
    // header: the old check signed over whatever Host the client sent.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let query = ec2_serial_expect::aws::sigv4::presign(
        "other-gw.example:443",
        "/v1/consoles/sh",
        vec![],
        &identities[0],
        "eu-west-1",
        now,
    );
    let refused = |host: &'static str, query: String| async move {
        let request = http::Request::builder()
            .uri(format!("ws://{addr}/v1/consoles/sh?{query}"))
            .header("host", host)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        match tokio_tungstenite::client_async(request, tcp).await {
            Ok(_) => None,
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Some(r.status().as_u16()),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(refused("other-gw.example:443", query).await, Some(403));
    let query = ec2_serial_expect::aws::sigv4::presign(
        "console-gw.example:443",
        "/v1/consoles/sh",
        vec![],
        &identities[0],
        "eu-west-1",
        now,
    );
    assert_eq!(
        refused("console-gw.example:443", query).await,
        None,
        "signed for the public name"
    );

    // Our client: two connections in the same second both get in.
    let addr = start(config(
        &[("a", "exec:sh")],
        Auth::sigv4(identities.clone(), Some("eu-west-1".into()), 0).unwrap(),
    ))
    .await;
    let options = WsOptions {
        auth: WsAuth::SigV4 {
            credentials: identities[0].clone(),
            region: "eu-west-1".into(),
        },
        trust: Default::default(),
        ..WsOptions::default()
    };
    let a = connect(&format!("ws://{addr}/v1/consoles/a"), &options)
        .await
        .unwrap();
    a.close().await.unwrap();
    let mut again = connect(&format!("ws://{addr}/v1/consoles/a"), &options)
        .await
        .unwrap();
    converse(&mut again).await;
}

/// A console that outlives its clients, like a VM's serial port: one
/// long-lived program under a PTY (a getty-like loop that starts a shell
/// after `login:`), served on a Unix socket to one client at a time.
async fn persistent_console(dir: &std::path::Path) -> std::path::PathBuf {
    let script = dir.join("getty.sh");
    std::fs::write(
        &script,
        "while :; do printf 'login: '; read -r user || continue; [ -z \"$user\" ] && continue; PS1='shell$ ' bash --norc --noprofile -i; done\n",
    )
    .unwrap();
    let target: Target = format!("exec:sh {}", script.display()).parse().unwrap();
    let mut console = Console::open(&target).transport().await.unwrap();
    let sock = dir.join("console.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut out = vec![0u8; 4096];
        let mut input = vec![0u8; 4096];
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            loop {
                tokio::select! {
                    n = console.read(&mut out) => match n {
                        Ok(n) if n > 0 => { let _ = client.write_all(&out[..n]).await; }
                        _ => return,
                    },
                    n = client.read(&mut input) => match n {
                        Ok(n) if n > 0 => {
                            let _ = console.write(&input[..n], transport::SendKind::Plain).await;
                        }
                        _ => break,
                    },
                }
            }
        }
    });
    sock
}

#[tokio::test]
async fn a_client_that_leaves_logged_in_hands_the_next_one_a_login_prompt() {
    for (policy, next_sees) in [
        (gateway::OnDisconnect::Logout, "login: "),
        (gateway::OnDisconnect::Keep, "shell$ "),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let sock = persistent_console(dir.path()).await;
        let mut cfg = config(&[("vm", &format!("unix:{}", sock.display()))], Auth::None);
        cfg.on_disconnect = policy;
        let addr = start(cfg).await;
        let url = format!("ws://{addr}/v1/consoles/vm");
        let mut first = connect(&url, &WsOptions::default()).await.unwrap();
        first.send_line("").await.unwrap();
        first
            .expect(&[Pattern::exact("login: ")], secs(10))
            .await
            .unwrap();
        first.send_line("alice").await.unwrap();
        first
            .expect(&[Pattern::exact("shell$ ")], secs(10))
            .await
            .unwrap();
        first
            .send_line("export MARK=alice-$((40+2))")
            .await
            .unwrap();
        first
            .expect(&[Pattern::exact("shell$ ")], secs(10))
            .await
            .unwrap();
        drop(first); // gone without logging out
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut next = loop {
            let mut s = connect(&url, &WsOptions::default()).await.unwrap();
            s.send_line("").await.unwrap();
            match s
                .expect(
                    &[Pattern::exact("login: "), Pattern::exact("shell$ ")],
                    secs(5),
                )
                .await
            {
                Ok(m) => {
                    assert_eq!(m.text, next_sees, "{policy:?}");
                    break s;
                }
                Err(e) if e.to_string().contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("{policy:?}: {e}"),
            }
        };
        if policy == gateway::OnDisconnect::Keep {
            next.send_line("echo mark=$MARK").await.unwrap();
            next.expect(&[Pattern::exact("mark=alice-42")], secs(5))
                .await
                .unwrap();
        }
    }
}

/// Logs `first` in as alice on the persistent console and runs `setup` in
/// her shell; then the client leaves without logging out.
async fn leave_a_shell(url: &str, setup: &str) {
    let mut first = connect(url, &WsOptions::default()).await.unwrap();
    first.send_line("").await.unwrap();
    first
        .expect(&[Pattern::exact("login: ")], secs(10))
        .await
        .unwrap();
    first.send_line("alice").await.unwrap();
    first
        .expect(&[Pattern::exact("shell$ ")], secs(10))
        .await
        .unwrap();
    first
        .send_line("export MARK=alice-$((40+2))")
        .await
        .unwrap();
    first
        .expect(&[Pattern::exact("shell$ ")], secs(10))
        .await
        .unwrap();
    first.send_line(setup).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(first); // gone without logging out
}

/// The next client on `url`, once the console is no longer in use: what it
/// sees after an Enter (a login prompt, a shell, or an error).
async fn next_client_sees(url: &str) -> Result<(Session, String), String> {
    let started = std::time::Instant::now();
    loop {
        let mut s = connect(url, &WsOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let _ = s.send_line("").await;
        match s
            .expect(
                &[
                    Pattern::exact("login: "),
                    Pattern::exact("shell$ "),
                    Pattern::exact("alice-42"),
                ],
                secs(15),
            )
            .await
        {
            Ok(m) => return Ok((s, m.text)),
            Err(e)
                if e.to_string().contains("in use")
                    && started.elapsed() < Duration::from_secs(60) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Issue 32: the gateway's Ctrl-C and Ctrl-D x3 were not checked; a shell
/// that ignores Ctrl-D (bash's IGNOREEOF), or a pager left running in one,
/// was handed to the next client. Now the logout is proven: the next
/// client gets the login prompt. Also when the pager shows the words of a
/// login refusal (which once counted as a proof).
#[tokio::test]
async fn a_shell_that_ignores_eof_or_a_pager_is_logged_out_before_the_next_client() {
    for setup in [
        "set -o ignoreeof",
        "set -o ignoreeof; seq 1 5000 > pages.txt; less pages.txt",
        // Second review of issue 32: the words of a refusal on the pager's
        // screen counted as "no shell here" and handed the shell on.
        "for i in $(seq 1 500); do echo \"Your password has expired? line $i\"; done > p.txt; less p.txt",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let sock = persistent_console(dir.path()).await;
        let mut cfg = config(&[("vm", &format!("unix:{}", sock.display()))], Auth::None);
        cfg.record_dir = Some(dir.path().join("rec"));
        let addr = start(cfg).await;
        let url = format!("ws://{addr}/v1/consoles/vm");
        leave_a_shell(&url, &format!("cd {} && {setup}", dir.path().display())).await;
        let (mut next, seen) = next_client_sees(&url)
            .await
            .unwrap_or_else(|e| panic!("{setup}: {e}"));
        assert_eq!(
            seen, "login: ",
            "{setup}: the next client was handed {seen:?}"
        );
        // And it is a real login prompt: a new user gets a fresh shell.
        next.send_line("bob").await.unwrap();
        next.expect(&[Pattern::exact("shell$ ")], secs(10))
            .await
            .unwrap();
        next.send_line("echo mark=[$MARK]").await.unwrap();
        next.expect(&[Pattern::exact("mark=[]")], secs(5))
            .await
            .unwrap();
    }
}

/// Issue 32: a shell the gateway cannot log out (here `exit` redefined) is
/// never handed on: the next client is refused with a reason, and sees
/// nothing of the console.
#[tokio::test]
async fn a_console_that_cannot_be_logged_out_is_refused_to_the_next_client() {
    let dir = tempfile::tempdir().unwrap();
    let sock = persistent_console(dir.path()).await;
    let cfg = config(&[("vm", &format!("unix:{}", sock.display()))], Auth::None);
    let addr = start(cfg).await;
    let url = format!("ws://{addr}/v1/consoles/vm");
    leave_a_shell(&url, "set -o ignoreeof; exit() { echo staying; }").await;
    let err = match next_client_sees(&url).await {
        Ok((_, seen)) => panic!("the next client was handed {seen:?}"),
        Err(e) => e,
    };
    assert!(
        err.contains("unusable") && err.contains("could not be logged out"),
        "{err}"
    );
    assert!(
        !err.contains("shell$") && !err.contains("staying") && !err.contains("alice"),
        "the refused client saw the console: {err}"
    );
}

/// Issue 32: a password typed at a password prompt of a console that echoes
/// it was kept in the gateway's recording (the client's transcript redacts
/// it). The gateway now treats a line typed at a password prompt as a secret.
#[tokio::test]
async fn the_recording_scrubs_a_password_typed_at_a_prompt_that_echoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        &[(
            "echoing",
            "exec:sh -c 'printf \"Password: \"; read -r pw; echo \"got $pw\"; printf \"done$ \"; read -r x'",
        )],
        Auth::None,
    );
    cfg.record_dir = Some(dir.path().to_path_buf());
    let addr = start(cfg).await;
    let mut s = connect(
        &format!("ws://{addr}/v1/consoles/echoing"),
        &WsOptions::default(),
    )
    .await
    .unwrap();
    s.expect(&[Pattern::exact("Password: ")], secs(10))
        .await
        .unwrap();
    s.send_secret(&Secret::new("pw", "hunter2-Sekrit"))
        .await
        .unwrap();
    s.send("\r").await.unwrap();
    s.expect(&[Pattern::exact("done$ ")], secs(10))
        .await
        .unwrap();
    s.send_line("bye").await.unwrap();
    let _ = s.expect(&[Pattern::exact("never")], secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let casts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(casts.len(), 1, "{casts:?}");
    let text = std::fs::read_to_string(&casts[0]).unwrap();
    assert!(text.contains("got <redacted>"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
