//! Restarting the machine so that its boot, GRUB included, shows on the
//! console: EC2's `RebootInstances` for an instance, a command the user
//! names (`virsh reset vm1`, `ipmitool … power reset`, `ec2-serial-expect
//! lab reset --name N`), or the user's own hand.

use std::process::Stdio;
use std::time::Duration;

use super::RescueStep;
use crate::error::{Error, Result};

/// The longest a power-cycle command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What restarts the machine.
#[derive(Debug, Clone)]
pub(crate) enum PowerCycle {
    /// `RebootInstances` on an EC2 instance, with the account the console
    /// was opened with (the serial console session survives the reboot).
    Ec2 {
        /// The instance.
        instance_id: String,
        /// The AWS side: Region, credentials.
        options: crate::ec2::Ec2Options,
    },
    /// A program and its arguments, run without a shell.
    Command(Vec<String>),
    /// Nothing: the user restarts the machine when told
    /// ([`RescueStep::WaitingForReboot`]).
    Manual,
}

impl PowerCycle {
    /// `none` for [`PowerCycle::Manual`], else a command line split as a
    /// POSIX shell splits words (no shell runs it).
    pub(crate) fn parse(text: &str) -> Result<PowerCycle> {
        if text.trim() == "none" {
            return Ok(PowerCycle::Manual);
        }
        let words = shell_words::split(text).map_err(|e| {
            Error::usage(format!(
                "--power-cycle-command {text:?}: {e}; quote it as a shell would"
            ))
        })?;
        if words.is_empty() {
            return Err(Error::usage(
                "--power-cycle-command is empty: name the command that resets the machine \
                 (e.g. `virsh reset vm1`), or `none` to reboot it yourself",
            ));
        }
        Ok(PowerCycle::Command(words))
    }

    /// Restarts the machine (or tells the user to).
    pub(super) async fn run(&self, step: &(dyn Fn(RescueStep) + Sync)) -> Result<()> {
        let words = match self {
            PowerCycle::Manual => {
                step(RescueStep::WaitingForReboot);
                return Ok(());
            }
            PowerCycle::Ec2 {
                instance_id,
                options,
            } => return crate::ec2::reboot::reboot_instance(options, instance_id).await,
            PowerCycle::Command(words) => words,
        };
        let Some(program) = words.first() else {
            return Err(Error::usage(
                "the power-cycle command is empty: name the command that resets the machine",
            ));
        };
        let shown = shell_words::join(words);
        // Like an `exec:` console, it does not inherit the variables our
        // secrets come from (`--token-env`, `--password-env`).
        let child = tokio::process::Command::from(crate::secret::command(program))
            .args(&words[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::io(format!("running the power-cycle command `{shown}`"), e))?;
        let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| {
                Error::io(
                    format!("running the power-cycle command `{shown}`"),
                    std::io::Error::other(format!(
                        "it did not end within {} s",
                        COMMAND_TIMEOUT.as_secs()
                    )),
                )
            })?
            .map_err(|e| Error::io(format!("running the power-cycle command `{shown}`"), e))?;
        if output.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.stderr);
        Err(Error::io(
            format!(
                "the power-cycle command `{shown}` failed ({})",
                output.status
            ),
            std::io::Error::other(said.trim().to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell_and_none_means_by_hand() {
        assert!(matches!(
            PowerCycle::parse("none").unwrap(),
            PowerCycle::Manual
        ));
        assert!(matches!(
            PowerCycle::parse("virsh reset 'vm 1'").unwrap(),
            PowerCycle::Command(words) if words == ["virsh", "reset", "vm 1"]
        ));
        for bad in ["", "  ", "virsh 'reset"] {
            assert_eq!(PowerCycle::parse(bad).unwrap_err().exit_code().code(), 2);
        }
    }

    #[tokio::test]
    async fn a_failing_command_is_an_error_naming_it() {
        let err = PowerCycle::parse("sh -c 'echo no such vm >&2; exit 3'")
            .unwrap()
            .run(&|_| {})
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("no such vm"), "{text}");
        assert!(text.contains("power-cycle command"), "{text}");
    }
}
