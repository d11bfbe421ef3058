//! The gateway's held consoles and its web page's HTTP rules, end to end
//! against a real gateway and real programs under PTYs (the browser itself
//! is driven in `web_browser`).

use std::collections::HashMap;
use std::time::Duration;

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::gateway::{
    self, Auth, GatewayConfig, HoldOptions, OnDisconnect, WebOptions,
};
use ec2_serial_expect::{Pattern, Secret, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "web-test-token-0123456789abcdef";

fn config(consoles: &[(&str, &str)]) -> GatewayConfig {
    GatewayConfig {
        consoles: consoles
            .iter()
            .map(|(n, t)| (n.to_string(), t.parse::<Target>().unwrap()))
            .collect::<HashMap<_, _>>(),
        idle_timeout: Duration::from_secs(60),
        max_session: Duration::from_secs(600),
        on_disconnect: OnDisconnect::Keep,
        ..GatewayConfig::default()
    }
}

async fn start(config: GatewayConfig) -> std::net::SocketAddr {
    let (addr, server) = gateway::bind("127.0.0.1:0", config).await.unwrap();
    tokio::spawn(server);
    addr
}

/// A program that prints a line at start ("boot"), then answers lines.
const BOOTS_THEN_ANSWERS: &str =
    "exec:sh -c 'echo BOOT-MARK-$((40+2)); while read l; do echo \"got:$l\"; done'";

#[tokio::test]
async fn a_held_console_keeps_what_it_printed_for_the_next_client_as_context() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    let mut config = config(&[("boot", BOOTS_THEN_ANSWERS)]);
    config.hold = Some(HoldOptions::default());
    config.record_dir = Some(records.clone());
    let addr = start(config).await;
    // Nobody is attached while it boots.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let transcript = dir.path().join("client.cast");
    let target: Target = format!("ws://{addr}/v1/consoles/boot").parse().unwrap();
    let mut session = Console::open(&target)
        .transcript(transcript.clone())
        .session()
        .await
        .unwrap();
    // The boot line is history: context, not output of this session.
    let matched = session
        .expect(
            &[Pattern::exact("BOOT-MARK-42")],
            Some(Duration::from_millis(700)),
        )
        .await;
    assert!(matched.is_err(), "the history was matched as fresh output");
    session.send_line("hello").await.unwrap();
    session
        .expect(
            &[Pattern::exact("got:hello")],
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    session.close().await.unwrap();

    let recorded = std::fs::read_to_string(&transcript).unwrap();
    let history_marker = recorded
        .lines()
        .find(|l| l.contains("\"m\"") && l.contains("history"))
        .unwrap_or_else(|| panic!("no history marker in {recorded}"));
    assert!(history_marker.contains("BOOT-MARK-42"), "{history_marker}");

    // The gateway's own recording has it all, from the start.
    let held: Vec<_> = std::fs::read_dir(&records)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("-held-"))
        .collect();
    assert_eq!(held.len(), 1, "one continuous recording");
    let text = std::fs::read_to_string(held[0].path()).unwrap();
    assert!(
        text.contains("BOOT-MARK-42") && text.contains("got:hello"),
        "{text}"
    );
}

#[tokio::test]
async fn a_held_console_that_goes_away_is_reconnected() {
    // Each start prints a new number, then the program ends.
    let counter = tempfile::tempdir().unwrap();
    let count = counter.path().join("n");
    let target = format!(
        "exec:sh -c 'echo x >> {}; echo START-$(wc -l < {}); sleep 0.2'",
        count.display(),
        count.display()
    );
    let mut config = config(&[("flaky", &target)]);
    config.hold = Some(HoldOptions::default());
    let addr = start(config).await;
    let url: Target = format!("ws://{addr}/v1/consoles/flaky").parse().unwrap();
    // After the first exit, the gateway starts it again (backoff 1 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let lines = std::fs::read_to_string(&count).unwrap().lines().count();
    assert!(lines >= 2, "reconnected {lines} time(s)");
    // Attaching while it is down or up: either a session with the history,
    // or a clear refusal naming why.
    match Console::open(&url).session().await {
        Ok(s) => {
            let _ = s.close().await;
        }
        Err(e) => assert!(e.to_string().contains("not connected"), "{e}"),
    }
}

/// One HTTP/1.1 request over a fresh connection: status, headers, body.
async fn http(addr: std::net::SocketAddr, request: &str) -> (u16, String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

fn get(addr: std::net::SocketAddr, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n")
}

fn post(addr: std::net::SocketAddr, path: &str, extra: &str, form: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{form}",
        form.len()
    )
}

#[tokio::test]
async fn the_web_page_shows_nothing_without_the_token_and_refuses_foreign_requests() {
    let mut config = config(&[("secret-console-name", "exec:cat")]);
    config.auth = Auth::token(Secret::new("token", TOKEN)).unwrap();
    config.web = Some(WebOptions::default());
    let addr = start(config).await;
    let origin = format!("Origin: http://{addr}\r\n");
    let name = "secret-console-name";

    // Not signed in: the sign-in form, and no console's name anywhere.
    let (status, head, body) = http(addr, &get(addr, "/", "")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("type=\"password\"") && !body.contains(name),
        "{body}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(head.contains("x-frame-options: deny"), "{head}");
    let (status, _, body) = http(addr, &get(addr, &format!("/consoles/{name}"), "")).await;
    assert_eq!(status, 303);
    assert!(!body.contains(name));
    // The WebSocket is no way round it.
    let ws = format!("Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}");
    let (status, _, _) = http(addr, &get(addr, &format!("/consoles/{name}/ws"), &ws)).await;
    assert_eq!(status, 303);

    // A wrong token: refused, nothing shown.
    let (status, _, body) = http(
        addr,
        &post(addr, "/sign-in", &origin, "token=wrong&name=eve"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        !body.contains(name) && body.contains("not this gateway"),
        "{body}"
    );
    // A form from another site's page (or none): refused before the token.
    let (status, _, _) = http(
        addr,
        &post(
            addr,
            "/sign-in",
            "Origin: http://evil.example\r\n",
            &format!("token={TOKEN}"),
        ),
    )
    .await;
    assert_eq!(status, 403);
    // A name the gateway does not answer to (DNS rebinding): nothing.
    let rebound = get(addr, "/", "").replace(&format!("Host: {addr}"), "Host: evil.example");
    assert_eq!(http(addr, &rebound).await.0, 421);

    // The right token: a session cookie a script cannot read.
    let (status, head, _) = http(
        addr,
        &post(
            addr,
            "/sign-in",
            &origin,
            &format!("token={TOKEN}&name=alice"),
        ),
    )
    .await;
    assert_eq!(status, 303, "{head}");
    let cookie_line = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap()
        .to_string();
    for attribute in ["httponly", "samesite=strict", "path=/", "max-age="] {
        assert!(cookie_line.contains(attribute), "{cookie_line}");
    }
    let cookie = cookie_line
        .trim_start_matches("set-cookie: ")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let with_cookie = format!("Cookie: {cookie}\r\n");
    let (status, _, body) = http(addr, &get(addr, "/", &with_cookie)).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!(">{name}</a>")) && body.contains("alice"),
        "{body}"
    );
    // The tool's own path is not for browsers: a page on another site
    // must not drive a console through it either.
    let v1 = format!(
        "GET /v1/consoles/{name} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {TOKEN}\r\nOrigin: http://evil.example\r\n\r\n"
    );
    let (status, _, _) = http(addr, &v1).await;
    assert_eq!(status, 403);
    // A cross-site WebSocket (another origin) is refused even with the cookie.
    let foreign = ws.replace(&origin, "Origin: http://evil.example\r\n");
    let (status, _, _) = http(
        addr,
        &get(
            addr,
            &format!("/consoles/{name}/ws"),
            &format!("{foreign}{with_cookie}"),
        ),
    )
    .await;
    assert_ne!(status, 101);

    // Signing out needs the page's form key, and ends the session.
    let (status, _, _) = http(
        addr,
        &post(
            addr,
            "/sign-out",
            &format!("{origin}{with_cookie}"),
            "form_key=guess",
        ),
    )
    .await;
    assert_eq!(status, 403);
    let key = body
        .split("name=\"form_key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let (status, _, _) = http(
        addr,
        &post(
            addr,
            "/sign-out",
            &format!("{origin}{with_cookie}"),
            &format!("form_key={key}"),
        ),
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, body) = http(addr, &get(addr, "/", &with_cookie)).await;
    assert!(!body.contains(name), "signed out, yet: {body}");

    // Guessing: five wrong tokens, then even the right one waits.
    for _ in 0..4 {
        http(addr, &post(addr, "/sign-in", &origin, "token=guess")).await;
    }
    let (status, head, _) = http(
        addr,
        &post(addr, "/sign-in", &origin, &format!("token={TOKEN}")),
    )
    .await;
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("retry-after:"), "{head}");
}

#[test]
fn web_needs_a_token_a_browser_can_type() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &credentials,
        "[ops]\naws_access_key_id = AKIDWEBTEST\naws_secret_access_key = web-secret-Key/123\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--console",
            "lab=exec:cat",
        ])
        .args(["--auth", "sigv4", "--web", "--credentials"])
        .arg(&credentials)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--web needs --auth token"), "{stderr}");
}
