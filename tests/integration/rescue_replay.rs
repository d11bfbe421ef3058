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

/// `doctor --via grub --fix` against a live console program (`target`),
/// its power cycle a no-op, with `extra` flags.
fn rescue_live(target: &str, extra: &[&str]) -> Output {
    let mut args = vec![target, "--no-transcript", "--user", "ec2-user"];
    args.extend(["--via", "grub", "--fix", "--power-cycle-command", "true"]);
    args.extend(extra);
    doctor(&args)
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
            "--power-cycle none is for one target",
        ),
        (
            &[
                "unix:/a.sock",
                "unix:/b.sock",
                "--power-cycle-command",
                "virsh reset vm1",
            ],
            "put {target} where the target goes",
        ),
        (
            &["unix:/a.sock", "unix:/b.sock"],
            "unix:/a.sock is not an EC2 instance",
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

/// A fleet through GRUB: two recorded rescues replay side by side, each to
/// its own verified report.
#[test]
fn a_fleet_of_recorded_grub_rescues_replays_to_a_report_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut targets = Vec::new();
    for name in ["a", "b"] {
        let copy = dir.path().join(format!("{name}.cast"));
        std::fs::copy(fixture(), &copy).unwrap();
        targets.push(format!("replay:{}", copy.display()));
    }
    let out_dir = dir.path().join("reports");
    let out = doctor(&[
        &targets[0],
        &targets[1],
        "--user",
        "ec2-user",
        "--via",
        "grub",
        "--fix",
        "--out-dir",
        out_dir.to_str().unwrap(),
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let reports: Vec<Value> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name() != "summary.json" && e.path().extension().is_some_and(|x| x == "json")
        })
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap())
        .collect();
    assert_eq!(reports.len(), 2, "{summary}");
    for end in &reports {
        assert_eq!(end["outcome"], "repaired", "{end}");
        assert_eq!(end["report"]["via"], "grub", "{end}");
        assert_eq!(end["report"]["verified"], true, "{end}");
    }
}

/// With several targets the power-cycle command runs once per target, with
/// `{target}` replaced by that target (here two consoles that boot past
/// GRUB: each restarted, each an error naming prepare).
#[test]
fn a_fleet_restarts_each_machine_with_its_own_target_in_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("resets.log");
    let booting = |secs: u32| {
        format!(
            "exec:sh -c 'sleep 1; printf \"  Booting \\140Debian GNU/Linux\\047\\r\\n\"; sleep {secs}'"
        )
    };
    let (a, b) = (booting(30), booting(31));
    let command = format!(
        "sh -c 'printf \"%s\\n\" \"$1\" >> {}' sh {{target}}",
        log.display()
    );
    let out = doctor(&[
        &a,
        &b,
        "--no-transcript",
        "--user",
        "ec2-user",
        "--via",
        "grub",
        "--power-cycle-command",
        &command,
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("without showing GRUB's menu").count(),
        2,
        "{stdout}\n{stderr}"
    );
    let mut resets: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    resets.sort();
    assert_eq!(resets, [a, b], "one reset per target, each naming its own");
}

/// The recorded rescue played back live, on the real clock, by a console
/// program that waits 3 s before the end of the doctor's first root command
/// (a freshly booted machine reads every program from a cold disk), with
/// the session's default timeout at 2 s: the rescue shell gives its
/// commands longer than that default, so the rescue still ends repaired.
#[test]
fn the_rescue_shell_outlasts_a_short_default_timeout_on_a_cold_first_command() {
    const SLOW_CONSOLE: &str = r#"
import json, os, sys, time, tty
events = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[1:]]
tty.setraw(0)
time.sleep(1.5)
booting = False
for _, kind, data in events:
    if kind == "o":
        if "__ESX_E4" in data:
            time.sleep(3)
        os.write(1, data.encode())
    elif kind == "i":
        # The Enters the recording's slow boot drew (one per 10 s of
        # silence) are not waited for: the boot's text follows at once.
        if booting and data == "\r":
            continue
        booting = data == "\x18" or (booting and data == "\r")
        want = len(data.encode())
        while want > 0:
            got = os.read(0, want)
            if not got:
                sys.exit(0)
            want -= len(got)
while os.read(0, 1024):
    pass
"#;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("slow_console.py");
    std::fs::write(&program, SLOW_CONSOLE).unwrap();
    let target = format!("exec:python3 {} {}", program.display(), fixture().display());
    let out = rescue_live(&target, &["--timeout", "2"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}

/// A console that shows GRUB's real menu and editor (from the recording)
/// but does not take the edits: the rescue cannot verify its kernel line,
/// boots nothing, and sends GRUB back to a normal boot (Escape drops the
/// edits, Enter boots the entry as it was) instead of leaving the machine
/// in an editor that never times out. The console program logs every key.
#[test]
fn a_failed_rescue_boot_sends_grub_back_to_a_normal_boot() {
    const DEAF_GRUB: &str = r#"
import json, os, sys, time, tty
cast, log = sys.argv[1], sys.argv[2]
events = [json.loads(l) for l in open(cast).read().splitlines()[1:]]
first = next(i for i, e in enumerate(events) if e[1] == "i")
after = next((i for i, e in enumerate(events) if i > first and e[1] == "i"), len(events))
menu = "".join(e[2] for e in events[:first] if e[1] == "o")
editor = "".join(e[2] for e in events[first + 1:after] if e[1] == "o")
tty.setraw(0)
time.sleep(1.5)
os.write(1, menu.encode())
with open(log, "ab") as keys:
    while True:
        got = os.read(0, 1024)
        if not got:
            break
        keys.write(got)
        keys.flush()
        if b"e" in got and editor:
            os.write(1, editor.encode())
            editor = ""
"#;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("deaf_grub.py");
    std::fs::write(&program, DEAF_GRUB).unwrap();
    let log = dir.path().join("keys.log");
    let target = format!(
        "exec:python3 {} {} {}",
        program.display(),
        fixture().display(),
        log.display()
    );
    let out = rescue_live(&target, &[]);
    let (stdout, stderr) = texts(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("nothing was booted"), "{stderr}");
    assert!(
        stderr.contains("GRUB's edits were dropped"),
        "the error says what was done: {stderr}"
    );
    let keys = std::fs::read(&log).unwrap();
    assert!(keys.starts_with(b"e"), "{keys:?}");
    assert!(
        keys.ends_with(b"\x1b\r"),
        "Escape and Enter last: {:?}",
        String::from_utf8_lossy(&keys)
    );
    assert!(
        !keys.contains(&0x18),
        "no Ctrl-X: nothing edited was booted"
    );
}
