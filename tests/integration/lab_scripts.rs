//! The scripts shipped for locked-out instances, run for real against a
//! broken lab VM: check (exit 1 naming the cause), fix (exit 0, SSH works),
//! add a public key (and a second run adds nothing).

use crate::support::lab as lab_support;

use std::process::{Command, Output};

use ec2_serial_expect::lab::scenario;
use lab_support::LabVm;

fn run_script(vm: &LabVm, script: &str, vars: &[(&str, &str)]) -> Output {
    let info = vm.info();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"));
    cmd.args(["--no-transcript", "run"])
        .arg(vm.console_target())
        .arg(format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg("--secret")
        .arg(format!("password=file:{}", info.password_file.display()));
    for (k, v) in vars {
        cmd.arg("--var").arg(format!("{k}={v}"));
    }
    let out = cmd.output().unwrap();
    let password = std::fs::read_to_string(&info.password_file).unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains(password.trim()),
        "{script}: the password leaked"
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn shipped_scripts_check_fix_and_add_a_key() {
    let vm = LabVm::boot("scripts").await;
    scenario::break_over_ssh(vm.info(), scenario::find("home-777").unwrap())
        .await
        .unwrap();

    let check = run_script(&vm, "check-ssh-key-refused.rhai", &[]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(text(&check).contains("home.mode"), "{}", text(&check));

    let fix = run_script(&vm, "fix-ssh-key-refused.rhai", &[]);
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix));
    assert!(text(&fix).contains("fixed: home.mode"), "{}", text(&fix));
    vm.assert_key_login_accepted("a real SSH key login after the script")
        .await;

    scenario::break_over_ssh(vm.info(), scenario::find("missing-key").unwrap())
        .await
        .unwrap();
    let key = std::fs::read_to_string(format!("{}.pub", vm.info().key.display())).unwrap();
    let add = run_script(&vm, "add-public-key.rhai", &[("public_key", key.trim())]);
    assert_eq!(add.status.code(), Some(0), "{}", text(&add));
    assert!(text(&add).contains("added the key"), "{}", text(&add));
    vm.assert_key_login_accepted("a real SSH key login after the script")
        .await;
    let again = run_script(&vm, "add-public-key.rhai", &[("public_key", key.trim())]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("already there"), "{}", text(&again));
}
