//! `ec2-serial-expect test`: the project's own scripts replayed against
//! their recordings (`fixtures/scripts/`, recorded on the lab VM), a broken
//! script failing with a difference a person can act on, JUnit XML read by a
//! real consumer's parser, and `--update` re-recording from a live console
//! (a real `sh` under a PTY).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the CLI runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn every_shipped_script_replays_against_its_recordings() {
    let out = cli(&["test", "scripts", "--recordings", "fixtures/scripts"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        !shown.contains("no recording"),
        "a shipped script has no recording:\n{shown}"
    );
    assert!(!shown.contains("FAIL"), "{shown}");
    let mut scripts = Vec::new();
    for dir in ["scripts", "scripts/examples"] {
        for entry in std::fs::read_dir(repo(dir)).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(".rhai") {
                scripts.push(format!("{dir}/{name}"));
            }
        }
    }
    assert!(scripts.len() >= 6, "{scripts:?}");
    for script in &scripts {
        assert!(
            shown.contains(&format!("ok    {script} @ ")),
            "{script} did not pass:\n{shown}"
        );
    }
    // Two recordings pin a failing outcome (exit 1 and the fail() text).
    assert!(
        shown.contains("check-ssh-key-refused.home-777.cast"),
        "{shown}"
    );
}

#[test]
fn json_output_is_one_line_per_test_then_a_summary() {
    let out = cli(&[
        "--output",
        "json",
        "test",
        "scripts",
        "--recordings",
        "fixtures/scripts",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (summary, tests) = lines.split_last().unwrap();
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["passed"].as_u64(), Some(tests.len() as u64));
    let refused = tests
        .iter()
        .find(|t| {
            t["test"]["recording"]
                .as_str()
                .unwrap()
                .ends_with("check-ssh-key-refused.home-777.cast")
        })
        .unwrap();
    assert_eq!(refused["passed"], true);
    assert_eq!(
        refused["exit_code"], 1,
        "the recording pins exit 1: {refused}"
    );
}

/// A copy of a shipped script with one command added: the replay fails at
/// that step, naming the script line, what was sent, what the recording
/// expected, where in the recording, and what the console showed.
fn broken_copy(dir: &Path) {
    let script = std::fs::read_to_string(repo("scripts/check-ssh-key-refused.rhai")).unwrap();
    let broken = script.replacen(
        "let report = doctor(options);",
        "run(\"id -un\");\nlet report = doctor(options);",
        1,
    );
    assert_ne!(script, broken);
    std::fs::write(dir.join("check-ssh-key-refused.rhai"), broken).unwrap();
    for f in [
        "check-ssh-key-refused.home-777.cast",
        "check-ssh-key-refused.home-777.expect",
    ] {
        std::fs::copy(repo(&format!("fixtures/scripts/{f}")), dir.join(f)).unwrap();
    }
}

#[test]
fn a_broken_script_fails_with_the_step_and_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    broken_copy(dir.path());
    let out = cli(&["test", dir.path().to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAIL"), "{shown}");
    assert!(shown.contains("0 passed, 1 failed"), "{shown}");
    let line = "check-ssh-key-refused.rhai:23:";
    assert!(shown.contains(line), "the step ({line}) is named:\n{shown}");
    assert!(
        shown.contains("sent \"printf") && shown.contains("eval 'id -un'"),
        "what was sent:\n{shown}"
    );
    // The recording's next send: the doctor's root command (its first line).
    assert!(
        shown.contains("expected \"__esx_b='sudo -n sh -c"),
        "what the recording expected:\n{shown}"
    );
    assert!(
        shown.contains("at event #"),
        "where in the recording:\n{shown}"
    );
    assert!(
        shown.contains("the recorded console showed just before: \"") && !shown.contains("\\u{1b}"),
        "the console text, without escapes:\n{shown}"
    );
}

/// junitparser (PyPI) in a venv under target/, installed on first use.
fn junit_python() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let venv = repo("target/junit-venv");
        let python = venv.join("bin/python");
        let ok = |p: &Path| {
            Command::new(p)
                .args(["-c", "import junitparser"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ok(&python) {
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status();
            assert!(
                made.is_ok_and(|s| s.success()),
                "python3 -m venv {}",
                venv.display()
            );
            let pip = Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "junitparser"])
                .status();
            assert!(
                pip.is_ok_and(|s| s.success()) && ok(&python),
                "cannot install junitparser from PyPI into {}",
                venv.display()
            );
        }
        python
    })
}

#[test]
fn junit_xml_is_read_by_junitparser_with_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    broken_copy(dir.path());
    std::fs::copy(
        repo("scripts/fix-ssh-key-refused.rhai"),
        dir.path().join("fix-ssh-key-refused.rhai"),
    )
    .unwrap();
    std::fs::copy(
        repo("fixtures/scripts/fix-ssh-key-refused.home-777.cast"),
        dir.path().join("fix-ssh-key-refused.home-777.cast"),
    )
    .unwrap();
    let xml = dir.path().join("junit.xml");
    let out = cli(&[
        "test",
        dir.path().to_str().unwrap(),
        "--junit",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let read = Command::new(junit_python())
        .args([
            "-c",
            "import sys, junitparser\n\
             xml = junitparser.JUnitXml.fromfile(sys.argv[1])\n\
             for suite in xml:\n\
             \x20   for case in suite:\n\
             \x20       state = 'failed' if case.result and isinstance(case.result[0], junitparser.Failure) else 'passed'\n\
             \x20       print(state, case.classname, case.name, case.result[0].message[:60] if case.result else '')\n\
             print('total', xml.tests, xml.failures)",
        ])
        .arg(&xml)
        .output()
        .unwrap();
    let parsed = String::from_utf8_lossy(&read.stdout).to_string();
    assert!(
        read.status.success(),
        "{parsed}{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert!(parsed.contains("total 2 1"), "{parsed}");
    assert!(
        parsed.lines().any(|l| l.starts_with("failed ")
            && l.contains("check-ssh-key-refused.home-777")
            && l.contains("expected exit 1, got 3")),
        "{parsed}"
    );
    assert!(
        parsed
            .lines()
            .any(|l| l.starts_with("passed ") && l.contains("fix-ssh-key-refused.home-777")),
        "{parsed}"
    );
}

/// `--update` runs the script on a live console (`sh` under a PTY),
/// replaces the recording when the run ends as expected, and leaves it
/// alone (keeping the new one aside) when it does not.
#[test]
fn update_rerecords_from_a_live_console_only_when_the_run_passes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("hello.rhai"),
        // The echoed line says $((6*7)): only the shell's answer says 42.
        "send_line(\"echo hello-$((6*7))\");\nexpect([\"hello-42\"], 10);\nlog(\"saw it\");\n",
    )
    .unwrap();
    std::fs::write(d.join("hello.cast"), "").unwrap();
    std::fs::write(d.join("hello.wrong.cast"), "").unwrap();
    std::fs::write(d.join("hello.wrong.expect"), "exit 1\n").unwrap();
    let out = cli(&[
        "test",
        d.to_str().unwrap(),
        "--update",
        "--target",
        "exec:sh -i",
    ]);
    let shown = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one run could not end as expected:\n{shown}"
    );
    assert!(
        shown.contains("updated: ") && shown.contains("NOT updated: "),
        "{shown}"
    );
    let fresh = std::fs::read_to_string(d.join("hello.cast")).unwrap();
    assert!(
        fresh.contains("hello-42"),
        "the recording was replaced:\n{fresh}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("hello.wrong.cast")).unwrap(),
        "",
        "kept as it was"
    );
    assert!(
        d.join("hello.wrong.new.cast.failed").exists(),
        "the failed run is kept aside"
    );
    // The new recording replays.
    std::fs::remove_file(d.join("hello.wrong.cast")).unwrap();
    let out = cli(&["test", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Issue 34: `test login-check.rhai`, a bare file name as the tool's own
/// hint writes it, failed with "the recordings directory  does not exist".
#[test]
fn a_bare_script_name_finds_its_recording_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        (
            "scripts/examples/wait-for-login.rhai",
            "wait-for-login.rhai",
        ),
        (
            "fixtures/scripts/wait-for-login.cast",
            "wait-for-login.cast",
        ),
    ] {
        std::fs::copy(repo(from), dir.path().join(to)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["test", "wait-for-login.rhai"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ok "), "{}", text(&out));
}

#[test]
fn no_tests_and_bad_sidecars_are_usage_errors_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("SCRIPT.cast"), "{}", text(&out));
    std::fs::write(dir.path().join("a.rhai"), "log(\"x\");").unwrap();
    std::fs::write(dir.path().join("a.cast"), "").unwrap();
    std::fs::write(dir.path().join("a.expect"), "exit one\n").unwrap();
    let out = cli(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("a.expect: line 1"), "{}", text(&out));
}

/// A console a test author records from: a login prompt, a password
/// (`pw-34`), then bash. Its target string.
fn login_console(dir: &Path) -> String {
    let script = dir.join("console.sh");
    std::fs::write(
        &script,
        r#"while :; do
  printf 'box login: '
  read -r user || exit 0
  [ -z "$user" ] && continue
  printf 'Password: '
  read -rs pw || exit 0
  printf '\r\n'
  [ "$pw" = pw-34 ] && break
  printf 'Login incorrect\r\n'
done
PS1='[\u@box ~]\$ ' exec bash --norc --noprofile -i
"#,
    )
    .unwrap();
    format!("exec:bash {}", script.display())
}

/// The user the tests run as (the console's shell runs as them).
fn me() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Issue 34: from a folder with only a script to a first recording, a
/// green replay and CI's JUnit file, in the three commands docs/testing.md
/// gives (no `touch`, no hand-written `.expect`); then a changed command
/// fails in the script's own words: its line, both commands, the changed
/// part marked, never the tool's framing, in the human, JSON and JUnit
/// output alike.
#[test]
fn three_commands_to_a_recorded_test_and_a_change_told_in_the_scripts_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = login_console(d);
    std::fs::write(
        d.join("login-check.rhai"),
        "login(var(\"user\"), \"password\");\nlet r = run(\"uname -s\");\nlog(r.output);\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
            .args(args)
            .current_dir(d)
            .env("CONSOLE_PASSWORD", "pw-34")
            .output()
            .expect("the CLI runs")
    };
    let user = format!("user={}", me());
    // 1. The first recording, with its variables.
    let out = run(&[
        "test",
        "login-check.rhai",
        "--update",
        "--target",
        &target,
        "--var",
        &user,
        "--secret",
        "password=env:CONSOLE_PASSWORD",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(d.join("login-check.cast").exists());
    let expect = std::fs::read_to_string(d.join("login-check.expect")).unwrap();
    assert_eq!(expect, format!("var {user}\n"));
    // 2. The replay, green; 3. the same for CI, as JUnit.
    let out = run(&["test", "login-check.rhai"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 passed, 0 failed"), "{}", text(&out));
    let out = run(&["test", "--junit", "report.xml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(std::fs::read_to_string(d.join("report.xml"))
        .unwrap()
        .contains("failures=\"0\""));
    // -k selects by name: nothing else is named "nothing".
    let out = run(&["test", "-k", "nothing"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // A changed command.
    std::fs::write(
        d.join("login-check.rhai"),
        "login(var(\"user\"), \"password\");\nlet r = run(\"uname -a\");\nlog(r.output);\n",
    )
    .unwrap();
    let human = run(&["test", "login-check.rhai", "--junit", "report.xml"]);
    let json = run(&["test", "login-check.rhai", "--output", "json"]);
    let junit = std::fs::read_to_string(d.join("report.xml")).unwrap();
    assert_eq!(human.status.code(), Some(1), "{}", text(&human));
    let first: Value = serde_json::from_slice(json.stdout.split(|b| *b == b'\n').next().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {}", text(&json)));
    assert_eq!(first["exit_code"], 3, "{first}");
    assert!(first["duration_ms"].is_u64(), "{first}");
    for (what, shown) in [
        ("human", text(&human)),
        ("json", first["message"].as_str().unwrap().to_string()),
        ("junit", junit.replace("&quot;", "\"")),
    ] {
        for part in [
            "login-check.rhai:2:",
            "\"uname -a\"",
            "\"uname -s\"",
            "uname -[s]",
            "uname -[a]",
        ] {
            assert!(shown.contains(part), "{what} lacks {part}:\n{shown}");
        }
        assert!(
            !shown.contains("__ESX"),
            "{what} shows the framing:\n{shown}"
        );
        assert!(!shown.contains("WARN"), "{what} warns:\n{shown}");
    }
}

/// Issue 34: the README's replay example (`run replay:… my-script.rhai`)
/// only worked with the script that made the recording. The example now
/// names that script; this runs the README's own lines.
#[test]
fn the_readme_replay_example_runs_as_written() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme
        .find("ANY=replayed-secret ec2-serial-expect run replay:")
        .expect("the README's replay example");
    let command: String = readme[start..]
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .replace('\\', " ");
    let words = shell_words::split(&command).unwrap();
    let (env, rest) = words.split_first().unwrap();
    let (var, value) = env.split_once('=').unwrap();
    assert_eq!(rest[0], "ec2-serial-expect");
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(&rest[1..])
        .arg("--no-transcript")
        .env(var, value)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{command}\n{}", text(&out));
    assert!(
        text(&out).contains("all four paths are as sshd and AWS recommend"),
        "{}",
        text(&out)
    );
}

/// Review of issue 34's round: `.expect` reads a value to ` #`, trimmed, so
/// `--var msg="a #1"` was recorded as `msg=a`. Such a value is refused
/// before anything is recorded.
#[test]
fn a_var_that_expect_cannot_hold_is_refused_before_recording() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v.rhai"), "log(var(\"msg\"));\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args([
            "test", "v.rhai", "--update", "--target", "exec:sh", "--var", "msg=a #1",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--var msg=…"), "{}", text(&out));
    assert!(!dir.path().join("v.cast").exists(), "nothing was recorded");
}
