//! The shell layer replayed from recorded transcripts (`fixtures/shell/`),
//! so the login machine and `run` are tested against real console text
//! without a VM or root.
//!
//! The fixtures were recorded by `record_shell_fixtures` below from real
//! `login` (shadow's, Debian's own) + PAM + bash + sudo on Debian 12 under a PTY, except
//! `al2023-*` and `ubuntu-*`, which come from `fixtures/shell/emulated-getty.sh`:
//! a console written by hand from the reference notes on what those
//! distributions print (labelled so in the script). A replay fails if the
//! shell layer sends anything other than what it sent when recording, so
//! these tests also pin down the exact keystrokes.
//!
//! Replays run on a paused (virtual) clock (`start_paused`): the recording
//! answers at once, so the login machine's quiet periods and timeouts pass
//! instantly and in the same order, and a replay costs only CPU.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ec2_serial_expect::shell::{CommandOutput, LoginSpec, Shell};
use ec2_serial_expect::{ErrorKind, Result, Secret, Session};

/// Commands every "full" flow runs, with their expected output and status.
const COMMANDS: &[(&str, &str, i32)] = &[
    ("echo hello", "hello\n", 0),
    ("printf 'no newline'", "no newline", 0),
    ("true", "", 0),
    ("false", "", 1),
    ("no-such-command-xyz 2>/dev/null", "", 127),
    ("exit 255", "", 255),
    ("cat", "", 0),
    (
        "for i in 1 2 3; do echo $i; sleep 0.3; done",
        "1\n2\n3\n",
        0,
    ),
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/shell")
        .join(name)
}

async fn open(target: &str, record_to: Option<&Path>) -> Session {
    crate::support::open_session(target, record_to, 20).await
}

fn spec(user: &str, password: &str) -> LoginSpec {
    let mut spec = LoginSpec::new(user, Secret::new("password", password));
    spec.timeout = Duration::from_secs(60);
    spec
}

/// What a full flow saw.
#[derive(Debug)]
struct Seen {
    user: String,
    root: bool,
    runs: Vec<CommandOutput>,
    sudo: Result<CommandOutput>,
}

/// Login, the [`COMMANDS`], `sudo id -un`, logout.
async fn full_flow(session: &mut Session, spec: &LoginSpec) -> Result<Seen> {
    let mut shell = Shell::login(session, spec).await?;
    let mut runs = Vec::new();
    for (cmd, _, _) in COMMANDS {
        match shell.run(cmd).await {
            Ok(out) => runs.push(out),
            Err(e) => {
                shell.logout().await?;
                return Err(e);
            }
        }
    }
    let sudo = shell.sudo("id -un").await;
    let (user, root) = (shell.user().to_string(), shell.is_root());
    shell.logout().await?;
    Ok(Seen {
        user,
        root,
        runs,
        sudo,
    })
}

fn assert_commands(seen: &Seen) {
    for ((cmd, output, status), out) in COMMANDS.iter().zip(&seen.runs) {
        assert_eq!(
            (out.output.as_str(), out.status),
            (*output, *status),
            "{cmd}"
        );
    }
    assert_eq!(seen.runs.len(), COMMANDS.len());
}

/// A live console per fixture: (fixture, target, user, password file).
fn scenarios(pw_dir: &Path) -> Vec<(&'static str, String, &'static str, PathBuf)> {
    let getty = |user: &str| {
        let f = pw_dir.join(user);
        (f.clone(), f)
    };
    let login_loop = "exec:sh -c 'while :; do login; done'".to_string();
    let emulated = |flavour: &str, pw: &Path| {
        format!(
            "exec:sh {} {flavour} {}",
            fixture("emulated-getty.sh").display(),
            pw.display()
        )
    };
    let (dev, _) = getty("esxdev");
    let (noisy, _) = getty("esxnoisy");
    let (ec2, _) = getty("ec2-user");
    let (ubuntu, _) = getty("ubuntu");
    vec![
        (
            "debian-login-run-sudo-password.cast",
            login_loop.clone(),
            "esxdev",
            dev.clone(),
        ),
        (
            "debian-wrong-password.cast",
            login_loop.clone(),
            "esxdev",
            dev.clone(),
        ),
        (
            "debian-hostile-motd-kmsg-flood-colour-prompt.cast",
            login_loop.clone(),
            "esxnoisy",
            noisy.clone(),
        ),
        (
            "debian-root-shell-left-logged-in.cast",
            "exec:sh -c 'env PS1=\"root@lab:~# \" bash --norc -i; while :; do login; done'".into(),
            "esxdev",
            dev.clone(),
        ),
        (
            "debian-pager-left-on-the-console.cast",
            "exec:sh -c 'seq 300 | TERM=vt100 less; exec env PS1=\"root@lab:~# \" bash --norc -i'"
                .into(),
            "root",
            noisy,
        ),
        (
            "al2023-login.cast",
            emulated("al2023", &ec2),
            "ec2-user",
            ec2,
        ),
        (
            "ubuntu-login.cast",
            emulated("ubuntu", &ubuntu),
            "ubuntu",
            ubuntu,
        ),
    ]
}

/// Records every fixture from live consoles. Needs root, a `login` (shadow's on Debian),
/// sudo and the local users of docs/shell.md, with their passwords in
/// `$ESX_SHELL_PASSWORDS/<user>`.
#[tokio::test]
#[ignore = "records fixtures/shell/*.cast: needs root and the local test users of docs/shell.md"]
async fn record_shell_fixtures() {
    let dir = PathBuf::from(std::env::var("ESX_SHELL_PASSWORDS").expect("ESX_SHELL_PASSWORDS"));
    for (name, target, user, pw_file) in scenarios(&dir) {
        let password = std::fs::read_to_string(&pw_file)
            .unwrap()
            .trim()
            .to_string();
        let path = fixture(name);
        let mut session = open(&target, Some(&path)).await;
        if name.contains("wrong-password") {
            let err = Shell::login(&mut session, &spec(user, "Wrong-Password-000"))
                .await
                .unwrap_err();
            eprintln!("{name}: {err}");
        } else {
            let seen = full_flow(&mut session, &spec(user, &password)).await;
            eprintln!("{name}: {seen:?}");
        }
        session.close().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&password), "{name} holds the password");
    }
}

async fn replay(name: &str) -> Session {
    open(&format!("replay:{}", fixture(name).display()), None).await
}

/// The password the replays "type": any secret matches `<redacted>`.
const ANY: &str = "replayed-password";

#[tokio::test(start_paused = true)]
async fn debian_login_run_and_sudo_with_a_password_prompt() {
    let mut s = replay("debian-login-run-sudo-password.cast").await;
    let seen = full_flow(&mut s, &spec("esxdev", ANY)).await.unwrap();
    assert_eq!((seen.user.as_str(), seen.root), ("esxdev", false));
    assert_commands(&seen);
    let sudo = seen.sudo.unwrap();
    assert_eq!((sudo.output.as_str(), sudo.status), ("root\n", 0));
}

#[tokio::test(start_paused = true)]
async fn debian_wrong_password_is_exit_4_and_leaves_the_login_prompt() {
    let mut s = replay("debian-wrong-password.cast").await;
    let err = Shell::login(&mut s, &spec("esxdev", ANY))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Login(_)), "{err:?}");
    assert_eq!(err.exit_code().code(), 4);
    let msg = err.to_string();
    assert!(
        msg.contains("login incorrect") && msg.contains("not retried"),
        "{msg}"
    );
    assert!(msg.contains("back at its login prompt"), "{msg}");
    assert!(!msg.contains(ANY));
}

#[tokio::test(start_paused = true)]
async fn debian_hostile_motd_kernel_flood_and_colour_prompt() {
    let mut s = replay("debian-hostile-motd-kmsg-flood-colour-prompt.cast").await;
    let seen = full_flow(&mut s, &spec("esxnoisy", ANY)).await.unwrap();
    assert_eq!(seen.user, "esxnoisy");
    assert_commands(&seen);
    for out in &seen.runs {
        assert!(!out.output.contains("kmsg flood"), "{:?}", out.output);
    }
    let kernel: usize = seen.runs.iter().map(|r| r.kernel_lines.len()).sum();
    assert!(
        kernel > 0,
        "the flood interleaved with the commands and was set apart"
    );
    assert_eq!(seen.sudo.unwrap().output, "root\n");
}

#[tokio::test(start_paused = true)]
async fn debian_root_shell_left_logged_in_is_logged_out_first() {
    let mut s = replay("debian-root-shell-left-logged-in.cast").await;
    let seen = full_flow(&mut s, &spec("esxdev", ANY)).await.unwrap();
    assert_eq!((seen.user.as_str(), seen.root), ("esxdev", false));
    assert_commands(&seen);
}

#[tokio::test(start_paused = true)]
async fn debian_pager_left_on_the_console_is_quit() {
    let mut s = replay("debian-pager-left-on-the-console.cast").await;
    let seen = full_flow(&mut s, &spec("root", ANY)).await.unwrap();
    assert_eq!((seen.user.as_str(), seen.root), ("root", true));
    assert_commands(&seen);
    assert_eq!(seen.sudo.unwrap().output, "root\n", "root needs no sudo");
}

#[tokio::test(start_paused = true)]
async fn amazon_linux_2023_console_text_with_cloud_init_after_the_prompt() {
    let mut s = replay("al2023-login.cast").await;
    let seen = full_flow(&mut s, &spec("ec2-user", ANY)).await.unwrap();
    assert_eq!(seen.user, "ec2-user");
    assert_commands(&seen);
    // ec2-user is not in this console's sudoers: a clear exit-4 error.
    let err = seen.sudo.unwrap_err();
    assert_eq!(err.exit_code().code(), 4);
    assert!(err.to_string().contains("may not use sudo"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn ubuntu_console_text() {
    let mut s = replay("ubuntu-login.cast").await;
    let seen = full_flow(&mut s, &spec("ubuntu", ANY)).await.unwrap();
    assert_eq!(seen.user, "ubuntu");
    assert_commands(&seen);
}

#[tokio::test(start_paused = true)]
async fn fixtures_hold_no_password() {
    for entry in std::fs::read_dir(fixture("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cast") {
            let text = std::fs::read_to_string(&path).unwrap();
            for pw in [
                "Dev-Pass-123",
                "Noisy-Pass-456",
                "Ec2-Pass-789",
                "Ubuntu-Pass-012",
            ] {
                assert!(!text.contains(pw), "{} holds a password", path.display());
            }
            let no_login = path.to_string_lossy().contains("pager");
            assert!(
                no_login || text.contains("<redacted>"),
                "{}: no password answered",
                path.display()
            );
        }
    }
}
