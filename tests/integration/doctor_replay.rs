//! The doctor against recorded lab sessions (fixtures/doctor/, recorded by
//! `ESE_RECORD_FIXTURES=1 cargo test --test integration lab_doctor -- --include-ignored`):
//! every scenario's findings come back the same from the replayed console,
//! with no VM, and a doctor that sends anything different fails loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ec2_serial_expect::doctor::CheckId;
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
    // Recorded while a root loop printed forged `@@ese:keys` sections
    // holding this very key on the console.
    ("forged-sections-check", &["authorized_keys.key_missing"]),
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

/// The lab key the fixture was recorded with (the lab's key changes when
/// its image is rebuilt; each recording keeps its own).
fn recorded_key(dir: &Path, tag: &str) -> std::path::PathBuf {
    dir.join(format!("{tag}.pub"))
}

fn doctor(tag: &str, extra: &[&str]) -> Output {
    doctor_asking(tag, "ec2-user", true, extra)
}

/// Replays fixture `tag` asking about `user`, with or without the lab's
/// `--public-key` (as it was recorded: the commands sent must be the same).
fn doctor_asking(tag: &str, user: &str, with_key: bool, extra: &[&str]) -> Output {
    let dir = fixtures();
    let login = std::fs::read_to_string(dir.join(format!("{tag}.login")))
        .unwrap_or_else(|_| "ec2-user".into());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"));
    cmd.args(["--no-transcript", "--output", "json", "doctor"])
        .arg(format!(
            "replay:{}",
            dir.join(format!("{tag}.cast")).display()
        ))
        .args([
            "--user",
            user,
            "--login-user",
            login.trim(),
            "--password-env",
            "ESE_REPLAY_PW",
        ]);
    if with_key {
        cmd.arg("--public-key").arg(recorded_key(&dir, tag));
    }
    cmd.args(extra)
        .env("ESE_REPLAY_PW", PASSWORD)
        .output()
        .unwrap()
}

/// The causes no `lab break` scenario makes, recorded by
/// `doctor_finds_every_other_cause_on_a_real_console`: (fixture, --user,
/// --public-key given, error ids, warning ids), ids sorted.
type Other = (
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
);
const OTHERS: &[Other] = &[
    (
        "unknown-user-check",
        "ghost",
        true,
        &["user.wrong_name"],
        &[],
    ),
    (
        "unknown-user-nokey-check",
        "ghost",
        false,
        &["user.exists"],
        &[],
    ),
    (
        "wrong-user-check",
        "ec2-user",
        true,
        &["user.wrong_name"],
        &[],
    ),
    (
        "deleted-user-check",
        "ec2-user",
        true,
        &["user.deleted"],
        &[],
    ),
    (
        "sha1-rsa-check",
        "ec2-user",
        true,
        &["authorized_keys.key_algorithm"],
        &[],
    ),
    (
        "pubkey-authentication-off-check",
        "ec2-user",
        true,
        &["sshd.pubkey_authentication"],
        &[],
    ),
    (
        "authorized-keys-crlf-check",
        "ec2-user",
        true,
        &["authorized_keys.crlf"],
        &[],
    ),
    (
        "home-root-owner-and-mode-check",
        "ec2-user",
        true,
        &["home_root.mode", "home_root.owner"],
        &[],
    ),
    (
        "sshd-config-invalid-check",
        "ec2-user",
        true,
        &["sshd.config"],
        &[],
    ),
    (
        "unmounted-home+disk-full+selinux+warnings-check",
        "ec2-user",
        true,
        &["disk.full", "home.mounted", "selinux.ssh_dir_label"],
        &["authorized_keys.malformed", "etc_ssh.perms", "user.locked"],
    ),
    (
        "sshd-stopped-without-host-keys-check",
        "ec2-user",
        true,
        &["sshd.config", "sshd.host_keys", "sshd.running"],
        &[],
    ),
    (
        "ssh-dir-missing-check",
        "ec2-user",
        true,
        &[
            "authorized_keys.exists",
            "authorized_keys.key_missing",
            "ssh_dir.exists",
        ],
        &[],
    ),
    (
        "authorized-keys-is-a-directory-check",
        "ec2-user",
        true,
        &["authorized_keys.type"],
        &[],
    ),
    (
        "authorized-keys-fifo-check",
        "ec2-user",
        true,
        &["authorized_keys.type"],
        &[],
    ),
    (
        "authorized-keys-link-to-dev-zero-check",
        "ec2-user",
        true,
        &["authorized_keys.type"],
        &[],
    ),
    (
        "ssh-dir-is-a-file-check",
        "ec2-user",
        true,
        &[
            "authorized_keys.exists",
            "authorized_keys.key_missing",
            "ssh_dir.type",
        ],
        &[],
    ),
    (
        "home-missing-check",
        "ec2-user",
        true,
        &[
            "authorized_keys.exists",
            "authorized_keys.key_missing",
            "home.exists",
        ],
        &[],
    ),
    (
        "home-is-a-file-check",
        "ec2-user",
        true,
        &[
            "authorized_keys.exists",
            "authorized_keys.key_missing",
            "home.type",
        ],
        &[],
    ),
    (
        "user-not-allowed+bad-shell+empty-keys-check",
        "ec2-user",
        false,
        &[
            "authorized_keys.empty",
            "sshd.user_not_allowed",
            "user.shell",
        ],
        &["sshd.strict_modes"],
    ),
];

fn ids_of(report: &Value, severity: &str) -> Vec<String> {
    let mut ids: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity && f["status"] == "open")
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn every_other_recorded_cause_replays_to_the_same_findings() {
    for (tag, user, with_key, errors, warnings) in OTHERS {
        let out = doctor_asking(tag, user, *with_key, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{tag}: {e}\n{stdout}\n{stderr}"));
        assert_eq!(ids_of(&report, "error"), *errors, "{tag}\n{stderr}");
        assert_eq!(ids_of(&report, "warning"), *warnings, "{tag}\n{stderr}");
        assert_eq!(out.status.code(), Some(1), "{tag}: {stderr}");
    }
}

/// Every finding id the checks can report is seen in some replayed fixture,
/// so a new check cannot land without a recording that exercises it. (The
/// guard's own `repair.unlock_failed` needs a repair that cannot give a
/// directory back; `doctor::guard`'s tests make one.)
#[test]
fn the_replays_cover_every_finding_id() {
    let mut seen: Vec<&str> = EXPECTED
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    for (_, _, _, errors, warnings) in OTHERS {
        seen.extend(errors.iter().chain(warnings.iter()).copied());
    }
    let mut missing = Vec::new();
    for id in CheckId::ALL {
        if id != CheckId::RepairUnlockFailed && !seen.contains(&id.as_str()) {
            missing.push(id);
        }
    }
    assert!(
        missing.is_empty(),
        "finding ids no replay covers: {missing:?}"
    );
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

/// The deleted user re-created, its adopted home checked, in one run.
#[test]
fn a_recorded_account_recreation_replays_fixed_and_verified() {
    let out = doctor("deleted-user-fix", &["--fix", "--add-key", "--create-user"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}\n{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(error_ids(&report, "fixed"), ["user.deleted"]);
    assert_eq!(report["verified"], true);
    assert!(
        stderr.contains("repairing user.deleted: useradd -M -d /home/ec2-user -U -s /bin/bash -p '*' -u 1000 -G adm,sudo ec2-user"),
        "{stderr}"
    );
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

/// Issue 31: a healthy account behind each login shell Debian packages,
/// recorded on the lab by `lab_doctor::doctor_works_behind_every_login_shell`
/// (fish and tcsh with `/bin/sh` put in charge, zsh with its first-run menu
/// answered), replays to "healthy": the login machine meets each shell's
/// real output again, and any change in what it types fails the replay.
#[test]
fn every_login_shells_recording_replays() {
    for shell in ["bash", "dash", "zsh", "fish", "tcsh", "mksh", "ksh"] {
        let tag = format!("shell-{shell}-check");
        let out = doctor_asking(&tag, &format!("sh{shell}"), true, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{tag}:\n{stdout}\n{stderr}");
        let report: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{tag}: {e}\n{stdout}"));
        assert!(
            report["findings"].as_array().is_some_and(|f| f
                .iter()
                .all(|f| f["status"] != "open" || f["severity"] != "error")),
            "{tag}: healthy\n{stdout}"
        );
    }
}
