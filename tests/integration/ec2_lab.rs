//! The EC2 path against the lab VM's real serial console: the stand-in's
//! sshd connects `<instance-id>.port0` sessions to the VM's serial socket
//! (socat, raw), so `doctor i-… --fix` runs through exactly the code a real
//! instance uses (preflight, key push, pinned SSH) and repairs a broken VM.

use crate::support::ec2 as ec2_support;
use crate::support::lab as lab_support;

use std::path::PathBuf;

use ec2_serial_expect::lab::scenario;
use ec2_serial_expect::lab::ssh::KeyLogin;
use ec2_support::{Console, StandIn};
use lab_support::LabVm;

#[tokio::test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn doctor_repairs_the_lab_through_the_ec2_serial_console_path() {
    let vm = LabVm::boot("ec2-doctor").await;
    let standin = StandIn::start(Console::Command(format!(
        "/usr/bin/socat STDIO,raw,echo=0 UNIX-CONNECT:{}",
        vm.socket().display()
    )));
    standin.ec2ctl(&["enable-access"]);
    let id = standin.run_instance("t3.micro");

    let broken = scenario::find("home-777").unwrap();
    scenario::break_over_ssh(vm.info(), broken).await.unwrap();
    let refused = vm.ssh().probe().await.unwrap();
    assert!(matches!(refused, KeyLogin::Refused(_)), "{refused:?}");

    let info = vm.info();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let transcript = dir.path().join("doctor.cast");
    let out = standin
        .command()
        .arg("doctor")
        .arg(&id)
        .args(["--user", "ec2-user", "--password-file"])
        .arg(&info.password_file)
        .arg("--public-key")
        .arg(PathBuf::from(format!("{}.pub", info.key.display())))
        .args(["--fix", "--add-key", "--report"])
        .arg(&report)
        .arg("--transcript")
        .arg(&transcript)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert!(standin
        .sshd_log()
        .contains(&format!("Accepted publickey for {id}.port0")));
    let pushes = standin.pushes();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["signature_ok"], true);

    let password = std::fs::read_to_string(&info.password_file).unwrap();
    for text in [
        stdout.into_owned(),
        stderr.into_owned(),
        std::fs::read_to_string(&transcript).unwrap(),
    ] {
        assert!(
            !text.contains(password.trim()),
            "the console password leaked"
        );
        assert!(
            !text.contains(ec2_support::SECRET_KEY),
            "the AWS secret key leaked"
        );
    }
    vm.assert_key_login_accepted("SSH works again after the repair")
        .await;
}

/// The GRUB rescue of a fleet through the EC2 path: two instances whose
/// consoles are two lab VMs booted through GRUB with every password locked;
/// `doctor --filter … --via grub --fix` reboots each with RebootInstances
/// (the stand-in resets that VM, as AWS restarts the instance), edits GRUB
/// over the real sshd's sessions side by side and repairs; SSH works again
/// on both.
#[tokio::test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn a_grub_fleet_is_rescued_through_the_ec2_serial_console_path() {
    let (a, b) =
        LabVm::boot_pair_with("ec2-grub-fleet", ec2_serial_expect::lab::vm::Boot::Grub).await;
    // Each instance's session goes to its own VM: a file named after the
    // instance holds its serial socket.
    let routes = tempfile::tempdir().unwrap();
    let standin = StandIn::start(Console::Command(format!(
        "sh -c \"exec /usr/bin/socat STDIO,raw,echo=0 UNIX-CONNECT:$(cat {}/${{USER%.port0}})\"",
        routes.path().display()
    )));
    standin.ec2ctl(&["enable-access"]);
    let ids = standin.run_instances("t3.micro", 2, Some("Role=rescue"));
    let bin = env!("CARGO_BIN_EXE_ec2-serial-expect");
    let mut hooks = serde_json::Map::new();
    for (id, vm) in ids.iter().zip([&a, &b]) {
        std::fs::write(routes.path().join(id), vm.socket().display().to_string()).unwrap();
        hooks.insert(
            id.clone(),
            serde_json::json!([bin, "lab", "reset", "--name", vm.info().name]),
        );
        for name in ["home-777", "no-password"] {
            scenario::break_over_ssh(vm.info(), scenario::find(name).unwrap())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    standin.control(&serde_json::json!({ "on_reboot": hooks }).to_string());

    let out_dir = tempfile::tempdir().unwrap();
    let out = standin
        .command()
        .args(["--output", "json", "doctor"])
        .args(["--filter", "Name=tag:Role,Values=rescue"])
        .args(["--user", "ec2-user", "--via", "grub", "--fix", "--out-dir"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let reboots = standin.reboots();
    assert_eq!(reboots, 2, "each instance rebooted through the EC2 API");
    for id in &ids {
        let file = std::fs::read_dir(out_dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .contains(id.as_str())
            })
            .unwrap_or_else(|| panic!("a report for {id}: {stdout}"));
        let end: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(end["outcome"], "repaired", "{end}");
        assert_eq!(end["report"]["via"], "grub", "{end}");
        assert_eq!(end["report"]["verified"], true, "{end}");
        let transcript = end["transcript"].as_str().unwrap();
        let output: String = std::fs::read_to_string(transcript)
            .unwrap()
            .lines()
            .skip(1)
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e[1] == "o")
            .map(|e| e[2].as_str().unwrap().to_string())
            .collect();
        assert!(output.contains("GNU GRUB"), "GRUB's screen is recorded");
    }
    for vm in [&a, &b] {
        vm.assert_key_login_accepted("after the GRUB rescue of the fleet over EC2")
            .await;
    }
}
