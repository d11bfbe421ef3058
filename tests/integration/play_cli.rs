//! `play` through the binary: what is shown, how fast, and what bad input
//! does (exit code 2 with the file, the line and the fix in the message).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ec2-serial-expect");
const HEADER: &str = "{\"version\":2,\"width\":80,\"height\":24}\n";

fn play(file: &Path, extra: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .arg("play")
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    (out, started.elapsed())
}

fn write_cast(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("t.cast");
    std::fs::write(&path, format!("{HEADER}{body}")).unwrap();
    path
}

#[test]
fn shows_output_only_with_its_timing_scaled_and_idle_capped() {
    let dir = tempfile::tempdir().unwrap();
    // 0.4 s, then an hour of silence (capped at 2 s): 2.4 s recorded → 0.6 s at 4×.
    let file = write_cast(
        dir.path(),
        "[0.4,\"o\",\"login: \"]\n[0.5,\"i\",\"root\\r\"]\n[0.6,\"m\",\"step\"]\n\
         [3600.4,\"o\",\"root\\r\\n\\u001b[1mwelcome\\u001b[0m\\r\\n\"]\n",
    );
    let (out, took) = play(&file, &["--speed", "4"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "login: root\r\n\x1b[1mwelcome\x1b[0m\r\n",
        "o events verbatim, escapes included; no i or m events"
    );
    assert!(
        // At 1× it would take 2.4 s: the bound leaves room for a loaded machine.
        took >= Duration::from_millis(550) && took < Duration::from_millis(2000),
        "took {took:?}, expected about 0.6 s"
    );
}

#[test]
fn default_speed_keeps_the_recorded_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_cast(dir.path(), "[0.1,\"o\",\"a\"]\n[0.8,\"o\",\"b\"]\n");
    let (out, took) = play(&file, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"ab");
    assert!(took >= Duration::from_millis(750), "took {took:?}");
}

#[test]
fn a_bad_line_is_named_and_nothing_is_played() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_cast(dir.path(), "[0.1,\"o\",\"fine\"]\n[0.2,\"o\"]\n");
    let (out, _) = play(&file, &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "checked before playing");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[test]
fn missing_and_non_asciicast_files_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = play(&dir.path().join("nope.cast"), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.cast"));

    let file = dir.path().join("v1.cast");
    std::fs::write(&file, "{\"version\":1}\n").unwrap();
    let (out, _) = play(&file, &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("v1.cast") && stderr.contains("line 1"),
        "{stderr}"
    );
}

#[test]
fn speed_must_be_greater_than_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_cast(dir.path(), "[0.1,\"o\",\"a\"]\n");
    for bad in ["--speed=0", "--speed=-2", "--speed=NaN"] {
        let (out, _) = play(&file, &[bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--speed") && stderr.contains("greater than 0"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn absurd_speeds_are_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_cast(dir.path(), "[0.1,\"o\",\"a\"]\n");
    for bad in ["--speed=1e-20", "--speed=1e9", "--speed=inf"] {
        let (out, _) = play(&file, &[bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("from 0.001 to 1000") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..2000)
        .map(|i| {
            format!(
                "[{}.0,\"o\",\"line {i} {}\\r\\n\"]\n",
                i / 1000,
                "x".repeat(200)
            )
        })
        .collect();
    let file = write_cast(dir.path(), &body);
    // pipefail: the pipeline's status is play's own when play fails.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {BIN} play {} | head -c 10 >/dev/null",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

/// The asciicast v3 specification's example (asciinema 3's default
/// format): size under `term`, each event timed from the one before it,
/// `#` comments, `x` (exit) events.
const V3_EXAMPLE: &str = "{\"version\": 3, \"term\": {\"cols\": 80, \"rows\": 24, \"type\": \"xterm-256color\"}, \"timestamp\": 1504467315, \"title\": \"Demo\", \"env\": {\"SHELL\": \"/bin/zsh\"}}\n\
# event stream follows the header\n\
[0.248, \"o\", \"\\u001b[1;31mHello \\u001b[32mWorld!\\u001b[0m\\n\"]\n\
[1.001, \"o\", \"That was ok\\rThis is better.\"]\n\
[3.500, \"m\", \"\"]\n\
[0.143, \"o\", \"Now... \"]\n\
# terminal window resized to 90 cols and 30 rows\n\
[2.050, \"r\", \"90x30\"]\n\
[1.541, \"o\", \"Bye!\"]\n\
[0.887, \"x\", \"0\"]\n";

#[test]
fn plays_asciicast_v3_and_idle_limits_from_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.cast");
    std::fs::write(&path, V3_EXAMPLE).unwrap();
    // Pauses before each output: 0.248, 1.001, 3.643, 3.591 (each from the
    // event before, summed); -i 0.5 cuts the last three: 1.748 s in all.
    let (out, took) = play(&path, &["-i", "0.5"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "\u{1b}[1;31mHello \u{1b}[32mWorld!\u{1b}[0m\nThat was ok\rThis is better.Now... Bye!"
    );
    assert!(
        took >= Duration::from_millis(1700) && took < Duration::from_millis(2600),
        "relative times summed, long pauses cut to 0.5 s: {took:?}"
    );
    let (out, _) = play(&path, &["-i", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--idle-time-limit"));
}

/// A replayed console may be a v3 recording: the doctor reads a fixture
/// converted to v3 (as asciinema 3 would write it) to the same findings.
#[test]
fn replay_reads_asciicast_v3_to_the_same_result() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/doctor");
    let v2 = std::fs::read_to_string(fixtures.join("home-777-check.cast")).unwrap();
    let mut lines = v2.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let mut v3 = serde_json::json!({
        "version": 3,
        "term": {"cols": header["width"], "rows": header["height"]},
        "command": header["command"],
    })
    .to_string();
    v3.push_str("\n# converted from v2: times relative to the previous event\n");
    let mut previous = 0.0;
    for line in lines {
        let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
        let at = event[0].as_f64().unwrap();
        event[0] = serde_json::json!(((at - previous) * 1e6).round() / 1e6);
        previous = at;
        v3.push_str(&event.to_string());
        v3.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let v3_path = dir.path().join("home-777-check.v3.cast");
    std::fs::write(&v3_path, v3).unwrap();
    let doctor = |cast: &Path| {
        let out = Command::new(BIN)
            .args(["--no-transcript", "--output", "json", "doctor"])
            .arg(format!("replay:{}", cast.display()))
            .args(["--user", "ec2-user", "--password-env", "PW", "--public-key"])
            .arg(fixtures.join("home-777-check.pub"))
            // Any value replays (a secret send only has to be one), but not
            // a one-letter one: every "x" the console printed would be
            // scrubbed to <redacted>, `@@ese:selinux` with it.
            .env("PW", "replayed-Password-4711")
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), report["findings"].clone())
    };
    let (code, findings) = doctor(&v3_path);
    assert_eq!(
        (code, findings.clone()),
        doctor(&fixtures.join("home-777-check.cast"))
    );
    assert_eq!(code, Some(1));
    assert_eq!(findings[0]["check"], "home.mode");
}

/// The real asciinema 2.x (from PyPI) reads what we record: a fresh
/// transcript, with the env asciinema itself records, cats and plays.
#[test]
fn the_real_asciinema_plays_our_transcripts() {
    let python = crate::support::ec2::python();
    let has = |p: &Path| {
        Command::new(p)
            .args(["-c", "import asciinema"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has(python) {
        let pip = python.with_file_name("pip");
        let ok = Command::new(pip)
            .args(["install", "-q", "asciinema>=2.4,<3"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok && has(python), "cannot install asciinema 2.x from PyPI");
    }
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("ours.cast");
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "expect([\"ready> $\"]);\nsend_line(\"go\");\nexpect([\"done\"]);\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--transcript")
        .arg(&cast)
        .args([
            "run",
            "exec:sh -c 'printf \"ready> \"; read l; echo done; sleep 0.2'",
        ])
        .arg(&script)
        .env("TERM", "xterm-256color")
        .env("SHELL", "/bin/bash")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&cast)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header["env"],
        serde_json::json!({"TERM": "xterm-256color", "SHELL": "/bin/bash"}),
        "TERM and SHELL, nothing else: {header}"
    );
    for args in [vec!["cat"], vec!["play", "-s", "20", "-i", "0.05"]] {
        let out = Command::new(python)
            .args(["-m", "asciinema"])
            .args(&args)
            .arg(&cast)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && shown.contains("ready> ") && shown.contains("done"),
            "asciinema {args:?}: {shown}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
