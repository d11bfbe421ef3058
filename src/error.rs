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

/// In JSON documents, the number.
impl serde::Serialize for ExitCode {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.code())
    }
}

/// From the number a JSON document holds (a saved summary).
impl<'de> serde::Deserialize<'de> for ExitCode {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let code = i32::deserialize(deserializer)?;
        [
            ExitCode::Success,
            ExitCode::Problems,
            ExitCode::Usage,
            ExitCode::Transport,
            ExitCode::Login,
            ExitCode::Timeout,
            ExitCode::HungUp,
            ExitCode::Interrupted,
            ExitCode::Terminated,
        ]
        .into_iter()
        .find(|c| c.code() == code)
        .ok_or_else(|| serde::de::Error::custom(format!("{code} is not an exit code of this tool")))
    }
}

/// Where a replay and the session parted: the message (which names the
/// recording and the event), and, when the session typed other text than
/// the recording holds, both texts, so a layer that knows what the text
/// means can say it in its own words (the shell: the command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Which recording and where in it (`replay FILE at event #N (line L)`).
    pub place: String,
    /// What happened, for people (the place included).
    pub message: String,
    /// The text the recording holds at that point, if it is text.
    pub recorded: Option<String>,
    /// The text the session sent instead.
    pub sent: Option<String>,
}

impl Divergence {
    /// A divergence told by its place and message alone.
    pub fn said(place: impl Into<String>, message: impl Into<String>) -> Divergence {
        Divergence {
            place: place.into(),
            message: message.into(),
            recorded: None,
            sent: None,
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What went wrong, with the facts a message needs; the kind alone decides
/// the exit code. Contexts (what was being done) live on [`Error`].
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// Bad command-line input, a bad target string, a bad file.
    #[error("{0}")]
    Usage(String),

    /// Opening or using the connection to the console failed.
    #[error(transparent)]
    Io(std::io::Error),

    /// An AWS call failed or AWS refused (the message names the fix).
    #[error("{message}")]
    Aws {
        /// One sentence: what AWS said and what to do.
        message: String,
        /// The SDK or HTTP error underneath, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
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
    ReplayMismatch(Divergence),

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

impl ErrorKind {
    /// The kind's name in JSON documents (`usage`, `timeout`, …).
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::Usage(_) => "usage",
            ErrorKind::Io(_) => "io",
            ErrorKind::Aws { .. } => "aws",
            ErrorKind::Eof { .. } => "eof",
            ErrorKind::Timeout { .. } => "timeout",
            ErrorKind::ReplayMismatch(_) => "replay_mismatch",
            ErrorKind::Login(_) => "login",
            ErrorKind::Problems(_) => "problems",
            ErrorKind::Interrupted { .. } => "interrupted",
            ErrorKind::NotYetAvailable(_) => "not_yet_available",
        }
    }

    /// The exit code an error of this kind ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ErrorKind::Usage(_) | ErrorKind::NotYetAvailable(_) => ExitCode::Usage,
            ErrorKind::Io(_)
            | ErrorKind::Aws { .. }
            | ErrorKind::Eof { .. }
            | ErrorKind::ReplayMismatch(_) => ExitCode::Transport,
            ErrorKind::Timeout { .. } => ExitCode::Timeout,
            ErrorKind::Login(_) => ExitCode::Login,
            ErrorKind::Problems(_) => ExitCode::Problems,
            ErrorKind::Interrupted { signal, .. } => signal.exit_code(),
        }
    }

    /// The same kind with `scrub` applied to every text it holds.
    fn scrubbed(self, scrub: &dyn Fn(&str) -> String) -> ErrorKind {
        match self {
            ErrorKind::Usage(m) => ErrorKind::Usage(scrub(&m)),
            ErrorKind::Io(e) => ErrorKind::Io(std::io::Error::new(e.kind(), scrub(&e.to_string()))),
            // The source is folded into the message: a type-erased error
            // cannot be rebuilt with its text scrubbed.
            ErrorKind::Aws { message, source } => ErrorKind::Aws {
                message: scrub(&match source {
                    Some(s) => format!("{message}: {}", error_chain(s.as_ref())),
                    None => message,
                }),
                source: None,
            },
            ErrorKind::Eof { awaited, tail } => ErrorKind::Eof {
                awaited: scrub(&awaited),
                tail: scrub(&tail),
            },
            ErrorKind::Timeout {
                awaited,
                seconds,
                tail,
            } => ErrorKind::Timeout {
                awaited: scrub(&awaited),
                seconds,
                tail: scrub(&tail),
            },
            ErrorKind::ReplayMismatch(d) => ErrorKind::ReplayMismatch(Divergence {
                place: scrub(&d.place),
                message: scrub(&d.message),
                recorded: d.recorded.map(|t| scrub(&t)),
                sent: d.sent.map(|t| scrub(&t)),
            }),
            ErrorKind::Login(m) => ErrorKind::Login(scrub(&m)),
            ErrorKind::Problems(m) => ErrorKind::Problems(scrub(&m)),
            ErrorKind::Interrupted {
                signal,
                detail,
                output,
            } => ErrorKind::Interrupted {
                signal,
                detail: scrub(&detail),
                output: scrub(&output),
            },
            other @ ErrorKind::NotYetAvailable(_) => other,
        }
    }
}

/// Everything that can go wrong: a [`ErrorKind`] (which decides the exit
/// code) and the chain of what was being done when it happened, printed
/// outermost first: `t.rhai:3:3: console unix:/… failed: broken pipe`.
///
/// Adding context never changes the kind, so a layer can say where it was
/// without knowing (or rebuilding) what went wrong underneath.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    /// What was being done, innermost first.
    context: Vec<String>,
}

impl Error {
    /// The error of `kind`, with no context yet.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            context: Vec::new(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, taken out of the error (its context is dropped).
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// The same error with its kind changed by `f` and its context kept: for
    /// a layer that learns more about what went wrong (how far a repair got).
    pub fn map_kind(self, f: impl FnOnce(ErrorKind) -> ErrorKind) -> Self {
        Error {
            kind: f(self.kind),
            context: self.context,
        }
    }

    /// The same error, saying that it happened while doing `what`.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.context.push(what.to_string());
        self
    }

    /// Bad usage or input (exit 2): the message names the input and the fix.
    pub fn usage(message: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Usage(message.to_string()))
    }

    /// Logging in failed (exit 4).
    pub fn login(message: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Login(message.to_string()))
    }

    /// The job ran and problems remain (exit 1).
    pub fn problems(message: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Problems(message.to_string()))
    }

    /// A replayed transcript and the session disagree (exit 3).
    pub fn replay_mismatch(divergence: Divergence) -> Self {
        Error::new(ErrorKind::ReplayMismatch(divergence))
    }

    /// An AWS refusal or failure whose message names the fix (exit 3).
    pub fn aws(message: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Aws {
            message: message.to_string(),
            source: None,
        })
    }

    /// An AWS failure with the SDK or HTTP error that caused it (exit 3).
    pub fn aws_with(
        message: impl fmt::Display,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::new(ErrorKind::Aws {
            message: message.to_string(),
            source: Some(source.into()),
        })
    }

    /// The console closed while waiting for `awaited` (exit 3).
    pub fn eof(awaited: impl fmt::Display, tail: impl Into<String>) -> Self {
        Error::new(ErrorKind::Eof {
            awaited: awaited.to_string(),
            tail: tail.into(),
        })
    }

    /// Waiting for `awaited` took longer than `seconds` (exit 5).
    pub fn timeout(awaited: impl fmt::Display, seconds: f64, tail: impl Into<String>) -> Self {
        Error::new(ErrorKind::Timeout {
            awaited: awaited.to_string(),
            seconds,
            tail: tail.into(),
        })
    }

    /// The error for `signal`, with nothing said yet about what it cut short.
    pub fn interrupted(signal: Signal) -> Self {
        Error::new(ErrorKind::Interrupted {
            signal,
            detail: String::new(),
            output: String::new(),
        })
    }

    /// Wraps an I/O error with a sentence saying what was being done.
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io(source)).context(context)
    }

    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        self.kind.exit_code()
    }

    /// Whether an expect ran out of time (the one kind callers retry on).
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout { .. })
    }

    /// The same error with `scrub` applied to every text in it, its
    /// contexts included: for errors that may quote what a console echoed.
    pub fn scrubbed(self, scrub: &dyn Fn(&str) -> String) -> Self {
        Error {
            kind: self.kind.scrubbed(scrub),
            context: self.context.iter().map(|c| scrub(c)).collect(),
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for what in self.context.iter().rev() {
            write!(f, "{what}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// Adds context to a failed [`Result`], as [`Error::context`] does.
pub trait Context<T> {
    /// On error, says that it happened while doing `what`.
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(what))
    }
}

/// A job's result and that of the clean-up after it (a logout, a reboot):
/// the job's error wins; a failed clean-up after a success is the error,
/// with `cleaning` ("logging out") as its context; after a failure it is
/// only logged.
pub(crate) fn job_then_cleanup<T>(
    job: Result<T>,
    cleanup: Result<()>,
    cleaning: &str,
) -> Result<T> {
    match (job, cleanup) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(e.context(cleaning)),
        (Err(e), cleanup) => {
            if let Err(c) = cleanup {
                tracing::warn!("{cleaning} after a failure also failed: {c}");
            }
            Err(e)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_reads_outermost_first_and_keeps_the_kind_and_exit_code() {
        let e = Error::login("Login incorrect")
            .context("logging in as ec2-user")
            .context("t.rhai:3:1");
        assert_eq!(
            e.to_string(),
            "t.rhai:3:1: logging in as ec2-user: Login incorrect"
        );
        assert!(matches!(e.kind(), ErrorKind::Login(_)));
        assert_eq!(e.exit_code(), ExitCode::Login);
    }

    #[test]
    fn the_source_chain_survives_context() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe gone");
        let e = Error::io("console unix:/x failed", io).context("t.rhai:2:1");
        assert_eq!(
            e.to_string(),
            "t.rhai:2:1: console unix:/x failed: pipe gone"
        );
        assert_eq!(
            error_chain(&e),
            "t.rhai:2:1: console unix:/x failed: pipe gone"
        );
        let aws = Error::aws_with("the key push failed", std::io::Error::other("dns failure"));
        assert!(
            error_chain(&aws).ends_with("dns failure"),
            "{}",
            error_chain(&aws)
        );
        assert_eq!(aws.exit_code(), ExitCode::Transport);
    }

    #[test]
    fn scrubbing_reaches_every_text_the_kind_and_the_contexts_hold() {
        let scrub = |t: &str| t.replace("hunter2", "<redacted>");
        let errors = [
            Error::usage("bad hunter2").context("at hunter2"),
            Error::eof("prompt hunter2", "tail hunter2"),
            Error::timeout("hunter2", 1.0, "hunter2"),
            Error::io("ctx", std::io::Error::other("hunter2")),
            Error::aws_with("aws", std::io::Error::other("hunter2")),
        ];
        for e in errors {
            let code = e.exit_code();
            let e = e.scrubbed(&scrub);
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
            assert_eq!(e.exit_code(), code);
        }
    }
}
