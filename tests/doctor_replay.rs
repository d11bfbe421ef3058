//! The doctor against recorded lab sessions (fixtures/doctor/, recorded by
//! `ESE_RECORD_FIXTURES=1 cargo test --test lab_doctor -- --include-ignored`):
//! every scenario's findings come back the same from the replayed console,
//! with no VM, and a doctor that sends anything different fails loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// What each recorded check must find (error-level, open).
const EXPECTED: &[(&str, &[&str])] = &[
    ("healthy-check", &[]),
    ("home-777-check", &["home.mode"]),
    ("ssh-dir-perms-check", &["ssh_dir.mode"]),
    ("authorized-keys-perms-check", &["authorized_keys.mode"]),
    ("home-owner-check", &["home.owner"]),
    (
        "ssh-dir-owner-check",
        &["authorized_keys.owner", "ssh_dir.owner"],
    ),
    (
        "missing-authorized-keys-check",
        &["authorized_keys.exists", "authorized_keys.key_missing"],
    ),
    ("missing-key-check", &["authorized_keys.key_missing"]),
    (
        "home-root-owned-group-writable-check",
        &["home.mode", "home.owner"],
    ),
    ("locked-account-check", &["user.expired"]),
    (
        "sshd-strictmodes-config-check",
        &["sshd.authorized_keys_file"],
    ),
    (
        "home-777+authorized-keys-perms+missing-key-check",
        &[
            "authorized_keys.key_missing",
            "authorized_keys.mode",
            "home.mode",
        ],
    ),
];

const PASSWORD: &str = "replayed-Password-4711";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/doctor")
}

fn doctor(tag: &str, extra: &[&str]) -> Output {
    let dir = fixtures();
    let login = std::fs::read_to_string(dir.join(format!("{tag}.login")))
        .unwrap_or_else(|_| "ec2-user".into());
    Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["--no-transcript", "--output", "json", "doctor"])
        .arg(format!(
            "replay:{}",
            dir.join(format!("{tag}.cast")).display()
        ))
        .args([
            "--user",
            "ec2-user",
            "--login-user",
            login.trim(),
            "--password-env",
            "ESE_REPLAY_PW",
        ])
        .arg("--public-key")
        .arg(dir.join("lab-key.pub"))
        .args(extra)
        .env("ESE_REPLAY_PW", PASSWORD)
        .output()
        .unwrap()
}

fn error_ids(report: &Value, status: &str) -> Vec<String> {
    let mut ids: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error" && f["status"] == status)
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn every_recorded_scenario_replays_to_the_same_findings() {
    for (tag, expected) in EXPECTED {
        let path = fixtures().join(format!("{tag}.cast"));
        assert!(
            path.exists(),
            "fixture {} is missing: record it with the lab (see the module doc)",
            path.display()
        );
        let out = doctor(tag, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
            "{tag}: password leaked"
        );
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{tag}: {e}\n{stdout}\n{stderr}"));
        assert_eq!(error_ids(&report, "open"), *expected, "{tag}\n{stderr}");
        let code = if expected.is_empty() { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "{tag}: {stderr}");
    }
}

#[test]
fn a_recorded_repair_replays_fixed_and_verified() {
    let out = doctor("home-777-fix", &["--fix", "--add-key"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(error_ids(&report, "fixed"), ["home.mode"]);
    assert_eq!(report["verified"], true);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("repairing home.mode: chmod 700 /home/ec2-user"));
}

#[test]
fn a_doctor_that_sends_something_else_fails_with_the_difference() {
    // Same recording, but asked about another user: the first command differs.
    let dir = fixtures();
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["--no-transcript", "doctor"])
        .arg(format!(
            "replay:{}",
            dir.join("home-777-check.cast").display()
        ))
        .args([
            "--user",
            "admin",
            "--login-user",
            "ec2-user",
            "--password-env",
            "ESE_REPLAY_PW",
        ])
        .env("ESE_REPLAY_PW", PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("differs from the recording"), "{stderr}");
    assert!(!stderr.contains(PASSWORD));
}
