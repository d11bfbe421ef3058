//! The shell layer on the lab VM's real serial console (getty, login, PAM,
//! sudo, the kernel's own console output): a fresh boot, shells left logged
//! in, a wrong password, kernel floods from /dev/kmsg, a hostile MOTD, a
//! colourful prompt, 10 MiB of output and the exit statuses that matter.
//! Every transcript is searched for the password.

#[path = "support/lab/mod.rs"]
mod lab_support;

use std::path::Path;
use std::time::{Duration, Instant};

use ec2_serial_expect::shell::{LoginSpec, Shell};
use ec2_serial_expect::{Error, Secret, Session};
use lab_support::LabVm;

fn spec(password: &Secret) -> LoginSpec {
    let mut spec = LoginSpec::new("ec2-user", password.clone());
    spec.timeout = Duration::from_secs(120);
    spec
}

fn assert_no_secret(path: &Path, secrets: &[&Secret]) {
    let text = std::fs::read_to_string(path).unwrap();
    for s in secrets {
        assert!(!text.contains(s.expose()), "a password leaked into {}", path.display());
    }
}

async fn login(session: &mut Session, spec: &LoginSpec) -> Shell {
    Shell::login(session, spec)
        .await
        .unwrap_or_else(|e| panic!("login: {e}"))
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn fresh_boot_login_statuses_big_output_long_commands_and_logout() {
    let vm = LabVm::boot("shell-fresh").await;
    let password = vm.password();
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("fresh.cast");
    let mut s = vm.console(Some(&cast)).await;
    let mut sh = login(&mut s, &spec(&password)).await;
    assert_eq!((sh.user(), sh.is_root()), ("ec2-user", false));
    for (cmd, output, status) in [
        ("echo hello", "hello\n", 0),
        ("printf 'no newline'", "no newline", 0),
        ("false", "", 1),
        ("no-such-command 2>/dev/null", "", 127),
        ("exit 255", "", 255),
        ("cat; read x; echo $?", "1\n", 0),
    ] {
        let out = sh.run(&mut s, cmd).await.unwrap();
        assert_eq!((out.output.as_str(), out.status), (output, status), "{cmd}");
    }
    let started = Instant::now();
    let out = sh
        .run_with_timeout(&mut s, "head -c 10485760 /dev/zero | tr '\\0' 'x' | fold -w 1023", Duration::from_secs(600))
        .await
        .unwrap();
    eprintln!("10 MiB through the serial console in {:?}", started.elapsed());
    // fold ends every full 1023-column line; the last 10 columns keep no newline.
    assert_eq!(out.output.len(), 10 * 1024 * 1024 + 10 * 1024 * 1024 / 1023);
    assert!(out.output.bytes().all(|b| b == b'x' || b == b'\n'));
    let long = format!("echo {} | wc -c", "k".repeat(10 * 1024));
    assert_eq!(sh.run(&mut s, &long).await.unwrap().output.trim(), "10241");
    let out = sh.sudo(&mut s, "id -un").await.unwrap();
    assert_eq!(out.output, "root\n");
    sh.logout(&mut s).await.unwrap();
    // The transcript shows the console back at its login prompt.
    s.close().await.unwrap();
    let text = std::fs::read_to_string(&cast).unwrap();
    let after_logout = text.rsplit("shell: logout").next().unwrap();
    assert!(after_logout.contains("login: "), "no login prompt after logout");
    assert_no_secret(&cast, &[&password]);
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn wrong_password_is_exit_4_and_the_console_stays_at_login() {
    let vm = LabVm::boot("shell-wrongpw").await;
    let password = vm.password();
    let wrong = Secret::new("password", "Not-The-Password-42");
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("wrong.cast");
    let mut s = vm.console(Some(&cast)).await;
    let err = Shell::login(&mut s, &spec(&wrong)).await.unwrap_err();
    assert!(matches!(err, Error::Login(_)), "{err:?}");
    assert_eq!(err.exit_code().code(), 4);
    assert!(err.to_string().contains("back at its login prompt"), "{err}");
    assert!(!err.to_string().contains(wrong.expose()));
    // Left at login: the right password works at once, from that prompt.
    let sh = login(&mut s, &spec(&password)).await;
    sh.logout(&mut s).await.unwrap();
    s.close().await.unwrap();
    assert_no_secret(&cast, &[&password, &wrong]);
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn root_and_user_shells_left_logged_in_are_handled() {
    let vm = LabVm::boot("shell-leftover").await;
    let password = vm.password();
    let mut s = vm.console(None).await;
    let mut sh = login(&mut s, &spec(&password)).await;
    // A previous session that died inside `sudo -i` with `less` open.
    sh.run(&mut s, "true").await.unwrap();
    s.send_line("sudo -i").await.unwrap();
    s.send_line("seq 1000 | less").await.unwrap();
    std::mem::forget(sh);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The next login quits the pager, exits root's shell and reuses ec2-user's.
    let mut sh = login(&mut s, &spec(&password)).await;
    assert_eq!((sh.user(), sh.is_root()), ("ec2-user", false));
    assert_eq!(sh.run(&mut s, "echo ok").await.unwrap().output, "ok\n");
    sh.logout(&mut s).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn kernel_floods_hostile_motd_colour_prompt_and_sudo_with_a_password() {
    let vm = LabVm::boot("shell-hostile").await;
    let password = vm.password();
    let alice_pw = Secret::new("alice-password", "Alice-Pw-93517");
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("hostile.cast");
    let mut s = vm.console(Some(&cast)).await;
    s.add_secret(&alice_pw);
    let mut sh = login(&mut s, &spec(&password)).await;
    let setup = format!(
        "printf 'Password: rotate it\\nlogin: audited\\n' >/etc/motd && \
         useradd -m -s /bin/bash alice && echo 'alice:{}' | chpasswd && \
         echo 'alice ALL=(ALL) ALL' >/etc/sudoers.d/alice && \
         printf '%s\\n' \"PS1='\\[\\e]0;\\u@\\h\\a\\]\\[\\e[01;32m\\]\\u@\\h\\[\\e[00m\\]:\\[\\e[01;34m\\]\\w\\[\\e[00m\\]\\$ '\" >>/home/alice/.bashrc && \
         systemd-run --unit=kflood sh -c 'while :; do echo \"<2>kflood $(cat /proc/uptime)\" >/dev/kmsg; sleep 0.2; done'",
        alice_pw.expose()
    );
    let out = sh.sudo(&mut s, &setup).await.unwrap();
    assert_eq!(out.status, 0, "{}", out.output);
    sh.logout(&mut s).await.unwrap();

    // Kernel lines every 200 ms through the login and the output.
    let mut alice = LoginSpec::new("alice", alice_pw.clone());
    alice.quiet_kernel = false;
    alice.timeout = Duration::from_secs(120);
    let mut sh = login(&mut s, &alice).await;
    let out = sh.run(&mut s, "for i in $(seq 1 20); do echo line $i; sleep 0.1; done").await.unwrap();
    let expected: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    assert_eq!(out.output, expected);
    assert!(out.kernel_lines.iter().any(|l| l.contains("kflood")), "{:?}", out.kernel_lines);
    // sudo answers its password prompt with the login password.
    let out = sh.sudo(&mut s, "id -un").await.unwrap();
    assert_eq!(out.output, "root\n");
    sh.logout(&mut s).await.unwrap();

    // With quieting on (the default) the flood stops reaching the console.
    let mut quiet = alice.clone();
    quiet.quiet_kernel = true;
    let mut sh = login(&mut s, &quiet).await;
    sh.sudo(&mut s, "true").await.unwrap();
    let out = sh.run(&mut s, "sleep 2; echo done").await.unwrap();
    assert_eq!(out.output, "done\n");
    assert!(out.kernel_lines.is_empty(), "quieted: {:?}", out.kernel_lines);
    sh.logout(&mut s).await.unwrap();
    s.close().await.unwrap();
    assert_no_secret(&cast, &[&password, &alice_pw]);
}
