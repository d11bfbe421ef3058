//! One job over many targets (`doctor` and `run` with several targets,
//! `--targets`, `--filter`): each target as the one-target command would,
//! at most `--jobs` at a time, with a line per target as it ends and a
//! summary.
//!
//! The connect options (and so the AWS and TLS set-up, and the pace of EC2
//! key pushes) are made once and shared; each target gets its own session,
//! transcript and report. One failing target is one line in the summary,
//! never the end of the run. After a signal no new target starts; the
//! running ones log out (every session of the process follows the signal)
//! and the summary says what finished. Output: a line per target as it ends,
//! then the summary (human), or one JSON document per target, then one for
//! the summary (`--output json`); with `--out-dir`, `NAME.cast` and
//! `NAME.json` per target and `summary.json`. On a terminal a live table on
//! stderr shows what each running target is doing ([`super::board`]).
//!
//! What differs between commands is a [`FleetJob`]: how one target is done,
//! and how its result reads.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use std::io::IsTerminal;

use super::board::{Board, Phase};
use super::stdout::{json_line, json_pretty, out, ErrorJson};
use super::{Common, FleetArgs, OutputFormat};
use crate::connect::Console;
use crate::error::{Error, ExitCode, Result};
use crate::expect::Session;
use crate::fleet::{Ended, Outcome, Summary};
use crate::target::Target;

/// What one command does to each target of a fleet run.
pub(super) trait FleetJob: Sync {
    /// What a target that ran to its end gives (saved as its `report`).
    type Done: Serialize + Send;
    /// How default transcript names start (`doctor`, `run`).
    const NAME: &'static str;
    /// Whether replayed targets run on a paused clock (the doctor's do; a
    /// script drives its session from a blocking thread, which would stop
    /// such a clock, so `run` keeps the real one).
    const PAUSED_REPLAYS: bool;
    /// Does the job on an open session; `board` shows its phases.
    async fn run(
        &self,
        target: &Target,
        session: Session,
        name: &str,
        board: &Board,
    ) -> Result<Self::Done>;
    /// The exit code and outcome of a result.
    fn outcome(&self, done: &Self::Done) -> (ExitCode, Outcome);
    /// A short line saying how it went.
    fn detail(&self, done: &Self::Done) -> String;
}

/// One target's end, as printed and saved.
#[derive(Serialize)]
struct TargetEnd<'a, T: Serialize> {
    target: &'a str,
    outcome: Outcome,
    exit_code: ExitCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript: Option<String>,
}

/// Runs `job` for every target; the run's exit code ([`Summary::new`]).
pub(super) async fn run<J: FleetJob>(
    job: &J,
    fleet: &FleetArgs,
    common: &Common,
    resolved: super::targets::Resolved,
) -> Result<ExitCode> {
    let super::targets::Resolved {
        targets, connect, ..
    } = resolved;
    if let Some(dir) = &fleet.out_dir {
        crate::private_file::create_dirs(dir)
            .map_err(|e| Error::usage(format!("cannot create --out-dir {}: {e}", dir.display())))?;
    }
    make_room_for(fleet.jobs.into(), targets.len() as u64)?;
    let options = super::session_options(common)?;
    let files = target_files(J::NAME, &targets, fleet, common)?;
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
    let start = |name: String| {
        let target = &parsed[&name];
        let console = Console::open(target)
            .connect(connect.clone())
            .options(options.clone())
            .transcript(files[&name].1.clone());
        let board = &board;
        async move { Some(one(job, target, console, &name, board).await) }
    };
    let finished = |name: &str, result: Option<Result<J::Done>>| {
        let (stem, transcript) = &files[name];
        let stopped_by = signals.as_ref().and_then(|rx| *rx.borrow());
        let end = target_end(job, name, &result, transcript.as_deref(), stopped_by);
        board.finished(name, end.outcome);
        let detail = result
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(|done| job.detail(done));
        if let Err(e) = board
            .print(|| print_end(&end, detail.as_deref(), common.output))
            .and_then(|()| save(fleet.out_dir.as_deref(), stem, &end))
        {
            failed_write.get_or_insert(e);
        }
        ended.push(Ended {
            target: name.to_string(),
            outcome: end.outcome,
            exit_code: end.exit_code,
        });
    };
    let jobs = fleet.jobs.into();
    match replay_shards(J::PAUSED_REPLAYS, &parsed) {
        // Replays are CPU only: one paused-clock runtime per core.
        Some(shards) => tokio::task::block_in_place(|| {
            crate::fleet::run_all_sharded(names, jobs, shards, stopped, start, |_| None, finished)
        })
        .map_err(|e| Error::io("starting the replay runtimes", e))?,
        None => crate::fleet::run_all(names, jobs, stopped, start, |_| None, finished).await,
    }
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    board.close();
    if let Some(e) = failed_write {
        return Err(e);
    }
    finish(Summary::new(ended), fleet, common)
}

/// How many threads replay a fleet whose every target is a replay, for a
/// job whose replays run on a paused clock, on a runtime that lets this one
/// block (the doctor's replay fleets: see `runtime_for`): one per core.
/// `None`: run on this runtime.
fn replay_shards(
    paused: bool,
    targets: &std::collections::HashMap<String, Target>,
) -> Option<usize> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let replays = targets.values().all(|t| matches!(t, Target::Replay { .. }));
    let blocking_allowed = Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (paused && replays && blocking_allowed).then_some(cores)
}

/// Files one running target may hold open: its console (a PTY, a socket),
/// its transcript and its report being written.
const FILES_PER_TARGET: u64 = 3;
/// Files the process needs besides its targets (stdio, the runtime, logs).
const FILES_BESIDES: u64 = 64;

/// Raises the soft open-file limit so `jobs` targets fit (up to the hard
/// limit, which only an administrator can raise); a usage error naming
/// what fits when even that is too low.
fn make_room_for(jobs: u64, targets: u64) -> Result<()> {
    // Never more at once than there are targets.
    let at_once = jobs.min(targets);
    let needed = at_once * FILES_PER_TARGET + FILES_BESIDES;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(());
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max >= needed {
        limit.rlim_cur = needed;
        // SAFETY: as above; a soft limit at most the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
            return Ok(());
        }
    }
    let fits = limit.rlim_max.saturating_sub(FILES_BESIDES) / FILES_PER_TARGET;
    let running = if at_once < jobs {
        format!(" ({at_once} targets at once)")
    } else {
        String::new()
    };
    Err(Error::usage(format!(
        "-j {jobs}{running} needs about {needed} open files, but this process may open at most {} \
         (ulimit -Hn): use -j {} or less, or raise the hard limit (ulimit -Hn, systemd's LimitNOFILE=)",
        limit.rlim_max,
        fits.max(1)
    )))
}

/// Each target's file stem (unique, safe as a file name) and transcript:
/// `--out-dir/STEM.cast`, or the default place named after the job.
fn target_files(
    job: &str,
    targets: &[(String, Target)],
    fleet: &FleetArgs,
    common: &Common,
) -> Result<std::collections::HashMap<String, (String, Option<PathBuf>)>> {
    let mut taken = HashSet::new();
    let mut files = std::collections::HashMap::new();
    for (name, _) in targets {
        let stem = crate::fleet::file_stem(name, &mut taken);
        let transcript = match &fleet.out_dir {
            Some(dir) if !common.no_transcript => Some(dir.join(format!("{stem}.cast"))),
            Some(_) => None,
            None => super::transcript_path(common, &format!("{job}-{stem}"))?,
        };
        files.insert(name.clone(), (stem, transcript));
    }
    Ok(files)
}

/// The summary: saved as `--out-dir/summary.json`, printed; its exit code.
fn finish(summary: Summary, fleet: &FleetArgs, common: &Common) -> Result<ExitCode> {
    if let Some(dir) = &fleet.out_dir {
        // The reports and transcripts were written unsynced: one sync for
        // them all, then the summary, which names them.
        crate::private_file::sync_all_in(dir)
            .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))?;
        let json = json_pretty(&summary)?;
        crate::private_file::write(&dir.join("summary.json"), json.as_bytes()).map_err(|e| {
            Error::usage(format!("cannot write {}/summary.json: {e}", dir.display()))
        })?;
    }
    match common.output {
        OutputFormat::Json => json_line(&serde_json::json!({ "summary": &summary }))?,
        OutputFormat::Human => out!("{}", human_summary(&summary, false))?,
    }
    Ok(summary.exit_code)
}

/// One target: open (its steps on the board), then the job.
async fn one<J: FleetJob>(
    job: &J,
    target: &Target,
    console: Console<'_>,
    name: &str,
    board: &Board,
) -> Result<J::Done> {
    board.phase(name, Phase::Connecting);
    let on_step = |step: crate::ec2::Step| board.phase(name, step.into());
    // Each step boxed: the two futures are never alive together, and inline
    // they made every running target's future 50 KiB (both kept side by
    // side, plus the console they were built from); boxed, a target holds
    // only the step it is in (issue 35: memory per concurrent session).
    let session = Box::pin(super::watched(console.on_step(&on_step))).await?;
    Box::pin(job.run(target, session, name, board)).await
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
        OutputFormat::Human => out!("{}", human_summary(&summary, true))?,
    }
    Ok(summary.exit_code)
}

/// How a target ended (`None`: never started, a signal came first).
fn target_end<'a, J: FleetJob>(
    job: &J,
    name: &'a str,
    result: &'a Option<Result<J::Done>>,
    transcript: Option<&Path>,
    stopped_by: Option<crate::error::Signal>,
) -> TargetEnd<'a, J::Done> {
    let transcript = transcript
        .filter(|p| p.exists())
        .map(|p| p.display().to_string());
    let Some(result) = result else {
        return TargetEnd {
            target: name,
            outcome: Outcome::NotStarted,
            exit_code: stopped_by.map_or(ExitCode::Interrupted, |s| s.exit_code()),
            report: None,
            error: Some(ErrorJson {
                kind: "interrupted",
                message: "not started: the run was stopped by a signal first".into(),
            }),
            transcript,
        };
    };
    match result {
        Ok(done) => {
            let (code, outcome) = job.outcome(done);
            TargetEnd {
                target: name,
                outcome,
                exit_code: code,
                report: Some(done),
                error: None,
                transcript,
            }
        }
        Err(e) => {
            let (outcome, exit_code) = Outcome::of_error(e);
            TargetEnd {
                target: name,
                outcome,
                exit_code,
                report: None,
                error: Some(ErrorJson::of(e)),
                transcript,
            }
        }
    }
}

fn print_end<T: Serialize>(
    end: &TargetEnd<T>,
    detail: Option<&str>,
    output: OutputFormat,
) -> Result<()> {
    match output {
        OutputFormat::Json => json_line(end),
        OutputFormat::Human => {
            let detail = detail
                .or(end.error.as_ref().map(|e| e.message.as_str()))
                .unwrap_or("");
            out!(
                "{:<16} {}  {}\n",
                end.outcome.as_str(),
                crate::text::printable(end.target),
                crate::text::printable(&short_line(detail))
            )
        }
    }
}

/// A target's detail as one short line: its first line, cut at
/// [`SHORT_LINE`] characters (the whole of it is in the JSON and the
/// per-target report).
fn short_line(detail: &str) -> String {
    let first = detail.trim().lines().next().unwrap_or("");
    match first.char_indices().nth(SHORT_LINE) {
        Some((cut, _)) => format!(
            "{}… (the whole message: --output json, or --out-dir)",
            &first[..cut]
        ),
        None => first.to_string(),
    }
}

/// How long a target's line may run in the human output.
const SHORT_LINE: usize = 160;

fn save<T: Serialize>(dir: Option<&Path>, stem: &str, end: &TargetEnd<T>) -> Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    let path: PathBuf = dir.join(format!("{stem}.json"));
    let json = json_pretty(end)?;
    crate::private_file::write_batched(&path, json.as_bytes())
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))
}

/// The summary in words; `list_targets`: also the targets that did not
/// end well, worst first (a merge, which printed no line per target).
fn human_summary(summary: &Summary, list_targets: bool) -> String {
    let mut text = format!("\n{} targets:", summary.targets);
    for (outcome, count) in &summary.counts {
        text.push_str(&format!(" {count} {},", outcome.as_str()));
    }
    text.pop();
    text.push('\n');
    let bad: Vec<&Ended> = summary
        .ended
        .iter()
        .filter(|e| {
            !matches!(
                e.outcome,
                Outcome::Healthy | Outcome::Repaired | Outcome::Passed
            )
        })
        .collect();
    if list_targets && !bad.is_empty() {
        text.push_str("worst first:\n");
        for e in bad.iter().take(20) {
            // A merged summary.json is input: its names are printed safely.
            text.push_str(&format!(
                "  {:<16} {}\n",
                e.outcome.as_str(),
                crate::text::printable(&e.target)
            ));
        }
        if bad.len() > 20 {
            text.push_str(&format!("  … and {} more\n", bad.len() - 20));
        }
    }
    text
}
