//! WebSocket end to end: the client transport against the project's gateway
//! (and against raw tokio-tungstenite servers for protocol edge cases), with
//! real consoles behind it: programs under a PTY and Unix socket servers.

#[path = "support/pki.rs"]
mod pki;

use std::collections::HashMap;
use std::time::Duration;

use ec2_serial_expect::aws::credentials::{self, Credentials};
use ec2_serial_expect::gateway::{self, Auth, GatewayConfig};
use ec2_serial_expect::transcript::Recorder;
use ec2_serial_expect::transport::{self, WsAuth, WsOptions};
use ec2_serial_expect::{Error, Pattern, Secret, Session, SessionOptions, Target};
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
    }
}

async fn start(config: GatewayConfig) -> std::net::SocketAddr {
    let (addr, server) = gateway::bind("127.0.0.1:0", config).await.unwrap();
    tokio::spawn(server);
    addr
}

async fn connect(url: &str, options: &WsOptions) -> Result<Session, Error> {
    let target: Target = url.parse().unwrap();
    let t = transport::open_with(&target, options).await?;
    Ok(Session::new(
        t,
        Recorder::disabled(),
        SessionOptions::default(),
    ))
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
        matches!(err, Error::Eof { .. }),
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
        ca_file: None,
    };
    converse(&mut connect(&url, &good).await.unwrap()).await;

    let bad = WsOptions {
        auth: WsAuth::Bearer(Secret::new("token", "guess")),
        ca_file: None,
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
    assert!(msg.contains("HTTP 404") && msg.contains("\"sh\""), "{msg}");
}

#[tokio::test]
async fn sigv4_presigned_urls_are_verified_and_cannot_be_replayed() {
    let identities = credentials::parse(CREDENTIALS).unwrap();
    let auth = Auth::SigV4 {
        credentials: identities.clone(),
        region: Some("eu-west-1".into()),
        used: Default::default(),
    };
    let addr = start(config(&[("sh", "exec:sh")], auth)).await;
    let url = format!("ws://{addr}/v1/consoles/sh");
    let signed = |c: Credentials, region: &str| WsOptions {
        auth: WsAuth::SigV4 {
            credentials: c,
            region: region.into(),
        },
        ca_file: None,
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
        !matches!(err, Error::Timeout { .. }),
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
        Auth::SigV4 {
            credentials: identities.clone(),
            region: None,
            used: Default::default(),
        },
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
        ca_file: Some(dir.path().join("ca.pem")),
    };
    converse(&mut connect(&url, &options).await.unwrap()).await;

    // Without the private CA the certificate is not trusted, and the error says what to do.
    let msg = connect(
        &url,
        &WsOptions {
            auth,
            ca_file: None,
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
