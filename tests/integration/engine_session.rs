//! The expect engine against real peers: programs under a PTY and Unix socket
//! servers, with the hostile input consoles really send.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::transcript::cast::{Cast, EventCode};
use ec2_serial_expect::{ErrorKind, Pattern, Secret, Session, SessionOptions, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

async fn session(target: &str, transcript: Option<&Path>) -> Session {
    crate::support::open_session(target, transcript, 30).await
}

fn sh(script: &str) -> String {
    format!("exec:sh -c {}", shell_words::quote(script))
}

fn secs(s: f64) -> Option<Duration> {
    Some(Duration::from_secs_f64(s))
}

#[tokio::test]
async fn earliest_match_in_stream_wins_and_rest_stays_for_next_expect() {
    let mut s = session(
        &sh("printf 'Login incorrect\\r\\n\\r\\nhost login: '; sleep 5"),
        None,
    )
    .await;
    let m = s
        .expect(
            &[
                Pattern::regex("login: $"),
                Pattern::regex("Login incorrect"),
            ],
            secs(5.0),
        )
        .await
        .unwrap();
    assert_eq!(m.index, 1, "the failure comes first in the stream");
    assert_eq!(m.text, "Login incorrect");
    let m = s
        .expect(&[Pattern::regex(r"(\w+) login: $")], secs(5.0))
        .await
        .unwrap();
    assert_eq!(m.groups[1].as_deref(), Some("host"));
    // The PTY turns each \n into \r\n (onlcr): exactly what a console shows.
    assert_eq!(m.before, "\r\r\n\r\r\n");
}

#[tokio::test]
async fn timeout_is_absolute_even_when_the_console_chatters() {
    // A line every 50 ms forever: an inactivity timeout would never fire.
    let mut s = session(
        &sh("while :; do echo '[  1.0] noise'; sleep 0.05; done"),
        None,
    )
    .await;
    let started = Instant::now();
    let err = s
        .expect(&[Pattern::exact("never")], secs(0.6))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    match err.kind() {
        ErrorKind::Timeout { awaited, tail, .. } => {
            assert!(awaited.contains("never"));
            assert!(tail.contains("noise"), "tail shows recent output: {tail:?}");
            assert!(tail.chars().count() <= 200);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(err.exit_code().code(), 5);
}

#[tokio::test]
async fn eof_mid_expect_is_distinct_from_timeout() {
    let mut s = session(&sh("printf 'partial output'"), None).await;
    let err = s
        .expect(&[Pattern::exact("prompt>")], secs(10.0))
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::Eof { tail, .. } => assert!(tail.contains("partial output")),
        other => panic!("expected EOF, got {other:?}"),
    }
    assert_eq!(err.exit_code().code(), 3);
}

#[tokio::test]
async fn escape_sequences_inside_a_prompt_do_not_break_matching() {
    let prompt = "\\033[?2004h\\033]0;title\\007\\033[01;32mec2-user@lab\\033[0m:~$ ";
    let mut s = session(&sh(&format!("printf '{prompt}'; sleep 5")), None).await;
    let m = s
        .expect(&[Pattern::regex(r"ec2-user@lab:~\$ $")], secs(5.0))
        .await
        .unwrap();
    assert_eq!(m.text, "ec2-user@lab:~$ ");
}

#[tokio::test]
async fn invalid_utf8_is_replaced_and_does_not_stop_matching() {
    let mut s = session(&sh("printf 'caf\\303\\251 \\377\\376 ok>'; sleep 5"), None).await;
    let m = s.expect(&[Pattern::exact("ok>")], secs(5.0)).await.unwrap();
    assert_eq!(m.before, "café \u{fffd}\u{fffd} ");
}

/// A Unix socket console that writes `script` one byte per write, then echoes input.
async fn byte_by_byte_server(dir: &Path, script: &'static [u8]) -> String {
    let path = dir.join("console.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        for b in script {
            stream.write_all(&[*b]).await.unwrap();
            stream.flush().await.unwrap();
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let mut buf = [0u8; 256];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n]).await.unwrap();
        }
    });
    format!("unix:{}", path.display())
}

#[tokio::test]
async fn one_byte_reads_split_utf8_escapes_and_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let target = byte_by_byte_server(
        dir.path(),
        "boot \u{2713} \x1b[1mlab-instance\x1b[0m login: ".as_bytes(),
    )
    .await;
    let mut s = session(&target, None).await;
    let m = s
        .expect(&[Pattern::regex(r"(\S+) login: $")], secs(10.0))
        .await
        .unwrap();
    assert_eq!(m.groups[1].as_deref(), Some("lab-instance"));
    assert_eq!(m.before, "boot \u{2713} ");
}

#[tokio::test]
async fn an_echoed_secret_never_reaches_the_transcript_or_the_match_text() {
    let dir = tempfile::tempdir().unwrap();
    let target = byte_by_byte_server(dir.path(), b"Password: ").await;
    let cast = dir.path().join("s.cast");
    let mut s = session(&target, Some(&cast)).await;
    let secret = Secret::new("password", "hunter2-Very-Secret");
    s.expect(&[Pattern::exact("Password: ")], secs(10.0))
        .await
        .unwrap();
    s.send_secret(&secret).await.unwrap();
    s.send_line("").await.unwrap();
    // The server echoes what we sent: the secret comes back in the output.
    let m = s.expect(&[Pattern::exact("\r")], secs(10.0)).await.unwrap();
    assert_eq!(m.before, "<redacted>");
    let err = s
        .expect(&[Pattern::exact("nothing")], secs(0.3))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
    s.close().await.unwrap();

    let text = std::fs::read_to_string(&cast).unwrap();
    assert!(!text.contains("hunter2"), "secret in transcript:\n{text}");
    let mode = std::fs::metadata(&cast).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let parsed = Cast::parse(&text).unwrap();
    let inputs: Vec<&str> = parsed
        .events
        .iter()
        .filter(|e| e.code == EventCode::Input)
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(inputs, ["<redacted>", "\r"]);
    let output: String = parsed
        .events
        .iter()
        .filter(|e| e.code == EventCode::Output)
        .map(|e| e.data.as_str())
        .collect();
    assert!(output.contains("Password: <redacted>\r"), "{output:?}");
    assert!(parsed
        .events
        .iter()
        .any(|e| e.code == EventCode::Marker && e.data.contains("expect matched")));
}

#[tokio::test]
async fn sixty_four_mib_before_the_match_with_bounded_memory() {
    let mut s = session(
        &sh("head -c 67108864 /dev/zero | tr '\\0' 'x'; echo; echo MARKER-$((6*7))"),
        None,
    )
    .await;
    let m = s
        .expect(&[Pattern::regex(r"MARKER-(\d+)")], secs(60.0))
        .await
        .unwrap();
    assert_eq!(m.groups[1].as_deref(), Some("42"));
    // The unconsumed text kept is capped: `before` is at most the buffer cap.
    assert!(
        m.before.len() <= s.options().max_buffer,
        "before kept {} bytes",
        m.before.len()
    );
    assert!(m.before.ends_with("xxx\r\n"));
}

#[tokio::test]
async fn send_and_expect_round_trip_through_a_real_shell() {
    let mut s = session("exec:sh", None).await;
    s.expect(&[Pattern::regex(r"[#$] $")], secs(10.0))
        .await
        .unwrap();
    s.send_line("PS1='$ '; echo $((40+2))").await.unwrap();
    let m = s
        .expect(&[Pattern::regex(r"\r\n(\d+)\r\n")], secs(10.0))
        .await
        .unwrap();
    assert_eq!(m.groups[1].as_deref(), Some("42"));
    s.send_line("exit").await.unwrap();
    let err = s
        .expect(&[Pattern::exact("never")], secs(10.0))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Eof { .. }), "{err:?}");
}

#[tokio::test]
async fn paced_sending_arrives_whole() {
    let target: Target = "exec:cat".parse().unwrap();
    let options = SessionOptions {
        pacing: Some(ec2_serial_expect::expect::Pacing {
            chunk: 3,
            delay: Duration::from_millis(5),
        }),
        ..SessionOptions::default()
    };
    let mut s = Console::open(&target)
        .options(options)
        .session()
        .await
        .unwrap();
    let started = Instant::now();
    s.send_line("paced-line-0123456789").await.unwrap();
    s.expect(&[Pattern::exact("paced-line-0123456789\r\n")], secs(5.0))
        .await
        .unwrap();
    // 22 bytes in chunks of 3 with 5 ms pauses: at least 8 pauses.
    assert!(started.elapsed() >= Duration::from_millis(40));
}

#[tokio::test]
async fn a_recorded_session_replays_and_a_different_send_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("cat.cast");
    {
        let mut s = session("exec:sh -c 'printf \"name? \"; read n; echo \"hello $n\"; printf \"pw? \"; read p; echo done'", Some(&cast)).await;
        s.expect(&[Pattern::exact("name? ")], secs(5.0))
            .await
            .unwrap();
        s.send_line("world").await.unwrap();
        s.expect(&[Pattern::regex(r"hello (\w+)")], secs(5.0))
            .await
            .unwrap();
        s.expect(&[Pattern::exact("pw? ")], secs(5.0))
            .await
            .unwrap();
        s.send_secret(&Secret::new("pw", "s3cr3t-value"))
            .await
            .unwrap();
        s.send_line("").await.unwrap();
        s.expect(&[Pattern::exact("done")], secs(5.0))
            .await
            .unwrap();
        s.close().await.unwrap();
    }
    assert!(!std::fs::read_to_string(&cast)
        .unwrap()
        .contains("s3cr3t-value"));
    let replay = format!("replay:{}", cast.display());

    // Same conversation, a different secret: accepted, full speed.
    let started = Instant::now();
    let mut s = session(&replay, None).await;
    s.expect(&[Pattern::exact("name? ")], secs(5.0))
        .await
        .unwrap();
    s.send_line("world").await.unwrap();
    let m = s
        .expect(&[Pattern::regex(r"hello (\w+)")], secs(5.0))
        .await
        .unwrap();
    assert_eq!(m.groups[1].as_deref(), Some("world"));
    s.expect(&[Pattern::exact("pw? ")], secs(5.0))
        .await
        .unwrap();
    s.send_secret(&Secret::new("pw", "another")).await.unwrap();
    s.send_line("").await.unwrap();
    s.expect(&[Pattern::exact("done")], secs(5.0))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));

    // A different send fails at once, naming the event and both sides.
    let mut s = session(&replay, None).await;
    s.expect(&[Pattern::exact("name? ")], secs(5.0))
        .await
        .unwrap();
    let err = s.send_line("mars").await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err.kind(), ErrorKind::ReplayMismatch(_)),
        "{err:?}"
    );
    assert!(
        msg.contains("event #") && msg.contains("\"world\\r\"") && msg.contains("\"mars\\r\""),
        "{msg}"
    );

    // A plain send where the recording has a secret is refused too.
    let mut s = session(&replay, None).await;
    s.expect(&[Pattern::exact("name? ")], secs(5.0))
        .await
        .unwrap();
    s.send_line("world").await.unwrap();
    s.expect(&[Pattern::exact("pw? ")], secs(5.0))
        .await
        .unwrap();
    let err = s.send("guess").await.unwrap_err();
    assert!(err.to_string().contains("expected a secret"), "{err}");

    // Output recorded after an input is gated: expecting it without sending times out.
    let mut s = session(&replay, None).await;
    s.expect(&[Pattern::exact("name? ")], secs(5.0))
        .await
        .unwrap();
    let err = s
        .expect(&[Pattern::exact("hello")], secs(0.3))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn a_transcript_is_flushed_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("live.cast");
    let mut s = session(&sh("printf 'first> '; sleep 30"), Some(&cast)).await;
    s.expect(&[Pattern::exact("first> ")], secs(5.0))
        .await
        .unwrap();
    // Without closing the session, the file already holds the output.
    let text = std::fs::read_to_string(&cast).unwrap();
    assert!(text.contains("first> "), "{text}");
    Cast::parse(&text).unwrap();
}
