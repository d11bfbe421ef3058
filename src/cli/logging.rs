//! Logging: which crates may speak at which level, and a scrubbed stderr.
//!
//! Two rules keep secrets out of the log at every verbosity:
//!
//! - `-v`…`-vvv` and a bare level in `RUST_LOG` (`RUST_LOG=trace`) raise
//!   *this crate's* level only. Dependencies stay at `warn`: at debug and
//!   trace, tungstenite prints every frame's payload (the typed password),
//!   and the HTTP and AWS crates print request lines and headers (bearer
//!   tokens, presigned signatures, session tokens). A user who needs them
//!   names them (`RUST_LOG=tungstenite=trace`) and gets them, still scrubbed.
//! - Every line, ours or a dependency's, is written through
//!   [`crate::secret::scrub_known`]: each secret the process has read, URL
//!   queries and userinfo, and authorization/AWS token values become
//!   `<redacted>` before the line reaches stderr.

use std::io::{IsTerminal, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use super::Common;

/// The level dependencies log at unless `RUST_LOG` names them.
const DEPENDENCY_LEVEL: &str = "warn";

/// Installs the subscriber for this process.
pub(super) fn init(common: &Common) {
    let ours = match (common.quiet, common.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let directives = directives(ours, std::env::var("RUST_LOG").ok().as_deref());
    let filter = EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| EnvFilter::new(directives_without_rust_log(ours)));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ScrubbedStderr)
        .with_ansi(colour())
        .with_target(false)
        .try_init();
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything
/// (no-color.org): files, pipes and CI logs get plain text.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn directives_without_rust_log(ours: &str) -> String {
    // aws-config warns at length (about 900 characters each, three times)
    // when IMDS cannot give a Region off EC2, before our own error says
    // what to do; its warnings show from -vv on.
    let aws_config = if matches!(ours, "debug" | "trace") {
        DEPENDENCY_LEVEL
    } else {
        "error"
    };
    format!("{DEPENDENCY_LEVEL},aws_config={aws_config},ec2_serial_expect={ours}")
}

/// The filter: dependencies at [`DEPENDENCY_LEVEL`], this crate at `ours`
/// or a bare level from `RUST_LOG` if that is higher; `RUST_LOG`
/// directives that name a target are kept as given.
fn directives(ours: &str, rust_log: Option<&str>) -> String {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    // A bare level, by name or by number (tracing reads `5` as trace).
    let rank = |l: &str| {
        LEVELS
            .iter()
            .position(|x| x.eq_ignore_ascii_case(l))
            .or_else(|| l.parse::<usize>().ok().filter(|n| *n < LEVELS.len()))
    };
    let mut level = ours.to_string();
    let mut named = Vec::new();
    for d in rust_log.unwrap_or("").split(',').map(str::trim) {
        match rank(d) {
            Some(r) if Some(r) > rank(&level) => level = LEVELS[r].to_string(),
            Some(_) => {}
            None if !d.is_empty() => named.push(d),
            None => {}
        }
    }
    let mut out = directives_without_rust_log(&level);
    for d in named {
        out.push(',');
        out.push_str(d);
    }
    out
}

/// Hands the formatter a buffer per event and writes it, scrubbed, when the
/// event is complete (tracing drops the writer after each event).
struct ScrubbedStderr;

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> ScrubbedLine {
        ScrubbedLine(Vec::new())
    }
}

struct ScrubbedLine(Vec<u8>);

impl Write for ScrubbedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = crate::secret::scrub_known(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_and_bare_levels_raise_only_this_crate() {
        // aws-config's IMDS warnings only from -vv (debug) on.
        assert_eq!(
            directives("warn", None),
            "warn,aws_config=error,ec2_serial_expect=warn"
        );
        assert_eq!(
            directives("trace", None),
            "warn,aws_config=warn,ec2_serial_expect=trace"
        );
        assert_eq!(
            directives("warn", Some("trace")),
            "warn,aws_config=warn,ec2_serial_expect=trace"
        );
        assert_eq!(
            directives("debug", Some("info")),
            "warn,aws_config=warn,ec2_serial_expect=debug"
        );
        // Found in review: a numeric level was taken for a global one.
        assert_eq!(
            directives("warn", Some("5")),
            "warn,aws_config=warn,ec2_serial_expect=trace"
        );
        assert_eq!(
            directives("warn", Some("debug,tungstenite=trace")),
            "warn,aws_config=warn,ec2_serial_expect=debug,tungstenite=trace"
        );
    }
}
