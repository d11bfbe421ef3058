//! The shell layer against real shells under a PTY (`exec:` targets): bash
//! and dash as a console left logged in, with kernel-like floods, pagers,
//! megabytes of output, long command lines and commands that read stdin.
//! No VM needed; the real getty/login/sudo cases live in `shell_lab.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use ec2_serial_expect::shell::{LoginSpec, Shell};
use ec2_serial_expect::transcript::cast::{Cast, EventCode};
use ec2_serial_expect::{ErrorKind, Secret, Session};

/// A password that must never show up anywhere.
const PASSWORD: &str = "Unused-But-Secret-7431";

async fn session(target: &str, transcript: Option<&Path>) -> Session {
    crate::support::open_session(target, transcript, 20).await
}

fn me() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn spec() -> LoginSpec {
    let mut spec = LoginSpec::new(me(), Secret::new("password", PASSWORD));
    spec.timeout = Duration::from_secs(40);
    spec
}

/// A console with a shell already logged in (as whoever runs the tests).
fn bash_console(prefix: &str) -> String {
    let script =
        format!("{prefix} exec env TERM=vt100 PS1='\\u@box:\\w\\$ ' bash --norc --noprofile -i");
    format!("exec:sh -c {}", shell_words::quote(&script))
}

async fn login(s: &mut Session) -> Shell<'_> {
    Shell::login(s, &spec())
        .await
        .unwrap_or_else(|e| panic!("login: {e}"))
}

#[tokio::test]
async fn a_shell_left_logged_in_is_taken_over_and_statuses_are_exact() {
    let mut s = session(&bash_console(""), None).await;
    let mut sh = login(&mut s).await;
    assert_eq!(sh.user(), me());
    let cases: &[(&str, &str, i32)] = &[
        ("echo hello", "hello\n", 0),
        ("printf 'no newline'", "no newline", 0),
        ("true", "", 0),
        ("false", "", 1),
        ("exit 255", "", 255),
        ("printf 'a\\r\\nb\\n\\n'", "a\nb\n\n", 0),
    ];
    for (cmd, output, status) in cases {
        let out = sh.run(cmd).await.unwrap();
        assert_eq!((&out.output[..], out.status), (*output, *status), "{cmd}");
    }
    let out = sh.run("no-such-command-xyz").await.unwrap();
    assert_eq!(out.status, 127);
    assert!(out.output.contains("not found"), "{:?}", out.output);
    // State does not leak between commands: each runs in a subshell.
    sh.run("cd /tmp; export FOO=1").await.unwrap();
    let out = sh.run("echo \"${FOO:-unset}\"").await.unwrap();
    assert_eq!(out.output, "unset\n");
    sh.logout().await.unwrap();
}

#[tokio::test]
async fn commands_reading_stdin_get_eof_instead_of_hanging() {
    let mut s = session(&bash_console(""), None).await;
    let mut sh = login(&mut s).await;
    let started = Instant::now();
    let out = sh.run("cat; read x; echo \"read=$?\"").await.unwrap();
    assert_eq!(out.output, "read=1\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    sh.logout().await.unwrap();
}

#[tokio::test]
async fn a_megabyte_of_output_comes_back_byte_exact() {
    let mut s = session(&bash_console(""), None).await;
    let mut sh = login(&mut s).await;
    let started = Instant::now();
    let out = sh.run("seq 1 200000").await.unwrap();
    let expected: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    assert!(expected.len() > 1_000_000);
    assert_eq!(out.output.len(), expected.len());
    assert!(out.output == expected, "output differs from seq");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // One 2 MB line without a newline also survives.
    let out = sh
        .run("head -c 2000000 /dev/zero | tr '\\0' x")
        .await
        .unwrap();
    assert_eq!(out.output.len(), 2_000_000);
    assert!(out.output.bytes().all(|b| b == b'x'));
    sh.logout().await.unwrap();
}

#[tokio::test]
async fn long_and_multiline_commands_with_control_characters_run_intact() {
    let mut s = session(&bash_console(""), None).await;
    let mut sh = login(&mut s).await;
    let word = "y".repeat(10_000);
    let out = sh.run(&format!("echo {word} | wc -c")).await.unwrap();
    assert_eq!(out.output.trim(), "10001");
    let script = "x='it'\"'\"'s'\nprintf '%s\\t|\\n' \"$x\"\nexit 3";
    let out = sh.run(script).await.unwrap();
    assert_eq!((out.output.as_str(), out.status), ("it's\t|\n", 3));
    let out = sh.run("printf '%s' 'ctrl\u{3}c \u{15}u'").await.unwrap();
    assert_eq!(out.output, "ctrl\u{3}c \u{15}u");
    sh.logout().await.unwrap();
}

/// A full disk or a read-only /tmp is when a console is the way in: long
/// commands must not need a temp file (here mktemp cannot create one).
#[tokio::test]
async fn long_commands_run_where_no_temp_file_can_be_written() {
    let mut s = session(&bash_console("export TMPDIR=/nonexistent;"), None).await;
    let mut sh = login(&mut s).await;
    let out = sh.run("mktemp; echo $?").await.unwrap();
    assert!(
        out.output.ends_with("1\n"),
        "mktemp must fail here: {out:?}"
    );
    let word = "w".repeat(5_000);
    let out = sh.run(&format!("echo {word} | wc -c")).await.unwrap();
    assert_eq!((out.output.trim(), out.status), ("5001", 0));
    sh.logout().await.unwrap();
}

/// Issue 31: a profile that is noisy and coloured, turns on vi mode and
/// sets a `PROMPT_COMMAND` writing title escapes does not matter: the shell
/// is taken over, commands come back exact, and the logout is proven.
#[tokio::test]
async fn a_noisy_coloured_vi_mode_profile_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("rc");
    std::fs::write(
        &rc,
        "printf '\\033[1;35mWelcome\\033[0m to %s\\n' \"$(hostname)\"\n\
         set -o vi\n\
         PROMPT_COMMAND='printf \"\\033]0;%s@%s\\007\" \"$USER\" \"$PWD\"'\n\
         PS1='\\[\\e[32m\\]\\u@box\\[\\e[0m\\]:\\w\\$ '\n",
    )
    .unwrap();
    let script = format!(
        "exec env TERM=vt100 bash --rcfile {} --noprofile -i",
        rc.display()
    );
    let target = format!("exec:sh -c {}", shell_words::quote(&script));
    let mut s = session(&target, None).await;
    let mut sh = login(&mut s).await;
    let out = sh.run("echo one; echo two >&2; false").await.unwrap();
    assert_eq!((out.output.as_str(), out.status), ("one\ntwo\n", 1));
    let word = "v".repeat(3_000);
    let out = sh.run(&format!("echo {word} | wc -c")).await.unwrap();
    assert_eq!(out.output.trim(), "3001");
    sh.logout().await.unwrap();
}

/// Kernel-format lines written to the tty every 30 ms, as a flooding
/// /dev/kmsg would, interleaving with the prompt, the login and the output.
const FLOOD: &str = "( i=0; while :; do i=$((i+1)); printf '[%5d.%06d] kmsg flood %d\\n' $i $i $i >/dev/tty; sleep 0.03; done ) &";

#[tokio::test]
async fn kernel_lines_interleaving_with_login_and_output_are_set_apart() {
    let mut s = session(&bash_console(FLOOD), None).await;
    let mut sh = login(&mut s).await;
    let out = sh
        .run("for i in $(seq 1 300); do echo line $i; sleep 0.002; done")
        .await
        .unwrap();
    let expected: String = (1..=300).map(|i| format!("line {i}\n")).collect();
    assert_eq!(out.output, expected);
    assert!(
        !out.kernel_lines.is_empty(),
        "the flood was seen and set apart"
    );
    assert!(
        out.kernel_lines.iter().all(|l| l.contains("kmsg flood")),
        "{:?}",
        out.kernel_lines
    );
    let out = sh
        .run("printf 'x%.0s' $(seq 1 50); sleep 0.2; printf 'y'")
        .await
        .unwrap();
    assert_eq!(out.output, format!("{}y", "x".repeat(50)));
    sh.logout().await.unwrap();
}

#[tokio::test]
async fn a_pager_holding_the_tty_is_quit_before_taking_the_shell() {
    let target = bash_console("seq 1 500 | env TERM=vt100 less;");
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("pager.cast");
    let mut s = session(&target, Some(&cast)).await;
    let mut sh = login(&mut s).await;
    let out = sh.run("echo after-pager").await.unwrap();
    assert_eq!(out.output, "after-pager\n");
    sh.logout().await.unwrap();
    s.close().await.unwrap();
    let text = std::fs::read_to_string(&cast).unwrap();
    assert!(
        text.contains("nudging the console with q (pager)"),
        "the transcript shows the nudge"
    );
}

#[tokio::test]
async fn an_editor_holding_the_tty_is_left_with_colon_q() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edited.txt");
    let target = bash_console(&format!("env TERM=vt100 vi {};", file.display()));
    let mut s = session(&target, None).await;
    let mut sh = login(&mut s).await;
    let out = sh.run("echo after-editor").await.unwrap();
    assert_eq!(out.output, "after-editor\n");
    sh.logout().await.unwrap();
}

#[tokio::test]
async fn dash_works_like_bash() {
    let target = "exec:env PS1=$\\  dash -i";
    let mut s = session(target, None).await;
    let mut sh = login(&mut s).await;
    let out = sh.run("printf '%s\\n' one two; exit 7").await.unwrap();
    assert_eq!((out.output.as_str(), out.status), ("one\ntwo\n", 7));
    let long = format!("echo {} | wc -c", "z".repeat(6000));
    assert_eq!(sh.run(&long).await.unwrap().output.trim(), "6001");
    sh.logout().await.unwrap();
}

#[tokio::test]
async fn a_timed_out_command_is_interrupted_and_the_shell_stays_usable() {
    let mut s = session(&bash_console(""), None).await;
    let mut sh = login(&mut s).await;
    let started = Instant::now();
    let err = sh
        .run_with_timeout("echo started; sleep 60", Duration::from_millis(800))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err:?}");
    assert_eq!(err.exit_code().code(), 5);
    assert!(err.to_string().contains("sleep 60"), "{err}");
    let out = sh.run("echo still-here").await.unwrap();
    assert_eq!(out.output, "still-here\n");
    sh.logout().await.unwrap();
}

#[tokio::test]
async fn the_password_never_reaches_the_transcript_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("secret.cast");
    let mut s = session(&bash_console(""), Some(&cast)).await;
    let mut sh = login(&mut s).await;
    // A command that prints it: its output is the console's real text, for
    // parsing (issue 31: redacted where shown, never where parsed); what is
    // shown goes through the session's scrub, and the transcript has none.
    let out = sh.run(&format!("echo {PASSWORD}")).await.unwrap();
    assert_eq!(out.output, format!("{PASSWORD}\n"));
    assert_eq!(sh.session().scrub(&out.output), "<redacted>\n");
    let err = sh
        .run_with_timeout(&format!("sleep 5 # {PASSWORD}"), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    assert!(!format!("{err:?}").contains(PASSWORD));
    assert!(!format!("{sh:?}").contains(PASSWORD));
    sh.logout().await.unwrap();
    s.close().await.unwrap();
    let text = std::fs::read_to_string(&cast).unwrap();
    assert!(text.contains("shell: login as"));
    assert!(
        !text.contains(PASSWORD),
        "the transcript holds the password"
    );
}

#[tokio::test]
async fn bad_user_names_are_usage_errors() {
    let mut s = session(&bash_console(""), None).await;
    let spec = LoginSpec::new("bad user\r", Secret::new("password", PASSWORD));
    let err = Shell::login(&mut s, &spec).await.unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert!(err.to_string().contains("not a valid user name"), "{err}");
}

#[tokio::test]
async fn a_scoped_login_logs_out_when_the_job_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("scoped.cast");
    let mut s = session(&bash_console(""), Some(&cast)).await;
    let err = Shell::scoped(&mut s, &spec(), async |shell| {
        let out = shell.run("echo working").await?;
        assert_eq!(out.output, "working\n");
        Err::<(), _>(ec2_serial_expect::Error::problems(
            "the job failed half-way",
        ))
    })
    .await
    .unwrap_err();
    // The job's own error comes back, and the console was logged out anyway.
    assert!(matches!(err.kind(), ErrorKind::Problems(_)), "{err:?}");
    assert!(err.to_string().contains("half-way"), "{err}");
    s.close().await.unwrap();
    let recorded = std::fs::read_to_string(&cast).unwrap();
    assert!(
        recorded.contains("shell: logged out"),
        "no logout in the transcript: {recorded}"
    );
}

/// Writes the executable `script` to `dir/name` and returns its path.
fn write_script(dir: &Path, name: &str, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// A `login` in `dir`: a copy of `sh` under that name, as getty's `login`
/// is the parent of the console's shell.
fn fake_login(dir: &Path) -> String {
    let login = dir.join("login");
    std::fs::copy("/bin/sh", &login).unwrap();
    login.display().to_string()
}

/// The logout's last marker in `cast`.
fn last_logout_mark(cast: &Path) -> String {
    Cast::read(cast)
        .unwrap()
        .events
        .into_iter()
        .rev()
        .find(|e| e.code == EventCode::Marker && e.data.starts_with("shell: logged out"))
        .expect("a logout marker")
        .data
}

const BASH_AT_BOX: &str = "TERM=vt100 PS1='\\u@box:\\w\\$ ' bash --norc --noprofile -i\n";

#[tokio::test]
async fn logout_ends_when_the_shell_of_a_session_leading_login_exits() {
    // The console's session is led by `login` (the PTY child), the shell is
    // its child, and nothing prints a login prompt afterwards: only the
    // shell's own proof can end the logout (before, it waited 30 s).
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "console.sh",
        &format!("{BASH_AT_BOX}sleep 60\n"),
    );
    let target = format!("exec:{} {script}", fake_login(dir.path()));
    let cast = dir.path().join("logout.cast");
    let mut s = session(&target, Some(&cast)).await;
    let sh = login(&mut s).await;
    let started = Instant::now();
    sh.logout().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    s.close().await.unwrap();
    assert_eq!(
        last_logout_mark(&cast),
        "shell: logged out (its login session ended)"
    );
}

#[tokio::test]
async fn a_login_that_does_not_lead_the_session_proves_nothing() {
    // The same `login`, but started by a shell that leads the session (a
    // `login` typed at a prompt): its shell's exit leaves that shell on the
    // console, so the logout waits for a real login prompt.
    let dir = tempfile::tempdir().unwrap();
    let inner = write_script(dir.path(), "inner.sh", BASH_AT_BOX);
    let outer = write_script(
        dir.path(),
        "outer.sh",
        &format!(
            "{} {inner}\nprintf 'box login: '\nsleep 60\n",
            fake_login(dir.path())
        ),
    );
    let cast = dir.path().join("nested.cast");
    let mut s = session(&format!("exec:sh {outer}"), Some(&cast)).await;
    let sh = login(&mut s).await;
    sh.logout().await.unwrap();
    s.close().await.unwrap();
    assert_eq!(last_logout_mark(&cast), "shell: logged out");
}

/// A console whose shell is a user who is not root (nobody, when the tests
/// run as root) with a PATH of a fresh directory holding `id` and the
/// `programs` (name, script): (session, the login, the directory to keep).
async fn non_root_console(programs: &[(&str, &str)]) -> (Session, LoginSpec, tempfile::TempDir) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/id", bin.join("id")).unwrap();
    for (name, script) in programs {
        write_script(&bin, name, script);
    }
    for d in [dir.path(), &bin] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (user, as_user) = if me() == "root" {
        (
            "nobody".to_string(),
            "setpriv --reuid=nobody --regid=nogroup --clear-groups ",
        )
    } else {
        (me(), "")
    };
    let script = format!(
        "exec {as_user}env PATH={} TERM=vt100 PS1='$ ' /bin/bash --norc --noprofile -i",
        bin.display()
    );
    let s = session(&format!("exec:sh -c {}", shell_words::quote(&script)), None).await;
    let mut spec = spec();
    spec.user = user;
    (s, spec, dir)
}

#[tokio::test]
async fn sudo_missing_is_a_login_error_that_says_so() {
    let (mut s, spec, _dir) = non_root_console(&[]).await;
    let mut sh = Shell::login(&mut s, &spec).await.unwrap();
    assert!(!sh.is_root());
    let err = sh.sudo("id -un").await.unwrap_err();
    assert_eq!(err.exit_code().code(), 4, "{err}");
    assert!(err.to_string().contains("sudo is not installed"), "{err}");
    sh.logout().await.unwrap();
}

#[tokio::test]
async fn a_sudo_refusal_in_another_language_still_asks_for_the_password() {
    // A stand-in for sudo under LANG=de_DE (the words are sudo's own German
    // catalogue): `-n` refuses, `-v` asks and refuses the password. Only
    // the shell layer's decision is under test; the real sudo's English
    // refusals are in the lab and Debian recordings.
    const GERMAN_SUDO: &str = "#!/bin/sh\ncase $1 in\n\
        -v) printf '[sudo] Passwort für %s: ' \"$(id -un)\"; read -r _; \
        echo; echo 'Sudo: 1 falsche Passworteingabe'; exit 1 ;;\n\
        *) echo 'sudo: Ein Passwort ist notwendig' >&2; exit 1 ;;\nesac\n";
    let (mut s, spec, _dir) = non_root_console(&[("sudo", GERMAN_SUDO)]).await;
    let mut sh = Shell::login(&mut s, &spec).await.unwrap();
    assert!(!sh.is_root());
    // Before, the refusal came back as the command's own status 1.
    let err = sh.sudo("id -un").await.unwrap_err();
    assert_eq!(err.exit_code().code(), 4, "{err}");
    assert!(err.to_string().contains("sudo failed"), "{err}");
    sh.logout().await.unwrap();
}

/// Review of issue 34's round: logging a console out (the gateway, between
/// clients) nudged a refusal screen with Enter. At "Press Enter for
/// maintenance" (root locked) Enter opens a root shell, which the logout
/// then exited, letting the boot go on. Only q and Ctrl-C are tried now,
/// and a console that still refuses is not proven logged out.
#[tokio::test]
async fn logging_out_never_presses_enter_at_an_emergency_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let opened = dir.path().join("maintenance-shell-opened");
    // The prompt again on Ctrl-C, as the refusal stays on the screen.
    let prompt = "printf 'Cannot open access to console, the root account is locked.\\r\\n\
                  Press Enter for maintenance\\r\\n(or press Control-D to continue): '";
    let script = format!(
        "trap \"{prompt}\" INT; while :; do {prompt}; \
         IFS= read -r line || continue; [ -z \"$line\" ] && touch {} ; done",
        opened.display()
    );
    let mut s = session(&format!("exec:sh -c {}", shell_words::quote(&script)), None).await;
    s.expect_exact("continue): ", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    let result = Shell::log_out_console(&mut s, Duration::from_secs(20)).await;
    assert!(result.is_err(), "a refusal is no logout proof");
    let err = result.unwrap_err().to_string();
    assert!(err.contains("cannot be proven logged out"), "{err}");
    assert!(
        !opened.exists(),
        "Enter was pressed at the maintenance prompt"
    );
}
