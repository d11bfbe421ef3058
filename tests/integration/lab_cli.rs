//! The `lab` command as a user runs it: the binary, its output (human and
//! JSON) and exit codes. The VM tests boot a real, detached VM through
//! `lab up` and always stop it (`lab down` in a guard's `Drop`); the others
//! need no VM and run in every `cargo test`.

use crate::support::lab as lab_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .arg("lab")
        .args(args)
        .output()
        .expect("running ec2-serial-expect")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// Stops VM `name` when dropped, even when the test panics.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = lab(&["down", "--name", &self.0]);
    }
}

fn assert_no_secret(path: &Path, password: &str) {
    let body = std::fs::read_to_string(path).unwrap();
    assert!(
        !body.contains(password),
        "the password leaked into {}",
        path.display()
    );
    assert!(
        body.contains("<redacted>"),
        "{}: no redacted send",
        path.display()
    );
}

/// `lab break --list | head -0`: the reader is gone before we print. We end
/// like any Unix filter (SIGPIPE), never with a panic message.
#[test]
fn a_closed_stdout_ends_quietly_not_with_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["lab", "break", "--list"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(13), "{:?} {stderr}", out.status);
}

#[test]
fn break_list_names_every_scenario_without_a_vm() {
    let out = lab(&["break", "--list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 14, "{stdout}");
    for name in [
        "home-777",
        "locked-account",
        "sshd-strictmodes-config",
        "missing-key",
        "wrong-user",
        "deleted-user",
        "sha1-rsa",
        "no-password",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "{name} in {stdout}"
        );
    }
    let v = json(&lab(&["break", "--list", "--output", "json"]));
    let list = v["scenarios"].as_array().unwrap();
    assert_eq!(list.len(), 14);
    assert!(list
        .iter()
        .all(|s| s["summary"].as_str().is_some_and(|t| !t.is_empty())));
}

#[test]
fn bad_lab_input_is_a_usage_error_naming_the_fix() {
    let run = tempfile::tempdir().unwrap();
    let with_run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
            .env("ESE_LAB_RUN", run.path())
            .arg("lab")
            .args(args)
            .output()
            .unwrap()
    };
    for (args, hint) in [
        (&["break"][..], "--list"),
        (&["break", "home-666"][..], "home-777"),
        (&["repair", "nope"][..], "lab break --list"),
        (&["up", "--name", "a/b"][..], "bad lab VM name"),
        (
            &["break", "home-777", "--name", "absent"][..],
            "lab up --name absent",
        ),
    ] {
        let out = with_run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(hint),
            "{args:?} should say {hint:?}: {}",
            text(&out)
        );
    }
}

#[test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
fn up_status_break_repair_down_through_the_cli() {
    lab_support::require_lab();
    // Its VM counts against the VMs the other lab tests may run at once.
    let _place = lab_support::hold_vm_place();
    let name = format!("c{}", std::process::id());
    let _down = Down(name.clone());
    let out = lab(&["up", "--name", &name, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let up = json(&out);
    let serial = up["serial"].as_str().unwrap();
    assert!(serial.starts_with("unix:/"), "{up}");
    assert!(up["ssh"]["port"].as_u64().unwrap() > 0);
    let password_file = Path::new(up["password_file"].as_str().unwrap());
    let mode = password_file.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(password_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        !text(&out).contains(&password),
        "lab up must not print the password"
    );

    let again = json(&lab(&["up", "--name", &name, "--output", "json"]));
    assert_eq!(again["already_running"], true);
    assert_eq!(again["pid"], up["pid"]);

    let status = json(&lab(&["status", "--output", "json"]));
    let mine = status["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} in {status}"));
    assert_eq!(mine["state"], "running");

    let out = lab(&["break", "home-777", "--name", &name]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("Permission denied"), "{said}");
    assert!(said.contains("sudo chmod 700 /home/ec2-user"), "{said}");

    // The same console through the gateway `lab up` started: the doctor
    // finds the break over ws://, and the gateway records the session.
    let websocket = up["websocket"].as_str().unwrap();
    assert!(
        websocket.starts_with("ws://127.0.0.1:") && websocket.ends_with("/v1/consoles/lab"),
        "{up}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["--no-transcript", "--output", "json", "doctor", websocket])
        .args(["--user", "ec2-user", "--password-file"])
        .arg(password_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    let failing: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .filter_map(|f| f["check"].as_str())
        .collect();
    assert_eq!(failing, ["home.mode"], "{report}");
    let sessions = Path::new(serial.trim_start_matches("unix:")).with_file_name("gateway-sessions");
    let recorded: Vec<_> = std::fs::read_dir(&sessions)
        .unwrap_or_else(|e| panic!("{}: {e}", sessions.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(!std::fs::read_to_string(&recorded[0])
        .unwrap()
        .contains(&password));

    let tmp = tempfile::tempdir().unwrap();
    let transcript = tmp.path().join("repair.cast");
    let out = lab(&[
        "repair",
        "home-777",
        "--name",
        &name,
        "--transcript",
        transcript.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("now accepted"), "{}", text(&out));
    assert_no_secret(&transcript, &password);

    let out = lab(&["down", "--name", &name]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // (A zombie may linger until init reaps it: check for a live QEMU.)
    let socket = serial.trim_start_matches("unix:");
    assert!(
        lab_support::qemu_processes_mentioning(socket).is_empty(),
        "QEMU {} still runs after lab down",
        up["pid"]
    );
    let status = json(&lab(&["status", "--output", "json"]));
    assert!(!status.to_string().contains(&name), "{status}");
    let port = websocket.trim_start_matches("ws://127.0.0.1:");
    let port: u16 = port.split('/').next().unwrap().parse().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the lab gateway still listens on {port} after lab down"
    );
    let out = lab(&["break", "home-777", "--name", &name]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
fn demo_breaks_repairs_over_the_console_and_cleans_up() {
    lab_support::require_lab();
    // Its VM counts against the VMs the other lab tests may run at once.
    let _place = lab_support::hold_vm_place();
    let name = format!("d{}", std::process::id());
    let _down = Down(name.clone());
    let tmp = tempfile::tempdir().unwrap();
    let transcript = tmp.path().join("demo.cast");
    let out = lab(&[
        "demo",
        "--name",
        &name,
        "--transcript",
        transcript.to_str().unwrap(),
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for step in [
        "ssh now fails",
        "Permission denied",
        "home.mode",
        "works again",
        "demo.cast",
    ] {
        assert!(said.contains(step), "{step:?} in {said}");
    }
    let password_file = ec2_serial_expect::lab::layout::LabDirs::from_env().password_file();
    let password = std::fs::read_to_string(password_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(!said.contains(&password));
    assert_no_secret(&transcript, &password);
    let body = std::fs::read_to_string(&transcript).unwrap();
    assert!(
        body.contains("chmod 700 /home/ec2-user"),
        "the doctor's repair is in the transcript"
    );
    let socket = format!("/{name}/serial.sock");
    assert!(
        lab_support::qemu_processes_mentioning(&socket).is_empty(),
        "the demo stops its VM"
    );
}
