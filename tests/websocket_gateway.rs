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
