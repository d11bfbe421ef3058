//! Workload 4 of issue 8, many sessions: N consoles driven at once by one
//! process, to show what a session costs in memory and CPU when a fleet is
//! handled together. Each invocation prints one JSON line (see
//! `benches/compare.sh`, which runs it and writes BENCHMARKS.md).
//!
//! ```text
//! sessions replay N CAST PUBKEY [--fix]
//!                                 N doctor checks at once, each against its own replay of
//!                                 CAST (a recorded `doctor` session of ec2-user): log in,
//!                                 wait until all N are logged in, examine, log out; with
//!                                 --fix, CAST is a recorded `doctor --fix --add-key` and each
//!                                 session repairs and verifies
//! sessions pty N CYCLES           N `sh -c 'stty -echo; …; exec cat'` under their own PTYs:
//!                                 open all N, then CYCLES send/expect round trips on each
//! sessions held N                 one gateway holding N consoles open (`--hold`, recorded),
//!                                 each of which printed more than its scrollback: memory
//!                                 per held console, scrollback included
//! sessions viewers V CYCLES       one gateway console (`cat`), a writer doing CYCLES round
//!                                 trips through it with no viewer, then with V read-only
//!                                 viewers of the web page attached: the writer's echo time
//! ```
//!
//! Memory per session is (peak RSS − RSS before the first session) / N;
//! `rss_all_alive_kib` is the RSS at the moment all N sessions are open at
//! once. CPU time is this process's (user + system, all threads); the
//! programs under the PTYs are other processes and are not counted.

#[path = "gateway/mod.rs"]
mod gateway_bench;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::doctor::{self, Policy, Request, Severity, Status};
use ec2_serial_expect::shell::Shell;
use ec2_serial_expect::{Secret, Session, Target};
use support::{
    bench_args, children_cpu_time, cpu_time, current_rss_kib, open_cat, parse_count, report,
    runtime,
};
use tokio::sync::Barrier;

/// The password a replayed login sends (a recording holds `<redacted>`,
/// which accepts any secret).
const REPLAY_PASSWORD: &str = "replayed-Password-4711";
/// The user the recorded doctor sessions diagnose and log in as.
const USER: &str = "ec2-user";
const USAGE: &str = "usage: sessions replay N CAST PUBKEY [--fix] | sessions pty N CYCLES | sessions held N | sessions viewers V CYCLES";

fn main() {
    let args = bench_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["replay", n, cast, key] => many_replays(parse_count(n, USAGE), cast, key, false),
        ["replay", n, cast, key, "--fix"] => many_replays(parse_count(n, USAGE), cast, key, true),
        ["pty", n, cycles] => many_ptys(parse_count(n, USAGE), parse_count(cycles, USAGE)),
        ["held", n] => gateway_bench::held(parse_count(n, USAGE)),
        ["viewers", v, cycles] => {
            gateway_bench::viewers(parse_count(v, USAGE), parse_count(cycles, USAGE))
        }
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = result {
        eprintln!("sessions bench: {e}");
        std::process::exit(2);
    }
}

/// What one run of N sessions measured.
struct Fleet {
    sessions: usize,
    baseline_kib: i64,
    all_alive_kib: i64,
    all_alive_after: Duration,
    total: Duration,
    cpu: Duration,
    /// The CPU of the programs the sessions started (under PTYs), from
    /// their start to their end: what opening the consoles costs outside
    /// this process, on the same cores.
    programs_cpu: Duration,
}

impl Fleet {
    fn report(&self, workload: &str) {
        let n = self.sessions as f64;
        let peak = support::peak_rss_kib();
        report(
            workload,
            &[
                ("sessions", n),
                ("seconds", self.total.as_secs_f64()),
                ("all_alive_after_s", self.all_alive_after.as_secs_f64()),
                ("cpu_seconds", self.cpu.as_secs_f64()),
                ("cpu_ms_per_session", self.cpu.as_secs_f64() * 1e3 / n),
                ("programs_cpu_seconds", self.programs_cpu.as_secs_f64()),
                ("baseline_rss_kib", self.baseline_kib as f64),
                ("rss_all_alive_kib", self.all_alive_kib as f64),
                ("kib_per_session", (peak - self.baseline_kib) as f64 / n),
                (
                    "alive_kib_per_session",
                    (self.all_alive_kib - self.baseline_kib) as f64 / n,
                ),
            ],
        );
    }
}

/// Runs `one(i, all_in)` for i in 0..n at once; each calls `all_in.wait()`
/// exactly once when its session is open. Measures the fleet.
fn run_fleet<F, Fut>(n: usize, one: F) -> Result<Fleet, String>
where
    F: Fn(usize, Arc<Barrier>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let rt = runtime();
    rt.block_on(async {
        let baseline_kib = current_rss_kib();
        let (cpu_before, started) = (cpu_time(), Instant::now());
        let programs_before = children_cpu_time();
        let all_in = Arc::new(Barrier::new(n + 1));
        let tasks: Vec<_> = (0..n)
            .map(|i| tokio::spawn(one(i, all_in.clone())))
            .collect();
        all_in.wait().await;
        let (all_alive_after, all_alive_kib) = (started.elapsed(), current_rss_kib());
        let mut failures = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("session {i}: {e}")),
                Err(e) => failures.push(format!("session {i}: {e}")),
            }
        }
        if let Some(first) = failures.first() {
            return Err(format!(
                "{} of {n} sessions failed; {first}",
                failures.len()
            ));
        }
        Ok(Fleet {
            sessions: n,
            baseline_kib,
            all_alive_kib,
            all_alive_after,
            total: started.elapsed(),
            cpu: cpu_time() - cpu_before,
            programs_cpu: children_cpu_time() - programs_before,
        })
    })
}

// ---------------------------------------------------------------- replay consoles

fn many_replays(n: usize, cast: &str, key: &str, fix: bool) -> Result<(), String> {
    let key_text = std::fs::read_to_string(key)
        .map_err(|e| format!("cannot read the public key {key}: {e}"))?;
    // A recorded repair was recorded with --add-key (append the key if missing).
    let request = Arc::new(Request::new(USER, Policy::Aws, Some(&key_text), None, fix)?);
    let cast = Arc::new(PathBuf::from(cast));
    let fleet = run_fleet(n, |_, all_in| {
        replayed_doctor(cast.clone(), request.clone(), fix, all_in)
    })?;
    fleet.report(if fix {
        "many_replayed_fixes"
    } else {
        "many_replays"
    });
    Ok(())
}

/// One doctor run (with `fix`: repair and verify) against its own replay of
/// `cast`. Waits at `all_in` once logged in (or failed), so all sessions
/// are open at once.
async fn replayed_doctor(
    cast: Arc<PathBuf>,
    request: Arc<Request>,
    fix: bool,
    all_in: Arc<Barrier>,
) -> Result<(), String> {
    let mut session = match open_replay(&cast).await {
        Ok(session) => session,
        Err(e) => {
            all_in.wait().await;
            return Err(e);
        }
    };
    let password = Secret::new(format!("password for {USER}"), REPLAY_PASSWORD);
    let logged_in = Shell::login(&mut session, &doctor::login_spec(USER, password))
        .await
        .map_err(|e| e.to_string());
    all_in.wait().await;
    let mut shell = logged_in?;
    let outcome = doctor::examine(&mut shell, &request, fix, &mut |_| {})
        .await
        .map_err(|e| e.to_string())?;
    shell.logout().await.map_err(|e| e.to_string())?;
    session.close().await.map_err(|e| e.to_string())?;
    let found_problem = outcome
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error && f.status == Status::Open);
    match (fix, outcome.verified, found_problem) {
        (true, Some(true), _) | (false, _, true) => Ok(()),
        (true, _, _) => Err(format!(
            "the replay of {} did not end repaired and verified: not a recorded `doctor --fix`?",
            cast.display()
        )),
        (false, _, false) => Err(format!(
            "the replay of {} found no problem: not the recording of a broken VM?",
            cast.display()
        )),
    }
}

async fn open_replay(cast: &Path) -> Result<Session, String> {
    let target = Target::Replay {
        path: cast.to_path_buf(),
    };
    Console::open(&target)
        .session()
        .await
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- PTY consoles

fn many_ptys(n: usize, cycles: usize) -> Result<(), String> {
    raise_fd_limit();
    let fleet = run_fleet(n, |i, all_in| cat_round_trips(i, cycles, all_in))?;
    fleet.report("many_ptys");
    Ok(())
}

/// One `cat` under its own PTY: wait at `all_in` once it answers (or
/// failed), then `cycles` round trips.
async fn cat_round_trips(id: usize, cycles: usize, all_in: Arc<Barrier>) -> Result<(), String> {
    let opened = open_cat(Duration::from_secs(60)).await;
    all_in.wait().await;
    let mut s = opened?;
    let wait = Some(Duration::from_secs(60));
    for i in 0..cycles {
        let line = format!("s{id} ping {i}");
        s.send_line(&line).await.map_err(|e| e.to_string())?;
        s.expect_exact(&format!("{line}\r\n"), wait)
            .await
            .map_err(|e| e.to_string())?;
    }
    s.close().await.map_err(|e| e.to_string())
}

/// Each PTY session holds a master descriptor: lift the soft descriptor
/// limit to the hard one (the default soft limit, 1,024, is about the
/// session count this workload wants).
pub(crate) fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct handed to them.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
