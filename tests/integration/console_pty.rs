//! `console` for real: the binary runs under a pseudo-terminal (as in a
//! user's terminal) connected to `exec:` consoles, and the test types into it.
//! Checks what a user would notice: echo both ways, the `~` escapes, exit
//! code 0 on every normal way out, the terminal settings restored afterwards
//! (`stty -g` before and after), raw mode while connected, and what the
//! transcript keeps (typed input only with `--record-input`).

use std::process::Command;
use std::time::Duration;

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::transcript::cast::{Cast, EventCode};
use ec2_serial_expect::{Pattern, Session, Target};

const BIN: &str = env!("CARGO_BIN_EXE_ec2-serial-expect");
const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// A user's terminal: a shell under a PTY that notes its tty and its settings,
/// runs `console` with `console_args`, then notes the settings again.
struct Terminal {
    session: Session,
    dir: tempfile::TempDir,
}

impl Terminal {
    async fn start(console_args: &str) -> Terminal {
        let mut term = Terminal::spawn(console_args).await;
        term.expect("; type ~. on a new line to leave").await;
        term
    }

    async fn spawn(console_args: &str) -> Terminal {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let script = format!(
            "echo $$ > {d}/shpid; tty > {d}/tty; stty -g > {d}/before; \
             {BIN} --transcript {d}/t.cast console {console_args}; echo \"exit=$?\"; \
             stty -g > {d}/after; echo finished; sleep 5"
        );
        let target = Target::Exec {
            argv: vec!["sh".into(), "-c".into(), script],
        };
        let session = Console::open(&target).session().await.unwrap();
        Terminal { session, dir }
    }

    async fn expect(&mut self, text: &str) -> String {
        match self.session.expect_exact(text, WAIT).await {
            Ok(m) => m.before,
            Err(e) => panic!("waiting for {text:?}: {e}"),
        }
    }

    async fn type_keys(&mut self, keys: &str) {
        self.session.send(keys).await.unwrap();
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn transcript(&self) -> Cast {
        Cast::read(&self.dir.path().join("t.cast")).unwrap()
    }

    /// `stty -a` of the user's terminal right now.
    fn settings_now(&self) -> String {
        let tty = self.file("tty");
        let out = Command::new("stty")
            .args(["-a", "-F", tty.trim()])
            .output()
            .unwrap();
        assert!(out.status.success(), "stty -F {tty}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for the console to end with `exit=CODE`, then checks the
    /// terminal settings are exactly what they were before.
    async fn assert_ends_with_restored_terminal(&mut self, code: i32) {
        self.expect(&format!("exit={code}")).await;
        self.expect("finished").await;
        let (before, after) = (self.file("before"), self.file("after"));
        assert!(!before.trim().is_empty(), "stty -g before was recorded");
        assert_eq!(before, after, "terminal settings restored");
    }

    /// The pid of the `console` process (the shell's only child).
    fn console_pid(&self) -> i32 {
        let sh = self.file("shpid");
        let sh = sh.trim();
        let children =
            std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).unwrap_or_default();
        children.split_whitespace().next().unwrap().parse().unwrap()
    }
}

fn events(cast: &Cast, code: EventCode) -> Vec<String> {
    cast.events
        .iter()
        .filter(|e| e.code == code)
        .map(|e| e.data.clone())
        .collect()
}

fn all_output(cast: &Cast) -> String {
    events(cast, EventCode::Output).concat()
}

#[tokio::test]
async fn typing_reaches_the_console_output_comes_back_and_tilde_dot_leaves() {
    let mut term = Terminal::start("--record-input exec:cat").await;

    let raw = term.settings_now();
    for flag in ["-icanon", "-echo ", "-isig", "-icrnl"] {
        assert!(
            raw.contains(flag),
            "raw mode while connected: {flag} in {raw}"
        );
    }

    term.type_keys("hello from the user\r").await;
    // cat's PTY echoes the line, then cat prints it back: both reach us.
    term.expect("hello from the user\r\n").await;
    term.expect("hello from the user\r\n").await;

    term.type_keys("~.").await;
    term.expect("[left exec:cat]").await;
    term.assert_ends_with_restored_terminal(0).await;
    let cooked = term.settings_now();
    assert!(
        cooked.contains(" icanon") && cooked.contains(" echo "),
        "{cooked}"
    );

    let cast = term.transcript();
    let typed = events(&cast, EventCode::Input).concat();
    assert_eq!(
        typed, "hello from the user\r",
        "recorded input, escapes left out"
    );
    assert!(all_output(&cast).contains("hello from the user\r\nhello from the user\r\n"));
    let marks = events(&cast, EventCode::Marker).join("\n");
    assert!(marks.contains("typed input is recorded"), "{marks}");
    assert!(marks.contains("the user left (~.)"), "{marks}");
}

#[tokio::test]
async fn typed_input_is_not_recorded_by_default_so_passwords_stay_out() {
    let password = "hunter2-console-pw";
    let mut term = Terminal::start(
        "'exec:sh -c \"stty -echo; printf Password:; read pw; echo; echo got ${#pw} chars\"'",
    )
    .await;
    term.expect("Password:").await;
    term.type_keys(&format!("{password}\r")).await;
    term.expect("got 18 chars").await;
    term.expect("closed the connection]").await;
    term.assert_ends_with_restored_terminal(0).await;

    let text = term.file("t.cast");
    assert!(!text.contains(password), "the password is nowhere: {text}");
    let cast = term.transcript();
    assert!(events(&cast, EventCode::Input).is_empty(), "no i events");
    let marks = events(&cast, EventCode::Marker).join("\n");
    assert!(marks.contains("typed input is not recorded"), "{marks}");
    assert!(
        marks.contains("the console closed the connection"),
        "{marks}"
    );
}

#[tokio::test]
async fn double_tilde_break_and_mid_line_tildes() {
    let mut term = Terminal::start("--record-input exec:cat").await;
    term.type_keys("~~x\r").await;
    let before = term.expect("~x\r\n").await;
    assert!(!before.contains("~~"), "~~ sent a single ~: {before:?}");
    term.type_keys("~B").await;
    term.expect("[break sent]").await;
    term.type_keys("a~.b\r").await;
    term.expect("a~.b\r\n").await;
    term.type_keys("~?").await;
    term.expect("~B  send a serial BREAK").await;
    term.type_keys("~.").await;
    term.assert_ends_with_restored_terminal(0).await;

    let cast = term.transcript();
    assert_eq!(events(&cast, EventCode::Input).concat(), "~x\ra~.b\r");
    assert!(events(&cast, EventCode::Marker).contains(&"break".to_string()));
}

#[tokio::test]
async fn sigterm_while_connected_still_restores_the_terminal() {
    let mut term = Terminal::start("exec:cat").await;
    term.type_keys("still here\r").await;
    term.expect("still here\r\n").await;
    let pid = term.console_pid();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    term.expect("[interrupted by a signal (SIGTERM)").await;
    // 128 + 15, as the architecture's signal contract says.
    term.assert_ends_with_restored_terminal(143).await;
}

#[tokio::test]
async fn a_console_that_cannot_be_reached_exits_3_and_leaves_the_terminal_alone() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no.sock");
    let mut term = Terminal::spawn(&format!("unix:{}", socket.display())).await;
    let m = term
        .session
        .expect(&[Pattern::regex(r"exit=(\d)")], WAIT)
        .await
        .unwrap();
    assert!(
        m.before.contains("no.sock"),
        "names the socket: {}",
        m.before
    );
    assert_eq!(m.groups[1].as_deref(), Some("3"));
    term.expect("finished").await;
    assert_eq!(term.file("before"), term.file("after"));
}

#[test]
fn piped_input_is_sent_and_the_answer_shown_before_leaving() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("piped.cast");
    let out = run_piped(
        &[
            "--transcript",
            cast.to_str().unwrap(),
            "console",
            "exec:cat",
        ],
        "piped line\n",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("piped line").count(),
        2,
        "echo and cat: {stdout:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connected to exec:cat"), "{stderr}");
    assert!(stderr.contains("input ended"), "{stderr}");
    let cast = Cast::read(&cast).unwrap();
    assert!(all_output(&cast).contains("piped line"));
    assert!(events(&cast, EventCode::Input).is_empty());
}

#[test]
fn bad_targets_are_usage_errors() {
    let out = run_piped(&["--no-transcript", "console", "nonsense"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad target \"nonsense\""), "{stderr}");
}

fn run_piped(args: &[&str], input: &str) -> std::process::Output {
    crate::support::output_with_stdin(Command::new(BIN).args(args), input)
}
