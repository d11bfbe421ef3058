//! Every `lab break` scenario, proven on a real VM: SSH key login works,
//! breaking it (over SSH, as a user would) makes sshd refuse the key, and the
//! documented manual repair typed on the serial console makes it work again,
//! leaving the permissions exactly as they were.
//!
//! Scenarios are grouped, two VMs in parallel, several scenarios per boot
//! (each repair restores the pristine state, checked before the next one),
//! to keep the lab tests to a few minutes on 2 cores.

use crate::support::lab as lab_support;

use ec2_serial_expect::lab::scenario::{self, Scenario};
use ec2_serial_expect::lab::ssh::KeyLogin;
use lab_support::LabVm;

/// The ownership and modes every scenario touches, as `stat` prints them.
const STAT_PATHS: &str = "stat -c '%a %U:%G %n' /home /home/ec2-user /home/ec2-user/.ssh \
                          /home/ec2-user/.ssh/authorized_keys; \
                          sudo sshd -T | grep -i '^authorizedkeysfile'; \
                          sudo chage -l ec2-user | grep 'Account expires'; \
                          sudo passwd -S ec2-user | cut -d' ' -f2";

async fn pristine_state(vm: &LabVm) -> String {
    let out = vm.ssh().run(STAT_PATHS).await.expect("ssh stat");
    out.stdout
}

async fn prove(vm: &LabVm, scenario: &Scenario, pristine: &str) {
    let name = scenario.name;
    assert_eq!(
        vm.ssh().probe().await.unwrap(),
        KeyLogin::Accepted,
        "{name}: key login must work before breaking"
    );
    let refusal = scenario::break_over_ssh(vm.info(), scenario)
        .await
        .unwrap_or_else(|e| panic!("{name}: breaking failed: {e}"));
    assert!(
        refusal.contains("Permission denied") || refusal.contains("account has expired"),
        "{name}: unexpected refusal text {refusal:?}"
    );
    let mut console = vm.console(None).await;
    scenario::repair_on_console(&mut console, vm.info(), scenario)
        .await
        .unwrap_or_else(|e| panic!("{name}: the documented repair failed on the console: {e}"));
    console.close().await.unwrap();
    vm.assert_key_login_accepted(&format!("{name}: key login after the repair"))
        .await;
    assert_eq!(
        pristine_state(vm).await,
        pristine,
        "{name}: the repair must restore the exact pristine state"
    );
    eprintln!("lab: {name}: refused ({refusal:?}), repaired over the console, accepted again");
}

async fn prove_all(test: &str, names: &[&str]) -> LabVm {
    let vm = LabVm::boot(test).await;
    let pristine = pristine_state(&vm).await;
    assert!(
        pristine.contains("700 ec2-user:ec2-user /home/ec2-user\n"),
        "{pristine}"
    );
    for name in names {
        prove(&vm, scenario::find(name).unwrap(), &pristine).await;
    }
    vm
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn permission_scenarios_are_refused_then_repaired_and_what_sshd_still_accepts() {
    let vm = prove_all(
        "perms",
        &[
            "home-777",
            "ssh-dir-perms",
            "authorized-keys-perms",
            "home-root-owned-group-writable",
            "missing-key",
            "sha1-rsa",
        ],
    )
    .await;
    documented_sshd_behaviours_that_do_not_refuse_the_key(&vm).await;
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn ownership_account_and_config_scenarios_are_refused_then_repaired() {
    prove_all(
        "owners",
        &[
            "home-owner",
            "ssh-dir-owner",
            "missing-authorized-keys",
            "locked-account",
            "sshd-strictmodes-config",
            "wrong-user",
            "deleted-user",
        ],
    )
    .await;
}

/// What docs/lab.md claims about the lab's sshd (UsePAM yes): changes that
/// look dangerous but do not refuse the key. Leaves the VM modified.
async fn documented_sshd_behaviours_that_do_not_refuse_the_key(vm: &LabVm) {
    let ssh = vm.ssh();
    let admin = ssh.as_user("lab-admin");
    // `passwd -l` alone: the key still works (console password login does not).
    assert_eq!(
        admin.run("sudo passwd -l ec2-user").await.unwrap().status,
        0
    );
    assert_eq!(
        ssh.probe().await.unwrap(),
        KeyLogin::Accepted,
        "passwd -l alone"
    );
    let mut console = vm.console(None).await;
    let err = ec2_serial_expect::lab::console::login(&mut console, "ec2-user", &vm.password())
        .await
        .expect_err("a locked password must not log in on the console");
    assert_eq!(err.exit_code().code(), 4, "{err}");
    console.close().await.unwrap();
    assert_eq!(
        admin.run("sudo passwd -u ec2-user").await.unwrap().status,
        0
    );
    // StrictModes stops at the home directory: /home is not checked.
    let out = admin
        .run("sudo chown lab-admin /home && sudo chmod 777 /home")
        .await
        .unwrap();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        ssh.probe().await.unwrap(),
        KeyLogin::Accepted,
        "/home 0777 owned by a user"
    );
    // Debian: group-writable is fine when the group is the user's own.
    let out = admin.run("sudo chmod 770 /home/ec2-user").await.unwrap();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        ssh.probe().await.unwrap(),
        KeyLogin::Accepted,
        "ec2-user:ec2-user 0770 home"
    );
    // A root-owned home with mode 0755 passes StrictModes.
    let out = admin
        .run("sudo chown root:root /home/ec2-user && sudo chmod 755 /home/ec2-user")
        .await
        .unwrap();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        ssh.probe().await.unwrap(),
        KeyLogin::Accepted,
        "root-owned 0755 home"
    );
}
