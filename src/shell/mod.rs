//! The shell layer: from "whatever the console shows" to commands whose
//! output and exit status come back exactly.
//!
//! [`Shell::login`] wakes the console, gets past whatever holds it (a pager,
//! someone else's shell, a half-typed login), logs in with a password sent
//! only through [`Session::send_secret`], and makes the shell predictable
//! (our own prompt, no echo, no line editing, no history, kernel messages
//! quieted when allowed). The [`Shell`] borrows its session for the whole
//! login, so a command is `shell.run("uptime")`: [`Shell::run`] returns
//! [`CommandOutput`], the output exactly as printed, the exit status, and
//! the kernel lines that interleaved, kept apart. [`Shell::sudo`] does the
//! same as root. [`Shell::logout`] leaves the console at a login prompt.
//!
//! A login is a scope: [`Shell::scoped`] logs in, hands the job the shell,
//! and logs out on every path the job can take — success, error, a signal —
//! because there is no async `Drop` to do it later:
//!
//! ```no_run
//! # async fn demo(session: &mut ec2_serial_expect::Session, spec: &ec2_serial_expect::shell::LoginSpec)
//! # -> ec2_serial_expect::Result<()> {
//! use ec2_serial_expect::shell::Shell;
//! let out = Shell::scoped(session, spec, async |shell| shell.run("uptime").await).await?;
//! # Ok(()) }
//! ```
//!
//! Inside the crate, a shell's state between commands (`ShellState`) is
//! kept apart from its session where the two cannot be borrowed together:
//! scripts log in and out as separate calls and their runner logs out
//! whatever the script left logged in. A shell dropped while logged in logs
//! a warning.
//!
//! See `docs/shell.md` for the design and the console states handled.

mod command;
mod kernel;
mod login;
mod screen;
mod sudo;

use std::time::Duration;

use tokio::time::Instant;

pub use kernel::ConsoleText;
pub use login::LoginSpec;

pub use screen::{classify, Screen};

use crate::error::{Error, ErrorKind, Result};
use crate::expect::Session;
use crate::secret::Secret;
use regex::Regex;

/// What one command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Output (stdout and stderr, as the tty merged them) exactly as printed:
    /// no echo, no prompt, no escape sequences, `\r\n` as `\n`, no kernel lines.
    pub output: String,
    /// The exit status (`$?`): 0–255; 127 command not found.
    pub status: i32,
    /// Kernel (printk) lines that appeared while the command ran, removed
    /// from `output`.
    pub kernel_lines: Vec<String>,
    /// Console noise that is not the command's own output, removed from it
    /// (for `sudo`: `sudo: unable to resolve host …`).
    pub warnings: Vec<String>,
}

impl CommandOutput {
    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A logged-in shell on a console (see the module documentation).
pub(crate) struct ShellState {
    user: String,
    uid: Option<u32>,
    password: Secret,
    text: ConsoleText,
    runs: u64,
    /// The console log level to restore at logout, when we lowered it.
    saved_kernel_level: Option<String>,
    /// Whether to lower it ([`LoginSpec::quiet_kernel`]), retried once sudo works.
    quiet_kernel: bool,
    command_timeout: Duration,
    logged_in: bool,
}

/// A logged-in shell on its console. It borrows the session once, for the
/// whole login: `shell.run(cmd)`, `shell.sudo(cmd)`, `shell.logout()`, and
/// [`Shell::session`] for anything else the session does meanwhile.
pub struct Shell<'s> {
    state: ShellState,
    session: &'s mut Session,
}

impl<'s> Shell<'s> {
    /// Logs in as `spec.user` (or reuses that user's shell) and synchronises
    /// the prompt. Errors: wrong password or a console that refuses logins →
    /// [`ErrorKind::Login`] (exit 4); no usable state within `spec.timeout` →
    /// [`ErrorKind::Timeout`] (exit 5).
    pub async fn login(session: &'s mut Session, spec: &LoginSpec) -> Result<Shell<'s>> {
        let state = ShellState::login(session, spec).await?;
        Ok(Shell::bind(state, session))
    }

    /// Logs in with `spec`, runs `job` on the logged-in shell, then logs out
    /// whatever `job` returned. The job's error wins over a failed logout
    /// (the logout's is returned only when the job succeeded).
    pub async fn scoped<T>(
        session: &'s mut Session,
        spec: &LoginSpec,
        job: impl AsyncFnOnce(&mut Shell<'s>) -> Result<T>,
    ) -> Result<T> {
        let mut shell = Shell::login(session, spec).await?;
        let outcome = job(&mut shell).await;
        let logout = shell.logout().await;
        crate::error::job_then_cleanup(outcome, logout, "logging out")
    }

    /// Takes over a shell that is already there, no login involved (the
    /// rescue's root shell, an `exec:ssh …` target's); see
    /// [`ShellState::adopt`]. Never exited: end it with [`Shell::release`].
    pub(crate) async fn adopt(session: &'s mut Session, timeout: Duration) -> Result<Shell<'s>> {
        let state = ShellState::adopt(session, timeout).await?;
        Ok(Shell::bind(state, session))
    }

    /// Lets go of an adopted shell without exiting it.
    pub(crate) fn release(self) {
        self.state.release(self.session);
    }

    /// Binds a shell's state to its session.
    pub(crate) fn bind(state: ShellState, session: &'s mut Session) -> Shell<'s> {
        Shell { state, session }
    }

    /// Runs `cmd` in a subshell (so `cd`, `exit` or `set -e` cannot disturb
    /// the session) with stdin closed, waiting at most the command timeout.
    pub async fn run(&mut self, cmd: &str) -> Result<CommandOutput> {
        self.state.run(self.session, cmd).await
    }

    /// [`Shell::run`] with its own timeout. On timeout the command is
    /// interrupted (Ctrl-C) so the shell stays usable, and the error (exit
    /// code 5) names the command.
    pub async fn run_with_timeout(
        &mut self,
        cmd: &str,
        timeout: Duration,
    ) -> Result<CommandOutput> {
        self.state
            .run_with_timeout(self.session, cmd, timeout)
            .await
    }

    /// Runs `cmd` as root: directly in a root shell, else through `sudo`
    /// (the login's password given once, when sudo asks for one).
    pub async fn sudo(&mut self, cmd: &str) -> Result<CommandOutput> {
        self.state.sudo(self.session, cmd).await
    }

    /// Runs `program` (no shell syntax) as root with `input` as its one
    /// line of standard input: `input` is in no process's argv.
    pub async fn sudo_with_input(&mut self, input: &str, program: &str) -> Result<CommandOutput> {
        self.state
            .sudo_with_input(self.session, input, program)
            .await
    }

    /// Leaves the console at a login prompt: restores the kernel log level,
    /// then `exit` until a login prompt shows (nested shells need several).
    /// A console that closes instead (a local `exec:` shell) counts as done.
    pub async fn logout(self) -> Result<()> {
        self.state.logout(self.session).await
    }

    /// Logs out whoever is logged in on `session`, with no shell of ours
    /// there: proves the console is back at a login prompt within
    /// `timeout`, or fails.
    pub async fn log_out_console(session: &mut Session, timeout: Duration) -> Result<()> {
        ShellState::log_out_console(session, timeout).await
    }

    /// The session, for what it does between commands (marks, secrets).
    pub fn session(&mut self) -> &mut Session {
        self.session
    }

    /// The user the shell runs as (from `id -un`).
    pub fn user(&self) -> &str {
        self.state.user()
    }

    /// True for a root shell (no `sudo` needed).
    pub fn is_root(&self) -> bool {
        self.state.is_root()
    }

    /// The timeout [`Shell::run`] and [`Shell::sudo`] use (default: the
    /// session's default timeout).
    pub fn command_timeout(&self) -> Duration {
        self.state.command_timeout()
    }

    /// Changes the timeout of later [`Shell::run`] and [`Shell::sudo`] calls.
    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.state.set_command_timeout(timeout);
    }

    /// The shell's state apart from its session (a rescue lets go of its
    /// shell without exiting it).
    pub(crate) fn into_state(self) -> (ShellState, &'s mut Session) {
        (self.state, self.session)
    }
}

impl std::fmt::Debug for Shell<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.state.fmt(f)
    }
}

impl std::fmt::Debug for ShellState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellState")
            .field("user", &self.user)
            .field("uid", &self.uid)
            .field("logged_in", &self.logged_in)
            .finish_non_exhaustive()
    }
}

impl ShellState {
    /// The user the shell runs as (from `id -un`).
    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    /// True for a root shell (no `sudo` needed).
    pub(crate) fn is_root(&self) -> bool {
        self.uid == Some(0)
    }

    /// The timeout [`ShellState::run`] and [`ShellState::sudo`] use (default: the
    /// session's default timeout).
    pub(crate) fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Changes the timeout of later [`ShellState::run`] and [`ShellState::sudo`] calls.
    pub(crate) fn set_command_timeout(&mut self, timeout: Duration) {
        self.command_timeout = timeout;
    }

    /// Runs `cmd` in a subshell (so `cd`, `exit` or `set -e` cannot disturb
    /// the session) with stdin closed, waiting at most the command timeout.
    pub(crate) async fn run(&mut self, session: &mut Session, cmd: &str) -> Result<CommandOutput> {
        let timeout = self.command_timeout;
        self.run_with_timeout(session, cmd, timeout).await
    }

    /// [`ShellState::run`] with its own timeout. On timeout the command is
    /// interrupted (Ctrl-C) so the shell stays usable, and the error (exit
    /// code 5) names the command.
    pub(crate) async fn run_with_timeout(
        &mut self,
        session: &mut Session,
        cmd: &str,
        timeout: Duration,
    ) -> Result<CommandOutput> {
        self.ensure_logged_in()?;
        match self.run_inner(session, cmd, timeout).await {
            Err(e) if e.is_timeout() => {
                self.interrupt(session).await;
                Err(e)
            }
            // A signal: stop the command too, and keep what it printed so
            // the caller can say how far it got.
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted { .. }) => {
                let output = self.interrupt(session).await;
                let output = session.scrub(&output);
                Err(e.map_kind(|kind| match kind {
                    ErrorKind::Interrupted { signal, detail, .. } => ErrorKind::Interrupted {
                        signal,
                        detail,
                        output,
                    },
                    other => other,
                }))
            }
            result => result,
        }
    }

    fn ensure_logged_in(&self) -> Result<()> {
        if self.logged_in {
            Ok(())
        } else {
            Err(Error::usage(
                "the shell is logged out; call login before run or sudo",
            ))
        }
    }

    async fn run_inner(
        &mut self,
        session: &mut Session,
        cmd: &str,
        timeout: Duration,
    ) -> Result<CommandOutput> {
        let deadline = Wait::new(timeout, describe_command(session, cmd));
        self.runs += 1;
        let plan = command::plan(cmd, self.runs);
        self.text.clear_clean();
        self.text.take_kernel_lines();
        for line in &plan.setup {
            session.send_line(line).await?;
            self.read_until(session, command::prompt_regex(), &deadline)
                .await?;
        }
        session
            .send_line(&plan.run_line)
            .await
            .map_err(in_the_scripts_words)?;
        self.read_until(session, &plan.start, &deadline).await?;
        let (output, caps) = self.read_until(session, &plan.end, &deadline).await?;
        let status = caps.first().and_then(|s| s.parse().ok()).unwrap_or(-1);
        self.read_until(session, command::prompt_regex(), &deadline)
            .await?;
        Ok(CommandOutput {
            output,
            status,
            kernel_lines: self.text.take_kernel_lines(),
            warnings: Vec::new(),
        })
    }

    /// Interrupts whatever runs and waits briefly for our prompt; returns
    /// the command's output up to it (what it had printed and its last words).
    async fn interrupt(&mut self, session: &mut Session) -> String {
        if session.send("\x03").await.is_err() {
            return String::new();
        }
        let wait = Wait::new(Duration::from_secs(5), "the prompt after Ctrl-C".into());
        self.read_until(session, command::prompt_regex(), &wait)
            .await
            .map(|(before, _)| before)
            .unwrap_or_default()
    }

    /// Reads until `pattern` matches the program text; returns the text
    /// before the match (consumed with it) and the match's capture groups.
    async fn read_until(
        &mut self,
        session: &mut Session,
        pattern: &Regex,
        wait: &Wait,
    ) -> Result<(String, Vec<String>)> {
        let mut from = 0;
        loop {
            if let Some(caps) = pattern.captures_at(self.text.clean(), from) {
                let whole = caps.get(0).map_or(0..0, |m| m.range());
                let groups = caps
                    .iter()
                    .skip(1)
                    .map(|g| g.map_or(String::new(), |g| g.as_str().to_string()))
                    .collect();
                let before = self.text.take_clean(whole.end);
                return Ok((before[..whole.start].to_string(), groups));
            }
            // Only new text (plus a marker's length) is searched next time.
            let len = self.text.clean().len();
            from = crate::text::floor_char_boundary(self.text.clean(), len.saturating_sub(64));
            self.pull(session, wait).await?;
        }
    }

    /// Reads one chunk into the filter, failing at the wait's deadline.
    async fn pull(&mut self, session: &mut Session, wait: &Wait) -> Result<()> {
        let left = wait.left();
        if left.is_zero() {
            return Err(wait.timeout(session));
        }
        match session.read_text(left).await {
            Ok(Some(text)) => {
                self.text.push(&text);
                Ok(())
            }
            Ok(None) => Err(wait.timeout(session)),
            Err(e) if matches!(e.kind(), ErrorKind::Eof { .. }) => {
                Err(Error::eof(&wait.awaited, session.tail()))
            }
            Err(e) => Err(e),
        }
    }

    /// Reads for at most `most`; true when something arrived.
    async fn pull_for(&mut self, session: &mut Session, most: Duration) -> Result<bool> {
        match session.read_text(most).await? {
            Some(text) => {
                self.text.push(&text);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl Drop for ShellState {
    fn drop(&mut self) {
        if self.logged_in {
            tracing::warn!(
                "the shell of {} was dropped without logout: the console may still be logged in",
                self.user
            );
        }
    }
}

/// A replay that parted from its recording at one of our run lines, told
/// with the two commands (the changed part marked) instead of the shell's
/// framing, which stays in the debug log.
fn in_the_scripts_words(e: Error) -> Error {
    let ErrorKind::ReplayMismatch(d) = e.kind() else {
        return e;
    };
    let (Some(recorded), Some(ran)) = (
        d.recorded.as_deref().and_then(command::command_of),
        d.sent.as_deref().and_then(command::command_of),
    ) else {
        return e;
    };
    if recorded == ran {
        // They differ only where a secret was redacted: the replay's own
        // words say more.
        return e;
    }
    tracing::debug!("the replay parted at our framing: {}", d.message);
    let (was, now) = command::marked_difference(&recorded, &ran);
    let told = format!(
        "{}: this run typed the command {ran:?}, but the recording has {recorded:?} there \
         (changed: {was:?} became {now:?}); a recording replays the script that made it: \
         record it again with `test SCRIPT.rhai --update --target TARGET`",
        d.place
    );
    e.map_kind(|kind| match kind {
        ErrorKind::ReplayMismatch(d) => {
            ErrorKind::ReplayMismatch(crate::error::Divergence { message: told, ..d })
        }
        other => other,
    })
}

/// An absolute deadline and what we wait for, for messages.
struct Wait {
    deadline: Instant,
    total: Duration,
    awaited: String,
}

impl Wait {
    fn new(total: Duration, awaited: String) -> Self {
        Wait {
            deadline: Instant::now() + total,
            total,
            awaited,
        }
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn timeout(&self, session: &Session) -> Error {
        Error::timeout(&self.awaited, self.total.as_secs_f64(), session.tail())
    }
}

/// "the end of `cmd`" for messages: shortened and scrubbed of secrets.
fn describe_command(session: &Session, cmd: &str) -> String {
    let short: String = cmd.chars().take(60).collect();
    let ellipsis = if short.len() < cmd.len() { "…" } else { "" };
    format!("the end of command `{}{ellipsis}`", session.scrub(&short))
}
