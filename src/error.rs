//! The crate's error type and the exit codes it maps to.
//!
//! Every failure a user can meet is one [`Error`] variant, and every variant
//! knows its exit code (see the architecture doc): 1 problems remain, 2 bad
//! usage or input, 3 connection/transport/AWS, 4 login failed, 5 timed out.
//! Messages say what happened *and* what to do; none of them may carry a
//! secret, which is why no variant holds a [`crate::secret::Secret`].

use std::fmt;

/// Process exit codes shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Healthy, or repaired and verified.
    Success = 0,
    /// The command ran but problems remain (doctor findings, `fail()` in a script).
    Problems = 1,
    /// Bad usage or bad input: arguments, script, transcript.
    Usage = 2,
    /// Connection, transport or AWS error.
    Transport = 3,
    /// Logging in on the console failed.
    Login = 4,
    /// Timed out waiting for the console.
    Timeout = 5,
    /// Ended by SIGHUP (after logging out and closing the transcript).
    HungUp = 129,
    /// Ended by SIGINT (likewise).
    Interrupted = 130,
    /// Ended by SIGTERM (likewise).
    Terminated = 143,
}

/// A signal that ends a session cleanly: the session stops sending, the
/// console is logged out, the transcript closed; the exit code says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP (the terminal went away).
    HangUp,
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (a service manager or `kill`).
    Terminate,
}

impl Signal {
    /// The exit code a command ended by this signal returns (128 + number).
    pub fn exit_code(self) -> ExitCode {
        match self {
            Signal::HangUp => ExitCode::HungUp,
            Signal::Interrupt => ExitCode::Interrupted,
            Signal::Terminate => ExitCode::Terminated,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::HangUp => "SIGHUP",
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

impl ExitCode {
    /// The numeric code handed to the operating system.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Everything that can go wrong, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line input, a bad target string, a bad file.
    #[error("{0}")]
    Usage(String),

    /// Opening or using the connection to the console failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing (names the target or file).
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The console closed the stream while we were waiting for something.
    #[error("the console closed the connection (EOF) while waiting for {awaited}; last output: {tail:?}")]
    Eof {
        /// A description of what was awaited.
        awaited: String,
        /// The last characters seen (secrets scrubbed).
        tail: String,
    },

    /// An expect ran out of time.
    #[error("timed out after {seconds:.1}s waiting for {awaited}; last output: {tail:?}")]
    Timeout {
        /// A description of what was awaited.
        awaited: String,
        /// The timeout that elapsed.
        seconds: f64,
        /// The last characters seen (secrets scrubbed).
        tail: String,
    },

    /// A replayed transcript and the session disagree.
    #[error("{0}")]
    ReplayMismatch(String),

    /// Logging in was refused.
    #[error("{0}")]
    Login(String),

    /// The job ran but found problems it could not (or was not asked to) fix.
    #[error("{0}")]
    Problems(String),

    /// A signal asked the session to end; what was under way stopped.
    #[error("interrupted by {signal}{detail}")]
    Interrupted {
        /// Which signal.
        signal: Signal,
        /// What was cut short, for the message (may be empty; starts with ": ").
        detail: String,
        /// Console output of the command that was cut short (secrets scrubbed).
        output: String,
    },

    /// The feature exists in the command line but is not built yet.
    #[error("{0} is not yet available in this version of ec2-serial-expect")]
    NotYetAvailable(&'static str),
}

impl Error {
    /// Builds an [`Error::Usage`] from anything printable.
    pub fn usage(message: impl fmt::Display) -> Self {
        Error::Usage(message.to_string())
    }

    /// The error for `signal`, with nothing said yet about what it cut short.
    pub fn interrupted(signal: Signal) -> Self {
        Error::Interrupted {
            signal,
            detail: String::new(),
            output: String::new(),
        }
    }

    /// Wraps an I/O error with a sentence saying what was being done.
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            context: context.to_string(),
            source,
        }
    }

    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) | Error::NotYetAvailable(_) => ExitCode::Usage,
            Error::Io { .. } | Error::Eof { .. } | Error::ReplayMismatch(_) => ExitCode::Transport,
            Error::Timeout { .. } => ExitCode::Timeout,
            Error::Login(_) => ExitCode::Login,
            Error::Problems(_) => ExitCode::Problems,
            Error::Interrupted { signal, .. } => signal.exit_code(),
        }
    }
}

/// An error and all its sources, `outer: inner: innermost`: SDK and HTTP
/// errors put the useful part (DNS failure, refused connection) deep inside.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
