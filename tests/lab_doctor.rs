//! `doctor` on a real lab VM, for every `lab break` scenario: check mode names
//! the cause (exit 1), `--fix` repairs it and verifies (exit 0), a real SSH
//! key login then succeeds, and a second check finds nothing (exit 0). Also
//! several scenarios combined on one VM. The console password must never
//! appear in the transcript, the report, stdout or stderr.

#[path = "support/lab/mod.rs"]
mod lab_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ec2_serial_expect::lab::scenario;
use ec2_serial_expect::lab::ssh::KeyLogin;
use lab_support::LabVm;
use serde_json::Value;

/// One doctor run's results.
struct Run {
    code: i32,
    report: Value,
    stdout: String,
}

impl Run {
    fn ids(&self, status: &str) -> Vec<String> {
        self.report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["status"] == status && f["severity"] == "error")
            .map(|f| f["check"].as_str().unwrap().to_string())
            .collect()
    }
}

fn doctor(vm: &LabVm, dir: &Path, tag: &str, login_user: &str, fix: bool) -> Run {
    let info = vm.info();
    let transcript = dir.join(format!("{tag}.cast"));
    let report = dir.join(format!("{tag}.json"));
    let public_key = PathBuf::from(format!("{}.pub", info.key.display()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"));
    cmd.arg("doctor")
        .arg(format!("unix:{}", info.serial_socket.display()))
        .args([
            "--user",
            "ec2-user",
            "--login-user",
            login_user,
            "--password-file",
        ])
        .arg(&info.password_file)
        .arg("--public-key")
        .arg(&public_key)
        .arg("--transcript")
        .arg(&transcript)
        .arg("--report")
        .arg(&report);
    if fix {
        cmd.args(["--fix", "--add-key"]);
    }
    let out = cmd.output().expect("running the doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let password = std::fs::read_to_string(&info.password_file).unwrap();
    let password = password.trim();
    let artifacts = [
        ("stdout", stdout.clone()),
        ("stderr", stderr.clone()),
        (
            "transcript",
            std::fs::read_to_string(&transcript).unwrap_or_default(),
        ),
        (
            "report",
            std::fs::read_to_string(&report).unwrap_or_default(),
        ),
    ];
    for (what, text) in &artifacts {
        assert!(
            !text.contains(password),
            "{tag}: the password leaked into the {what}"
        );
    }
    record_fixture(&transcript, tag, login_user, &public_key);
    let report: Value = serde_json::from_str(&artifacts[3].1).unwrap_or_else(|e| {
        panic!("{tag}: no JSON report ({e}); stdout:\n{stdout}\nstderr:\n{stderr}")
    });
    Run {
        code: out.status.code().unwrap_or(-1),
        report,
        stdout,
    }
}

/// With `ESE_RECORD_FIXTURES=1`, keeps each check-mode transcript (and the
/// first fix) as a replay fixture under `fixtures/doctor/`, for
/// `tests/doctor_replay.rs`.
fn record_fixture(transcript: &Path, tag: &str, login_user: &str, public_key: &Path) {
    if std::env::var_os("ESE_RECORD_FIXTURES").is_none()
        || !(tag.ends_with("-check") || tag == "home-777-fix")
    {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/doctor");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(public_key, dir.join("lab-key.pub")).unwrap();
    std::fs::copy(transcript, dir.join(format!("{tag}.cast"))).unwrap();
    std::fs::write(dir.join(format!("{tag}.login")), login_user).unwrap();
}

/// Breaks, checks, fixes, proves SSH works, re-checks.
async fn cure(vm: &LabVm, dir: &Path, names: &[&str], expected: &[&str]) {
    let tag = names.join("+");
    if let [name] = names {
        let s = scenario::find(name).unwrap();
        scenario::break_over_ssh(vm.info(), s)
            .await
            .unwrap_or_else(|e| panic!("{name}: breaking failed: {e}"));
    } else {
        // The first break already refuses SSH: break them all in one login.
        let all: Vec<&str> = names
            .iter()
            .map(|n| scenario::find(n).unwrap().break_command)
            .collect();
        let out = vm.ssh().run(&all.join(" && ")).await.unwrap();
        assert_eq!(out.status, 0, "{tag}: breaking failed: {out:?}");
    }
    let refused = vm.ssh().probe().await.unwrap();
    assert!(
        matches!(refused, KeyLogin::Refused(_)),
        "{tag}: SSH must be refused after breaking: {refused:?}"
    );
    // An expired account cannot log in on the console either: use the rescue user.
    let login = if names.contains(&"locked-account") {
        "lab-admin"
    } else {
        "ec2-user"
    };

    let check = doctor(vm, dir, &format!("{tag}-check"), login, false);
    assert_eq!(
        check.code, 1,
        "{tag}: check mode exits 1 when problems are found\n{}",
        check.stdout
    );
    let mut open = check.ids("open");
    open.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(open, want, "{tag}: findings\n{}", check.stdout);

    let fix = doctor(vm, dir, &format!("{tag}-fix"), login, true);
    assert_eq!(
        fix.code, 0,
        "{tag}: --fix exits 0 once repaired and verified\n{}",
        fix.stdout
    );
    assert_eq!(fix.report["verified"], true);
    let mut fixed = fix.ids("fixed");
    fixed.sort();
    assert_eq!(fixed, want, "{tag}: every finding fixed\n{}", fix.stdout);

    vm.assert_key_login_accepted(&format!(
        "{tag}: a real SSH key login works after the repair"
    ))
    .await;

    let again = doctor(vm, dir, &format!("{tag}-again"), "ec2-user", false);
    assert_eq!(
        again.code, 0,
        "{tag}: a second run finds nothing\n{}",
        again.stdout
    );
    assert!(again.ids("open").is_empty());
}

#[tokio::test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn doctor_cures_permission_and_ownership_scenarios() {
    let vm = LabVm::boot("doctor-perms").await;
    let dir = tempfile::tempdir().unwrap();
    let healthy = doctor(&vm, dir.path(), "healthy-check", "ec2-user", false);
    assert_eq!(
        healthy.code, 0,
        "a pristine VM is healthy:\n{}",
        healthy.stdout
    );
    assert!(
        healthy.stdout.contains("no problems found"),
        "{}",
        healthy.stdout
    );
    cure(&vm, dir.path(), &["home-777"], &["home.mode"]).await;
    cure(&vm, dir.path(), &["ssh-dir-perms"], &["ssh_dir.mode"]).await;
    cure(
        &vm,
        dir.path(),
        &["authorized-keys-perms"],
        &["authorized_keys.mode"],
    )
    .await;
    cure(&vm, dir.path(), &["home-owner"], &["home.owner"]).await;
    cure(
        &vm,
        dir.path(),
        &["ssh-dir-owner"],
        &["ssh_dir.owner", "authorized_keys.owner"],
    )
    .await;
}

#[tokio::test]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn doctor_cures_missing_keys_accounts_and_sshd_config() {
    let vm = LabVm::boot("doctor-keys").await;
    let dir = tempfile::tempdir().unwrap();
    cure(
        &vm,
        dir.path(),
        &["missing-authorized-keys"],
        &["authorized_keys.exists", "authorized_keys.key_missing"],
    )
    .await;
    cure(
        &vm,
        dir.path(),
        &["missing-key"],
        &["authorized_keys.key_missing"],
    )
    .await;
    cure(
        &vm,
        dir.path(),
        &["home-root-owned-group-writable"],
        &["home.owner", "home.mode"],
    )
    .await;
    cure(&vm, dir.path(), &["locked-account"], &["user.expired"]).await;
    cure(
        &vm,
        dir.path(),
        &["sshd-strictmodes-config"],
        &["sshd.authorized_keys_file"],
    )
    .await;
    cure(
        &vm,
        dir.path(),
        &["home-777", "authorized-keys-perms", "missing-key"],
        &[
            "home.mode",
            "authorized_keys.mode",
            "authorized_keys.key_missing",
        ],
    )
    .await;
}
