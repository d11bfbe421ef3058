//! `doctor` over many targets in one process, from recorded lab sessions:
//! a thousand replayed consoles at `-j 200`, each with its own report and
//! transcript, the summary's counts and the documented exit code; a target
//! that cannot be read is one line, never the end of the run; `--shard`
//! slices cover the list exactly once and `merge` adds their summaries up;
//! a signal stops new targets and every target is still reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const PASSWORD: &str = "replayed-Password-4711";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/doctor")
}

/// `doctor` over the targets in `list` (a `--targets` file), asking about
/// ec2-user with the key the fixtures were recorded with.
fn fleet(list: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["--output", "json", "doctor", "--targets"])
        .arg(list)
        .args(["--user", "ec2-user", "--password-env", "ESE_REPLAY_PW"])
        .arg("--public-key")
        .arg(fixtures().join("healthy-check.pub"))
        .args(extra)
        .env("ESE_REPLAY_PW", PASSWORD)
        .output()
        .unwrap()
}

/// `healthy` links to the healthy recording and `broken` to home-777's,
/// named so the test knows which is which; returns the targets file.
fn consoles(dir: &Path, healthy: usize, broken: usize) -> PathBuf {
    let mut list = String::from("# a fleet of recorded consoles\n");
    for (kind, fixture, count) in [
        ("healthy", "healthy-check.cast", healthy),
        ("broken", "home-777-check.cast", broken),
    ] {
        for i in 0..count {
            let path = dir.join(format!("{kind}-{i:04}.cast"));
            std::fs::hard_link(fixtures().join(fixture), &path)
                .or_else(|_| std::fs::copy(fixtures().join(fixture), &path).map(|_| ()))
                .unwrap();
            list.push_str(&format!("replay:{}\n", path.display()));
        }
    }
    let file = dir.join("targets.txt");
    std::fs::write(&file, list).unwrap();
    file
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn a_thousand_replayed_targets_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let list = consoles(dir.path(), 600, 400);
    let out_dir = dir.path().join("out");
    let out = fleet(
        &list,
        &["-j", "200", "--out-dir", out_dir.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "problems remain on 400: {stderr}"
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1001, "a line per target, then the summary");
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for line in &lines[..1000] {
        let target = line["target"].as_str().unwrap();
        let outcome = line["outcome"].as_str().unwrap();
        let findings: Vec<&str> = line["report"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["check"].as_str().unwrap())
            .collect();
        if target.contains("/healthy-") {
            assert_eq!((outcome, findings.len()), ("healthy", 0), "{line}");
        } else {
            assert_eq!(
                (outcome, findings.as_slice()),
                ("problems_remain", &["home.mode"][..]),
                "{line}"
            );
        }
        *outcomes.entry(outcome.to_string()).or_default() += 1;
    }
    assert_eq!(outcomes["healthy"], 600);
    assert_eq!(outcomes["problems_remain"], 400);
    let summary = &lines[1000]["summary"];
    assert_eq!(summary["targets"], 1000);
    assert_eq!(summary["counts"]["healthy"], 600);
    assert_eq!(summary["counts"]["problems_remain"], 400);
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(
        summary["ended"][0]["outcome"], "problems_remain",
        "worst first"
    );
    // One report and one transcript per target, and the summary.
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.iter().filter(|n| n.ends_with(".json")).count(), 1001);
    assert_eq!(names.iter().filter(|n| n.ends_with(".cast")).count(), 1000);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(saved["counts"], summary["counts"]);
    for name in &names {
        let text = std::fs::read_to_string(out_dir.join(name)).unwrap();
        assert!(!text.contains(PASSWORD), "{name}: the password leaked");
    }
}

#[test]
fn one_bad_target_is_one_line_and_the_exit_code_says_it() {
    let dir = tempfile::tempdir().unwrap();
    let list = consoles(dir.path(), 2, 0);
    let mut text = std::fs::read_to_string(&list).unwrap();
    text.push_str("replay:/nonexistent/recording.cast   # gone\n");
    std::fs::write(&list, text).unwrap();
    let out = fleet(&list, &["--no-transcript"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4);
    let bad = lines
        .iter()
        .find(|l| l["target"] == "replay:/nonexistent/recording.cast")
        .unwrap();
    assert_eq!(bad["outcome"], "failed");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nonexistent"),
        "{bad}"
    );
    assert_eq!(lines[3]["summary"]["counts"]["healthy"], 2);
    assert_eq!(out.status.code(), Some(2), "the worst target's code");
}

#[test]
fn shards_split_the_list_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let list = consoles(dir.path(), 30, 10);
    let mut seen = Vec::new();
    let mut dirs = Vec::new();
    for k in 0..3 {
        let out_dir = dir.path().join(format!("shard-{k}"));
        let out = fleet(
            &list,
            &[
                "--no-transcript",
                "--shard",
                &format!("{k}/3"),
                "--out-dir",
                out_dir.to_str().unwrap(),
            ],
        );
        dirs.push(out_dir);
        let lines = json_lines(&out);
        let (summary, targets) = lines.split_last().unwrap();
        assert_eq!(summary["summary"]["targets"], targets.len());
        seen.extend(
            targets
                .iter()
                .map(|l| l["target"].as_str().unwrap().to_string()),
        );
    }
    let mut want: Vec<String> = std::fs::read_to_string(&list)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    want.sort();
    seen.sort();
    assert_eq!(seen, want);
    // The shards' summaries, merged: as if one run had done it all.
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["--output", "json", "merge"])
        .args(&dirs)
        .output()
        .unwrap();
    let merged = &json_lines(&out)[0]["summary"];
    assert_eq!(merged["targets"], 40);
    assert_eq!(merged["counts"]["healthy"], 30);
    assert_eq!(merged["counts"]["problems_remain"], 10);
    assert_eq!(out.status.code(), Some(1));
    let bad = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["merge"])
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a doctor summary.json"));
}

#[test]
fn one_target_options_are_refused_with_many() {
    let f = fixtures();
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args([
            "doctor",
            "--user",
            "ec2-user",
            "--password-env",
            "ESE_REPLAY_PW",
        ])
        .arg(format!("replay:{}", f.join("healthy-check.cast").display()))
        .arg(format!(
            "replay:{}",
            f.join("home-777-check.cast").display()
        ))
        .args(["--report", "/tmp/x.json"])
        .env("ESE_REPLAY_PW", PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--out-dir"), "{stderr}");
}

/// Ctrl-C in a fleet run: the running targets stop (and would log out),
/// no new one starts, every target is still reported, and the exit code is
/// 130. The consoles here are programs that never show a login prompt.
#[test]
fn a_signal_stops_new_targets_and_reports_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    let targets: Vec<String> = (0..4).map(|i| format!("exec:sleep 6{i}")).collect();
    std::fs::write(&list, targets.join("\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"));
    child
        .args(["--output", "json", "doctor", "--targets"])
        .arg(&list)
        .args([
            "-j",
            "2",
            "--user",
            "ec2-user",
            "--password-env",
            "ESE_REPLAY_PW",
        ])
        .args(["--out-dir"])
        .arg(dir.path().join("out"))
        .env("ESE_REPLAY_PW", PASSWORD);
    let started = std::time::Instant::now();
    let out = interrupted_after(child, 2);
    assert!(started.elapsed().as_secs() < 22, "ended promptly");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 5, "every target, then the summary: {lines:?}");
    let summary = &lines[4]["summary"];
    assert_eq!(summary["counts"]["interrupted"], 2, "{summary}");
    assert_eq!(summary["counts"]["not_started"], 2, "{summary}");
    for line in &lines[..4] {
        if line["outcome"] == "interrupted" {
            let cast = std::fs::read_to_string(line["transcript"].as_str().unwrap()).unwrap();
            assert!(
                cast.trim_end().ends_with(r#""m","session end"]"#),
                "the transcript is closed: {cast}"
            );
        }
    }
}

/// On a terminal a live table shows each running target's phase and time
/// (here: waiting at the login of consoles that never prompt); through a
/// pipe nothing but the lines, no escape sequence.
#[tokio::test]
async fn a_terminal_shows_the_live_table_a_pipe_gets_no_escapes() {
    use ec2_serial_expect::connect::Console;
    use ec2_serial_expect::Target;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    std::fs::write(&list, "exec:sleep 71\nexec:sleep 72\nexec:sleep 73\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_ec2-serial-expect");
    let args = format!(
        "doctor --targets {} -j 2 --user ec2-user --password-env ESE_REPLAY_PW --no-transcript",
        list.display()
    );
    // Under a pseudo-terminal, as in a user's terminal.
    let script =
        format!("ESE_REPLAY_PW=x {bin} {args} & sleep 4; kill -INT $!; wait $!; echo \"exit=$?\"");
    let target = Target::Exec {
        argv: vec!["sh".into(), "-c".into(), script],
    };
    let mut term = Console::open(&target).session().await.unwrap();
    let wait = Some(std::time::Duration::from_secs(20));
    let seen = term.expect_exact("exit=", wait).await.unwrap().before;
    assert!(seen.contains("0/3 done"), "{seen}");
    assert!(
        seen.contains("logging in") && seen.contains("exec:sleep 71"),
        "{seen}"
    );
    assert!(seen.contains("2s  exec:sleep 72"), "the time runs: {seen}");
    assert!(
        seen.contains("3 targets: 2 interrupted, 1 not started"),
        "{seen}"
    );
    // Through a pipe: the same run, no table, no escapes.
    let mut child = Command::new(bin);
    child.args(args.split(' ')).env("ESE_REPLAY_PW", "x");
    let out = interrupted_after(child, 2);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains('\x1b'), "{all:?}");
    assert!(!all.contains("0/3 done"), "{all}");
    assert!(all.contains("interrupted"), "{all}");
}

/// Runs `command` with its output piped, sends it SIGINT after `secs`
/// seconds (a user's Ctrl-C), and waits for it.
fn interrupted_after(mut command: Command, secs: u64) -> Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(secs));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    child.wait_with_output().unwrap()
}

/// `run` takes many targets as `doctor` does: the script on each, a line
/// per target with its `log()` lines, one that never shows its prompt
/// timing out without holding up the others, files per target and the
/// summary's exit code.
#[test]
fn run_takes_many_targets_too() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hello.rhai");
    std::fs::write(
        &script,
        "expect([\"ready> $\"]);\nsend_line(\"go\");\nlet m = expect([\"done-(\\\\w+)\"]);\nlog(`answered ${m.groups[1]}`);\n",
    )
    .unwrap();
    let console = |name: &str| format!("exec:sh -c 'printf \"ready> \"; read l; echo done-{name}'");
    let out_dir = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
        .args(["--output", "json", "--timeout", "3", "run"])
        .args(["-j", "4", "--out-dir", out_dir.to_str().unwrap()])
        .arg(console("a"))
        .arg(console("b"))
        .arg("exec:sh -c 'printf \"busy> \"; sleep 30'")
        .arg(console("c"))
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(5),
        "the worst end: timed out: {stderr}"
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let mut passed: Vec<String> = lines[..4]
        .iter()
        .filter(|l| l["outcome"] == "passed")
        .map(|l| l["report"]["logs"][0].as_str().unwrap().to_string())
        .collect();
    passed.sort();
    assert_eq!(passed, ["answered a", "answered b", "answered c"]);
    let timed_out: Vec<&Value> = lines[..4]
        .iter()
        .filter(|l| l["outcome"] == "timed_out")
        .collect();
    assert_eq!(timed_out.len(), 1, "{lines:?}");
    assert!(timed_out[0]["target"].as_str().unwrap().contains("busy"));
    assert_eq!(lines[4]["summary"]["targets"], 4);
    assert_eq!(
        std::fs::read_dir(&out_dir).unwrap().count(),
        4 + 4 + 1,
        "a transcript and a report per target, and summary.json"
    );
}

/// Issue 34: a fleet whose recordings were made by another script called
/// each a mismatch `unreachable`, with about 3 KB of escaped shell per
/// line. A mismatch is its own outcome (`replay_mismatch`, exit code 1), the
/// human line stays short, the whole message is in the JSON, and the summary
/// does not list the targets a second time.
#[test]
fn a_replay_mismatch_is_its_own_outcome_on_one_short_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let casts = [
        "replay:fixtures/scripts/login-and-check.healthy.cast",
        "replay:fixtures/scripts/login-and-check.home-777.cast",
    ];
    // Not the script the recordings were made with: it types something else.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("other.rhai");
    std::fs::write(&script, "send_line(\"uname -a\");\nexpect(\"Linux\", 5);\n").unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
            .arg("run")
            .args(casts)
            .arg(&script)
            .args(["--no-transcript"])
            .args(extra)
            .current_dir(root)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let lines: Vec<&str> = shown.lines().filter(|l| l.contains("replay:")).collect();
    assert_eq!(
        lines.len(),
        2,
        "one line per target, none repeated:\n{shown}"
    );
    for line in lines {
        assert!(line.starts_with("replay mismatch"), "{line}");
        assert!(line.chars().count() < 300, "a long line: {line}");
    }
    assert!(shown.contains("2 targets: 2 replay mismatch"), "{shown}");
    let out = run(&["--output", "json"]);
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["outcome"], "replay_mismatch", "{first}");
    assert_eq!(first["exit_code"], 1, "{first}");
    assert!(
        first["error"]["message"]
            .as_str()
            .unwrap()
            .contains("differs from the recording"),
        "the whole message: {first}"
    );
}

/// Issue 34: a fleet took one `--login-user`/`--public-key` for all its
/// targets. A `--targets` line may end with its own `login_user=NAME` and
/// `public_key=FILE`: two recordings made with different login users and
/// keys replay side by side in one run (with the shared flags alone, the
/// second would part from its recording at the login).
#[test]
fn a_targets_line_gives_its_own_login_user_and_public_key() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    let line = |tag: &str, login: &str| {
        format!(
            "replay:fixtures/doctor/{tag}.cast login_user={login} public_key=fixtures/doctor/{tag}.pub\n"
        )
    };
    std::fs::write(
        &list,
        line("home-777-check", "ec2-user") + line("deleted-user-check", "lab-admin").as_str(),
    )
    .unwrap();
    let doctor = |list: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
            .args(["--no-transcript", "--output", "json", "doctor", "--targets"])
            .arg(list)
            .args(["--user", "ec2-user", "--password-env", "ESE_REPLAY_PW"])
            .env("ESE_REPLAY_PW", "replayed-password")
            .current_dir(root)
            .output()
            .unwrap()
    };
    let out = doctor(&list);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let ends: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v.get("target").is_some())
        .collect();
    assert_eq!(ends.len(), 2, "{stdout}");
    let findings = |tag: &str| {
        let end = ends
            .iter()
            .find(|e| e["target"].as_str().unwrap().contains(tag))
            .unwrap();
        assert_eq!(end["outcome"], "problems_remain", "{end}");
        end["report"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["check"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(findings("home-777-check").contains(&"home.mode".to_string()));
    assert!(findings("deleted-user-check").contains(&"user.deleted".to_string()));
    // A key file that cannot be read is refused before anything connects.
    std::fs::write(
        &list,
        "replay:fixtures/doctor/home-777-check.cast public_key=/nonexistent.pub\n",
    )
    .unwrap();
    let out = doctor(&list);
    assert_eq!(out.status.code(), Some(2));
    // --output json: the failure document on stdout names the line's option.
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("cannot read public_key=/nonexistent.pub"),
        "{shown}"
    );
}

/// Issue 35: `-j` went up to 1,000. It goes to 10,000 where the open-file
/// limit allows (the soft limit is raised as far as the hard one); where it
/// does not, a usage error says how many fit and how to raise the limit,
/// before anything connects.
#[test]
fn jobs_beyond_the_open_file_limit_are_refused_with_what_fits() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = env!("CARGO_BIN_EXE_ec2-serial-expect");
    // 200 distinct replayed targets: -j counts only as many as there are.
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..200 {
        let fixture = if i % 2 == 0 {
            "healthy-check"
        } else {
            "home-777-check"
        };
        let cast = dir.path().join(format!("t{i:03}.cast"));
        std::fs::copy(root.join(format!("fixtures/doctor/{fixture}.cast")), &cast).unwrap();
        lines.push_str(&format!("replay:{}\n", cast.display()));
    }
    let list = dir.path().join("targets.txt");
    std::fs::write(&list, lines).unwrap();
    let doctor = |jobs: &str| {
        let line = format!(
            "ulimit -Sn 200; ulimit -Hn 400; exec {bin} --no-transcript doctor --targets {} \
             -j {jobs} --user ec2-user --public-key fixtures/doctor/healthy-check.pub \
             --password-env PW",
            list.display()
        );
        std::process::Command::new("sh")
            .args(["-c", &line])
            .env("PW", "replayed-password")
            .current_dir(root)
            .output()
            .unwrap()
    };
    let out = doctor("10000");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("-j 10000 (200 targets at once) needs about 664 open files"),
        "{err}"
    );
    assert!(err.contains("use -j 112 or less"), "{err}");
    // 100 needs 364 files: more than the soft limit, within the hard one.
    let out = doctor("100");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two targets need few files whatever -j says.
    let out = std::process::Command::new("sh")
        .args(["-c", &format!(
            "ulimit -Sn 200; ulimit -Hn 400; exec {bin} --no-transcript doctor \
             replay:fixtures/doctor/healthy-check.cast replay:fixtures/doctor/home-777-check.cast \
             -j 10000 --user ec2-user --public-key fixtures/doctor/healthy-check.pub --password-env PW"
        )])
        .env("PW", "replayed-password")
        .current_dir(root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
