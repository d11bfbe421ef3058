//! `doctor --via grub` without a VM: the recorded GRUB rescue of the lab
//! (fixtures/rescue/grub-fix.cast, recorded by `lab_rescue` with
//! `ESE_RECORD_FIXTURES=1`) replays to the same repairs, every key sent to
//! GRUB is checked against the recording, the flags are checked before
//! anything connects, and a machine that boots past GRUB is an error that
//! says what to do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rescue/grub-fix.cast")
}

fn doctor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .arg("doctor")
        .args(args)
        .output()
        .unwrap()
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_recorded_grub_rescue_replays_to_the_same_repairs() {
    let target = format!("replay:{}", fixture().display());
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["--output", "json", "--no-transcript", "doctor", &target])
        .args(["--user", "ec2-user", "--via", "grub", "--fix"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["via"], "grub");
    assert_eq!(report["verified"], true);
    let mut fixed: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "fixed" && f["severity"] == "error")
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    fixed.sort();
    assert_eq!(fixed, ["authorized_keys.mode", "home.mode"], "{stdout}");
    let not_checked = report["not_checked"].to_string();
    assert!(not_checked.contains("sshd.running"), "{not_checked}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["check"] != "sshd.running"),
        "nothing runs in a rescue shell: sshd.running is not checked, not a finding: {stdout}"
    );
    assert!(
        started.elapsed().as_secs_f64() < 5.0,
        "a replay costs CPU only, no boot waits"
    );
}

#[test]
fn every_key_sent_to_grub_is_checked_against_the_recording() {
    let target = format!("replay:{}", fixture().display());
    let out = doctor(&[
        &target,
        "--no-transcript",
        "--user",
        "ec2-user",
        "--via",
        "grub",
        "--fix",
        "--rescue-args",
        "init=/bin/bash",
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("init=/bin/bash"), "{stderr}");
}

#[test]
fn grub_flags_are_checked_before_anything_connects() {
    let cases: &[(&[&str], &str)] = &[
        (&["unix:/nonexistent.sock"], "--power-cycle-command"),
        (
            &[
                "unix:/nonexistent.sock",
                "--power-cycle",
                "none",
                "--login-user",
                "admin",
            ],
            "--login-user",
        ),
        (
            &[
                "unix:/nonexistent.sock",
                "--power-cycle",
                "none",
                "--rescue-args",
                "",
            ],
            "--rescue-args",
        ),
        (
            &["unix:/a.sock", "unix:/b.sock", "--power-cycle", "none"],
            "one target at a time",
        ),
        (
            &[
                "unix:/nonexistent.sock",
                "--power-cycle-command",
                "virsh 'reset",
            ],
            "--power-cycle-command",
        ),
    ];
    for (args, says) in cases {
        let mut all = args.to_vec();
        all.extend(["--user", "ec2-user", "--via", "grub", "--no-transcript"]);
        let out = doctor(&all);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// A console whose machine boots straight past GRUB (here a program that
/// prints what GRUB prints when its countdown is 0) ends with an error that
/// names `prepare`, and a failing power-cycle command with its own words.
#[test]
fn a_machine_that_boots_past_grub_is_an_error_naming_the_fix() {
    let booting =
        "exec:sh -c 'sleep 1; printf \"  Booting \\140Debian GNU/Linux\\047\\r\\n\"; sleep 30'";
    let out = doctor(&[
        booting,
        "--no-transcript",
        "--user",
        "ec2-user",
        "--via",
        "grub",
        "--power-cycle-command",
        "true",
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("without showing GRUB's menu"), "{stderr}");
    assert!(stderr.contains("prepare"), "{stderr}");

    let out = doctor(&[
        "exec:sleep 30",
        "--no-transcript",
        "--user",
        "ec2-user",
        "--via",
        "grub",
        "--power-cycle-command",
        "sh -c 'echo no such domain vm9 >&2; exit 1'",
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("no such domain vm9"), "{stderr}");
}
