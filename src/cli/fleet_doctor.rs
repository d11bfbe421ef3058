//! `doctor` over many targets: each examined as one `doctor` would, at most
//! `--jobs` at a time, with a line per target as it ends and a summary.
//!
//! The connect options (and so the AWS and TLS set-up, and the pace of EC2
//! key pushes) are made once and shared; each target gets its own session, transcript and report. One
//! failing target is one line in the summary, never the end of the run.
//! After a signal no new target starts; the running ones log out (every
//! session of the process follows the signal) and the summary says what
//! finished. Output: a line per target as it ends, then the summary (human),
//! or one JSON document per target, then one for the summary (`--output
//! json`); with `--out-dir`, `NAME.cast` and `NAME.json` per target and
//! `summary.json`. On a terminal a live table on stderr shows what each
//! running target is doing ([`super::board`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use std::io::IsTerminal;

use super::board::{Board, Phase};
use super::doctor_job::Job;
use super::stdout::{json_line, out};
use super::{Common, DoctorArgs, OutputFormat};
use crate::doctor::{Finding, Report, Status};
use crate::error::{Error, ExitCode, Result};
use crate::fleet::{Ended, Outcome, Summary};
use crate::secret::Secret;
use crate::target::Target;

/// One target's end, as printed and saved.
#[derive(Serialize)]
struct TargetEnd<'a> {
    target: &'a str,
    outcome: Outcome,
    exit_code: ExitCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript: Option<String>,
}

/// Runs the doctor for every target; the run's exit code ([`Summary::new`]).
pub(super) async fn doctor(
    args: &DoctorArgs,
    common: &Common,
    job: &Job,
    targets: Vec<(String, Target)>,
    connect: crate::connect::ConnectOptions,
    password: Secret,
) -> Result<ExitCode> {
    if let Some(dir) = &args.out_dir {
        crate::private_file::create_dirs(dir)
            .map_err(|e| Error::usage(format!("cannot create --out-dir {}: {e}", dir.display())))?;
    }
    let base = crate::connect::SessionSpec {
        connect,
        session: super::session_options(common)?,
        transcript: None,
    };
    let mut taken = HashSet::new();
    let mut files = std::collections::HashMap::new();
    for (name, _) in &targets {
        let stem = crate::fleet::file_stem(name, &mut taken);
        let transcript = match &args.out_dir {
            Some(dir) if !common.no_transcript => Some(dir.join(format!("{stem}.cast"))),
            Some(_) => None,
            None => super::transcript_path(common, &format!("doctor-{stem}"))?,
        };
        files.insert(name.clone(), (stem, transcript));
    }
    let parsed: std::collections::HashMap<String, Target> = targets.iter().cloned().collect();
    let names: Vec<String> = targets.into_iter().map(|(n, _)| n).collect();
    let signals = super::signals::receiver();
    let stopped = || signals.as_ref().is_some_and(|rx| rx.borrow().is_some());
    let board = Board::new(
        names.len(),
        std::io::stderr().is_terminal() && !common.quiet,
    );
    let ticker = board.keep_drawing();
    let mut ended = Vec::new();
    let mut failed_write: Option<Error> = None;
    crate::fleet::run_all(
        names,
        args.jobs.into(),
        stopped,
        |name| {
            let target = &parsed[&name];
            let spec = crate::connect::SessionSpec {
                transcript: files[&name].1.clone(),
                ..base.clone()
            };
            let password = password.clone();
            let board = &board;
            async move { Some(examine(job, target, &spec, password, &name, board).await) }
        },
        |_| None,
        |name, result: Option<Result<Report>>| {
            let (stem, transcript) = &files[name];
            let stopped_by = signals.as_ref().and_then(|rx| *rx.borrow());
            let end = target_end(name, &result, transcript.as_deref(), stopped_by);
            board.finished(name, end.outcome);
            if let Err(e) = board
                .print(|| print_end(&end, common.output))
                .and_then(|()| save(args.out_dir.as_deref(), stem, &end))
            {
                failed_write.get_or_insert(e);
            }
            ended.push(Ended {
                target: name.to_string(),
                outcome: end.outcome,
                exit_code: end.exit_code,
            });
        },
    )
    .await;
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    board.close();
    if let Some(e) = failed_write {
        return Err(e);
    }
    let summary = Summary::new(ended);
    if let Some(dir) = &args.out_dir {
        let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
        crate::private_file::write(&dir.join("summary.json"), format!("{json}\n").as_bytes())
            .map_err(|e| {
                Error::usage(format!("cannot write {}/summary.json: {e}", dir.display()))
            })?;
    }
    match common.output {
        OutputFormat::Json => json_line(&serde_json::json!({ "summary": &summary }))?,
        OutputFormat::Human => out!("{}", human_summary(&summary))?,
    }
    Ok(summary.exit_code)
}

/// One target: open, examine, log out; repairs shown as they start.
async fn examine(
    job: &Job,
    target: &Target,
    spec: &crate::connect::SessionSpec,
    password: Secret,
    name: &str,
    board: &Board,
) -> Result<Report> {
    let mut announce = |f: &Finding| {
        board.print(|| {
            eprintln!(
                "{name}: repairing {}: {}",
                f.check,
                f.repair.as_deref().unwrap_or("")
            )
        })
    };
    board.phase(name, Phase::Connecting);
    let session =
        super::open_session_with(target, spec, &|step| board.phase(name, step.into())).await?;
    let phase = |p| board.phase(name, p);
    job.examine(target, session, password, &phase, &mut announce)
        .await
}

/// `merge`: several shards' summary.json as one summary; its exit code.
pub(super) fn merge(paths: &[PathBuf], output: OutputFormat) -> Result<ExitCode> {
    let mut summaries = Vec::new();
    for path in paths {
        let file = if path.is_dir() {
            path.join("summary.json")
        } else {
            path.clone()
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error::usage(format!("cannot read {}: {e}", file.display())))?;
        let summary: Summary = serde_json::from_str(&text).map_err(|e| {
            Error::usage(format!(
                "{} is not a doctor summary.json ({e}); give the summary.json that doctor --out-dir wrote, or its directory",
                file.display()
            ))
        })?;
        summaries.push(summary);
    }
    let summary = crate::fleet::merge(summaries);
    match output {
        OutputFormat::Json => json_line(&serde_json::json!({ "summary": &summary }))?,
        OutputFormat::Human => out!("{}", human_summary(&summary))?,
    }
    Ok(summary.exit_code)
}

/// How a target ended (`None`: never started, a signal came first).
fn target_end<'a>(
    name: &'a str,
    result: &'a Option<Result<Report>>,
    transcript: Option<&Path>,
    stopped_by: Option<crate::error::Signal>,
) -> TargetEnd<'a> {
    let transcript = transcript
        .filter(|p| p.exists())
        .map(|p| p.display().to_string());
    let Some(result) = result else {
        return TargetEnd {
            target: name,
            outcome: Outcome::NotStarted,
            exit_code: stopped_by.map_or(ExitCode::Interrupted, |s| s.exit_code()),
            report: None,
            error: Some("not started: the run was stopped by a signal first".into()),
            transcript,
        };
    };
    match result {
        Ok(report) => {
            let code = if report.problems_remain() {
                ExitCode::Problems
            } else {
                ExitCode::Success
            };
            let repaired = report.findings.iter().any(|f| f.status == Status::Fixed);
            TargetEnd {
                target: name,
                outcome: Outcome::of(code, repaired),
                exit_code: code,
                report: Some(report),
                error: None,
                transcript,
            }
        }
        Err(e) => {
            let code = e.exit_code();
            TargetEnd {
                target: name,
                outcome: Outcome::of(code, false),
                exit_code: code,
                report: None,
                error: Some(crate::secret::scrub_known(&e.to_string())),
                transcript,
            }
        }
    }
}

fn print_end(end: &TargetEnd, output: OutputFormat) -> Result<()> {
    match output {
        OutputFormat::Json => json_line(end),
        OutputFormat::Human => {
            let detail = match (end.report, &end.error) {
                (Some(report), _) => {
                    let open: Vec<&str> = report
                        .findings
                        .iter()
                        .filter(|f| f.status != Status::Fixed)
                        .map(|f| f.check.as_str())
                        .collect();
                    let fixed = report.findings.len() - open.len();
                    let mut parts = Vec::new();
                    if fixed > 0 {
                        parts.push(format!("{fixed} fixed"));
                    }
                    if !open.is_empty() {
                        parts.push(open.join(", "));
                    }
                    format!(
                        "{} ({:.1} s)",
                        parts.join("; "),
                        report.duration_ms as f64 / 1000.0
                    )
                }
                (None, Some(error)) => error.clone(),
                (None, None) => String::new(),
            };
            out!(
                "{:<16} {}  {}\n",
                end.outcome.as_str(),
                end.target,
                detail.trim()
            )
        }
    }
}

fn save(dir: Option<&Path>, stem: &str, end: &TargetEnd) -> Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    let path: PathBuf = dir.join(format!("{stem}.json"));
    let json = serde_json::to_string_pretty(end).unwrap_or_default();
    crate::private_file::write(&path, format!("{json}\n").as_bytes())
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))
}

fn human_summary(summary: &Summary) -> String {
    let mut text = format!("\n{} targets:", summary.targets);
    for (outcome, count) in &summary.counts {
        text.push_str(&format!(" {count} {},", outcome.as_str()));
    }
    text.pop();
    text.push('\n');
    let bad: Vec<&Ended> = summary
        .ended
        .iter()
        .filter(|e| !matches!(e.outcome, Outcome::Healthy | Outcome::Repaired))
        .collect();
    if !bad.is_empty() {
        text.push_str("worst first:\n");
        for e in bad.iter().take(20) {
            text.push_str(&format!("  {:<16} {}\n", e.outcome.as_str(), e.target));
        }
        if bad.len() > 20 {
            text.push_str(&format!("  … and {} more\n", bad.len() - 20));
        }
    }
    text
}
