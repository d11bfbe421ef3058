//! The script API (`ec2_serial_expect::script::run_script`) against real
//! consoles: shells under a PTY. These tests pin what a script sees — the
//! match map, catchable timeouts and EOF, uncatchable failures — and the
//! error (and so the exit code) a run ends with.

use std::path::Path;

use ec2_serial_expect::script::{run_script, Script, ScriptInputs, ScriptReport};
use ec2_serial_expect::{Error, ErrorKind, Secret, Session};

fn sh(script: &str) -> String {
    format!("exec:sh -c {}", shell_words::quote(script))
}

async fn session(target: &str, transcript: Option<&Path>) -> Session {
    crate::support::open_session(target, transcript, 30).await
}

async fn run(target: &str, source: &str, inputs: ScriptInputs) -> Result<ScriptReport, Error> {
    let script = Script {
        name: "t.rhai".into(),
        source: source.into(),
    };
    run_script(session(target, None).await, script, inputs, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_returns_index_text_before_and_groups() {
    let console = sh("printf 'booting\\r\\nweb01 login: '; sleep 5");
    let report = run(
        &console,
        r#"
        let m = expect(["Password: $", "(\\w+) (login|logon)(X)?: $"], 5);
        log(m.index);
        log(m.text);
        log(m.before);
        log(m.groups.len());
        log(m.groups[0]);
        log(m.groups[1]);
        log(type_of(m.groups[3]));
        "#,
        ScriptInputs::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.logs,
        [
            "1",
            "web01 login: ",
            "booting\r\r\n",
            "4",
            "web01 login: ",
            "web01",
            "()"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_exact_is_literal_and_send_line_ends_with_cr() {
    // `cat` under a PTY echoes input; the tty turns the \r into \r\n.
    let report = run(
        "exec:cat",
        r#"
        send_line("a.b*c");
        let m = expect_exact("a.b*c", 5);
        log(m.text);
        let m = expect_exact(["zzz", "\r\n"], 5);
        log(m.index);
        "#,
        ScriptInputs::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.logs, ["a.b*c", "1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_eof_are_catchable_with_kind_tail_and_message() {
    // The console waits for a line before it exits, so the timeout comes
    // first however slow the machine is.
    let console = sh("stty -echo; printf 'partial output'; read -r line");
    let report = run(
        &console,
        r#"
        try { expect("never", 0.3); fail("no timeout"); }
        catch (e) { log(e.kind); log(e.tail); log(e.message.contains("never")); }
        send_line("bye");
        try { expect("never", 10); fail("no eof"); }
        catch (e) { log(e.kind); log(e.tail); }
        "#,
        ScriptInputs::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.logs,
        ["timeout", "partial output", "true", "eof", "partial output"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncaught_timeout_ends_the_run_with_exit_code_5_and_the_location() {
    let err = run(
        &sh("printf 'noise'; sleep 5"),
        "\nexpect(\"noise\", 10);\n  expect(\"never\", 0.2);",
        ScriptInputs::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err:?}");
    assert_eq!(err.exit_code().code(), 5);
    let text = err.to_string();
    assert!(text.contains("t.rhai:3:3"), "{text}");
    assert!(text.contains("noise"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncaught_eof_inside_a_function_names_the_call_chain() {
    let err = run(
        &sh("printf 'bye'"),
        "fn wait() {\n    expect(\"prompt\", 5)\n}\nwait();",
        ScriptInputs::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Eof { .. }), "{err:?}");
    assert_eq!(err.exit_code().code(), 3);
    let text = err.to_string();
    assert!(text.contains("t.rhai:2:5"), "{text}");
    assert!(text.contains("wait() called at line 4"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_cannot_be_swallowed_by_a_catch_all() {
    let err = run(
        &sh("sleep 5"),
        "try {\n  fail(\"home is 0777\");\n} catch { log(\"swallowed\"); }",
        ScriptInputs::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Problems(_)), "{err:?}");
    assert_eq!(err.exit_code().code(), 1);
    let text = err.to_string();
    assert!(
        text.contains("t.rhai:2:3") && text.contains("home is 0777"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vars_have_values_defaults_and_a_clear_error_when_missing() {
    let inputs = ScriptInputs::default().with_var("user", "ec2-user");
    let report = run(
        &sh("sleep 5"),
        r#"log(var("user")); log(var("port", 22) + 1);"#,
        inputs.clone(),
    )
    .await
    .unwrap();
    assert_eq!(report.logs, ["ec2-user", "23"]);
    let err = run(&sh("sleep 5"), "try { var(\"host\") } catch { }", inputs)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    let text = err.to_string();
    assert!(text.contains("t.rhai:1:11"), "{text}");
    assert!(
        text.contains("--var host=VALUE") && text.contains("known: user"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_secret_name_is_a_clear_usage_error() {
    let inputs = ScriptInputs::default().with_secret(Secret::new("password", "hunter2hunter2"));
    let err = run(&sh("sleep 5"), "send_secret(\"pasword\");", inputs)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    let text = err.to_string();
    assert!(text.contains("t.rhai:1:1"), "{text}");
    assert!(
        text.contains("--secret pasword=env:VAR") && text.contains("known: password"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_patterns_and_timeouts_stop_the_script_as_usage_errors() {
    for (source, at, wants) in [
        (
            "try { expect([\"(unclosed\"], 1) } catch { }",
            "1:7",
            "unclosed",
        ),
        (
            "try { expect([42], 1) } catch { }",
            "1:7",
            "pattern #0 is a i64",
        ),
        // A literal out of range is refused before the script runs, at
        // the number itself.
        (
            "try { expect(\"x\", -1) } catch { }",
            "1:19",
            "-1 seconds is out of range",
        ),
        (
            "try { expect([], 1) } catch { }",
            "1:7",
            "at least one pattern",
        ),
    ] {
        let err = run(&sh("sleep 5"), source, ScriptInputs::default())
            .await
            .unwrap_err();
        assert_eq!(err.exit_code().code(), 2, "{source}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("t.rhai:{at}")) && text.contains(wants),
            "{source}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_echoed_before_the_first_send_never_reaches_the_script_or_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("t.cast");
    // The console prints the secret before the script has sent anything
    // (a banner, a misconfigured autologin…), split across two writes.
    // (The console is a file, so that the secret is not in the target,
    // which the transcript header names.)
    let console_file = dir.path().join("console.sh");
    std::fs::write(
        &console_file,
        "printf 'motd: hunter'; sleep 0.1; printf '2hunter2 end\\r\\n$ '; sleep 5",
    )
    .unwrap();
    let console = format!("exec:sh {}", console_file.display());
    let inputs = ScriptInputs::default().with_secret(Secret::new("password", "hunter2hunter2"));
    let script = Script {
        name: "t.rhai".into(),
        source: r#"let m = expect("\\$ $", 5); log(m.before); print(m.before); mark(m.before);
                   expect("never", 0.2);"#
            .into(),
    };
    let err = run_script(session(&console, Some(&cast)).await, script, inputs, None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("motd: <redacted> end") && !text.contains("hunter"),
        "{text}"
    );
    let recorded = std::fs::read_to_string(&cast).unwrap();
    assert!(recorded.contains("motd: <redacted> end"), "{recorded}");
    assert!(!recorded.contains("hunter2"), "{recorded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcript_is_finished_with_markers_for_script_steps() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("t.cast");
    let script = Script {
        name: "t.rhai".into(),
        source: r#"mark("step one"); log("hello"); send_line("echo hi"); expect("hi", 5);"#.into(),
    };
    run_script(
        session("exec:sh", Some(&cast)).await,
        script,
        ScriptInputs::default(),
        None,
    )
    .await
    .unwrap();
    let recorded = std::fs::read_to_string(&cast).unwrap();
    for marker in [
        r#""m","script start: t.rhai""#,
        r#""m","step one""#,
        r#""m","log: hello""#,
        r#""i","echo hi\r""#,
        r#""m","script passed""#,
    ] {
        assert!(
            recorded.contains(marker),
            "{marker} missing from {recorded}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_scripts_stop_at_the_operations_limit() {
    let err = run(
        &sh("sleep 5"),
        "let n = 0;\nwhile true { n += 1; }",
        ScriptInputs::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert!(err.to_string().contains("operations"), "{err}");
}
