//! SSH to the lab VM with the system `ssh` client, the way a user would.
//!
//! The lab breaks and checks SSH key login exactly as a user meets it: the
//! real OpenSSH client against the guest's real sshd. Options make it
//! scriptable and deterministic: no prompts (`BatchMode`), no host key
//! bookkeeping (every boot is the same throwaway VM), only the lab key, only
//! public-key authentication, and no user `~/.ssh/config`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};

/// How to reach a VM's sshd.
#[derive(Debug, Clone, Serialize)]
pub struct SshTarget {
    /// Loopback address QEMU forwards from.
    pub host: String,
    /// The forwarded port.
    pub port: u16,
    /// The login user.
    pub user: String,
    /// The private key.
    pub key: PathBuf,
}

/// What a key login attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLogin {
    /// The key was accepted and a command ran.
    Accepted,
    /// sshd refused the key: the "Server refused our key" state. Holds ssh's message.
    Refused(String),
    /// sshd could not be reached or hung up (still booting, restarting).
    Unreachable(String),
}

impl SshTarget {
    /// The options every lab ssh call uses.
    fn options(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-F", "/dev/null", "-T"].map(String::from).to_vec();
        for option in [
            "BatchMode=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "IdentitiesOnly=yes",
            "PreferredAuthentications=publickey",
            "ConnectTimeout=20",
            // INFO, not ERROR: PAM's "Your account has expired" is an INFO line.
            "LogLevel=INFO",
        ] {
            args.push("-o".into());
            args.push(option.into());
        }
        args.extend([
            "-i".into(),
            self.key.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            format!("{}@{}", self.user, self.host),
        ]);
        args
    }

    /// The command a user types to log in (shown by `lab up`).
    pub fn command_line(&self) -> String {
        format!(
            "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null {}@{}",
            self.key.display(),
            self.port,
            self.user,
            self.host
        )
    }

    /// The same target as another user.
    pub fn as_user(&self, user: &str) -> SshTarget {
        SshTarget {
            user: user.to_string(),
            ..self.clone()
        }
    }

    /// Runs `command` on the VM; returns the exit code, stdout and stderr.
    pub async fn run(&self, command: &str) -> Result<SshOutput> {
        let output = tokio::process::Command::new("ssh")
            .args(self.options())
            .arg(command)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| Error::io("running ssh (apt-get install openssh-client)", e))?;
        Ok(SshOutput {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: without_host_key_warnings(&String::from_utf8_lossy(&output.stderr)),
        })
    }

    /// Tries a key login once.
    pub async fn probe(&self) -> Result<KeyLogin> {
        let out = self.run("true").await?;
        Ok(classify(&out))
    }

    /// Tries until sshd answers (accepting or refusing) or `within` passes;
    /// bridges sshd starting or restarting.
    pub async fn probe_until_answered(&self, within: Duration) -> Result<KeyLogin> {
        let deadline = Instant::now() + within;
        loop {
            let found = self.probe().await?;
            if !matches!(found, KeyLogin::Unreachable(_)) || Instant::now() >= deadline {
                return Ok(found);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// What one ssh command returned.
#[derive(Debug, Clone)]
pub struct SshOutput {
    /// The remote command's exit code (255: ssh itself failed).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error, trimmed.
    pub stderr: String,
}

/// Drops the "Permanently added … to the list of known hosts" noise that
/// every connection prints with a throwaway known-hosts file.
fn without_host_key_warnings(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("Warning: Permanently added"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Sorts an ssh result into accepted, refused or unreachable. An expired
/// account counts as refused: sshd accepts the key, then PAM's account
/// check denies the login and the connection closes.
pub fn classify(out: &SshOutput) -> KeyLogin {
    if out.status == 0 {
        KeyLogin::Accepted
    } else if out.stderr.contains("Permission denied") || out.stderr.contains("account has expired")
    {
        KeyLogin::Refused(out.stderr.clone())
    } else {
        KeyLogin::Unreachable(if out.stderr.is_empty() {
            format!("ssh exited with {}", out.status)
        } else {
            out.stderr.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: i32, stderr: &str) -> SshOutput {
        SshOutput {
            status,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn refusal_and_unreachable_are_told_apart() {
        assert_eq!(classify(&out(0, "")), KeyLogin::Accepted);
        assert!(matches!(
            classify(&out(
                255,
                "ec2-user@127.0.0.1: Permission denied (publickey,password)."
            )),
            KeyLogin::Refused(_)
        ));
        assert!(matches!(
            classify(&out(
                255,
                "ssh: connect to host 127.0.0.1 port 2: Connection refused"
            )),
            KeyLogin::Unreachable(_)
        ));
    }

    #[test]
    fn an_expired_account_is_a_refusal_and_warnings_are_dropped() {
        let stderr = without_host_key_warnings(
            "Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.\n\
             Your account has expired; please contact your system administrator.\n\
             Connection closed by 127.0.0.1 port 2222\n",
        );
        assert!(!stderr.contains("Permanently added"));
        assert!(matches!(classify(&out(255, &stderr)), KeyLogin::Refused(_)));
    }

    #[test]
    fn options_pin_the_key_and_skip_user_config() {
        let t = SshTarget {
            host: "127.0.0.1".into(),
            port: 2222,
            user: "ec2-user".into(),
            key: "/k".into(),
        };
        let opts = t.options().join(" ");
        assert!(opts.starts_with("-F /dev/null"));
        assert!(opts.contains("BatchMode=yes") && opts.contains("IdentitiesOnly=yes"));
        assert!(opts.ends_with("-i /k -p 2222 ec2-user@127.0.0.1"));
    }
}
