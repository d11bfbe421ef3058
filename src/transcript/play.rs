//! `play FILE.cast [--speed N] [-i SECS]`: shows a transcript (asciicast v2
//! or v3) in the terminal with its timing.
//!
//! Only console output (`o` events) is written, to standard output, exactly
//! as the console sent it; `i` and `m` events are not shown. Each pause
//! between outputs is the recorded one divided by the speed, except that a
//! recorded pause longer than the idle limit counts as the limit (a console
//! left idle for an hour plays in a moment, as `asciinema play -i 2` does):
//! `-i/--idle-time-limit`, else the file's `idle_time_limit`, else
//! [`IDLE_CAP`].
//! The whole file is read and checked before anything is shown, so a bad
//! transcript fails at once (exit code 2, naming the file and the line).
//! Events are scheduled against one clock, so the pauses do not drift.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::cast::{Cast, EventCode};
use crate::error::{Error, ExitCode, Result};

/// The longest recorded pause played as it was, unless `-i` or the file
/// says otherwise; longer ones are cut to this.
pub const IDLE_CAP: Duration = Duration::from_secs(2);

/// Runs `play FILE [--speed N] [-i SECS]`.
pub fn play(file: &Path, speed: f64, idle_time_limit: Option<f64>) -> Result<ExitCode> {
    check_speed(speed)?;
    if let Some(limit) = idle_time_limit.filter(|l| !IDLE_LIMITS.contains(l)) {
        return Err(Error::usage(format!(
            "--idle-time-limit {limit}: give a number of seconds greater than 0 and at most {} (e.g. -i 1)",
            IDLE_LIMITS.end()
        )));
    }
    let mut cast = Cast::read(file)?;
    match idle_time_limit {
        Some(_) => cast.header.idle_time_limit = idle_time_limit,
        None => check_header_limit(file, cast.header.idle_time_limit)?,
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match play_events(&cast, speed, &mut out) {
        Ok(()) => Ok(ExitCode::Success),
        // `play x.cast | head`: the reader left; that is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::Success),
        Err(e) => Err(Error::io("writing the transcript to standard output", e)),
    }
}

/// Idle limits play accepts, in seconds: above an hour a "limit" is a wait
/// nobody sits through (`-i 1e300` waited forever).
const IDLE_LIMITS: std::ops::RangeInclusive<f64> = f64::MIN_POSITIVE..=3600.0;

/// A header's `idle_time_limit` out of [`IDLE_LIMITS`] is refused, naming
/// the file and the flag that overrides it.
fn check_header_limit(file: &Path, limit: Option<f64>) -> Result<()> {
    match limit {
        // 0 or less means "no limit given" (the default cap), as before.
        Some(l) if !l.is_finite() || l > *IDLE_LIMITS.end() => Err(Error::usage(format!(
            "{}: the header's idle_time_limit {l} is out of range (more than 0, at most {} s); pass -i SECS to play it",
            file.display(),
            IDLE_LIMITS.end()
        ))),
        _ => Ok(()),
    }
}

/// Slowest and fastest playback: beyond them a wait is either years long or
/// too short to see (and the arithmetic leaves `Duration`'s range).
const SPEEDS: std::ops::RangeInclusive<f64> = 0.001..=1000.0;

fn check_speed(speed: f64) -> Result<()> {
    if SPEEDS.contains(&speed) {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--speed {speed}: give a number greater than 0, from {} to {} (2 plays twice as fast, 0.5 at half speed)",
        SPEEDS.start(),
        SPEEDS.end()
    )))
}

/// Writes the `o` events of `cast` to `out`, paced as recorded.
pub fn play_events(cast: &Cast, speed: f64, out: &mut impl Write) -> io::Result<()> {
    let started = Instant::now();
    for (due, data) in schedule(cast, speed) {
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            out.flush()?;
            std::thread::sleep(wait);
        }
        out.write_all(data.as_bytes())?;
    }
    out.flush()
}

/// When each output is due (from the start of playback) and what it shows.
pub fn schedule(cast: &Cast, speed: f64) -> Vec<(Duration, &str)> {
    let mut due = 0.0;
    let mut previous = 0.0;
    let cap = cast
        .header
        .idle_time_limit
        .filter(|l| *l > 0.0)
        .unwrap_or(IDLE_CAP.as_secs_f64());
    let mut plan = Vec::new();
    for event in cast.events.iter().filter(|e| e.code == EventCode::Output) {
        due += (event.time - previous).clamp(0.0, cap) / speed;
        previous = event.time;
        let at = Duration::try_from_secs_f64(due).unwrap_or(Duration::MAX);
        plan.push((at, event.data.as_str()));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(text: &str) -> Cast {
        Cast::parse(text).unwrap()
    }

    #[test]
    fn pauses_are_divided_by_speed_and_long_ones_capped() {
        let c = cast(
            "{\"version\":2,\"width\":80,\"height\":24}\n\
             [1.0,\"o\",\"a\"]\n[1.5,\"i\",\"x\"]\n[2.0,\"o\",\"b\"]\n[600.0,\"o\",\"c\"]\n",
        );
        let plan = schedule(&c, 2.0);
        let secs: Vec<f64> = plan.iter().map(|(d, _)| d.as_secs_f64()).collect();
        assert_eq!(secs, vec![0.5, 1.0, 2.0], "1/2, +1/2, +2 (cap)/2");
        let shown: String = plan.iter().map(|(_, s)| *s).collect();
        assert_eq!(shown, "abc", "input and markers are not shown");
    }

    /// Found in the audit: `play -i 1e300` and a header `idle_time_limit:
    /// 1e308` were accepted, and play waited forever.
    #[test]
    fn idle_limits_beyond_an_hour_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.cast");
        std::fs::write(
            &file,
            "{\"version\":2,\"width\":80,\"height\":24,\"idle_time_limit\":1e308}\n[1.0,\"o\",\"a\"]\n[1e300,\"o\",\"b\"]\n",
        )
        .unwrap();
        let e = play(&file, 1.0, None).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::Usage);
        assert!(e.to_string().contains("idle_time_limit"), "{e}");
        for bad in [1e300, f64::INFINITY, 0.0, -1.0, 3600.5] {
            let e = play(&file, 1.0, Some(bad)).unwrap_err();
            assert_eq!(e.exit_code(), ExitCode::Usage, "{bad}");
            assert!(e.to_string().contains("at most 3600"), "{e}");
        }
    }

    #[test]
    fn speed_must_be_a_positive_number() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = check_speed(bad).unwrap_err();
            assert_eq!(e.exit_code(), ExitCode::Usage);
            assert!(e.to_string().contains("--speed"), "{e}");
        }
        assert!(check_speed(0.01).is_ok());
    }
}
