//! The shell layer on the lab VM's real serial console (getty, login, PAM,
//! sudo, the kernel's own console output): a fresh boot, shells left logged
//! in, a wrong password, kernel floods from /dev/kmsg, a hostile MOTD, a
//! colourful prompt, 10 MiB of output and the exit statuses that matter.
//! Every transcript is searched for the passwords.
//!
//! Each conversation is a flow function run twice: live against a VM
//! (ignored tests, `scripts/test.sh` runs them as root), and replayed from
//! `fixtures/shell/lab-*.cast` (ordinary tests, no VM). With
//! `ESE_LAB_RECORD_FIXTURES=1` the live tests write those fixtures.

use crate::support::lab as lab_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ec2_serial_expect::shell::{CommandOutput, LoginSpec, Shell};
use ec2_serial_expect::{ErrorKind, Pattern, Secret, Session};
use lab_support::LabVm;

/// alice's password, and its SHA-512 crypt hash (what `chpasswd -e` gets,
/// so the password itself is never typed into a command).
const ALICE_PASSWORD: &str = "Alice-Pw-93517";
const ALICE_HASH: &str =
    "$6$esxlabsalt$PAuiOnmjN7vousvsoohdlKvNHN7jMV4OURzPCDEzQbVwp81own83Zo/yak5OYNS2GA/E88UZGnaj1tDcQRmKI0";
const WRONG_PASSWORD: &str = "Not-The-Password-42";

fn spec(user: &str, password: &Secret) -> LoginSpec {
    let mut spec = LoginSpec::new(user, password.clone());
    spec.timeout = Duration::from_secs(120);
    spec
}

async fn login<'s>(session: &'s mut Session, spec: &LoginSpec) -> Shell<'s> {
    Shell::login(session, spec)
        .await
        .unwrap_or_else(|e| panic!("login as {}: {e}", spec.user))
}

async fn run(sh: &mut Shell<'_>, cmd: &str) -> CommandOutput {
    sh.run(cmd).await.unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

// ---- flows: the same keystrokes live and in replay ----

/// Login on a fresh boot, exit statuses, a 10 KB command, sudo, logout.
async fn fresh_flow(s: &mut Session, password: &Secret) {
    let mut sh = login(s, &spec("ec2-user", password)).await;
    assert_eq!((sh.user(), sh.is_root()), ("ec2-user", false));
    for (cmd, output, status) in [
        ("echo hello", "hello\n", 0),
        ("printf 'no newline'", "no newline", 0),
        ("true", "", 0),
        ("false", "", 1),
        ("no-such-command 2>/dev/null", "", 127),
        ("exit 255", "", 255),
        ("cat; read x; echo $?", "1\n", 0),
    ] {
        let out = run(&mut sh, cmd).await;
        assert_eq!((out.output.as_str(), out.status), (output, status), "{cmd}");
    }
    let long = format!("echo {} | wc -c", "k".repeat(10 * 1024));
    assert_eq!(run(&mut sh, &long).await.output.trim(), "10241");
    let out = sh.sudo("id -un").await.unwrap();
    assert_eq!(out.output, "root\n");
    sh.logout().await.unwrap();
}

/// A wrong password (exit 4, console left at login:), then the right one.
async fn wrong_password_flow(s: &mut Session, password: &Secret) {
    let wrong = Secret::new("password", WRONG_PASSWORD);
    let err = Shell::login(s, &spec("ec2-user", &wrong))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Login(_)), "{err:?}");
    assert_eq!(err.exit_code().code(), 4);
    assert!(
        err.to_string().contains("back at its login prompt"),
        "{err}"
    );
    assert!(!err.to_string().contains(WRONG_PASSWORD));
    let sh = login(s, &spec("ec2-user", password)).await;
    sh.logout().await.unwrap();
}

/// A session that died inside `sudo -i` with `less` open, then a new login.
async fn leftover_flow(s: &mut Session, password: &Secret) {
    let mut sh = login(s, &spec("ec2-user", password)).await;
    run(&mut sh, "true").await;
    sh.session().send_line("sudo -i").await.unwrap();
    sh.session().send_line("seq 1000 | less").await.unwrap();
    std::mem::forget(sh);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The next login quits the pager, exits root's shell, reuses ec2-user's.
    let mut sh = login(s, &spec("ec2-user", password)).await;
    assert_eq!((sh.user(), sh.is_root()), ("ec2-user", false));
    assert_eq!(run(&mut sh, "echo ok").await.output, "ok\n");
    sh.logout().await.unwrap();
}

/// A /dev/kmsg flood every 200 ms, a MOTD with `Password:` and `login:`, a
/// colour PS1, and a user whose sudo asks for the password.
async fn hostile_flow(s: &mut Session, password: &Secret) {
    let alice_pw = Secret::new("alice-password", ALICE_PASSWORD);
    let mut sh = login(s, &spec("ec2-user", password)).await;
    let setup = format!(
        "printf 'Password: rotate it\\nlogin: audited\\n' >/etc/motd && \
         useradd -m -s /bin/bash alice && echo 'alice:{ALICE_HASH}' | chpasswd -e && \
         echo 'alice ALL=(ALL) ALL' >/etc/sudoers.d/alice && \
         printf '%s\\n' \"PS1='\\[\\e]0;\\u@\\h\\a\\]\\[\\e[01;32m\\]\\u@\\h\\[\\e[00m\\]:\\[\\e[01;34m\\]\\w\\[\\e[00m\\]\\$ '\" >>/home/alice/.bashrc && \
         systemd-run --unit=kflood sh -c 'while :; do echo \"<2>kflood $(cat /proc/uptime)\" >/dev/kmsg; sleep 0.2; done'"
    );
    let out = sh.sudo(&setup).await.unwrap();
    assert_eq!(out.status, 0, "{}", out.output);
    sh.logout().await.unwrap();

    // Kernel lines every 200 ms through the login and the output.
    let mut alice = spec("alice", &alice_pw);
    alice.quiet_kernel = false;
    let mut sh = login(s, &alice).await;
    let out = run(
        &mut sh,
        "for i in $(seq 1 20); do echo line $i; sleep 0.1; done",
    )
    .await;
    let expected: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    assert_eq!(out.output, expected);
    assert!(
        out.kernel_lines.iter().any(|l| l.contains("kflood")),
        "{:?}",
        out.kernel_lines
    );
    // sudo answers its password prompt with the login password.
    let out = sh.sudo("id -un").await.unwrap();
    assert_eq!(out.output, "root\n");
    sh.logout().await.unwrap();

    // With quieting on (the default) the flood stops reaching the console
    // once sudo works.
    let mut sh = login(s, &spec("alice", &alice_pw)).await;
    sh.sudo("true").await.unwrap();
    let out = run(&mut sh, "sleep 2; echo done").await;
    assert_eq!(out.output, "done\n");
    assert!(
        out.kernel_lines.is_empty(),
        "quieted: {:?}",
        out.kernel_lines
    );
    sh.logout().await.unwrap();
}

/// An fstab entry that cannot mount sends the next boot to emergency mode;
/// login must say so (exit 4) instead of timing out.
async fn emergency_flow(s: &mut Session, password: &Secret) {
    let mut sh = login(s, &spec("ec2-user", password)).await;
    let broken =
        "echo '/dev/vdz /mnt/missing ext4 defaults,x-systemd.device-timeout=2s 0 2' >>/etc/fstab";
    assert_eq!(sh.sudo(broken).await.unwrap().status, 0);
    sh.session()
        .send_line("sudo systemctl reboot")
        .await
        .unwrap();
    std::mem::forget(sh);
    // A whole reboot under TCG, then the 2 s device timeout.
    let mut after_reboot = spec("ec2-user", password);
    after_reboot.timeout = Duration::from_secs(480);
    let err = Shell::login(s, &after_reboot).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Login(_)), "{err:?}");
    assert_eq!(err.exit_code().code(), 4);
    assert!(err.to_string().contains("emergency mode"), "{err}");
}

// ---- live, on the lab VM ----

fn recording_fixtures() -> bool {
    std::env::var("ESE_LAB_RECORD_FIXTURES").as_deref() == Ok("1")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/shell")
        .join(name)
}

/// Where a live test records: the fixture when recording, else `tmp`.
fn live_cast(tmp: &Path, name: &str) -> PathBuf {
    if recording_fixtures() {
        fixture(name)
    } else {
        tmp.join(name)
    }
}

fn assert_no_secret(path: &Path, secrets: &[&str]) {
    let text = std::fs::read_to_string(path).unwrap();
    for s in secrets {
        assert!(
            !text.contains(s),
            "a password leaked into {}",
            path.display()
        );
    }
    assert!(
        text.contains("<redacted>"),
        "{}: no password send recorded",
        path.display()
    );
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn lab_fresh_boot_login_statuses_10_mib_long_commands_and_logout() {
    let vm = LabVm::boot("shell-fresh").await;
    let password = vm.password();
    let tmp = tempfile::tempdir().unwrap();
    let cast = live_cast(tmp.path(), "lab-fresh-boot.cast");
    let mut s = vm.console(Some(&cast)).await;
    fresh_flow(&mut s, &password).await;
    if !recording_fixtures() {
        // 10 MiB (kept out of the fixture), then back to the login prompt.
        let mut sh = login(&mut s, &spec("ec2-user", &password)).await;
        let started = Instant::now();
        let cmd = "head -c 10485760 /dev/zero | tr '\\0' 'x' | fold -w 1023";
        let out = sh
            .run_with_timeout(cmd, Duration::from_secs(600))
            .await
            .unwrap();
        eprintln!(
            "10 MiB through the serial console in {:?}",
            started.elapsed()
        );
        // fold ends every full 1023-column line; the last 10 columns keep no newline.
        assert_eq!(out.output.len(), 10 * 1024 * 1024 + 10 * 1024 * 1024 / 1023);
        assert!(out.output.bytes().all(|b| b == b'x' || b == b'\n'));
        sh.logout().await.unwrap();
    }
    s.close().await.unwrap();
    // Logged out: no shell is left on the console. The logout ended at the
    // shell's proof (`__ESX_GONE (login)`), not at getty's prompt, so a
    // new session types Enter and must get getty's `login: `, not a shell.
    let recorded = std::fs::read_to_string(&cast).unwrap();
    assert!(
        recorded.contains("shell: logged out (its login session ended)"),
        "the logout ended on the login session's proof"
    );
    let mut s = vm.console(None).await;
    s.send("\r").await.unwrap();
    let seen = s
        .expect(
            &[Pattern::exact("login: "), Pattern::regex(r"[$#>] $")],
            Some(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(seen.index, 0, "a shell answered: {:?}", seen.before);
    s.close().await.unwrap();
    assert_no_secret(&cast, &[password.expose()]);
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn lab_wrong_password_is_exit_4_and_the_console_stays_at_login() {
    let vm = LabVm::boot("shell-wrongpw").await;
    let password = vm.password();
    let tmp = tempfile::tempdir().unwrap();
    let cast = live_cast(tmp.path(), "lab-wrong-password.cast");
    let mut s = vm.console(Some(&cast)).await;
    wrong_password_flow(&mut s, &password).await;
    s.close().await.unwrap();
    assert_no_secret(&cast, &[password.expose(), WRONG_PASSWORD]);
    // The same VM, a second session: the flow of the `script::suite`
    // doctest, which replays fixtures/shell/lab-doc-example.cast.
    let cast = live_cast(tmp.path(), "lab-doc-example.cast");
    let mut s = vm.console(Some(&cast)).await;
    let spec = LoginSpec::new("ec2-user", password.clone());
    let out = Shell::scoped(&mut s, &spec, async |shell| shell.run("uname -n").await)
        .await
        .unwrap();
    assert_eq!(out.output, "lab-instance\n");
    s.close().await.unwrap();
    assert_no_secret(&cast, &[password.expose()]);
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn lab_root_and_user_shells_left_logged_in_with_a_pager() {
    let vm = LabVm::boot("shell-leftover").await;
    let password = vm.password();
    let tmp = tempfile::tempdir().unwrap();
    let cast = live_cast(tmp.path(), "lab-leftover-shells.cast");
    let mut s = vm.console(Some(&cast)).await;
    leftover_flow(&mut s, &password).await;
    s.close().await.unwrap();
    assert_no_secret(&cast, &[password.expose()]);
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn lab_kernel_floods_hostile_motd_colour_prompt_and_sudo_with_a_password() {
    let vm = LabVm::boot("shell-hostile").await;
    let password = vm.password();
    let tmp = tempfile::tempdir().unwrap();
    let cast = live_cast(tmp.path(), "lab-hostile.cast");
    let mut s = vm.console(Some(&cast)).await;
    hostile_flow(&mut s, &password).await;
    s.close().await.unwrap();
    assert_no_secret(&cast, &[password.expose(), ALICE_PASSWORD]);
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "lab: needs root and QEMU (scripts/test.sh runs it)"]
async fn lab_emergency_mode_is_a_clear_login_error() {
    let vm = LabVm::boot("shell-emergency").await;
    let password = vm.password();
    let tmp = tempfile::tempdir().unwrap();
    let cast = live_cast(tmp.path(), "lab-emergency-mode.cast");
    let mut s = vm.console(Some(&cast)).await;
    emergency_flow(&mut s, &password).await;
    s.close().await.unwrap();
    assert_no_secret(&cast, &[password.expose()]);
}

// ---- replayed from the lab recordings, no VM ----

/// A replay of `fixtures/shell/NAME` (recorded by the live tests above).
async fn replay(name: &str) -> Session {
    let path = fixture(name);
    if !path.exists() {
        panic!(
            "{} is missing: record it with ESE_LAB_RECORD_FIXTURES=1 cargo test --test integration shell_lab -- --ignored",
            path.display()
        );
    }
    crate::support::open_session(&format!("replay:{}", path.display()), None, 20).await
}

/// Any password matches the recording's `<redacted>`.
fn any_password() -> Secret {
    Secret::new("password", "replayed-password")
}

#[tokio::test]
async fn replay_lab_fresh_boot() {
    let mut s = replay("lab-fresh-boot.cast").await;
    fresh_flow(&mut s, &any_password()).await;
}

#[tokio::test]
async fn replay_lab_wrong_password() {
    let mut s = replay("lab-wrong-password.cast").await;
    wrong_password_flow(&mut s, &any_password()).await;
}

#[tokio::test]
async fn replay_lab_leftover_shells() {
    let mut s = replay("lab-leftover-shells.cast").await;
    leftover_flow(&mut s, &any_password()).await;
}

#[tokio::test]
async fn replay_lab_hostile_console() {
    let mut s = replay("lab-hostile.cast").await;
    hostile_flow(&mut s, &any_password()).await;
}

#[tokio::test]
async fn replay_lab_emergency_mode() {
    let mut s = replay("lab-emergency-mode.cast").await;
    emergency_flow(&mut s, &any_password()).await;
}
