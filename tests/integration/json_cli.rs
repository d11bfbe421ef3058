//! Every JSON document the CLI prints or writes, validated against the
//! documented schema (docs/json.schema.json, with the reference validator:
//! Python's jsonschema, from the EC2 stand-in's venv): one target and many,
//! success and failure, files and lines. A field renamed or dropped, a
//! document without `schema_version`, a failure without its envelope: each
//! fails here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const PASSWORD: &str = "replayed-Password-4711";

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"));
    cmd.env("ESE_REPLAY_PW", PASSWORD);
    cmd
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn doctor_fixture(tag: &str) -> (String, PathBuf) {
    let dir = root().join("fixtures/doctor");
    (
        format!("replay:{}", dir.join(format!("{tag}.cast")).display()),
        dir.join(format!("{tag}.pub")),
    )
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Validates each `(definition, document)` with jsonschema; panics with
/// every violation.
fn validate(documents: &[(&str, Value)]) {
    const CHECK: &str = r##"
import json, sys
from jsonschema import Draft202012Validator, FormatChecker
schema = json.load(open(sys.argv[1]))
bad = []
for line in sys.stdin:
    name, doc = json.loads(line)
    wrapped = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/" + name}
    for e in Draft202012Validator(wrapped, format_checker=FormatChecker()).iter_errors(doc):
        bad.append(f"{name}: {e.message} at {list(e.absolute_path)} in {json.dumps(doc)[:300]}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
"##;
    let mut input = String::new();
    for (name, doc) in documents {
        input.push_str(&serde_json::to_string(&(name, doc)).unwrap());
        input.push('\n');
    }
    let out = crate::support::output_with_stdin(
        Command::new(crate::support::ec2::python())
            .arg("-c")
            .arg(CHECK)
            .arg(root().join("docs/json.schema.json")),
        &input,
    );
    assert!(
        out.status.success(),
        "documents that do not match docs/json.schema.json:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_document_matches_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut docs: Vec<(&str, Value)> = Vec::new();

    // doctor, one target: check (verified null) and fix (verified true), to
    // stdout and to --report.
    let (healthy, key) = doctor_fixture("healthy-check");
    let out = bin()
        .args(["--no-transcript", "--output", "json", "doctor", &healthy])
        .args(["--user", "ec2-user", "--password-env", "ESE_REPLAY_PW"])
        .arg("--public-key")
        .arg(&key)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["verified"],
        Value::Null,
        "check mode verifies nothing"
    );
    docs.push(("doctor_report", report));
    let (fix, fix_key) = doctor_fixture("home-777-fix");
    let report_file = dir.path().join("report.json");
    let out = bin()
        .args(["--no-transcript", "--output", "json", "doctor", &fix])
        .args(["--user", "ec2-user", "--password-env", "ESE_REPLAY_PW"])
        .arg("--public-key")
        .arg(&fix_key)
        .args(["--fix", "--add-key", "--report"])
        .arg(&report_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    docs.push((
        "doctor_report",
        serde_json::from_slice(&out.stdout).unwrap(),
    ));
    docs.push((
        "doctor_report",
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap(),
    ));

    // doctor over several targets: lines, files, summary; and merge.
    let (broken, _) = doctor_fixture("home-777-check");
    let out_dir = dir.path().join("out");
    let out = bin()
        .args(["--output", "json", "doctor", &healthy, &broken])
        .arg("replay:/nonexistent.cast")
        .args(["--user", "ec2-user", "--password-env", "ESE_REPLAY_PW"])
        .arg("--public-key")
        .arg(&key)
        .args(["--out-dir", out_dir.to_str().unwrap()])
        .output()
        .unwrap();
    let fleet = lines(&out);
    assert_eq!(fleet.len(), 4);
    for line in &fleet[..3] {
        docs.push(("fleet_target", line.clone()));
    }
    docs.push(("fleet_summary", fleet[3].clone()));
    for entry in std::fs::read_dir(&out_dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let kind = if path.ends_with("summary.json") {
                "summary_file"
            } else {
                "fleet_target"
            };
            docs.push((kind, doc));
        }
    }
    let out = bin()
        .args(["--output", "json", "merge"])
        .arg(&out_dir)
        .output()
        .unwrap();
    docs.push(("fleet_summary", lines(&out).remove(0)));

    // run, one target and several; lint; test.
    let script = dir.path().join("ok.rhai");
    std::fs::write(
        &script,
        "expect([\"ready> $\"]);\nsend_line(\"go\");\nlog(\"ok\");\n",
    )
    .unwrap();
    let console = "exec:sh -c 'printf \"ready> \"; read l'";
    let out = bin()
        .args(["--no-transcript", "--output", "json", "run", console])
        .arg(&script)
        .output()
        .unwrap();
    docs.push(("run_result", lines(&out).remove(0)));
    let out = bin()
        .args([
            "--no-transcript",
            "--output",
            "json",
            "run",
            console,
            console,
        ])
        .arg("exec:sh -c 'printf \"ready> \"; read l; exit 0'")
        .arg(&script)
        .output()
        .unwrap();
    let run_fleet = lines(&out);
    for line in &run_fleet[..2] {
        docs.push(("fleet_target", line.clone()));
    }
    docs.push(("fleet_summary", run_fleet[2].clone()));
    let out = bin()
        .args(["--output", "json", "lint"])
        .arg(&script)
        .output()
        .unwrap();
    docs.push(("lint_result", lines(&out).remove(0)));
    // prepare --check and ready, read-only, on this machine's own shell;
    // the GRUB rescue's report (via, not_checked).
    let out = bin()
        .args([
            "--no-transcript",
            "--output",
            "json",
            "prepare",
            "exec:sh",
            "--check",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    docs.push(("prepare_result", lines(&out).remove(0)));
    let out = bin()
        .args(["--no-transcript", "--output", "json", "ready", "exec:sh"])
        .output()
        .unwrap();
    docs.push(("ready_result", lines(&out).remove(0)));
    let rescue = format!(
        "replay:{}",
        root().join("fixtures/rescue/grub-fix.cast").display()
    );
    let out = bin()
        .args(["--no-transcript", "--output", "json", "doctor", &rescue])
        .args(["--user", "ec2-user", "--via", "grub", "--fix"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["via"], "grub", "{report}");
    docs.push(("doctor_report", report));
    let out = bin()
        .args(["--output", "json", "test"])
        .arg(root().join("scripts/check-ssh-key-refused.rhai"))
        .arg("--recordings")
        .arg(root().join("fixtures/scripts"))
        .output()
        .unwrap();
    let mut tests = lines(&out);
    let summary = tests.pop().unwrap();
    docs.push(("test_summary", summary));
    for t in tests {
        docs.push(("test_result", t));
    }

    // Failures: bad input, a timeout with its transcript, a missing file.
    let out = bin()
        .args([
            "--output",
            "json",
            "doctor",
            "nonsense-target",
            "--user",
            "u",
        ])
        .args(["--password-env", "ESE_REPLAY_PW"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let failure = lines(&out).remove(0);
    assert_eq!(failure["error"]["kind"], "usage", "{failure}");
    docs.push(("failure", failure));
    let transcript = dir.path().join("timeout.cast");
    let out = bin()
        .args(["--output", "json", "--timeout", "1", "--transcript"])
        .arg(&transcript)
        .args(["run", "exec:sh -c 'printf \"busy> \"; sleep 5'"])
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let failure = lines(&out).remove(0);
    assert_eq!(failure["error"]["kind"], "timeout", "{failure}");
    assert_eq!(
        failure["transcript"].as_str(),
        Some(transcript.to_str().unwrap()),
        "a failure says where its transcript is"
    );
    assert!(
        failure["duration_ms"].as_u64().unwrap() >= 1000,
        "{failure}"
    );
    docs.push(("failure", failure));
    let out = bin()
        .args(["--output", "json", "lint", "/nonexistent.rhai"])
        .output()
        .unwrap();
    docs.push(("failure", lines(&out).remove(0)));

    for (_, doc) in &docs {
        assert!(!doc.to_string().contains(PASSWORD), "{doc}");
    }
    validate(&docs);
}
