//! Many consoles in one run: the target list, its shards, a bounded runner
//! and the summary.
//!
//! Locked-out instances come in groups (one bad configuration push breaks a
//! whole Auto Scaling group), so `doctor` takes many targets. This module is
//! what does not depend on the job itself: reading a `--targets` file,
//! taking a deterministic `--shard K/N` of the list (so a batch system's array
//! job can fan a large fleet out over machines), running the jobs at most N
//! at a time without letting one slow or failing target hold the others, and
//! adding the results up into a [`Summary`] whose exit code is documented.
//! The job (open, log in, examine, log out) and the printing stay with the
//! caller.

use std::collections::HashSet;
use std::future::Future;
use std::str::FromStr;

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ExitCode, Result};

/// What a line of a `--targets` file may say about its own target, after
/// it: `login_user=NAME` and `public_key=FILE` (the doctor's
/// `--login-user` and `--public-key`, for this target only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PerTarget {
    /// The password-based user that logs in on this console.
    pub(crate) login_user: Option<String>,
    /// The public key file whose key must be authorized on this target.
    pub(crate) public_key: Option<std::path::PathBuf>,
}

impl PerTarget {
    /// Whether the line said anything of its own.
    pub(crate) fn is_empty(&self) -> bool {
        self == &PerTarget::default()
    }

    /// Takes `word` if it is one of the options; false if it is not one.
    fn take(&mut self, word: &str) -> std::result::Result<bool, String> {
        let Some((key, value)) = word.split_once('=') else {
            return Ok(false);
        };
        match key {
            "login_user" if !value.is_empty() => self.login_user = Some(value.to_string()),
            "public_key" if !value.is_empty() => self.public_key = Some(value.into()),
            "login_user" | "public_key" => return Err(format!("{key}= needs a value")),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Reads a `--targets` file: one target per line, optionally followed by
/// its own options ([`PerTarget`]); blank lines and `#` comments (whole
/// lines, or after whitespace) are skipped. `source` names the file in
/// errors.
pub(crate) fn read_targets(text: &str, source: &str) -> Result<Vec<(String, PerTarget)>> {
    let mut targets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = match line.find(" #").or_else(|| line.find("\t#")) {
            Some(at) => &line[..at],
            None => line,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| Error::usage(format!("{source}:{}: {why}", n + 1));
        // Options come last; an `exec:` target keeps the rest as written.
        let mut target = line;
        let mut options = PerTarget::default();
        while let Some((head, last)) = target.rsplit_once(char::is_whitespace) {
            // A word inside an `exec:` command's quotes is the command's.
            let quoted = target.starts_with("exec:") && shell_words::split(head).is_err();
            if quoted || !options.take(last).map_err(&bad)? {
                break;
            }
            target = head.trim_end();
        }
        if target.split_whitespace().count() > 1 && !target.starts_with("exec:") {
            return Err(bad(format!(
                "{line:?} holds more than one target, or an option that is not \
                 login_user=NAME or public_key=FILE; put one target per line"
            )));
        }
        targets.push((target.to_string(), options));
    }
    Ok(targets)
}

/// The targets in order, each once: the same console twice would be two
/// sessions fighting over one serial line. Returns the list and the
/// duplicates dropped.
pub(crate) fn dedup(targets: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut seen = HashSet::new();
    let mut dropped = Vec::new();
    let mut kept = Vec::new();
    for t in targets {
        if seen.insert(t.clone()) {
            kept.push(t);
        } else {
            dropped.push(t);
        }
    }
    (kept, dropped)
}

/// `--shard K/N`: the K-th of N slices (K from 0). A target's slice depends
/// on the target alone (a hash of its text), not on its place in the list,
/// so every machine of an array job agrees even if each resolved the list
/// in another order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    index: u64,
    count: u64,
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Shard> {
        let bad = || {
            Error::usage(format!(
                "--shard {s:?}: give K/N with 0 <= K < N, e.g. 0/4 (AWS Batch: $AWS_BATCH_JOB_ARRAY_INDEX/N; Kubernetes: $JOB_COMPLETION_INDEX/N)"
            ))
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether `target` belongs to this slice.
    pub(crate) fn holds(&self, target: &str) -> bool {
        let digest = Sha256::digest(target.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % self.count == self.index
    }

    /// The targets of this slice, in their order.
    pub(crate) fn select(&self, targets: Vec<String>) -> Vec<String> {
        targets.into_iter().filter(|t| self.holds(t)).collect()
    }
}

/// A file name for `target`'s results: letters, digits, `.`, `_` and `-`
/// only, never hidden, unique within `taken` (a suffix `-2`, `-3`, … when
/// two targets clean up to the same name).
pub(crate) fn file_stem(target: &str, taken: &mut HashSet<String>) -> String {
    let mut stem: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    stem = stem.trim_start_matches(['.', '_']).to_string();
    stem.truncate(100);
    if stem.is_empty() || stem == "summary" {
        stem = format!("target-{stem}");
    }
    let mut name = stem.clone();
    let mut n = 1;
    while !taken.insert(name.clone()) {
        n += 1;
        name = format!("{stem}-{n}");
    }
    name
}

/// How one target ended, worst first (the summary lists targets in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Stopped by a signal (logged out, transcript closed).
    Interrupted,
    /// Could not run for a reason of its own (a recording that cannot be
    /// read, a file that cannot be written): the error says which.
    Failed,
    /// The console could not be reached (connection, transport, AWS).
    Unreachable,
    /// Logging in on the console failed.
    LoginFailed,
    /// The console did not answer in time.
    TimedOut,
    /// A replayed recording and the job parted: the job is not the one the
    /// recording was made with (a failed test, exit code 1).
    ReplayMismatch,
    /// Examined, and problems remain.
    ProblemsRemain,
    /// Never started: a signal came first.
    NotStarted,
    /// Repaired, and every repair verified.
    Repaired,
    /// Nothing to repair.
    Healthy,
    /// The script ran to its end (`run`).
    Passed,
}

impl Outcome {
    /// The outcome of a job that ended with `code` (`repaired`: something was fixed).
    pub(crate) fn of(code: ExitCode, repaired: bool) -> Outcome {
        match code {
            ExitCode::Success if repaired => Outcome::Repaired,
            ExitCode::Success => Outcome::Healthy,
            ExitCode::Problems => Outcome::ProblemsRemain,
            ExitCode::Usage => Outcome::Failed,
            ExitCode::Transport => Outcome::Unreachable,
            ExitCode::Login => Outcome::LoginFailed,
            ExitCode::Timeout => Outcome::TimedOut,
            ExitCode::HungUp | ExitCode::Interrupted | ExitCode::Terminated => Outcome::Interrupted,
        }
    }

    /// How a target whose job failed with `e` ended, and its exit code: a
    /// replay that parted from its recording is a failed test (exit 1 in a
    /// fleet), every other error ends as its exit code says.
    pub(crate) fn of_error(e: &Error) -> (Outcome, ExitCode) {
        if matches!(e.kind(), crate::error::ErrorKind::ReplayMismatch(_)) {
            return (Outcome::ReplayMismatch, ExitCode::Problems);
        }
        let code = e.exit_code();
        (Outcome::of(code, false), code)
    }

    /// How it reads in a table.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Interrupted => "interrupted",
            Outcome::Failed => "failed",
            Outcome::Unreachable => "unreachable",
            Outcome::LoginFailed => "login failed",
            Outcome::TimedOut => "timed out",
            Outcome::ReplayMismatch => "replay mismatch",
            Outcome::ProblemsRemain => "problems remain",
            Outcome::NotStarted => "not started",
            Outcome::Repaired => "repaired",
            Outcome::Healthy => "healthy",
            Outcome::Passed => "passed",
        }
    }
}

/// One target's end, as the summary keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ended {
    /// The target as given.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Its own exit code.
    pub exit_code: ExitCode,
}

/// All targets' ends, added up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// Targets in the run.
    pub targets: usize,
    /// How many ended each way (outcomes with none are left out).
    pub counts: std::collections::BTreeMap<Outcome, usize>,
    /// Every target, worst first, then in list order.
    pub ended: Vec<Ended>,
    /// The run's exit code (see [`Summary::new`]).
    pub exit_code: ExitCode,
}

impl Summary {
    /// Adds the ends up (in list order). The exit code is 0 only when every
    /// target ended healthy, repaired and verified, or passed. Otherwise the code of
    /// the worst end: a signal's (128 + its number) when the run was
    /// stopped; then 2 for a target that failed on bad input; then 3, 4 or 5
    /// for a target that could not be examined (unreachable, login failed,
    /// timed out; the first in that order); then 1 when every target was
    /// examined and problems remain.
    pub(crate) fn new(mut ended: Vec<Ended>) -> Summary {
        let mut counts = std::collections::BTreeMap::new();
        for e in &ended {
            *counts.entry(e.outcome).or_insert(0) += 1;
        }
        ended.sort_by_key(|e| e.outcome);
        let exit_code = Summary::exit_code(&ended);
        Summary {
            targets: ended.len(),
            counts,
            ended,
            exit_code,
        }
    }

    fn exit_code(sorted: &[Ended]) -> ExitCode {
        let Some(worst) = sorted.first() else {
            return ExitCode::Success;
        };
        match worst.outcome {
            Outcome::NotStarted => ExitCode::Interrupted,
            Outcome::Repaired | Outcome::Healthy | Outcome::Passed => ExitCode::Success,
            Outcome::ProblemsRemain | Outcome::ReplayMismatch => ExitCode::Problems,
            _ => worst.exit_code,
        }
    }
}

/// The summaries of several shards as one: every target once (the worst
/// end where two shards report the same target), counts and exit code
/// computed again.
pub(crate) fn merge(summaries: Vec<Summary>) -> Summary {
    let mut all: Vec<Ended> = summaries.into_iter().flat_map(|s| s.ended).collect();
    all.sort_by_key(|e| e.outcome);
    let mut seen = HashSet::new();
    all.retain(|e| seen.insert(e.target.clone()));
    Summary::new(all)
}

/// Runs `job` for every target, at most `jobs` at a time, and hands each
/// result to `done` as it ends (in the order they end). A target starts only
/// while `stopped()` says no; the ones after a stop get `not_started`. One
/// slow target never holds the others: each runs on its own.
pub(crate) async fn run_all<R, J, F>(
    targets: Vec<String>,
    jobs: usize,
    stopped: impl Fn() -> bool,
    job: J,
    not_started: impl Fn(&str) -> R,
    mut done: impl FnMut(&str, R),
) where
    J: Fn(String) -> F,
    F: Future<Output = R>,
{
    let stopped = &stopped;
    let job = &job;
    let not_started = &not_started;
    let mut running = stream::iter(targets)
        .map(|target| async move {
            let result = if stopped() {
                not_started(&target)
            } else {
                job(target.clone()).await
            };
            (target, result)
        })
        .buffer_unordered(jobs.max(1));
    while let Some((target, result)) = running.next().await {
        done(&target, result);
    }
}

/// [`run_all`] with the targets dealt round-robin to `shards` threads, each
/// running its part (`jobs` shared out) on a current-thread runtime of its
/// own whose clock starts paused; `done` still sees every result, on the
/// calling thread, in the order they end.
///
/// For replayed consoles, which run on a paused clock (quiet periods and
/// timeouts pass the moment nothing else can happen) and so are pure CPU:
/// a paused clock needs a current-thread runtime, which alone would leave a
/// fleet of 10,000 replays on one core. Blocks the calling thread until all
/// shards end: call it where blocking is allowed (`block_in_place`).
pub(crate) fn run_all_sharded<R, J, F>(
    targets: Vec<String>,
    jobs: usize,
    shards: usize,
    stopped: impl Fn() -> bool + Sync,
    job: J,
    not_started: impl Fn(&str) -> R + Sync,
    mut done: impl FnMut(&str, R),
) -> std::io::Result<()>
where
    J: Fn(String) -> F + Sync,
    F: Future<Output = R>,
    R: Send,
{
    let shards = shards.min(jobs).min(targets.len()).max(1);
    let mut parts = vec![Vec::new(); shards];
    for (i, target) in targets.into_iter().enumerate() {
        parts[i % shards].push(target);
    }
    let runtimes = (0..shards)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let per_shard = (jobs / shards).max(1);
    let (tx, rx) = std::sync::mpsc::channel();
    let (stopped, job, not_started) = (&stopped, &job, &not_started);
    std::thread::scope(|scope| {
        for (part, runtime) in parts.into_iter().zip(runtimes) {
            let tx = tx.clone();
            scope.spawn(move || {
                runtime.block_on(run_all(
                    part,
                    per_shard,
                    stopped,
                    job,
                    not_started,
                    |t, r| {
                        // The receiver lives until every shard has ended.
                        let _ = tx.send((t.to_string(), r));
                    },
                ));
            });
        }
        drop(tx);
        for (target, result) in rx {
            done(&target, result);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_targets_file_is_one_per_line_with_comments() {
        let text = "# fleet\ni-0123456789abcdef0\n\n  unix:/run/vm1.sock   # the lab\nexec:qemu-system-x86_64 -serial stdio\n";
        let names: Vec<String> = read_targets(text, "t.txt")
            .unwrap()
            .into_iter()
            .map(|(t, o)| {
                assert!(o.is_empty());
                t
            })
            .collect();
        assert_eq!(
            names,
            [
                "i-0123456789abcdef0",
                "unix:/run/vm1.sock",
                "exec:qemu-system-x86_64 -serial stdio"
            ]
        );
        let err = read_targets("i-1 i-2\n", "t.txt").unwrap_err();
        assert_eq!(err.exit_code().code(), 2);
        assert!(err.to_string().contains("t.txt:1"), "{err}");
    }

    #[test]
    fn a_line_may_end_with_its_own_login_user_and_public_key() {
        let text = "replay:a.cast login_user=alice public_key=keys/a.pub\n\
                    exec:sh -c 'x  y'   public_key=k.pub\ni-1 login_user=bob # comment\n";
        let lines = read_targets(text, "t.txt").unwrap();
        assert_eq!(lines[0].0, "replay:a.cast");
        assert_eq!(lines[0].1.login_user.as_deref(), Some("alice"));
        assert_eq!(
            lines[0].1.public_key.as_deref(),
            Some(std::path::Path::new("keys/a.pub"))
        );
        assert_eq!(lines[1].0, "exec:sh -c 'x  y'", "the command as written");
        // A word inside the command's quotes stays the command's.
        let quoted = read_targets("exec:sh -c 'echo public_key=x'\n", "t.txt").unwrap();
        assert_eq!(
            quoted[0],
            (
                "exec:sh -c 'echo public_key=x'".into(),
                PerTarget::default()
            )
        );
        assert_eq!(
            lines[1].1.public_key.as_deref(),
            Some(std::path::Path::new("k.pub"))
        );
        assert_eq!(
            lines[2],
            (
                "i-1".into(),
                PerTarget {
                    login_user: Some("bob".into()),
                    public_key: None
                }
            )
        );
        for bad in ["i-1 user=bob\n", "i-1 login_user=\n"] {
            let err = read_targets(bad, "t.txt").unwrap_err().to_string();
            assert!(err.contains("t.txt:1:"), "{err}");
        }
    }

    #[test]
    fn shards_are_checked() {
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert!("3/4".parse::<Shard>().is_ok());
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut taken = HashSet::new();
        assert_eq!(
            file_stem("i-0123456789abcdef0", &mut taken),
            "i-0123456789abcdef0"
        );
        assert_eq!(
            file_stem("unix:/run/vm 1.sock", &mut taken),
            "unix__run_vm_1.sock"
        );
        assert_eq!(
            file_stem("unix:/run/vm?1.sock", &mut taken),
            "unix__run_vm_1.sock-2"
        );
        assert_eq!(file_stem("../../etc/passwd", &mut taken), "etc_passwd");
        assert_eq!(file_stem("summary", &mut taken), "target-summary");
    }

    fn ended(target: &str, outcome: Outcome, code: ExitCode) -> Ended {
        Ended {
            target: target.into(),
            outcome,
            exit_code: code,
        }
    }

    #[test]
    fn the_exit_code_is_the_worst_end() {
        let healthy = ended("a", Outcome::Healthy, ExitCode::Success);
        let repaired = ended("b", Outcome::Repaired, ExitCode::Success);
        let problems = ended("c", Outcome::ProblemsRemain, ExitCode::Problems);
        let login = ended("d", Outcome::LoginFailed, ExitCode::Login);
        let s = Summary::new(vec![healthy.clone(), repaired.clone()]);
        assert_eq!(s.exit_code, ExitCode::Success);
        assert_eq!(s.counts[&Outcome::Healthy], 1);
        let s = Summary::new(vec![healthy.clone(), problems.clone()]);
        assert_eq!(s.exit_code, ExitCode::Problems);
        let s = Summary::new(vec![problems, healthy.clone(), login]);
        assert_eq!(
            (s.exit_code, s.ended[0].target.as_str()),
            (ExitCode::Login, "d"),
            "worst first"
        );
        let s = Summary::new(vec![
            healthy,
            ended("e", Outcome::NotStarted, ExitCode::Interrupted),
        ]);
        assert_eq!(s.exit_code, ExitCode::Interrupted);
        assert_eq!(Summary::new(vec![]).exit_code, ExitCode::Success);
    }

    #[test]
    fn shard_summaries_merge_into_one() {
        let a = Summary::new(vec![
            ended("a", Outcome::Healthy, ExitCode::Success),
            ended("b", Outcome::Repaired, ExitCode::Success),
        ]);
        let b = Summary::new(vec![ended("c", Outcome::Unreachable, ExitCode::Transport)]);
        let text = serde_json::to_string(&b).unwrap();
        let b: Summary = serde_json::from_str(&text).unwrap();
        let all = merge(vec![a.clone(), b]);
        assert_eq!(all.targets, 3);
        assert_eq!(all.exit_code, ExitCode::Transport);
        assert_eq!(all.ended[0].target, "c");
        assert_eq!(merge(vec![a.clone(), a]).targets, 2, "a target once");
    }

    #[tokio::test]
    async fn the_runner_bounds_concurrency_and_stops_starting_after_a_stop() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let started = AtomicUsize::new(0);
        let targets: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        let mut results = Vec::new();
        run_all(
            targets,
            7,
            || started.load(Ordering::SeqCst) >= 20,
            |_t| async {
                started.fetch_add(1, Ordering::SeqCst);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                "ran"
            },
            |_t| "not started",
            |t, r| results.push((t.to_string(), r)),
        )
        .await;
        assert_eq!(results.len(), 50, "every target is reported");
        assert!(most.load(Ordering::SeqCst) <= 7);
        let ran = results.iter().filter(|(_, r)| *r == "ran").count();
        assert!((20..27).contains(&ran), "{ran} started");
    }

    proptest! {
        /// Across K = 0..N the slices hold every target exactly once.
        #[test]
        fn shards_cover_every_target_exactly_once(
            targets in proptest::collection::hash_set("[ -~]{1,30}", 0..60),
            count in 1u64..12,
        ) {
            let targets: Vec<String> = targets.into_iter().collect();
            let mut seen: Vec<String> = Vec::new();
            for index in 0..count {
                let shard = Shard { index, count };
                seen.extend(shard.select(targets.clone()));
            }
            let mut want = targets.clone();
            want.sort();
            seen.sort();
            prop_assert_eq!(seen, want);
        }
    }
}
