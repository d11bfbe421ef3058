//! Running commands as root through `sudo`.
//!
//! Every command runs as `sudo -n sh -c 'CMD'` inside the usual markers:
//! `-n` never lets sudo wait at a password prompt with stdin closed. The
//! first command is simply tried (no `sudo -n true` probe first: with
//! NOPASSWD, the usual case on a cloud instance, the probe cost one more
//! sudo, about 0.5 s on an emulated machine, for nothing). When it exits 1
//! and sudo refused it (`a password is required`, or, since sudo translates
//! that message, `sudo -n true` failing too: no NOPASSWD, or a credential
//! cache that expired mid-session), `sudo -v` runs on the tty (not with
//! stdin closed, so it can ask) and its `[sudo] password for …:` prompt gets
//! the login password, once: a second prompt means the password was
//! refused, and Ctrl-C ends sudo's retries before they count against the
//! account. Then the command runs again. A root login skips sudo entirely.

use std::time::Duration;

use super::command::{self, quote};
use super::screen::{classify, Screen};
use super::{CommandOutput, ShellState, Wait};
use crate::error::{Error, Result};
use crate::expect::Session;

/// How long `sudo -v` may take (PAM can be slow on a fresh boot).
const AUTH_TIMEOUT: Duration = Duration::from_secs(60);
/// What sudo says when the credential cache is empty and `-n` forbids asking.
const NEEDS_PASSWORD: &str = "sudo: a password is required";
/// Noise sudo prints on instances whose hostname does not resolve.
const RESOLVE_WARNING: &str = "sudo: unable to resolve host";

impl ShellState {
    /// Runs `cmd` as root: directly in a root shell, else with `sudo`.
    /// Errors: sudo missing, the user not in sudoers, or the password
    /// refused → [`ErrorKind::Login`](crate::ErrorKind::Login) (exit 4), with a message saying which.
    pub(crate) async fn sudo(&mut self, session: &mut Session, cmd: &str) -> Result<CommandOutput> {
        self.ensure_logged_in()?;
        if self.is_root() {
            return self.run(session, cmd).await;
        }
        self.sudo_line(session, &format!("sudo -n sh -c {}", quote(cmd)))
            .await
    }

    /// Runs `program` (a fixed command line: a program and its arguments)
    /// as root with `input` as its standard input, one line. The login
    /// shell's own `printf` feeds it, so `input` is in no process's argv
    /// and not in sudo's log (which records `program` only).
    pub(crate) async fn sudo_with_input(
        &mut self,
        session: &mut Session,
        input: &str,
        program: &str,
    ) -> Result<CommandOutput> {
        self.ensure_logged_in()?;
        let feed = format!("printf '%s\\n' {} |", quote(input));
        if self.is_root() {
            return self.run(session, &format!("{feed} {program}")).await;
        }
        self.sudo_line(session, &format!("{feed} sudo -n {program}"))
            .await
    }

    /// Runs `line` (which calls `sudo -n`), renewing sudo's credentials
    /// and running it again when sudo asks for a password.
    async fn sudo_line(&mut self, session: &mut Session, line: &str) -> Result<CommandOutput> {
        let mut out = self.run(session, line).await?;
        if out.status == 127 && !self.has_sudo(session).await? {
            return Err(Error::login(format!(
                "sudo is not installed on {}; log in as root instead",
                session.describe()
            )));
        }
        // Status 1 is sudo's refusal or the command's own. sudo translates
        // `a password is required` (LANG=de_DE: `Ein Passwort ist
        // notwendig`), so unless it said so in English, sudo itself is asked.
        let refused = out.status == 1
            && (out.output.contains(NEEDS_PASSWORD) || !self.sudo_works(session).await?);
        if refused {
            self.authenticate_sudo(session).await?;
            // Now `sudo -n` works: quiet the kernel if login could not.
            if self.quiet_kernel && self.saved_kernel_level.is_none() {
                self.quiet_kernel(session).await;
            }
            out = self.run(session, line).await?;
        }
        Ok(separate_sudo_warnings(out))
    }

    /// Whether `sudo -n` runs a command now (no password needed).
    async fn sudo_works(&mut self, session: &mut Session) -> Result<bool> {
        Ok(self.run(session, "sudo -n true").await?.success())
    }

    /// Whether the shell finds a `sudo` (asked only when a sudo command
    /// exits 127, which its command may also do).
    async fn has_sudo(&mut self, session: &mut Session) -> Result<bool> {
        Ok(self
            .run(session, "command -v sudo >/dev/null")
            .await?
            .success())
    }

    /// Runs `sudo -v`, answering its password prompt once.
    async fn authenticate_sudo(&mut self, session: &mut Session) -> Result<()> {
        session.mark("shell: sudo asks for a password");
        self.runs += 1;
        let n = self.runs;
        let plan = command::plan("", n);
        let line = format!(
            "printf '%s\\n' \"__ESX\"\"_B{n}\"; sudo -v; printf '\\n%s %s\\n' \"__ESX\"\"_E{n}\" \"$?\""
        );
        let wait = Wait::new(AUTH_TIMEOUT, "the end of `sudo -v`".into());
        self.text.clear_clean();
        session.send_line(&line).await?;
        self.read_until(session, &plan.start, &wait).await?;
        let mut said = String::new();
        let mut answered = false;
        let status = loop {
            if let Some(caps) = plan.end.captures(self.text.clean()) {
                let status: i32 = caps[1].parse().unwrap_or(-1);
                let end = caps.get(0).map_or(0, |m| m.end());
                said.push_str(&self.text.take_clean(end));
                break status;
            }
            if classify(self.text.clean()) == Screen::PasswordPrompt {
                let shown = self.text.take_clean(self.text.clean().len());
                said.push_str(&shown);
                if answered {
                    // A second prompt: refused. Stop sudo's retries.
                    session.send("\x03").await?;
                } else {
                    session.send_secret(&self.password).await?;
                    session.send("\r").await?;
                    answered = true;
                }
            }
            self.pull(session, &wait).await?;
        };
        self.read_until(session, command::prompt_regex(), &wait)
            .await?;
        if status == 0 {
            return Ok(());
        }
        Err(sudo_refusal(&self.user, &session.scrub(&said)))
    }
}

/// The error for a failed `sudo -v`, from what sudo said.
fn sudo_refusal(user: &str, said: &str) -> Error {
    let why = if said.contains("not in the sudoers file")
        || said.contains("may not run sudo")
        || said.contains("is not allowed")
    {
        format!("{user} may not use sudo (not in the sudoers file); log in as a user who may, or as root")
    } else if said.contains("incorrect password") || said.contains("Sorry, try again") {
        format!("sudo refused the password for {user} (not retried, to avoid a lockout)")
    } else {
        let last = said
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with("__ESX_"))
            .unwrap_or("(no message)")
            .to_string();
        format!("sudo failed for {user}: {last}")
    };
    Error::login(why)
}

/// Moves `sudo: unable to resolve host …` lines from the output to warnings.
fn separate_sudo_warnings(mut out: CommandOutput) -> CommandOutput {
    if !out.output.contains(RESOLVE_WARNING) {
        return out;
    }
    let mut kept = String::with_capacity(out.output.len());
    for line in out.output.split_inclusive('\n') {
        if line.starts_with(RESOLVE_WARNING) {
            out.warnings.push(line.trim_end().to_string());
        } else {
            kept.push_str(line);
        }
    }
    out.output = kept;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_warnings_move_out_of_the_output() {
        let out = CommandOutput {
            output: "sudo: unable to resolve host ip-10-0-0-1: Name or service not known\nroot\n"
                .into(),
            status: 0,
            kernel_lines: vec![],
            warnings: vec![],
        };
        let out = separate_sudo_warnings(out);
        assert_eq!(out.output, "root\n");
        assert_eq!(out.warnings.len(), 1);
    }

    #[test]
    fn refusals_say_which() {
        let e = sudo_refusal(
            "bob",
            "[sudo] password for bob: \nbob is not in the sudoers file.\n",
        );
        assert!(e.to_string().contains("not in the sudoers"), "{e}");
        assert_eq!(e.exit_code().code(), 4);
        let e = sudo_refusal(
            "bob",
            "Sorry, try again.\nsudo: 1 incorrect password attempt\n",
        );
        assert!(e.to_string().contains("refused the password"), "{e}");
    }
}
