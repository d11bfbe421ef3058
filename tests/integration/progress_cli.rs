//! What a person sees on a long wait: under a real pseudo-terminal a line
//! per phase saying what is awaited and for how long (and `--login-timeout`
//! bounding the login); through a pipe none of it and no escape sequence;
//! colour only on a terminal and never with `NO_COLOR`; a local program
//! sized like the user's terminal.

use std::process::Command;
use std::time::{Duration, Instant};

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::Target;

const BIN: &str = env!("CARGO_BIN_EXE_ec2-serial-expect");
/// A console that never shows a login prompt.
const SILENT: &str = "exec:sleep 30";

/// Runs `sh -c script` under a pseudo-terminal and returns what it wrote
/// to the terminal, byte for byte (from the session's transcript: the
/// session's own matching sees text with escape sequences taken out), up to
/// the `exit=N` line it ends with.
async fn under_a_terminal(script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("terminal.cast");
    let target = Target::Exec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            format!("{script}; echo \"exit=$?\""),
        ],
    };
    let mut term = Console::open(&target)
        .transcript(cast.clone())
        .session()
        .await
        .unwrap();
    let pattern = ec2_serial_expect::Pattern::regex(r"exit=\d+");
    term.expect(&[pattern], Some(Duration::from_secs(30)))
        .await
        .unwrap();
    term.close().await.unwrap();
    let cast = ec2_serial_expect::transcript::cast::Cast::read(&cast).unwrap();
    cast.events
        .iter()
        .filter(|e| e.code == ec2_serial_expect::transcript::cast::EventCode::Output)
        .map(|e| e.data.as_str())
        .collect()
}

fn doctor_line(extra: &str) -> String {
    format!(
        "P=x {BIN} --no-transcript {extra} doctor '{SILENT}' --user ec2-user \
         --password-env P --login-timeout 2"
    )
}

#[tokio::test]
async fn a_terminal_sees_each_phase_and_the_login_limit_holds() {
    let started = Instant::now();
    let seen = under_a_terminal(&doctor_line("")).await;
    assert!(seen.contains(&format!("connecting to {SILENT}")), "{seen}");
    assert!(
        seen.contains("waiting for a login prompt, logging in as ec2-user (up to 2 s)"),
        "{seen}"
    );
    assert!(seen.contains("exit=5"), "the login timed out: {seen}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "--login-timeout 2 bounds the wait, not the default 90 s"
    );
}

#[test]
fn a_pipe_gets_no_progress_and_no_escapes() {
    let out = Command::new("sh")
        .args(["-c", &doctor_line("-vv")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(!err.contains("logging in as ec2-user (up to"), "{err}");
    assert!(!err.contains('\x1b'), "no colour in a pipe: {err:?}");
    assert!(err.contains("error:"), "{err}");
}

#[tokio::test]
async fn colour_only_on_a_terminal_and_never_with_no_color() {
    let coloured = under_a_terminal(&doctor_line("-vv")).await;
    assert!(
        coloured.contains('\x1b'),
        "-vv on a terminal is coloured: {coloured:?}"
    );
    let plain = under_a_terminal(&format!("NO_COLOR=1 {}", doctor_line("-vv"))).await;
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    assert!(plain.contains("DEBUG"), "{plain}");
}

/// A local program gets the size of the user's terminal (as under `ssh`);
/// without one, the default 200×50.
#[tokio::test]
async fn a_local_program_gets_the_users_terminal_size() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("size.rhai");
    std::fs::write(
        &script,
        "let m = expect([\"(\\\\d+) (\\\\d+)\"]);\nlog(`rows=${m.groups[1]} cols=${m.groups[2]}`);\n",
    )
    .unwrap();
    let run = format!(
        "{BIN} --no-transcript run 'exec:sh -c \"stty size; sleep 1\"' {}",
        script.display()
    );
    let seen = under_a_terminal(&format!("stty cols 120 rows 40; {run}")).await;
    assert!(seen.contains("rows=40 cols=120"), "{seen}");
    let out = Command::new("sh").args(["-c", &run]).output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("rows=50 cols=200"), "{shown}");
}
