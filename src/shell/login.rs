//! The login state machine, prompt synchronisation and logout.
//!
//! The machine acts only when the console has settled: after
//! [`SETTLE`] without new program text (kernel lines do not count, so a
//! flood of them cannot keep it waiting) it reads the screen (see
//! [`super::screen`]); a prompt answers at once, anything else waits for
//! [`QUIET`] and then gets the next nudge: Enter (the console may show
//! nothing until Enter), `q` (pagers), Ctrl-C, `ESC :q!` (vi), Enter again.
//! Deciding on settled text rather than timing alone also makes the
//! machine replay exactly from a recorded transcript.
//!
//! A wrong password ends the login at once (exit code 4): retrying risks a
//! lockout (pam_faillock), and the console is left at its next login prompt.
//! A shell already logged in is reused when it belongs to the user; one of
//! another user (or root, when the user is not root) is logged out first.

use std::time::Duration;

use tokio::time::Instant;

use super::command::{self, PROMPT};
use super::screen::{classify, Screen};
use super::{ConsoleText, ShellState, Wait};
use crate::error::{Error, ErrorKind, Result};
use crate::expect::Session;
use crate::secret::Secret;

/// No new program text for this long: the console has settled.
const SETTLE: Duration = Duration::from_millis(400);
/// After the password, a shell prompt is acted on once it has stood this
/// long: the sync line that follows proves it is a shell (a MOTD line that
/// only ends like a prompt costs a sync that waits for the real one).
const SHELL_SETTLE: Duration = Duration::from_millis(100);
/// An awaited prompt without its trailing space waits this long for it
/// (getty and login end theirs with one, which can come in the next read).
const PROMPT_END_WAIT: Duration = Duration::from_millis(100);
/// No new program text for this long and nothing recognised: nudge.
const QUIET: Duration = Duration::from_secs(2);
/// A console that has shown nothing at all since we connected gets its
/// first Enter after this: serial consoles do not repaint on connect (Tcl
/// Expect scripts send Enter at once), so a longer wait would only add to
/// every login; this is time for what a gateway may still hold to arrive.
/// Later nudges wait [`QUIET`]: a slow console must get time to answer
/// before the next, stronger key.
const FIRST_LOOK: Duration = Duration::from_millis(100);
/// How long a shell gets to show our prompt after the sync line.
const SYNC_WAIT: Duration = Duration::from_secs(8);
/// A console that answered the sync line and then shows nothing new for
/// this long without our prompt did not take the line: not a POSIX shell
/// (fish and tcsh print errors and their own prompt). A POSIX shell shows
/// our prompt within milliseconds of running the line (3 s leaves room for
/// two emulated VMs on a loaded 2-core host). If a very slow one
/// is taken for foreign, no harm: `/bin/sh` is put in charge of it too.
const FOREIGN_SETTLE: Duration = Duration::from_millis(3000);
/// Quiet after a Ctrl-C that means the shell has redrawn its prompt.
const REDRAW_SETTLE: Duration = Duration::from_millis(300);
/// How long to wait for the login prompt that follows `Login incorrect`.
const AFTER_FAILURE: Duration = Duration::from_secs(15);
/// After typing the user name, how long the password prompt may take (PAM
/// can be slow at boot) before we nudge: a nudge there would be taken as an
/// empty password, a failed attempt against the account.
const PASSWORD_PROMPT_WAIT: Duration = Duration::from_secs(20);
/// Unrecognised quiet after `exit` before typing it again (getty is slow to
/// come back on a loaded instance).
const EXIT_AGAIN_AFTER: Duration = Duration::from_secs(10);
/// A console that shows no prompt this long while a shell is adopted gets
/// an Enter (a prompt printed before we connected is not printed again).
const ADOPT_NUDGE: Duration = Duration::from_secs(10);
/// Prints the shell's user name, then its uid.
const IDENTIFY: &str = "id -un; u=; while read -r k v _; do [ \"$k\" = Uid: ] && u=$v && break; \
                        done 2>/dev/null </proc/$$/status; echo \"${u:-$(id -u)}\"";
/// Most shells of other users logged out before giving up.
const MAX_EXITS: u32 = 4;
/// Keystrokes tried, in order, when the console shows nothing we recognise.
/// The keys tried on a refusal screen while logging a console out: they
/// leave a pager or a program, and none is Enter.
const REFUSAL_NUDGES: &[(&str, &str)] = &[("q", "q (pager)"), ("\x03", "Ctrl-C")];

const NUDGES: &[(&str, &str)] = &[
    ("\r", "Enter"),
    ("\r", "Enter"),
    ("q", "q (pager)"),
    ("\x03", "Ctrl-C"),
    ("\x1b:q!\r", "ESC :q! (editor)"),
    ("\r", "Enter"),
];

/// How a shell was synchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synced {
    Failed,
    /// The shell took the sync line: it runs the commands.
    AsIs,
    /// It did not; `/bin/sh` runs in its place ([`command::START_SH`]).
    ShInCharge,
}

/// What a shell showed after a sync line.
#[derive(Debug, PartialEq, Eq)]
enum SyncAnswer {
    OurPrompt,
    /// A prompt that is not ours, on a console that settled.
    ForeignPrompt,
    Nothing,
}

/// How a logout was proven.
enum LoggedOut {
    /// The console showed its login prompt.
    AtLogin,
    /// The EXIT trap said the shell's login session ended.
    SessionEnded,
    /// The console closed (a local program's shell).
    Closed,
}

/// Who to log in as, and how.
#[derive(Debug, Clone)]
pub struct LoginSpec {
    /// The user name typed at `login:`.
    pub user: String,
    /// The password, sent only with [`Session::send_secret`]; also answers
    /// `sudo`'s password prompt.
    pub password: Secret,
    /// The whole login may take this long (default 90 s: a console may still
    /// be booting).
    pub timeout: Duration,
    /// Lower the kernel console log level (`dmesg -n 1`) while logged in,
    /// when root or passwordless sudo allows; restored at logout (default on).
    pub quiet_kernel: bool,
}

impl LoginSpec {
    /// A spec with the default timeout and kernel quieting on.
    pub fn new(user: impl Into<String>, password: Secret) -> Self {
        LoginSpec {
            user: user.into(),
            password,
            timeout: Duration::from_secs(90),
            quiet_kernel: true,
        }
    }

    fn validate(&self) -> Result<()> {
        let ok = !self.user.is_empty()
            && self.user.len() <= 64
            && self
                .user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@$".contains(c));
        if ok {
            Ok(())
        } else {
            Err(Error::usage(format!(
                "login user {:?} is not a valid user name; use letters, digits, '.', '_', '-'",
                self.user
            )))
        }
    }
}

/// What the machine has typed so far in this login attempt.
#[derive(Debug, Default)]
struct LoginProgress {
    /// When the user name was typed, if it was.
    user_sent_at: Option<Instant>,
    /// When the password was sent, if it was.
    password_sent_at: Option<Instant>,
    /// Sync lines that got no prompt back.
    failed_syncs: u32,
    sent_user: bool,
    sent_password: bool,
    nudges: usize,
    exits: u32,
}

impl LoginProgress {
    /// How long `screen` must stand unchanged before the login acts on it.
    /// The prompt this login waits for next is acted on the moment it ends
    /// the console text. After the password, a shell prompt gets
    /// [`SHELL_SETTLE`]. Everything else (a MOTD, text that merely looks like
    /// a prompt once the password is sent) settles for [`SETTLE`]: a hostile
    /// MOTD that prints `Password: login: ` comes after the password, when
    /// no prompt is awaited, and is not taken for one mid-stream.
    fn settle_for(&self, screen: &Screen) -> Duration {
        match (self.sent_user, self.sent_password, screen) {
            (false, false, Screen::LoginPrompt) | (true, false, Screen::PasswordPrompt) => {
                Duration::ZERO
            }
            (true, true, Screen::ShellPrompt) => SHELL_SETTLE,
            _ => SETTLE,
        }
    }

    /// True while login may still be checking the password.
    fn awaits_password_verdict(&self) -> bool {
        self.password_sent_at
            .is_some_and(|at| at.elapsed() < PASSWORD_PROMPT_WAIT)
    }

    /// True while login may still be preparing its password prompt.
    fn awaits_password_prompt(&self) -> bool {
        !self.sent_password
            && self
                .user_sent_at
                .is_some_and(|at| at.elapsed() < PASSWORD_PROMPT_WAIT)
    }
}

impl ShellState {
    /// Logs in as `spec.user` (or reuses that user's shell) and synchronises
    /// the prompt. Errors: wrong password or a console that refuses logins →
    /// [`ErrorKind::Login`] (exit 4); no usable state within `spec.timeout` →
    /// [`ErrorKind::Timeout`] (exit 5).
    pub(crate) async fn login(session: &mut Session, spec: &LoginSpec) -> Result<ShellState> {
        spec.validate()?;
        session.add_secret(&spec.password);
        session.mark(&format!("shell: login as {}", spec.user));
        let mut shell = ShellState {
            user: spec.user.clone(),
            uid: None,
            password: spec.password.clone(),
            text: ConsoleText::new(),
            runs: 0,
            saved_kernel_level: None,
            quiet_kernel: spec.quiet_kernel,
            command_timeout: session.options().default_timeout,
            logged_in: false,
        };
        let wait = Wait::new(
            spec.timeout,
            format!("a login prompt or a shell on {}", session.describe()),
        );
        if let Err(e) = shell.drive_login(session, spec, &wait).await {
            // A shell we already took over is not left logged in.
            if shell.logged_in {
                let _ = shell.leave(session).await;
            }
            return Err(e);
        }
        session.mark(&format!("shell: logged in as {}", shell.user));
        if spec.quiet_kernel {
            shell.quiet_kernel(session).await;
        }
        Ok(shell)
    }

    /// Takes over a shell that is already there, no login involved: the
    /// root shell a kernel booted with `init=/bin/sh` runs (the GRUB rescue
    /// path), or the shell of an `exec:ssh …` target. Waits for its prompt,
    /// synchronises it and learns who it runs as ([`ShellState::is_root`]); a
    /// console that shows nothing gets an Enter.
    ///
    /// Such a shell is never exited (as PID 1, its exit panics the kernel):
    /// whoever adopts it ends it with [`ShellState::release`] once what comes
    /// next (a reboot, closing the session) is arranged.
    pub(crate) async fn adopt(session: &mut Session, timeout: Duration) -> Result<ShellState> {
        session.mark("shell: taking over the console's shell");
        let mut shell = ShellState {
            user: "root".into(),
            uid: None,
            password: Secret::new("no password", ""),
            text: ConsoleText::new(),
            runs: 0,
            saved_kernel_level: None,
            quiet_kernel: false,
            command_timeout: session.options().default_timeout,
            logged_in: false,
        };
        let wait = Wait::new(timeout, format!("a shell prompt on {}", session.describe()));
        loop {
            // A booting machine prints for a while, then nothing until the
            // shell's prompt: only a long silence gets an Enter.
            let screen = shell
                .observe_for(session, &wait, ADOPT_NUDGE, &|s| match s {
                    Screen::ShellPrompt => SETTLE,
                    _ => ADOPT_NUDGE,
                })
                .await?;
            match screen {
                Screen::ShellPrompt
                    if shell.synchronise(session, &wait, false).await? != Synced::Failed =>
                {
                    break
                }
                Screen::Refused(why) => {
                    return Err(Error::login(format!(
                        "no root shell on {}: {why}",
                        session.describe()
                    )))
                }
                _ => shell.type_line(session, "").await?,
            }
        }
        shell.logged_in = true;
        shell.identify(session).await?;
        Ok(shell)
    }

    /// Brings a console someone else used back to its login prompt,
    /// whatever they left on it, and proves it: the gateway does this
    /// between clients, so the next one never inherits a shell (issue 32).
    ///
    /// Ctrl-C first (stops what runs, drops a half-typed line that an Enter
    /// would run), then the login machine's reading of the screen: a login
    /// prompt is the proof; a shell (also one that ignores Ctrl-D, bash's
    /// `IGNOREEOF`, or a nested one) is synchronised and logged out as
    /// [`ShellState::logout`] does (`exit` with the EXIT trap, until the login
    /// prompt or the trap's proof shows); a pager or an editor gets the
    /// nudges (Enter, `q`, Ctrl-C, `ESC :q!`). Words of a refusal
    /// (emergency mode, nologin) are no proof: a pager shows them as well.
    ///
    /// Errors (the console must then not be handed on): no proof within
    /// `timeout` ([`ErrorKind::Timeout`]), a shell that stays after
    /// `MAX_EXITS` exits ([`ErrorKind::Login`]), the console closing
    /// before the proof ([`ErrorKind::Eof`]).
    ///
    /// What it cannot tell apart: a program left running that imitates a
    /// login prompt (`PS1='login: '`, a fake getty) looks like one; see
    /// docs/security.md.
    pub(crate) async fn log_out_console(session: &mut Session, timeout: Duration) -> Result<()> {
        session.mark("shell: logging the console out (back to its login prompt)");
        let mut shell = ShellState {
            user: "the previous user".into(),
            uid: None,
            password: Secret::new("no password", ""),
            text: ConsoleText::new(),
            runs: 0,
            saved_kernel_level: None,
            quiet_kernel: false,
            command_timeout: session.options().default_timeout,
            logged_in: false,
        };
        let wait = Wait::new(timeout, format!("a login prompt on {}", session.describe()));
        let mut progress = LoginProgress::default();
        let mut refusal_nudges = 0;
        session.send("\x03").await?;
        let mut silent = FIRST_LOOK;
        loop {
            let screen = shell
                .observe_for(session, &wait, silent, &|s| match s {
                    Screen::LoginPrompt => Duration::ZERO,
                    _ => SETTLE,
                })
                .await?;
            silent = QUIET;
            match screen {
                Screen::LoginPrompt => {
                    session.mark("shell: the console is at its login prompt");
                    return Ok(());
                }
                Screen::LoginIncorrect if classify_tail_is_login(shell.text.clean()) => {
                    session.mark("shell: the console is at its login prompt");
                    return Ok(());
                }
                Screen::LoginIncorrect => shell.text.clear_clean(),
                // A refusal's words prove nothing here: a pager left open on
                // a log or a manual shows them too, over a shell (second
                // review of issue 32). Only the keys that leave a program
                // are tried, never Enter: at "Press Enter for maintenance"
                // (a locked root) Enter opens a root shell. A console that
                // still refuses is not handed on.
                Screen::Refused(why) => {
                    session.mark(&format!(
                        "shell: the console shows a refusal ({why}); not a proof"
                    ));
                    let Some(&(keys, name)) = REFUSAL_NUDGES.get(refusal_nudges) else {
                        return Err(Error::login(format!(
                            "{} shows a refusal ({why}) that q and Ctrl-C do not leave: it \
                             cannot be proven logged out; look at it with `console`",
                            session.describe()
                        )));
                    };
                    refusal_nudges += 1;
                    session.mark(&format!("shell: nudging the console with {name}"));
                    shell.type_keys(session, keys).await?
                }
                Screen::ShellPrompt => {
                    if shell.synchronise(session, &wait, true).await? != Synced::Failed {
                        shell.logged_in = true;
                        shell.identify(session).await?;
                        session.mark(&format!(
                            "shell: logging out {}'s shell left on the console",
                            shell.user
                        ));
                        return match shell.leave_within(session, wait.left()).await? {
                            LoggedOut::Closed => Err(Error::eof(
                                "a login prompt after `exit` (the console closed first)",
                                session.tail(),
                            )),
                            LoggedOut::AtLogin | LoggedOut::SessionEnded => Ok(()),
                        };
                    }
                    progress.failed_syncs += 1;
                    if progress.failed_syncs >= 2 {
                        shell.nudge(session, &mut progress).await?;
                    }
                }
                // A password prompt (someone's half login, sudo), a pager,
                // an editor, our own marker printed by someone: nudge.
                _ => shell.nudge(session, &mut progress).await?,
            }
        }
    }

    /// Forgets a shell whose console is gone (a replay that parted from its
    /// recording answers nothing more): no logout, no warning.
    pub(crate) fn abandon(mut self) {
        self.logged_in = false;
    }

    /// Lets go of an adopted shell without exiting it (see [`ShellState::adopt`]).
    pub(crate) fn release(mut self, session: &mut Session) {
        session.mark("shell: leaving the root shell running");
        self.logged_in = false;
    }

    async fn drive_login(
        &mut self,
        session: &mut Session,
        spec: &LoginSpec,
        wait: &Wait,
    ) -> Result<()> {
        let mut progress = LoginProgress::default();
        let mut silent = FIRST_LOOK;
        loop {
            let screen = match self
                .observe_for(session, wait, silent, &|s| progress.settle_for(s))
                .await
            {
                // A console that closes after the password (`exec:login`)
                // without a verdict: the shell ended at once.
                Err(e) if progress.sent_password && matches!(e.kind(), ErrorKind::Eof { .. }) => {
                    return Err(no_shell(spec))
                }
                screen => screen?,
            };
            silent = QUIET;
            tracing::debug!("login: console shows {screen:?}");
            if self
                .react(session, spec, &mut progress, wait, screen)
                .await?
            {
                return Ok(());
            }
        }
    }

    /// Answers one settled screen; true once a shell of the user is ours.
    async fn react(
        &mut self,
        session: &mut Session,
        spec: &LoginSpec,
        progress: &mut LoginProgress,
        wait: &Wait,
        screen: Screen,
    ) -> Result<bool> {
        // While logging in, our logout marker (whoever printed it) is text.
        let screen = match screen {
            Screen::SessionEnded => Screen::Unknown,
            screen => screen,
        };
        match screen {
            Screen::Refused(why) => {
                return Err(Error::login(format!(
                    "cannot log in on {}: {why}",
                    session.describe()
                )))
            }
            Screen::LoginIncorrect if progress.sent_password => {
                return Err(self.wrong_password(session, spec).await)
            }
            // Someone else's failed attempt: answer the prompt that follows.
            Screen::LoginIncorrect if classify_tail_is_login(self.text.clean()) => {
                self.type_user(session, spec, progress).await?
            }
            Screen::LoginIncorrect => self.text.clear_clean(),
            Screen::LoginPrompt if progress.sent_password => return Err(no_shell(spec)),
            Screen::ZshNewUserMenu if progress.sent_password => {
                // `q`: "Quit and do nothing" (the user's files stay as they are).
                session.mark("shell: zsh's first-run menu (zsh-newuser-install): q");
                self.type_keys(session, "q").await?
            }
            Screen::LoginPrompt => self.type_user(session, spec, progress).await?,
            Screen::PasswordPrompt if progress.sent_user && !progress.sent_password => {
                self.text.clear_clean();
                session.send_secret(&spec.password).await?;
                session.send("\r").await?;
                progress.sent_password = true;
                progress.password_sent_at = Some(Instant::now());
            }
            // Someone else's half-finished login: abandon it.
            Screen::PasswordPrompt if !progress.sent_user => self.type_line(session, "").await?,
            Screen::Unknown | Screen::Nothing if progress.awaits_password_prompt() => {}
            // login checks the password (and delays a failure by seconds):
            // typing anything now would become a user name.
            Screen::Nothing if progress.awaits_password_verdict() => {}
            Screen::Unknown | Screen::Nothing if !progress.sent_password => {
                self.nudge(session, progress).await?
            }
            // A shell prompt, or after the password anything (a MOTD, an
            // unusual prompt): try to take the shell over.
            _ => return self.take_over(session, spec, progress, wait).await,
        }
        Ok(false)
    }

    /// Types the user name at a login prompt.
    async fn type_user(
        &mut self,
        session: &mut Session,
        spec: &LoginSpec,
        progress: &mut LoginProgress,
    ) -> Result<()> {
        self.type_line(session, &spec.user).await?;
        progress.sent_user = true;
        progress.user_sent_at = Some(Instant::now());
        Ok(())
    }

    /// Tries to make a shell out of what the console shows; true when done.
    async fn take_over(
        &mut self,
        session: &mut Session,
        spec: &LoginSpec,
        progress: &mut LoginProgress,
        wait: &Wait,
    ) -> Result<bool> {
        if !progress.sent_password {
            // A shell left by someone: drop any half-typed line first, and
            // let the shell redraw its prompt (keys typed before it does are
            // discarded with the line).
            self.text.clear_clean();
            session.send("\x03").await?;
            self.observe(session, wait).await?;
        }
        let synced = self.synchronise(session, wait, true).await?;
        if synced == Synced::Failed {
            // What came back instead (kept unread) decides the next step;
            // after a second miss the console gets a nudge.
            progress.failed_syncs += 1;
            if progress.failed_syncs >= 2 {
                self.nudge(session, progress).await?;
            }
            return Ok(false);
        }
        self.logged_in = true;
        self.identify(session).await?;
        if synced == Synced::ShInCharge {
            let found = self
                .run(session, "printf '%s\\n' \"${SHELL:-unknown}\"")
                .await?;
            session.mark(&format!(
                "shell: login shell {}; commands run in /bin/sh",
                found.output.trim()
            ));
        }
        if self.user == spec.user {
            return Ok(true);
        }
        if progress.sent_password {
            return Err(Error::login(format!(
                "logged in as {} but the shell runs as {}; check the account",
                spec.user, self.user
            )));
        }
        if progress.exits >= MAX_EXITS {
            return Err(Error::login(format!(
                "the console stays in a shell of {} after {MAX_EXITS} exits; log it out by hand (`console`)",
                self.user
            )));
        }
        session.mark(&format!(
            "shell: logging out {}'s shell left on the console",
            self.user
        ));
        self.logged_in = false;
        self.type_line(session, "exit").await?;
        progress.exits += 1;
        *progress = LoginProgress {
            exits: progress.exits,
            ..LoginProgress::default()
        };
        self.user = spec.user.clone();
        self.uid = None;
        Ok(false)
    }

    /// Sends the sync line and waits for our prompt (`Failed` if it never came).
    ///
    /// A login shell that does not read POSIX lines (fish, tcsh, csh…)
    /// answers the sync line with errors and its own prompt. Then, when
    /// `may_start_sh`, `/bin/sh` is put in charge ([`command::START_SH`]:
    /// `exec`, so it keeps the login shell's process and the logout proof
    /// holds) and synchronised instead. Not for [`ShellState::adopt`]: a shell
    /// it adopts may be PID 1, and it is always a POSIX one.
    async fn synchronise(
        &mut self,
        session: &mut Session,
        wait: &Wait,
        may_start_sh: bool,
    ) -> Result<Synced> {
        self.type_line(session, &command::sync_line()).await?;
        match self.await_sync_prompt(session, wait, may_start_sh).await? {
            SyncAnswer::OurPrompt => return Ok(Synced::AsIs),
            SyncAnswer::Nothing => return Ok(Synced::Failed),
            SyncAnswer::ForeignPrompt => {}
        }
        session.mark(
            "shell: the login shell does not take POSIX sh lines; putting /bin/sh in charge (exec)",
        );
        // fish keeps a line it could not parse in its editor: drop it, and
        // let the shell redraw (tcsh discards what is typed before it does).
        self.type_keys(session, "\x03").await?;
        self.settle(session, wait, REDRAW_SETTLE).await?;
        self.type_line(session, command::START_SH).await?;
        if self.await_sync_prompt(session, wait, false).await? != SyncAnswer::OurPrompt {
            return Ok(Synced::Failed);
        }
        self.type_line(session, &command::sync_line()).await?;
        if self.await_sync_prompt(session, wait, false).await? != SyncAnswer::OurPrompt {
            return Ok(Synced::Failed);
        }
        Ok(Synced::ShInCharge)
    }

    /// Reads until nothing new came for `quiet` (at most [`QUIET`]).
    async fn settle(&mut self, session: &mut Session, wait: &Wait, quiet: Duration) -> Result<()> {
        let most = Wait::new(QUIET.min(wait.left()), "the console to settle".into());
        while !most.left().is_zero() && self.pull_for(session, quiet.min(most.left())).await? {}
        Ok(())
    }

    /// Waits for our prompt at the start of a line after a sync line (the
    /// text is cleared when a line is typed; an error message quoting the
    /// line, `PS1=__ESX_P> : Command not found.`, is no prompt). With
    /// `foreign`, a console that answers and then settles without it is
    /// answered after [`FOREIGN_SETTLE`] rather than [`SYNC_WAIT`].
    async fn await_sync_prompt(
        &mut self,
        session: &mut Session,
        wait: &Wait,
        foreign: bool,
    ) -> Result<SyncAnswer> {
        let sync = Wait::new(SYNC_WAIT.min(wait.left()), format!("the prompt {PROMPT:?}"));
        let mut last_change = Instant::now();
        let mut seen = self.text.clean().len();
        loop {
            if let Some(found) = command::synced_prompt_regex().find(self.text.clean()) {
                self.text.take_clean(found.end());
                return Ok(SyncAnswer::OurPrompt);
            }
            let since = last_change.elapsed();
            if foreign && since >= FOREIGN_SETTLE && !self.text.clean().trim().is_empty() {
                return Ok(SyncAnswer::ForeignPrompt);
            }
            let left = sync.left();
            if left.is_zero() {
                return Ok(SyncAnswer::Nothing);
            }
            let next = if foreign {
                FOREIGN_SETTLE
                    .saturating_sub(since)
                    .max(Duration::from_millis(20))
            } else {
                left
            };
            match self.pull_for(session, next.min(left)).await {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::Eof { .. }) => {
                    return Err(Error::eof(&sync.awaited, session.tail()))
                }
                Err(e) => return Err(e),
            }
            if self.text.clean().len() != seen {
                seen = self.text.clean().len();
                last_change = Instant::now();
            }
        }
    }

    /// Learns who the shell runs as. The uid comes from the shell's own
    /// `/proc/$$/status` when it can (one program less, about 0.1 s on an
    /// emulated instance), else from `id -u`.
    async fn identify(&mut self, session: &mut Session) -> Result<()> {
        let out = self.run(session, IDENTIFY).await?;
        let mut lines = out.output.lines();
        if let (Some(name), Some(uid)) = (lines.next(), lines.next()) {
            self.user = name.trim().to_string();
            self.uid = uid.trim().parse().ok();
        }
        Ok(())
    }

    /// Lowers the console log level, remembering the old one for logout.
    pub(super) async fn quiet_kernel(&mut self, session: &mut Session) {
        let sudo = if self.is_root() { "" } else { "sudo -n " };
        let cmd = format!(
            "read l _ </proc/sys/kernel/printk && {sudo}dmesg -n 1 >/dev/null 2>&1 && echo \"$l\""
        );
        match self.run(session, &cmd).await {
            Ok(out) if out.success() => {
                let level = out.output.trim().to_string();
                if !level.is_empty() && level.chars().all(|c| c.is_ascii_digit()) {
                    self.saved_kernel_level = Some(level);
                }
            }
            Ok(_) => tracing::info!(
                "kernel console messages stay on: dmesg -n needs root or passwordless sudo"
            ),
            Err(e) => tracing::warn!("could not quiet kernel console messages: {e}"),
        }
    }

    /// The error for a refused password, after letting login reprint its prompt.
    async fn wrong_password(&mut self, session: &mut Session, spec: &LoginSpec) -> Error {
        let wait = Wait::new(
            AFTER_FAILURE,
            "the login prompt after `Login incorrect`".into(),
        );
        let at_prompt = loop {
            if classify_tail_is_login(self.text.clean()) {
                break true;
            }
            if self.pull(session, &wait).await.is_err() {
                break false;
            }
        };
        session.mark("shell: login incorrect");
        let left = if at_prompt {
            "the console is back at its login prompt"
        } else {
            "the console did not show a new login prompt yet"
        };
        Error::login(format!(
            "login incorrect: the console refused the password for {} (not retried, to avoid a lockout); \
             {left}. Check the password source and that the user exists",
            spec.user
        ))
    }

    /// Sends the next nudge.
    async fn nudge(&mut self, session: &mut Session, progress: &mut LoginProgress) -> Result<()> {
        let (keys, name) = NUDGES
            .get(progress.nudges)
            .copied()
            .unwrap_or(("\r", "Enter"));
        progress.nudges += 1;
        session.mark(&format!("shell: nudging the console with {name}"));
        self.type_keys(session, keys).await
    }

    /// Types keys (no Enter) after forgetting what the console showed before.
    async fn type_keys(&mut self, session: &mut Session, keys: &str) -> Result<()> {
        self.text.clear_clean();
        session.send(keys).await
    }

    /// Types a line after forgetting what the console showed before it.
    async fn type_line(&mut self, session: &mut Session, line: &str) -> Result<()> {
        self.type_keys(session, &format!("{line}\r")).await
    }

    /// Waits until the console settles and says what it shows.
    async fn observe(&mut self, session: &mut Session, wait: &Wait) -> Result<Screen> {
        self.observe_for(session, wait, QUIET, &|_| SETTLE).await
    }

    /// [`ShellState::observe`], giving up on a console that shows nothing at all
    /// after `silent` (unrecognised text still gets [`QUIET`]), and acting
    /// on each screen once it has stood for `settle_for` it.
    async fn observe_for(
        &mut self,
        session: &mut Session,
        wait: &Wait,
        silent: Duration,
        settle_for: &(dyn Fn(&Screen) -> Duration + Sync),
    ) -> Result<Screen> {
        let mut last_change = Instant::now();
        let mut seen = self.text.clean().len();
        // No screen is acted on sooner than this: reading the screen before
        // would be wasted work on every read of a streaming MOTD.
        let soonest = [
            Screen::LoginPrompt,
            Screen::PasswordPrompt,
            Screen::ShellPrompt,
        ]
        .iter()
        .map(settle_for)
        .min()
        .unwrap_or(SETTLE);
        loop {
            let since = last_change.elapsed();
            let next = if self.text.clean().trim().is_empty() {
                if since >= silent {
                    return Ok(Screen::Nothing);
                }
                silent - since
            } else if since < soonest {
                soonest - since
            } else {
                let screen = classify(self.text.clean());
                let mut settle = settle_for(&screen);
                // At once only when the prompt is whole: getty and login end
                // theirs with a space, which may come in the next read.
                if settle.is_zero()
                    && matches!(screen, Screen::LoginPrompt | Screen::PasswordPrompt)
                    && !self.text.clean().ends_with(' ')
                {
                    settle = PROMPT_END_WAIT;
                }
                let actionable = !matches!(screen, Screen::Unknown | Screen::Nothing);
                if since >= settle && (actionable || since >= QUIET) {
                    return Ok(screen);
                }
                if since < settle {
                    settle - since
                } else {
                    QUIET - since
                }
            };
            let left = wait.left();
            if left.is_zero() {
                return Err(wait.timeout(session));
            }
            match self.pull_for(session, next.min(left)).await {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::Eof { .. }) => {
                    // A console that closes right after its last words
                    // (`Login incorrect`…) still said them.
                    let screen = classify(self.text.clean());
                    if !matches!(screen, Screen::Unknown | Screen::Nothing) {
                        return Ok(screen);
                    }
                    return Err(Error::eof(&wait.awaited, session.tail()));
                }
                Err(e) => return Err(e),
            }
            self.text.keep_tail(64 * 1024);
            if self.text.clean().len() != seen {
                seen = self.text.clean().len();
                last_change = Instant::now();
            }
        }
    }

    /// Leaves the console at a login prompt: restores the kernel log level,
    /// then `exit` until a login prompt shows (nested shells need several).
    /// A console that closes instead (a local `exec:` shell) counts as done.
    pub(crate) async fn logout(mut self, session: &mut Session) -> Result<()> {
        self.leave(session).await
    }

    async fn leave(&mut self, session: &mut Session) -> Result<()> {
        self.leave_within(session, Duration::from_secs(30))
            .await
            .map(|_| ())
    }

    /// [`ShellState::leave`] within `within`, saying how the logout was proven.
    async fn leave_within(&mut self, session: &mut Session, within: Duration) -> Result<LoggedOut> {
        if !self.logged_in {
            return Ok(LoggedOut::AtLogin);
        }
        self.restore_kernel(session).await;
        session.mark(&format!("shell: logout {}", self.user));
        self.logged_in = false;
        let wait = Wait::new(within, "a login prompt after `exit`".into());
        self.type_line(session, command::EXIT_LINE).await?;
        // Type `exit` again at a shell prompt (a nested shell), or after
        // 10 s of unrecognised quiet. Not sooner: getty is slow to come back
        // on a loaded instance, and an early second `exit` lands at `login:`
        // as a user name.
        let mut exits = 1;
        let mut last_exit = Instant::now();
        loop {
            let logged_out = |s: &Screen| match s {
                Screen::LoginPrompt | Screen::SessionEnded => Duration::ZERO,
                _ => SETTLE,
            };
            match self.observe_for(session, &wait, QUIET, &logged_out).await {
                Ok(Screen::LoginPrompt | Screen::LoginIncorrect) => {
                    session.mark("shell: logged out");
                    return Ok(LoggedOut::AtLogin);
                }
                Ok(Screen::SessionEnded) => {
                    session.mark("shell: logged out (its login session ended)");
                    return Ok(LoggedOut::SessionEnded);
                }
                Ok(screen)
                    if exits < MAX_EXITS
                        && (screen == Screen::ShellPrompt
                            || (matches!(screen, Screen::Unknown | Screen::Nothing)
                                && last_exit.elapsed() >= EXIT_AGAIN_AFTER)) =>
                {
                    self.type_line(session, command::EXIT_LINE).await?;
                    exits += 1;
                    last_exit = Instant::now();
                }
                // A shell that `exit` does not end (`exit` redefined, more
                // nested shells than we exit): waiting longer changes nothing.
                Ok(Screen::ShellPrompt) => {
                    return Err(Error::login(format!(
                        "the console stays at a shell prompt after {MAX_EXITS} `exit`s; \
                         log it out by hand (`console`)"
                    )))
                }
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::Eof { .. }) => {
                    session.mark("shell: logged out (the console closed)");
                    return Ok(LoggedOut::Closed);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn restore_kernel(&mut self, session: &mut Session) {
        let Some(level) = self.saved_kernel_level.take() else {
            return;
        };
        let sudo = if self.is_root() { "" } else { "sudo -n " };
        let cmd = format!("{sudo}dmesg -n {level}");
        if let Err(e) = self
            .run_with_timeout(session, &cmd, Duration::from_secs(15))
            .await
        {
            tracing::warn!("could not restore the kernel console log level {level}: {e}");
        }
    }
}

/// The error for a console that went back to its login prompt (or closed)
/// right after the password, with no `Login incorrect`: the account's shell
/// ended at once.
fn no_shell(spec: &LoginSpec) -> Error {
    Error::login(format!(
        "the console showed its login prompt again (or closed) right after the password for {}, \
         without a shell: the account's login shell ended at once (an account whose shell is /bin/false \
         or /usr/sbin/nologin refuses logins); log in as an account with a shell \
         (`--login-user`) or give this one a shell. Not retried, to avoid a lockout",
        spec.user
    ))
}

fn classify_tail_is_login(text: &str) -> bool {
    matches!(classify(text), Screen::LoginPrompt | Screen::LoginIncorrect)
        && text.trim_end().ends_with("login:")
}
