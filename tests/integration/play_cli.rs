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
