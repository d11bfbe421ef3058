//! Driving the lab's serial console with plain expect/send: wait for a
//! booting VM's `login:`, and a deliberately naive login/run/logout.
//!
//! Why this is not the [`crate::shell`] layer: the lab's recorded fixtures
//! (`fixtures/lab-*.cast`) are transcripts of *this* exchange — what a
//! hand-written Expect script types — and replays compare every byte sent,
//! so the driver must keep typing exactly that; and it is the engine's
//! end-to-end check on a real getty, independent of the shell layer it would
//! otherwise be checking with itself. Everything that *works* on the lab's
//! console (the scenarios' repairs, the doctor) goes through [`crate::shell`].

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::expect::{Pattern, Session};
use crate::secret::Secret;
use crate::target::Target;

/// The getty's prompt (`lab-instance login: `).
pub const LOGIN_PROMPT: &str = r"login: $";
/// The password prompt of `login`.
pub const PASSWORD_PROMPT: &str = r"[Pp]assword: $";
/// A bash prompt: `user@host:dir$ ` (or `#` for root).
pub const SHELL_PROMPT: &str = r"[\w.-]+@[\w.-]+:[^\r\n]*[$#] $";
/// What `login` prints when it refuses (bad password, locked, expired).
const LOGIN_REFUSED: &str = r"Login incorrect|account has expired";
/// The exit-status line `run` appends; the command echo cannot match it.
const STATUS_MARK: &str = r"__ESE_RC=(\d+)";
/// How long each step of a login may take under software emulation.
const STEP: Duration = Duration::from_secs(30);

/// Opens a session to `target`, recording to `transcript` when given.
pub async fn open(target: &Target, transcript: Option<&Path>) -> Result<Session> {
    crate::connect::Console::open(target)
        .transcript(transcript.map(Path::to_path_buf))
        .session()
        .await
}

/// Waits up to `total` for the login prompt of a booting VM, nudging the
/// getty with Enter every 15 s; `alive` says whether the VM still runs.
pub async fn wait_for_login(
    session: &mut Session,
    total: Duration,
    alive: impl Fn() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + total;
    let login = [Pattern::regex(LOGIN_PROMPT)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match session
            .expect(&login, Some(left.min(Duration::from_secs(15))))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_timeout() && !alive() => {
                return Err(Error::problems(format!(
                    "the lab VM stopped while booting; last console output: {:?}",
                    session.tail()
                )))
            }
            Err(e) if e.is_timeout() && Instant::now() >= deadline => {
                return Err(Error::timeout(
                    login[0].describe(),
                    total.as_secs_f64(),
                    session.tail(),
                ))
            }
            Err(e) if e.is_timeout() => session.send("\r").await?,
            Err(e) => return Err(e),
        }
    }
}

/// Logs in on the console: wake it to a `login:` prompt, then answer it.
/// Ends at a shell prompt; a refused login is [`ErrorKind::Login`](crate::ErrorKind::Login).
pub async fn login(session: &mut Session, user: &str, password: &Secret) -> Result<()> {
    wake_to_login_prompt(session).await?;
    answer_login(session, user, password).await
}

/// Brings the console to a fresh `login:` prompt from whatever state it is
/// in: at the getty (Enter re-prompts), half-way through a login (after a
/// failed one, `login` takes an empty line as a user name and asks for a
/// password: an empty password ends that), or at a shell left logged in.
pub async fn wake_to_login_prompt(session: &mut Session) -> Result<()> {
    session.send("\r").await?;
    let states = [
        Pattern::regex(LOGIN_PROMPT),
        Pattern::regex(PASSWORD_PROMPT),
        Pattern::regex(SHELL_PROMPT),
    ];
    for _ in 0..3 {
        match session.expect(&states, Some(STEP)).await?.index {
            0 => return Ok(()),
            1 => session.send("\r").await?,
            _ => session.send_line("exit").await?,
        }
    }
    Err(Error::login(format!(
        "the console did not come back to a login prompt; last output: {:?}",
        session.tail()
    )))
}

/// Answers a `login:` prompt that was just seen: the user, the password.
/// Ends at a shell prompt, or fails with [`ErrorKind::Login`](crate::ErrorKind::Login) back at `login:`.
pub async fn answer_login(session: &mut Session, user: &str, password: &Secret) -> Result<()> {
    session.send_line(user).await?;
    session
        .expect(&[Pattern::regex(PASSWORD_PROMPT)], Some(STEP))
        .await?;
    session.send_secret(password).await?;
    session.send("\r").await?;
    let after = [Pattern::regex(SHELL_PROMPT), Pattern::regex(LOGIN_REFUSED)];
    let m = session.expect(&after, Some(STEP)).await?;
    if m.index == 1 {
        // Wait for the next `login:` so the console is left at a prompt.
        let _ = session
            .expect(&[Pattern::regex(LOGIN_PROMPT)], Some(STEP))
            .await;
        return Err(Error::login(format!(
            "the console refused the login of {user}: {:?}",
            m.text
        )));
    }
    Ok(())
}

/// What a console command printed and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// Output lines (the echoed command line removed), `\r\n` as `\n`.
    pub output: String,
    /// `$?` after the command.
    pub status: i32,
}

/// Runs `command` at the shell prompt and waits for its status and the next prompt.
pub async fn run(session: &mut Session, command: &str, timeout: Duration) -> Result<CommandResult> {
    // `"__ESE_RC""=$?"` prints __ESE_RC=N but its echo does not match STATUS_MARK.
    session
        .send_line(&format!("{command}; echo \"__ESE_RC\"\"=$?\""))
        .await?;
    let m = session
        .expect(&[Pattern::regex(STATUS_MARK)], Some(timeout))
        .await?;
    let status = m.groups[1]
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1);
    session
        .expect(&[Pattern::regex(SHELL_PROMPT)], Some(STEP))
        .await?;
    let output = m
        .before
        .split_once('\n')
        .map_or("", |(_echo, rest)| rest)
        .replace('\r', "");
    Ok(CommandResult { output, status })
}

/// Logs out and waits for the getty's next `login:`.
pub async fn logout(session: &mut Session) -> Result<()> {
    session.send_line("exit").await?;
    session
        .expect(&[Pattern::regex(LOGIN_PROMPT)], Some(STEP))
        .await?;
    Ok(())
}
