//! `prepare` on a real lab VM booted through GRUB, from an AMI's state:
//! GRUB's menu neither on the serial port nor waiting (the image's
//! /etc/default/grub, timeout 0, regenerated with update-grub), and no
//! password user at all (`no-password`: every password locked), so
//! `prepare` reaches the VM the way an operator still can, through SSH
//! (`exec:ssh -tt …`, sudo without a password as on an AMI). Before, the
//! GRUB path cannot stop the boot. `prepare --check` changes nothing;
//! `prepare` creates the rescue user (its password in a 0600 file, in no
//! transcript) and puts GRUB on the serial console; a second run changes
//! nothing. Then both paths work: `doctor --via grub` edits the VM's own
//! GRUB menu and reaches a root shell, and the rescue user logs in on the
//! console with its password.

use crate::support::lab as lab_support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::Duration;

use ec2_serial_expect::lab::vm::Boot;
use lab_support::LabVm;

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn prepare_makes_both_rescue_paths_work() {
    let vm = LabVm::boot_with("prepare", Boot::Grub).await;
    let info = vm.info();
    let admin = info.ssh().as_user("lab-admin");
    let out = admin.run("sudo update-grub && sync").await.unwrap();
    assert_eq!(out.status, 0, "update-grub: {}", out.stderr);
    let locked = ec2_serial_expect::lab::scenario::find("no-password").unwrap();
    ec2_serial_expect::lab::scenario::break_over_ssh(info, locked)
        .await
        .unwrap();
    let over_ssh = format!(
        "exec:ssh -tt -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -i {} -p {} ec2-user@127.0.0.1",
        info.key.display(),
        info.ssh_port
    );

    let bin = env!("CARGO_BIN_EXE_ec2-serial-expect");
    let dir = tempfile::tempdir().unwrap();
    let reset = format!("{bin} lab reset --name {}", info.name);
    // Up to 90 s for a menu that never comes; the VM's own boot through its
    // graphical GRUB terminal is slow under TCG (about 2 min), so later
    // waits are long.
    let grub_doctor = |transcript: &std::path::Path, boot_timeout: &str| {
        Command::new(bin)
            .arg("--transcript")
            .arg(transcript)
            .args(["doctor", &vm.console_target(), "--user", "ec2-user"])
            .args(["--via", "grub", "--power-cycle-command", &reset])
            .args(["--boot-timeout", boot_timeout])
            .output()
            .unwrap()
    };

    // The AMI's GRUB: the rescue path cannot stop it, and says what to do.
    let out = grub_doctor(&dir.path().join("before.cast"), "90");
    let (stdout, stderr) = texts(&out);
    assert!(
        matches!(out.status.code(), Some(1 | 5)),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("prepare"), "{stderr}");
    // The VM boots on by itself (the rescue stopped at once or waited in vain).
    let up = info
        .ssh()
        .probe_until_answered(Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(
        up,
        ec2_serial_expect::lab::ssh::KeyLogin::Accepted,
        "booted on after the failed rescue; it said: {stderr}"
    );

    let prepare = |extra: &[&str]| {
        let out = Command::new(bin)
            .arg("--transcript")
            .arg(dir.path().join(format!("prepare-{}.cast", extra.join("_"))))
            .args(["prepare", &over_ssh])
            .arg("--rescue-password-file")
            .arg(dir.path().join("rescue.password"))
            .args(extra)
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{extra:?}\n{stdout}\n{stderr}");
        stdout
    };
    let check = prepare(&["--check"]);
    assert!(
        check.contains("would change: create the password user rescue in group sudo"),
        "{check}"
    );
    assert!(
        check.contains("+GRUB_TERMINAL=\"console serial\""),
        "{check}"
    );
    assert!(
        !dir.path().join("rescue.password").exists(),
        "--check creates nothing"
    );
    assert_eq!(prepare(&["--check"]), check, "--check changed nothing");

    let applied = prepare(&[]);
    assert!(
        applied.contains("changed: create the password user rescue"),
        "{applied}"
    );
    assert!(
        applied.contains("changed: GRUB on the serial console"),
        "{applied}"
    );
    let password_file = dir.path().join("rescue.password");
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let again = prepare(&[]);
    assert!(again.contains("nothing to change"), "{again}");

    // The GRUB path now stops the VM's own menu and reaches a root shell.
    let transcript = dir.path().join("after.cast");
    let out = grub_doctor(&transcript, "300");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("reached through GRUB"), "{stdout}");
    let cast = std::fs::read_to_string(&transcript).unwrap();
    assert!(
        cast.contains("/boot/vmlinuz-"),
        "the VM's own menu was edited"
    );

    // The login path: the rescue user, with the password prepare made.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = Command::new(bin)
        .args(["--no-transcript", "doctor", &vm.console_target()])
        .args([
            "--user",
            "ec2-user",
            "--login-user",
            "rescue",
            "--password-file",
        ])
        .arg(&password_file)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    let password = std::fs::read_to_string(&password_file).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cast") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains(password.trim()),
                "{} holds the password",
                path.display()
            );
        }
    }
}
