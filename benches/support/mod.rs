//! What every bench binary under `benches/` measures and how it reports:
//! the process's memory and CPU time, and one JSON line per result (which
//! `benches/compare.sh` collects next to the peers' lines). Shared so the
//! engine and sessions benches report alike; `benches/support/` is not a
//! bench target itself (Cargo only discovers `benches/*.rs`).

use std::time::Duration;

/// The process's peak resident set size so far, in KiB.
pub fn peak_rss_kib() -> i64 {
    rusage(libc::RUSAGE_SELF).ru_maxrss
}

/// The process's resident set size now, in KiB (from `/proc/self/statm`).
pub fn current_rss_kib() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64;
    pages * page / 1024
}

/// CPU time (user + system, all threads) this process has used so far.
pub fn cpu_time() -> Duration {
    cpu_of(libc::RUSAGE_SELF)
}

/// CPU time (user + system) of this process's children that have ended
/// and been reaped, their own reaped children included.
pub fn children_cpu_time() -> Duration {
    cpu_of(libc::RUSAGE_CHILDREN)
}

/// User + system time of `who` (`RUSAGE_SELF`, `RUSAGE_CHILDREN`).
fn cpu_of(who: libc::c_int) -> Duration {
    let usage = rusage(who);
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    usage
}

/// Prints one result line: `{"workload": …, fields…, "peak_rss_kib": …}`.
pub fn report(workload: &str, fields: &[(&str, f64)]) {
    let mut line = format!("{{\"workload\":\"{workload}\"");
    for (k, v) in fields {
        line += &format!(",\"{k}\":{v}");
    }
    line += &format!(",\"peak_rss_kib\":{}}}", peak_rss_kib());
    println!("{line}");
}

/// The runtime the PTY workloads run on: two workers, like the CLI on this
/// 2-core machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Parses a count argument, or exits 2 naming it and the usage.
pub fn parse_count(n: &str, usage: &str) -> usize {
    n.parse().unwrap_or_else(|_| {
        eprintln!("{n:?} is not a whole number; {usage}");
        std::process::exit(2)
    })
}

/// A `cat` under its own PTY with echo off, once it is ready to read: the
/// console of the round-trip workloads (the same for us and every peer).
pub async fn open_cat(wait: Duration) -> Result<ec2_serial_expect::Session, String> {
    use ec2_serial_expect::connect::Console;
    use ec2_serial_expect::Target;
    let target = Target::Exec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "stty -echo; echo READY; exec cat".into(),
        ],
    };
    let mut s = Console::open(&target)
        .session()
        .await
        .map_err(|e| e.to_string())?;
    // After READY, echo is off and cat is (about to be) reading.
    s.expect_exact("READY\r\n", Some(wait))
        .await
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// The bench's arguments, without the `--bench` that `cargo bench` appends
/// (it means nothing to these binaries).
pub fn bench_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect()
}
