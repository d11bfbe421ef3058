//! The GRUB rescue path on a real lab VM booted through GRUB 2, with every
//! password locked (root's too) and SSH key login broken twice over: the
//! password login is refused, `doctor --via grub --fix` (restarting the VM
//! with `lab reset`) repairs it with no password at all, exits 0, leaves the
//! VM booted normally at `login:`, and a real SSH key login works. The
//! transcript shows the GRUB editing; the password is in no artifact.

use crate::support::lab as lab_support;

use std::process::Command;

use ec2_serial_expect::lab::scenario;
use ec2_serial_expect::lab::vm::Boot;
use lab_support::LabVm;
use serde_json::Value;

#[tokio::test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn grub_rescue_repairs_a_vm_where_no_one_can_log_in() {
    let vm = LabVm::boot_with("grub-rescue", Boot::Grub).await;
    let info = vm.info();
    // authorized-keys-perms as ec2-user (it takes ec2-user's key login),
    // then home-777 and no-password as lab-admin.
    for name in ["authorized-keys-perms", "no-password"] {
        scenario::break_over_ssh(info, scenario::find(name).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{name}: breaking failed: {e}"));
    }
    let out = info
        .ssh()
        .as_user("lab-admin")
        .run("sudo chmod 777 /home/ec2-user && sync")
        .await
        .unwrap();
    assert_eq!(out.status, 0, "{}", out.stderr);

    let bin = env!("CARGO_BIN_EXE_ec2-serial-expect");
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("rescue.cast");

    // The password user is gone: the login path stops at the console.
    let login = Command::new(bin)
        .args(["doctor", &vm.console_target(), "--user", "ec2-user"])
        .args([
            "--login-timeout",
            "60",
            "--no-transcript",
            "--password-file",
        ])
        .arg(&info.password_file)
        .output()
        .unwrap();
    assert_eq!(
        login.status.code(),
        Some(4),
        "the locked password must be refused: {}",
        String::from_utf8_lossy(&login.stderr)
    );

    let reset = format!("{bin} lab reset --name {}", info.name);
    let out = Command::new(bin)
        .args(["--output", "json", "--transcript"])
        .arg(&transcript)
        .args(["doctor", &vm.console_target(), "--user", "ec2-user"])
        .args(["--via", "grub", "--fix", "--power-cycle-command", &reset])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["via"], "grub", "{stdout}");
    assert_eq!(report["verified"], true, "{stdout}");
    let mut fixed: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "fixed" && f["severity"] == "error")
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    fixed.sort();
    assert_eq!(fixed, ["authorized_keys.mode", "home.mode"], "{stdout}");

    vm.assert_key_login_accepted("after the GRUB rescue").await;
    // Booted normally: the default entry's kernel line, systemd as PID 1,
    // the system up.
    let boot = info
        .ssh()
        .run("cat /proc/cmdline /proc/1/comm; sudo -n systemctl is-system-running --wait")
        .await
        .unwrap();
    assert!(!boot.stdout.contains("init="), "{}", boot.stdout);
    assert!(boot.stdout.contains("\nsystemd\n"), "{}", boot.stdout);
    assert!(
        boot.stdout.contains("running") || boot.stdout.contains("degraded"),
        "multi-user: {}",
        boot.stdout
    );

    let cast = std::fs::read_to_string(&transcript).unwrap();
    let events: Vec<Value> = cast
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let of = |code: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e[1] == code)
            .map(|e| e[2].as_str().unwrap().to_string())
            .collect()
    };
    let inputs = of("i");
    let output = of("o").concat();
    for key in ["e", "\u{5}", " init=/bin/sh", "\u{18}"] {
        assert!(
            inputs.iter().any(|i| i == key),
            "{key:?} not sent: {inputs:?}"
        );
    }
    assert!(output.contains("GNU GRUB"), "GRUB's screen is recorded");
    // The rescue ends on /login: ?$/: the prompt's space may come later.
    let tail = output
        .char_indices()
        .rev()
        .nth(400)
        .map_or(output.as_str(), |(i, _)| &output[i..]);
    assert!(
        output.trim_end().ends_with("lab-instance login:"),
        "back at login: {tail:?}"
    );
    let password = std::fs::read_to_string(&info.password_file).unwrap();
    for text in [&cast, &stdout.to_string(), &stderr.to_string()] {
        assert!(!text.contains(password.trim()), "the password leaked");
    }
    if std::env::var_os("ESE_RECORD_FIXTURES").is_some() {
        let to =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rescue/grub-fix.cast");
        std::fs::copy(&transcript, &to).unwrap();
        eprintln!("recorded {}", to.display());
    }
}
