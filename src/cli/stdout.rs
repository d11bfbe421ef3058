//! Standard output, where commands print their results.
//!
//! Writing here is fallible like any other I/O: [`outln!`] and [`out!`]
//! return a [`Result`], so a failed write travels up as an ordinary error
//! instead of the panic `println!` raises. One failure is special:
//! `ec2-serial-expect … | head` closes the pipe early, and a Unix filter
//! then ends by SIGPIPE, silently. Rust ignores SIGPIPE (and it must stay
//! ignored: a closed console socket is an error to report, not a death), so
//! [`end_if_reader_gone`] does it by hand once the error reaches `main`.

use std::io::{self, Write};
use std::os::fd::AsFd;

use crate::error::{Error, ErrorKind, Result};

/// Writes formatted text and a newline to standard output.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes formatted text to standard output.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// Writes `text` to standard output and flushes it, with every secret the
/// process knows redacted: results are built from the console's real text
/// (issue 31: parsed as it is, redacted where it is shown), and this is
/// where they are shown.
pub(crate) fn write(text: std::fmt::Arguments<'_>) -> Result<()> {
    let text = crate::secret::scrub_known(&text.to_string());
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("writing to standard output", e))
}

/// Writes text the program generated itself (the manual page, completion
/// scripts) as it is: it holds no console text and no secret, and its
/// words ("a bearer token from --token-env") are not credentials to hide.
pub(crate) fn write_verbatim(text: &[u8]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("writing to standard output", e))
}

/// The version of every JSON document's shape (docs/json.md): raised when
/// a field is removed or changes meaning, not when one is added.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// `value` as a JSON document: its fields, and `schema_version`.
fn versioned(value: &impl serde::Serialize) -> Result<serde_json::Value> {
    let mut json = serde_json::to_value(value)
        .map_err(|e| Error::usage(format!("cannot encode the result as JSON: {e}")))?;
    if let serde_json::Value::Object(fields) = &mut json {
        fields.insert("schema_version".into(), SCHEMA_VERSION.into());
    }
    Ok(json)
}

/// Writes `value` as one line of JSON: every `--output json` result is a
/// typed value, so its fields are named once, where the type is.
pub(crate) fn json_line(value: &impl serde::Serialize) -> Result<()> {
    let text = versioned(value)?.to_string();
    write(format_args!("{text}\n"))
}

/// `value` as an indented JSON document with its `schema_version` (for
/// files: reports, summaries), ending in a newline.
pub(crate) fn json_pretty(value: &impl serde::Serialize) -> Result<String> {
    let json = versioned(value)?;
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    Ok(format!("{}\n", crate::secret::scrub_known(&text)))
}

/// What failed, in every JSON document that reports a failure.
#[derive(serde::Serialize)]
pub(crate) struct ErrorJson {
    /// The error's kind ([`crate::error::ErrorKind::name`]).
    pub kind: &'static str,
    /// The message, secrets scrubbed.
    pub message: String,
}

impl ErrorJson {
    /// The document's form of `error`.
    pub(crate) fn of(error: &Error) -> ErrorJson {
        ErrorJson {
            kind: error.kind().name(),
            message: crate::secret::scrub_known(&error.to_string()),
        }
    }
}

/// Ends the process the way a Unix filter ends when its reader went away
/// (killed by SIGPIPE), if `error` is a broken pipe and standard output is
/// indeed a pipe nobody reads any more; returns otherwise.
pub(crate) fn end_if_reader_gone(error: &Error) {
    let broken = matches!(error.kind(), ErrorKind::Io(e) if e.kind() == io::ErrorKind::BrokenPipe);
    if broken && reader_gone() {
        use nix::sys::signal::{raise, signal, SigHandler, Signal};
        // SAFETY: restoring the default disposition installs no handler code.
        unsafe {
            let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
        }
        let _ = raise(Signal::SIGPIPE);
    }
}

/// Whether standard output is a pipe whose reading end is closed (the
/// kernel reports POLLERR on the writing end): a console's broken pipe must
/// still be reported as an error, not mistaken for `| head`.
fn reader_gone() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let stdout = io::stdout();
    let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
    poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLERR))
}
