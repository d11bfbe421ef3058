//! The EC2 Serial Console target end to end, against a local stand-in built
//! from real parts (moto as EC2, an EC2 Instance Connect endpoint that checks
//! SigV4 with botocore, a real OpenSSH sshd as the serial endpoint): the
//! preflight, the key push and its documented errors, retries, the one-session
//! rule, host-key pinning, expired keys, missing credentials, the gateway, and
//! that no private key ever touches the disk. Needs root (sshd), python3,
//! libnss-wrapper, and PyPI once for moto.

use crate::support::ec2 as ec2_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ec2_support::{Console, StandIn, REGION, SECRET_KEY};

const PASSWORD: &str = "console-pass-Xy7";

/// Logs in on the fake getty, runs one command, logs out.
const HAPPY_SCRIPT: &str = r#"
expect(["login: $"]);
send_line("ec2-user");
expect(["Password: $"]);
send_secret("password");
send("\r");
expect(["\\$ $"]);
send_line("uname -a");
expect(["ran: uname -a"]);
send_line("exit");
expect(["logout"]);
"#;

/// Logs in on the fake getty (the start of a script).
const LOG_IN: &str = r#"
expect(["login: $"]);
send_line("ec2-user");
expect(["Password: $"]);
send_secret("password");
send("\r");
expect(["\\$ $"]);
"#;

/// Logs in, then keeps the session open for `hold` seconds.
fn holding_script(hold: u32) -> String {
    format!(
        r#"{LOG_IN}
try {{ expect(["never-printed"], {hold}); }} catch (e) {{ }}
send_line("exit");
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `run TARGET SCRIPT` through the stand-in, with the password secret.
fn run_cmd(standin: &StandIn, target: &str, script: &str, extra: &[&str]) -> Command {
    let dir = standin.dir.path();
    let script = write(dir, &format!("script-{}.rhai", unique()), script);
    let mut cmd = standin.base_command();
    if !extra.contains(&"--serial-endpoint") {
        cmd.arg("--serial-endpoint").arg(standin.serial_endpoint());
    }
    if !extra.contains(&"--host-key-fingerprint") {
        cmd.arg("--host-key-fingerprint").arg(&standin.fingerprint);
    }
    cmd.env("CONSOLE_PW", PASSWORD)
        .arg("--transcript")
        .arg(dir.join(format!("t-{}.cast", unique())))
        .args(extra)
        .arg("run")
        .arg(target)
        .arg(script)
        .args(["--secret", "password=env:CONSOLE_PW"]);
    cmd
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn run(standin: &StandIn, target: &str, script: &str, extra: &[&str]) -> Output {
    let out = run_cmd(standin, target, script, extra).output().unwrap();
    assert_no_leak(standin, &out);
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Neither the AWS secret key nor the console password may appear anywhere.
fn assert_no_leak(standin: &StandIn, out: &Output) {
    let mut texts = vec![
        stderr(out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ];
    for entry in std::fs::read_dir(standin.dir.path()).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "cast") {
            texts.push(std::fs::read_to_string(entry.path()).unwrap());
        }
    }
    for text in texts {
        assert!(
            !text.contains(SECRET_KEY),
            "the AWS secret key leaked: {text}"
        );
        assert!(
            !text.contains(PASSWORD),
            "the console password leaked: {text}"
        );
    }
}

fn assert_exit(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "one error line: {err}"
    );
}

fn pushes_for(standin: &StandIn, id: &str) -> Vec<serde_json::Value> {
    standin
        .pushes()
        .into_iter()
        .filter(|p| p["instance_id"] == id)
        .collect()
}

fn ready(console: Console) -> (StandIn, String) {
    let standin = StandIn::start(console);
    standin.ec2ctl(&["enable-access"]);
    let id = standin.run_instance("t3.micro");
    (standin, id)
}

#[test]
fn happy_path_pushes_a_fresh_key_and_drives_the_console() {
    let (standin, id) = ready(Console::FakeGetty);
    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let pushes = pushes_for(&standin, &id);
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["signature_ok"], true, "SigV4 checked by botocore");
    assert!(pushes[0]["error"].is_null());
    let key = pushes[0]["key"].as_str().unwrap();
    assert!(key.starts_with("ssh-ed25519 ") && key.len() == 80, "{key}");
    let log = standin.sshd_log();
    assert!(
        log.contains(&format!("Accepted publickey for {id}.port0")),
        "{log}"
    );
    // A second connection gets a new key.
    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let pushes = pushes_for(&standin, &id);
    assert_ne!(pushes[0]["key"], pushes[1]["key"]);
}

#[test]
fn host_key_mismatch_is_refused_before_authenticating() {
    let (standin, id) = ready(Console::FakeGetty);
    let other = "SHA256:dXwn5ma/xadVMeBZGEru5l2gx+yI5LDiJaLUcz0FMmw";
    for client in ["built-in", "openssh"] {
        let out = run(
            &standin,
            &id,
            HAPPY_SCRIPT,
            &["--host-key-fingerprint", other, "--ssh-client", client],
        );
        assert_exit(
            &out,
            3,
            &[
                "does not match the pinned fingerprint",
                other,
                &standin.fingerprint,
            ],
        );
        assert!(
            !standin.sshd_log().contains("Accepted publickey"),
            "{client}: {}",
            standin.sshd_log()
        );
    }
}

#[test]
fn preflight_failures_say_the_fix_and_push_nothing() {
    let standin = StandIn::start(Console::FakeGetty);
    let id = standin.run_instance("t3.micro");
    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_exit(
        &out,
        3,
        &[&format!(
            "aws ec2 enable-serial-console-access --region {REGION}"
        )],
    );
    standin.ec2ctl(&["enable-access"]);

    let stopped = standin.run_instance("t3.micro");
    standin.ec2ctl(&["stop", &stopped]);
    let out = run(&standin, &stopped, HAPPY_SCRIPT, &[]);
    assert_exit(
        &out,
        3,
        &[
            "is stopped",
            &format!("aws ec2 start-instances --instance-ids {stopped} --region {REGION}"),
        ],
    );

    let xen = standin.run_instance("t2.micro");
    let out = run(&standin, &xen, HAPPY_SCRIPT, &[]);
    assert_exit(&out, 3, &["t2.micro", "Nitro"]);

    let out = run(&standin, "i-0123456789abcdef0", HAPPY_SCRIPT, &[]);
    assert_exit(&out, 3, &["i-0123456789abcdef0 was not found in us-east-1"]);

    assert!(standin.pushes().is_empty(), "{:?}", standin.pushes());
}

#[test]
fn without_preflight_the_key_push_reports_the_same_problems() {
    let standin = StandIn::start(Console::FakeGetty);
    let id = standin.run_instance("t3.micro");
    let out = run(&standin, &id, HAPPY_SCRIPT, &["--no-preflight"]);
    assert_exit(
        &out,
        3,
        &[
            "SerialConsoleAccessDisabledException",
            "aws ec2 enable-serial-console-access --region us-east-1",
        ],
    );
    standin.ec2ctl(&["enable-access"]);
    standin.ec2ctl(&["stop", &id]);
    let out = run(&standin, &id, HAPPY_SCRIPT, &["--no-preflight"]);
    assert_exit(
        &out,
        3,
        &[
            "EC2InstanceStateInvalidException",
            "aws ec2 start-instances",
        ],
    );
    let xen = standin.run_instance("t2.micro");
    let out = run(&standin, &xen, HAPPY_SCRIPT, &["--no-preflight"]);
    assert_exit(&out, 3, &["EC2InstanceTypeInvalidException", "Nitro"]);
}

#[test]
fn every_fatal_push_error_is_one_clear_sentence_and_not_retried() {
    let (standin, id) = ready(Console::FakeGetty);
    let cases = [
        (
            "AuthException",
            "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
        ),
        ("InvalidArgsException", "rejected the request as invalid"),
        ("EC2InstanceNotFoundException", "was not found in us-east-1"),
        ("EC2InstanceTypeInvalidException", "Nitro"),
        ("EC2InstanceStateInvalidException", "is not running"),
        (
            "SerialConsoleSessionUnsupportedException",
            "aws ec2 reboot-instances",
        ),
        (
            "SerialConsoleAccessDisabledException",
            "aws ec2 enable-serial-console-access",
        ),
    ];
    for (n, (code, fix)) in cases.iter().enumerate() {
        standin.control(&format!(r#"{{"queue": ["{code}"]}}"#));
        let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
        assert_exit(&out, 3, &[code, fix]);
        assert_eq!(
            pushes_for(&standin, &id).len(),
            n + 1,
            "{code} must not be retried"
        );
    }
}

#[test]
fn throttling_and_transient_errors_are_retried_with_backoff() {
    let (standin, id) = ready(Console::FakeGetty);
    standin.control(r#"{"queue": ["ThrottlingException", "ServiceException", "EC2InstanceUnavailableException"]}"#);
    let started = Instant::now();
    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let pushes = pushes_for(&standin, &id);
    assert_eq!(pushes.len(), 4, "{pushes:?}");
    assert_eq!(pushes[0]["error"], "ThrottlingException");
    let gap = |a: usize, b: usize| {
        pushes[b]["time"].as_f64().unwrap() - pushes[a]["time"].as_f64().unwrap()
    };
    // Backoff 250 ms, 500 ms, 1 s, each less up to half of it as jitter:
    // lower bounds hold however loaded the machine is.
    assert!(
        gap(0, 1) >= 0.12 && gap(1, 2) >= 0.25 && gap(2, 3) >= 0.5,
        "backoff grows: {pushes:?}"
    );
    assert!(stderr(&out).contains("retrying in"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(60));

    standin.control(r#"{"queue": ["SerialConsoleSessionUnavailableException", "SerialConsoleSessionUnavailableException", "SerialConsoleSessionUnavailableException", "SerialConsoleSessionUnavailableException", "SerialConsoleSessionUnavailableException", "SerialConsoleSessionUnavailableException"]}"#);
    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_exit(
        &out,
        3,
        &[
            "SerialConsoleSessionUnavailableException",
            "gave up after 6 attempts",
        ],
    );
}

#[test]
fn preflight_calls_are_retried_like_the_sdk_and_say_who_sends_them() {
    let (standin, id) = ready(Console::FakeGetty);
    // EC2 throttles the preflight, then has a transient fault: both retried.
    standin.control(r#"{"ec2_queue": ["RequestLimitExceeded", "InternalError"]}"#);
    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let requests = standin.ec2_requests();
    let errors: Vec<_> = requests.iter().map(|r| r["error"].clone()).collect();
    assert_eq!(
        errors[..3],
        [
            "RequestLimitExceeded".into(),
            "InternalError".into(),
            serde_json::Value::Null
        ],
        "{requests:?}"
    );
    assert_eq!(
        requests[0]["action"], requests[2]["action"],
        "the same call again"
    );
    let version = env!("CARGO_PKG_VERSION");
    for r in &requests {
        assert_eq!(
            r["user_agent"],
            format!("ec2-serial-expect/{version}"),
            "{requests:?}"
        );
    }

    // A refusal that retrying cannot cure is not retried; one that keeps
    // coming ends after three tries with EC2's own words.
    let before = standin.ec2_requests().len();
    standin.control(r#"{"ec2_queue": ["UnauthorizedOperation"]}"#);
    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_exit(&out, 3, &["UnauthorizedOperation"]);
    assert_eq!(standin.ec2_requests().len(), before + 1, "not retried");
    let before = standin.ec2_requests().len();
    standin.control(
        r#"{"ec2_queue": ["RequestLimitExceeded", "RequestLimitExceeded", "RequestLimitExceeded"]}"#,
    );
    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_exit(&out, 3, &["RequestLimitExceeded"]);
    assert_eq!(standin.ec2_requests().len(), before + 3, "three tries");
}

#[test]
fn one_session_per_instance_with_and_without_waiting() {
    let (standin, id) = ready(Console::FakeGetty);
    let transcript = standin.dir.path().join("holder.cast");
    let mut holder = run_cmd(&standin, &id, &holding_script(12), &[])
        .arg("--transcript")
        .arg(&transcript)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_prompt(&transcript);

    let out = run(&standin, &id, HAPPY_SCRIPT, &[]);
    assert_exit(&out, 3, &["one session per instance", "--wait-for-session"]);

    let started = Instant::now();
    let out = run(&standin, &id, HAPPY_SCRIPT, &["--wait-for-session", "40"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for it to end"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(holder.wait().unwrap().success());
    let limited = pushes_for(&standin, &id)
        .iter()
        .filter(|p| p["error"] == "SerialConsoleSessionLimitExceededException")
        .count();
    assert!(
        limited >= 2,
        "the waiting client retried while the other session was open"
    );
}

fn wait_for_prompt(transcript: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(transcript).unwrap_or_default();
        if text.contains("lab-instance:~$") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no shell prompt in {}: {text}",
            transcript.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_expired_key_is_a_clear_error() {
    let (standin, id) = ready(Console::FakeGetty);
    standin.control(r#"{"ttl": 0}"#);
    for client in ["built-in", "openssh"] {
        let out = run(&standin, &id, HAPPY_SCRIPT, &["--ssh-client", client]);
        assert_exit(&out, 3, &["refused the pushed key", "valid for 60 s"]);
    }
}

#[test]
fn missing_credentials_and_region_are_named() {
    let (standin, id) = ready(Console::FakeGetty);
    let mut cmd = run_cmd(&standin, &id, HAPPY_SCRIPT, &[]);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let out = cmd.output().unwrap();
    assert_exit(&out, 3, &["no AWS credentials found", "--profile"]);

    let mut cmd = run_cmd(&standin, &id, HAPPY_SCRIPT, &[]);
    cmd.env_remove("AWS_REGION");
    let out = cmd.output().unwrap();
    assert_exit(&out, 2, &["no AWS Region", "--region"]);

    let out = run(
        &standin,
        &id,
        HAPPY_SCRIPT,
        &["--serial-endpoint", "127.0.0.1:99999"],
    );
    assert_exit(&out, 2, &["--serial-endpoint", "1 to 65535"]);
    assert!(standin.pushes().is_empty());
}

/// A shared-credentials file whose profile `serial` holds the stand-in's keys.
fn serial_profile(standin: &StandIn) -> std::path::PathBuf {
    let creds = standin.dir.path().join("credentials");
    std::fs::write(
        &creds,
        format!(
            "[serial]\naws_access_key_id = {}\naws_secret_access_key = {SECRET_KEY}\n",
            ec2_support::ACCESS_KEY
        ),
    )
    .unwrap();
    creds
}

#[test]
fn credentials_come_from_a_profile_too() {
    let (standin, id) = ready(Console::FakeGetty);
    let creds = serial_profile(&standin);
    let mut cmd = run_cmd(&standin, &id, HAPPY_SCRIPT, &["--profile", "serial"]);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(pushes_for(&standin, &id)[0]["signature_ok"], true);
}

#[test]
fn an_explicit_profile_wins_over_environment_keys_and_a_misspelt_one_is_named() {
    let (standin, id) = ready(Console::FakeGetty);
    let creds = serial_profile(&standin);
    // The environment holds someone else's keys: --profile must win, as in the AWS CLI.
    let with_env = |profile: &str| {
        let mut cmd = run_cmd(&standin, &id, HAPPY_SCRIPT, &["--profile", profile]);
        cmd.env("AWS_ACCESS_KEY_ID", "AKIDENVIRONMENTKEY00")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "not-the-profile-secret-0123456789abcdef",
            )
            .env("AWS_SHARED_CREDENTIALS_FILE", &creds);
        cmd.output().unwrap()
    };
    let out = with_env("serial");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let pushes = pushes_for(&standin, &id);
    assert_eq!(pushes.last().unwrap()["signature_ok"], true, "{pushes:?}");
    let out = with_env("nosuch");
    assert_exit(&out, 2, &["--profile nosuch", "no such profile"]);
}

#[test]
fn the_private_key_never_touches_the_disk() {
    key_stays_off_the_disk(&[]);
}

/// The OpenSSH client gets the key from an agent in this process: no key
/// file anywhere, and the agent's socket is all the client holds open.
#[test]
fn the_private_key_never_touches_the_disk_with_the_openssh_client() {
    key_stays_off_the_disk(&["--ssh-client", "openssh"]);
}

fn key_stays_off_the_disk(client: &[&str]) {
    let (standin, id) = ready(Console::FakeGetty);
    let transcript = standin.dir.path().join("held.cast");
    // The client's working directory, HOME and TMPDIR are all under these
    // two roots, so anything it writes is scanned below.
    let client_home = standin.dir.path().join("client-home");
    let mut child = run_cmd(&standin, &id, &holding_script(3), client)
        .current_dir(&client_home)
        .arg("--transcript")
        .arg(&transcript)
        .spawn()
        .unwrap();
    wait_for_prompt(&transcript);
    let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id())).unwrap();
    for fd in fds.flatten() {
        // Standard input, output and error are the test runner's own
        // (a file when its output is redirected to one).
        if matches!(fd.file_name().to_str(), Some("0" | "1" | "2")) {
            continue;
        }
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        let shown = target.display().to_string();
        let harmless = shown.starts_with("socket:")
            || shown.starts_with("pipe:")
            || shown.starts_with("anon_inode:")
            || shown.starts_with("/dev/")
            || target == transcript;
        assert!(
            harmless,
            "the client holds an unexpected file open: {shown}"
        );
    }
    // Its programs (the OpenSSH client) get no secret in argv or environment.
    let programs = descendants(child.id());
    assert_eq!(
        programs.iter().any(|p| p.0.starts_with("ssh\0")),
        !client.is_empty(),
        "{programs:?}"
    );
    for (argv, environ) in &programs {
        for secret in [
            SECRET_KEY,
            PASSWORD,
            "AWS_SECRET_ACCESS_KEY",
            "SSH_AUTH_SOCK",
        ] {
            assert!(
                !argv.contains(secret) && !environ.contains(secret),
                "{secret} reached a child: {argv:?} {environ:?}"
            );
        }
    }
    assert!(child.wait().unwrap().success());
    // Nothing written anywhere the client could write holds key material.
    for root in [
        standin.dir.path().join("client-home"),
        standin.dir.path().join("client-tmp"),
    ] {
        for file in walk(&root) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("PRIVATE KEY") && !text.contains("openssh-key-v1"),
                "{} holds a private key",
                file.display()
            );
        }
    }
}

/// `--ssh-client openssh`: `send_break()` reaches the serial endpoint as an
/// RFC 4335 `break` request (the stand-in's sshd logs each channel request),
/// and lines that begin with `~` reach the console as typed instead of being
/// taken as the client's escapes (`~.` would hang up).
#[test]
fn breaks_go_through_the_openssh_client_and_tildes_arrive_as_typed() {
    let (standin, id) = ready(Console::FakeGetty);
    let script = LOG_IN.to_string()
        + r#"
send_break();
send_line("~.still-here");
expect(["ran: ~\\.still-here"]);
send_line("~~twice");
expect(["ran: ~~twice"]);
send_line("exit");
expect(["logout"]);
"#;
    let out = run(&standin, &id, &script, &["--ssh-client", "openssh"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let log = standin.sshd_log();
    assert_eq!(
        log.matches("req break").count(),
        1,
        "the endpoint got one break request: {log}"
    );
    assert!(
        log.contains(&format!("Accepted publickey for {id}.port0")),
        "{log}"
    );
    // The same script through the built-in client fails at the break,
    // naming the flag that sends one.
    let out = run(&standin, &id, &script, &[]);
    assert_exit(&out, 3, &["--ssh-client openssh", "break"]);
    assert_eq!(standin.sshd_log().matches("req break").count(), 1);
}

/// Every process below `pid`: (argv, environment), NUL-separated.
fn descendants(pid: u32) -> Vec<(String, String)> {
    let read =
        |p: &str| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(pid) = todo.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let children = read(&format!("{}/children", task.path().display()));
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push((
                    read(&format!("/proc/{child}/cmdline")),
                    read(&format!("/proc/{child}/environ")),
                ));
                todo.push(child);
            }
        }
    }
    out
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            out.extend(walk(&entry.path()));
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    out
}

#[test]
fn the_gateway_serves_an_ec2_console_over_websocket() {
    let (standin, id) = ready(Console::FakeGetty);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut gateway = standin
        .command()
        .args(["--no-transcript", "gateway", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--console")
        .arg(format!("web={id}"))
        .args(["--auth", "none"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run(
        &standin,
        &format!("ws://127.0.0.1:{port}/v1/consoles/web"),
        HAPPY_SCRIPT,
        &[],
    );
    let _ = gateway.kill();
    let _ = gateway.wait();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(pushes_for(&standin, &id).len(), 1);
}

/// `console i-…` in a user's terminal (a PTY): log in by typing, ask for a
/// break (`~B`, which the built-in SSH client cannot send: it must say so,
/// name the client that can, and carry on), leave with `~.`, exit 0, the
/// session recorded.
#[tokio::test]
async fn console_works_like_ssh_to_the_serial_console() {
    let standin = console_session(
        &[],
        &["[no break sent:", "RFC 4335", "--ssh-client openssh"],
    )
    .await;
    assert_eq!(standin.sshd_log().matches("req break").count(), 0);
}

/// The same with `--ssh-client openssh`: `~B` sends the break, the endpoint
/// gets the request.
#[tokio::test]
async fn console_sends_a_break_with_the_openssh_client() {
    let standin = console_session(&["--ssh-client", "openssh"], &["[break sent]"]).await;
    let log = standin.sshd_log();
    assert_eq!(log.matches("req break").count(), 1, "{log}");
}

async fn console_session(client: &[&str], after_break: &[&str]) -> StandIn {
    use ec2_serial_expect::connect::Console as Opener;
    use ec2_serial_expect::Target;

    let (standin, id) = ready(Console::FakeGetty);
    let transcript = standin.dir.path().join("console.cast");
    let cmd = standin.command();
    let mut words: Vec<String> = vec!["env".into(), "-i".into()];
    for (k, v) in cmd.get_envs() {
        words.push(format!(
            "{}={}",
            k.to_string_lossy(),
            v.unwrap_or_default().to_string_lossy()
        ));
    }
    words.push(cmd.get_program().to_string_lossy().into_owned());
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.extend(["--transcript".into(), transcript.display().to_string()]);
    words.extend(client.iter().map(|w| w.to_string()));
    words.extend(["console".into(), id.clone()]);
    let line = format!("{}; echo \"exit=$?\"", shell_words::join(&words));
    let target = Target::Exec {
        argv: vec!["sh".into(), "-c".into(), line],
    };
    let mut term = Opener::open(&target).session().await.unwrap();
    let wait = Some(Duration::from_secs(30));
    term.expect_exact("login: ", wait).await.unwrap();
    term.send("ec2-user\r").await.unwrap();
    term.expect_exact("Password: ", wait).await.unwrap();
    term.send(&format!("{PASSWORD}\r")).await.unwrap();
    term.expect_exact("lab-instance:~$ ", wait).await.unwrap();
    term.send("\r~B").await.unwrap();
    for said in after_break {
        term.expect_exact(said, wait).await.unwrap();
    }
    term.send("date\r").await.unwrap();
    term.expect_exact("ran: date", wait).await.unwrap();
    term.send("\r~.").await.unwrap();
    term.expect_exact("exit=0", wait).await.unwrap();
    let recorded = std::fs::read_to_string(&transcript).unwrap();
    assert!(recorded.contains("ran: date"), "{recorded}");
    assert!(!recorded.contains(SECRET_KEY) && !recorded.contains(PASSWORD));
    assert_eq!(pushes_for(&standin, &id).len(), 1);
    standin
}

/// `--region` wins over AWS_REGION, and the access switch is per Region.
#[test]
fn the_region_flag_is_honoured_and_access_is_per_region() {
    let (standin, id) = ready(Console::FakeGetty);
    let out = run(&standin, &id, HAPPY_SCRIPT, &["--region", "eu-west-1"]);
    assert_exit(
        &out,
        3,
        &["aws ec2 enable-serial-console-access --region eu-west-1"],
    );
    let out = run(
        &standin,
        &id,
        HAPPY_SCRIPT,
        &["--region", "eu-west-1", "--no-preflight"],
    );
    assert_exit(
        &out,
        3,
        &["SerialConsoleAccessDisabledException", "eu-west-1"],
    );
    assert_eq!(pushes_for(&standin, &id)[0]["signature_ok"], true);
}

/// `-vvv` and `RUST_LOG=trace` over the EC2 path (the EC2 Query preflight,
/// the key push through the SDK, the SSH client), with temporary
/// credentials: no secret key, session token, signature or password in
/// stderr, stdout or the transcript.
#[test]
fn trace_logs_over_ec2_hold_no_key_token_signature_or_password() {
    const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLEsessionTOKEN0123456789abcdef";
    let (standin, id) = ready(Console::FakeGetty);
    let mut cmd = run_cmd(&standin, &id, HAPPY_SCRIPT, &["-vvv"]);
    cmd.env("RUST_LOG", "trace")
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    let out = cmd.output().unwrap();
    assert_no_leak(&standin, &out);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(" INFO "), "the run logged verbosely: {err}");
    let signature = regex::Regex::new(r"(?i)signature=[0-9a-f]{16}").unwrap();
    for text in [err.as_str(), &String::from_utf8_lossy(&out.stdout)] {
        assert!(
            !text.contains(SESSION_TOKEN),
            "the session token leaked: {text}"
        );
        assert!(!signature.is_match(text), "a signature leaked: {text}");
    }
}

/// A fleet run over `--filter`: the tagged instances only, listed page by
/// page, each examined through its own pushed key and SSH session; one
/// instance busy with another session at first (its key push refused with
/// SerialConsoleSessionLimitExceeded, then waited for), one stopped (named,
/// with the command that starts it), never a stop to the others; AWS
/// throttling two pushes slows every push of the run, not just those two.
#[test]
fn a_fleet_over_filter_covers_every_matching_instance() {
    let standin = StandIn::start(Console::RootShell);
    standin.ec2ctl(&["enable-access"]);
    let web = standin.run_instances("t3.micro", 7, Some("Role=web"));
    let db = standin.run_instances("t3.micro", 1, Some("Role=db"));
    // Listed first, so its console is among the first asked for.
    let (busy, stopped) = (&web[0], &web[1]);
    standin.ec2ctl(&["stop", stopped]);
    // Another session holds the busy instance's serial port for 5 s.
    let lock = standin.dir.path().join(format!("locks/{busy}.lock"));
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "5"])
        .spawn()
        .unwrap();
    while !lock.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    standin.control(r#"{"queue": ["ThrottlingException", "ThrottlingException"]}"#);
    let out_dir = standin.dir.path().join("fleet-out");
    let out = standin
        .command()
        .env("CONSOLE_PW", PASSWORD)
        .args(["--output", "json", "doctor"])
        .args(["--filter", "Name=tag:Role,Values=web", "--page-size", "5"])
        .args(["-j", "4", "--out-dir", out_dir.to_str().unwrap()])
        .args(["--user", "fleet-nobody-7", "--login-user", "root"])
        .args(["--password-env", "CONSOLE_PW"])
        .output()
        .unwrap();
    assert!(holder.wait().unwrap().success());
    assert_no_leak(&standin, &out);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the worst end is the stopped one: {err}"
    );

    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(
        lines.len(),
        8,
        "a line per web instance, then the summary: {err}"
    );
    let mut seen: Vec<&str> = lines[..7]
        .iter()
        .map(|l| l["target"].as_str().unwrap())
        .collect();
    seen.sort();
    let mut expected: Vec<&str> = web.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(
        seen, expected,
        "every tagged instance, the db one left out ({db:?})"
    );
    for line in &lines[..7] {
        let target = line["target"].as_str().unwrap();
        if target == stopped {
            assert_eq!(line["outcome"], "unreachable", "{line}");
            let error = line["error"]["message"].as_str().unwrap();
            assert!(
                error.contains("is stopped") && error.contains("aws ec2 start-instances"),
                "{error}"
            );
        } else {
            assert_eq!(line["outcome"], "problems_remain", "{line}");
            let checks: Vec<&str> = line["report"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["check"].as_str().unwrap())
                .collect();
            assert!(checks.contains(&"user.exists"), "{line}");
        }
    }
    let summary = &lines[7]["summary"];
    assert_eq!(summary["targets"], 7, "{summary}");
    assert_eq!(
        summary["ended"][0]["target"],
        stopped.as_str(),
        "worst first: {summary}"
    );

    let describe = standin
        .ec2_requests()
        .iter()
        .filter(|r| r["action"] == "DescribeInstances")
        .count();
    assert!(
        describe >= 2 + 6,
        "two pages, then one preflight per instance: {describe}"
    );
    let busy_pushes: Vec<serde_json::Value> = pushes_for(&standin, busy);
    assert!(
        busy_pushes
            .iter()
            .any(|p| p["error"] == "SerialConsoleSessionLimitExceededException"),
        "{busy_pushes:?}"
    );
    assert!(
        busy_pushes.last().unwrap()["error"].is_null(),
        "pushed again once the other session ended: {busy_pushes:?}"
    );
    assert!(
        pushes_for(&standin, stopped).is_empty(),
        "the preflight stopped it first"
    );
    assert!(pushes_for(&standin, &db[0]).is_empty());
    for entry in std::fs::read_dir(&out_dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert!(
            !text.contains(PASSWORD) && !text.contains(SECRET_KEY),
            "{}",
            entry.path().display()
        );
    }
    assert_eq!(
        std::fs::read_dir(&out_dir).unwrap().count(),
        6 + 7 + 1,
        "casts, reports, summary"
    );
}

/// `doctor --via grub` on an instance reboots it through the EC2 API
/// (RebootInstances, which the stand-in's moto accepts and then runs the
/// instance's reboot hook), with the console already open; a refusal names
/// the permission and the way around it, and nothing else is tried.
#[test]
fn grub_rescue_reboots_the_instance_through_the_ec2_api() {
    // The console prints what GRUB prints when its menu is hidden, once
    // the hook has "rebooted" the instance.
    let (standin, id) = ready(Console::Command(
        "sh -c \"until [ -e /tmp/ese-standin-rebooted ]; do sleep 0.2; done; \
         printf '  Booting \\\\140Debian GNU/Linux\\\\047\\\\r\\\\n'; sleep 30\""
            .into(),
    ));
    let _ = std::fs::remove_file("/tmp/ese-standin-rebooted");
    let doctor = |extra: &[&str]| {
        let mut cmd = standin.base_command();
        cmd.arg("--serial-endpoint")
            .arg(standin.serial_endpoint())
            .arg("--host-key-fingerprint")
            .arg(&standin.fingerprint)
            .arg("--no-transcript")
            .args(extra)
            .args(["doctor", &id, "--user", "ec2-user", "--via", "grub"]);
        let out = cmd.output().unwrap();
        assert_no_leak(&standin, &out);
        out
    };
    let reboots = |standin: &StandIn| standin.reboots();

    standin.control(r#"{"ec2_queue": ["UnauthorizedOperation"]}"#);
    let out = doctor(&["--no-preflight"]);
    assert_exit(&out, 3, &["ec2:RebootInstances", "--power-cycle none"]);
    assert_eq!(reboots(&standin), 1, "not retried");
    assert!(!std::path::Path::new("/tmp/ese-standin-rebooted").exists());

    standin.control(&format!(
        r#"{{"on_reboot": {{"{id}": ["touch", "/tmp/ese-standin-rebooted"]}}}}"#
    ));
    let out = doctor(&[]);
    assert_exit(&out, 1, &["without showing GRUB's menu", "prepare"]);
    assert_eq!(reboots(&standin), 2);
    assert!(std::path::Path::new("/tmp/ese-standin-rebooted").exists());
    let _ = std::fs::remove_file("/tmp/ese-standin-rebooted");
}

/// `prepare --account`: with --check a DryRun (EC2 answers DryRunOperation,
/// nothing changes), then EnableSerialConsoleAccess for real; a refusal
/// names the permission.
/// `--via grub` over a fleet (`--filter`): each instance is rebooted through
/// the EC2 API on its own (its console goes on only once its own reboot
/// hook ran), each reported on its own.
#[test]
fn a_grub_fleet_reboots_every_instance_through_the_ec2_api() {
    let (standin, _) = ready(Console::Command(
        "sh -c \"until [ -e /tmp/ese-standin-rebooted-${USER%.port0} ]; do sleep 0.2; done; \
         printf '  Booting \\\\140Debian GNU/Linux\\\\047\\\\r\\\\n'; sleep 30\""
            .into(),
    ));
    let ids = standin.run_instances("t3.micro", 2, Some("Role=grub"));
    let marker = |id: &str| format!("/tmp/ese-standin-rebooted-{id}");
    let mut hooks = serde_json::Map::new();
    for id in &ids {
        let _ = std::fs::remove_file(marker(id));
        hooks.insert(id.clone(), serde_json::json!(["touch", marker(id)]));
    }
    standin.control(&serde_json::json!({ "on_reboot": hooks }).to_string());
    let out = standin
        .command()
        .args(["doctor", "--filter", "Name=tag:Role,Values=grub"])
        .args([
            "--user",
            "ec2-user",
            "--via",
            "grub",
            "--boot-timeout",
            "60",
        ])
        .output()
        .unwrap();
    assert_no_leak(&standin, &out);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{said}");
    for id in &ids {
        assert!(
            std::path::Path::new(&marker(id)).exists(),
            "{id} rebooted: {said}"
        );
        assert!(
            said.lines()
                .any(|l| l.contains(id.as_str()) && l.contains("without showing GRUB's menu")),
            "{id} reported on its own: {said}"
        );
        let _ = std::fs::remove_file(marker(id));
    }
    let reboots = standin.reboots();
    assert_eq!(reboots, 2, "one reboot per instance");
}

#[test]
fn prepare_account_enables_serial_console_access_after_a_dry_run() {
    let standin = StandIn::start(Console::FakeGetty);
    let prepare = |extra: &[&str]| {
        let out = standin
            .base_command()
            .args(["--output", "json", "prepare", "--account"])
            .args(extra)
            .output()
            .unwrap();
        assert_no_leak(&standin, &out);
        out
    };
    assert_eq!(standin.ec2ctl(&["access-status"]), "false");
    let out = prepare(&["--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["account"]
            .as_str()
            .unwrap()
            .contains("would be enabled"),
        "{doc}"
    );
    assert_eq!(
        standin.ec2ctl(&["access-status"]),
        "false",
        "a dry run changes nothing"
    );

    let out = prepare(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(standin.ec2ctl(&["access-status"]), "true");

    standin.control(r#"{"ec2_queue": ["UnauthorizedOperation"]}"#);
    let out = standin
        .base_command()
        .args(["prepare", "--account"])
        .output()
        .unwrap();
    assert_no_leak(&standin, &out);
    assert_exit(&out, 3, &["ec2:EnableSerialConsoleAccess"]);
}

/// `ready`: EC2's answers for each instance (a Nitro one has a console and
/// may be rebooted; a Xen one has no serial console), and with
/// `--login-user` what the machine itself has, read-only.
#[test]
fn ready_says_which_rescue_paths_each_instance_has() {
    let (standin, id) = ready(Console::RootShell);
    let xen = standin.run_instance("t2.micro");
    let out = standin
        .base_command()
        .arg("--serial-endpoint")
        .arg(standin.serial_endpoint())
        .arg("--host-key-fingerprint")
        .arg(&standin.fingerprint)
        .args(["--no-transcript", "--output", "json", "ready", &id, &xen])
        .output()
        .unwrap();
    assert_no_leak(&standin, &out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["serial_console"]["ok"], true, "{}", lines[0]);
    assert_eq!(lines[0]["reboot"]["ok"], true, "{}", lines[0]);
    assert!(lines[0].get("login").is_none(), "not asked: {}", lines[0]);
    assert_eq!(lines[1]["serial_console"]["ok"], false);
    assert!(
        lines[1]["serial_console"]["why"]
            .as_str()
            .unwrap()
            .contains("Nitro"),
        "{}",
        lines[1]
    );
    assert!(
        standin.pushes().is_empty(),
        "ready pushes no key without --login-user"
    );

    let out = standin
        .base_command()
        .arg("--serial-endpoint")
        .arg(standin.serial_endpoint())
        .arg("--host-key-fingerprint")
        .arg(&standin.fingerprint)
        .env("CONSOLE_PW", PASSWORD)
        .args(["--no-transcript", "--output", "json", "ready", &id])
        .args([
            "--login-user",
            "root",
            "--password-env",
            "CONSOLE_PW",
            "--rescue-user",
            "no-such-rescue",
        ])
        .output()
        .unwrap();
    assert_no_leak(&standin, &out);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["login"]["ok"], true, "{line}");
    assert_eq!(line["rescue_user"]["ok"], false, "{line}");
    assert!(line["grub_serial"].is_object(), "{line}");
    assert_eq!(out.status.code(), Some(1));
}
