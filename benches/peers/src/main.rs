//! The Rust peers of issue 8's comparison, expectrl and rexpect, on
//! workloads 1 and 2 exactly as `benches/compare.sh` runs them for us, Tcl
//! Expect and pexpect: each harness times itself from just before it spawns
//! the command and prints one JSON line. Each peer is used the way its
//! README shows (default options), so the numbers are what a user gets.
//!
//! ```text
//! peers expectrl|rexpect big-output FILE   `cat FILE` under a PTY until the marker regex matches
//! peers expectrl|rexpect round-trips N     N send/expect cycles against `cat` (echo off)
//! ```

use std::process::Command;
use std::time::Instant;

/// The regex every harness waits for at the end of big output.
const MARKER_REGEX: &str = r"bench marker: all \d+ lines written";
/// The shell line that turns echo off, says READY, and becomes `cat`.
const CAT_SCRIPT: &str = "stty -echo; echo READY; exec cat";
/// Every expect may wait this long (big output at the slowest peer's pace).
const TIMEOUT_MS: u64 = 600_000;
const USAGE: &str = "usage: peers expectrl|rexpect big-output FILE | round-trips N";

type Outcome = Result<String, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["expectrl", "big-output", file] => expectrl_big_output(file),
        ["expectrl", "round-trips", n] => count(n).and_then(expectrl_round_trips),
        ["rexpect", "big-output", file] => rexpect_big_output(file),
        ["rexpect", "round-trips", n] => count(n).and_then(rexpect_round_trips),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("peers: {e}");
            std::process::exit(2);
        }
    }
}

fn count(n: &str) -> Result<usize, String> {
    n.parse()
        .map_err(|_| format!("{n:?} is not a whole number; {USAGE}"))
}

fn cat_command() -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", CAT_SCRIPT]);
    command
}

fn seconds_json(started: Instant) -> String {
    format!("{{\"seconds\": {:.6}}}", started.elapsed().as_secs_f64())
}

fn cycles_json(started: Instant, cycles: usize) -> String {
    let seconds = started.elapsed().as_secs_f64();
    format!(
        "{{\"seconds\": {seconds:.6}, \"us_per_cycle\": {:.3}}}",
        seconds * 1e6 / cycles as f64
    )
}

// ---------------------------------------------------------------- expectrl

fn expectrl_big_output(file: &str) -> Outcome {
    use expectrl::{Expect, Regex, Session};
    let started = Instant::now();
    let mut command = Command::new("cat");
    command.arg(file);
    let mut p = Session::spawn(command).map_err(|e| e.to_string())?;
    p.set_expect_timeout(Some(std::time::Duration::from_millis(TIMEOUT_MS)));
    p.expect(Regex(MARKER_REGEX)).map_err(|e| e.to_string())?;
    Ok(seconds_json(started))
}

fn expectrl_round_trips(cycles: usize) -> Outcome {
    use expectrl::{Expect, Session};
    let mut p = Session::spawn(cat_command()).map_err(|e| e.to_string())?;
    p.set_expect_timeout(Some(std::time::Duration::from_secs(10)));
    p.expect("READY\r\n").map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..cycles {
        let line = format!("ping {i}");
        p.send_line(&line).map_err(|e| e.to_string())?;
        p.expect(format!("{line}\r\n"))
            .map_err(|e| format!("cycle {i}: {e}"))?;
    }
    Ok(cycles_json(started, cycles))
}

// ---------------------------------------------------------------- rexpect

fn rexpect_big_output(file: &str) -> Outcome {
    let started = Instant::now();
    let mut command = Command::new("cat");
    command.arg(file);
    let mut p =
        rexpect::session::spawn_command(command, Some(TIMEOUT_MS)).map_err(|e| e.to_string())?;
    p.exp_regex(MARKER_REGEX).map_err(|e| e.to_string())?;
    Ok(seconds_json(started))
}

fn rexpect_round_trips(cycles: usize) -> Outcome {
    let mut p =
        rexpect::session::spawn_command(cat_command(), Some(10_000)).map_err(|e| e.to_string())?;
    p.exp_string("READY\r\n").map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..cycles {
        let line = format!("ping {i}");
        p.send_line(&line).map_err(|e| e.to_string())?;
        p.exp_string(&format!("{line}\r\n"))
            .map_err(|e| format!("cycle {i}: {e}"))?;
    }
    Ok(cycles_json(started, cycles))
}
