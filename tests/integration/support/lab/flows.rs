//! The console conversations recorded into `fixtures/lab-*.cast` and
//! replayed from them.
//!
//! Each flow is the exact sequence of sends and expects that was recorded
//! from a live lab VM, so a replay test runs the same function against
//! `replay:fixtures/…` and meets exactly the console it met live. Every
//! send is deterministic (no timing-dependent nudges).

use std::time::Duration;

use ec2_serial_expect::lab::console::{self, CommandResult, LOGIN_PROMPT};
use ec2_serial_expect::{Error, ErrorKind, Pattern, Result, Secret, Session};

/// Login, then logout.
pub const LOGIN: &str = "lab-login.cast";
/// A wrong password, refused; then the right one.
pub const FAILED_LOGIN: &str = "lab-failed-login.cast";
/// Login, one command with its output and status, logout.
pub const COMMAND: &str = "lab-command.cast";
/// Login, `sudo reboot`, the whole boot log up to the next `login:`.
pub const REBOOT: &str = "lab-reboot.cast";

/// The command of the [`COMMAND`] flow.
pub const COMMAND_LINE: &str = "stat -c '%a %U %G %n' /home/ec2-user /home/ec2-user/.ssh; uname -s";

/// Logs in as ec2-user and out again.
pub async fn login(session: &mut Session, password: &Secret) -> Result<()> {
    console::login(session, "ec2-user", password).await?;
    console::logout(session).await
}

/// Tries a wrong password, then the right one at the `login:` that follows,
/// and logs out (leaving the getty fresh); returns the refusal.
pub async fn failed_login(session: &mut Session, wrong: &Secret, right: &Secret) -> Result<Error> {
    let refusal = match console::login(session, "ec2-user", wrong).await {
        Ok(()) => return Err(Error::problems("the wrong password was accepted")),
        Err(e) if matches!(e.kind(), ErrorKind::Login(_)) => e,
        Err(e) => return Err(e),
    };
    console::answer_login(session, "ec2-user", right).await?;
    console::logout(session).await?;
    Ok(refusal)
}

/// Logs in, runs [`COMMAND_LINE`], logs out.
pub async fn command(session: &mut Session, password: &Secret) -> Result<CommandResult> {
    console::login(session, "ec2-user", password).await?;
    let result = console::run(session, COMMAND_LINE, Duration::from_secs(30)).await?;
    console::logout(session).await?;
    Ok(result)
}

/// Logs in, reboots, and returns the console text from the reboot to `login:`.
pub async fn reboot(session: &mut Session, password: &Secret) -> Result<String> {
    console::login(session, "ec2-user", password).await?;
    session.send_line("sudo reboot").await?;
    let down = session
        .expect_exact("reboot: Restarting system", Some(Duration::from_secs(300)))
        .await?;
    let up = session
        .expect(
            &[Pattern::regex(LOGIN_PROMPT)],
            Some(Duration::from_secs(600)),
        )
        .await?;
    Ok(format!(
        "{}{}{}{}",
        down.before, down.text, up.before, up.text
    ))
}

/// A session replaying the transcript at `path` (no new recording).
pub async fn replay(path: &std::path::Path) -> Session {
    let target: ec2_serial_expect::Target = format!("replay:{}", path.display())
        .parse()
        .expect("a replay target");
    console::open(&target, None)
        .await
        .unwrap_or_else(|e| panic!("opening the replay of {}: {e}", path.display()))
}
