//! The ways to break SSH key login on purpose ("Server refused our key"),
//! and the manual repair of each.
//!
//! Every scenario breaks the running VM over SSH as `ec2-user`, the way a
//! user breaks a real instance by accident (or as `lab-admin` where
//! ec2-user's own session is in the way: renaming or deleting ec2-user),
//! and is then confirmed: the lab key must now be refused for ec2-user. Each has a documented repair typed on the serial
//! console (the only way back in on a real instance), which the tests run
//! to prove the scenario is exactly what it claims. `{pubkey}` in a repair
//! stands for the lab's public key line.
//!
//! Measured on the lab's sshd (Debian 12, OpenSSH 9.2, `UsePAM yes`):
//! - `passwd -l` alone does NOT stop key login: sshd checks for a locked
//!   password only when PAM is off, and `pam_unix`'s account check looks at
//!   expiry, not at the `!` in the hash. Console (password) login does fail.
//! - An expired account does stop it, and that is what
//!   `usermod --lock --expiredate 1` does (the way `passwd(1)` says to
//!   disable an account); `locked-account` breaks it that way. sshd then
//!   *accepts* the key ("Server accepts key"), PAM's account phase denies
//!   the session, and the client prints "Your account has expired; please
//!   contact your system administrator." and "Connection closed". Password
//!   login on the console fails for that user too, so the repair logs in as
//!   the second admin, `lab-admin`.
//! - A home owned by root with mode 0755 is accepted by `StrictModes` (root
//!   may own the path); `home-owner` is refused because the home keeps mode
//!   0700, so sshd, reading as the user, cannot reach `~/.ssh`.
//! - `StrictModes` walks from `authorized_keys` up to the home directory and
//!   stops there: `/home` itself, even 0777 and owned by another user, is not
//!   checked. `home-root-owned-group-writable` therefore breaks the home
//!   directory (root-owned, group-writable), which is refused.
//! - Debian's sshd allows a group-writable home when the group is the user's
//!   own private group (`ec2-user:ec2-user 0770` is accepted).

use std::time::Duration;

use serde::Serialize;

use super::ssh::KeyLogin;
use super::vm::VmInfo;
use crate::error::{Error, Result};
use crate::expect::Session;
use crate::shell::{LoginSpec, Shell};

/// One way to break key login, and how to repair it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scenario {
    /// The name `lab break` takes.
    pub name: &'static str,
    /// One line for `lab break --list`.
    pub summary: &'static str,
    /// Who `lab break` runs it as over SSH: ec2-user, as a user breaks a
    /// real instance by accident, or lab-admin where ec2-user's own session
    /// would be in the way (renaming or deleting ec2-user).
    pub break_user: &'static str,
    /// What `lab break` runs over SSH as `break_user`.
    pub break_command: &'static str,
    /// The console user the repair logs in as.
    pub repair_user: &'static str,
    /// What to type at the console's shell prompt to repair it; empty when
    /// no one can log in on the console ([`Effect::ConsoleLoginRefused`]).
    pub repair_commands: &'static [&'static str],
    /// What the break takes away.
    pub effect: Effect,
}

/// What a scenario takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// SSH key login as ec2-user ("Server refused our key"), confirmed by
    /// a refused probe.
    KeyRefused,
    /// Every console login: no password user is left, as on an AWS AMI, so
    /// only the GRUB rescue path reaches a shell. SSH keys still work (with
    /// `UsePAM yes` a locked password does not stop them); the break
    /// command itself confirms that no account has a usable password.
    ConsoleLoginRefused,
}

/// All scenarios, in `--list` order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "home-777",
        summary: "home directory made world-writable (chmod 777 ~)",
        break_user: "ec2-user",
        break_command: "chmod 777 /home/ec2-user",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &["sudo chmod 700 /home/ec2-user"],
    },
    Scenario {
        name: "ssh-dir-perms",
        summary: "~/.ssh made world-writable (chmod 777 ~/.ssh)",
        break_user: "ec2-user",
        break_command: "chmod 777 /home/ec2-user/.ssh",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &["chmod 700 /home/ec2-user/.ssh"],
    },
    Scenario {
        name: "authorized-keys-perms",
        summary: "authorized_keys made world-writable (chmod 666)",
        break_user: "ec2-user",
        break_command: "chmod 666 /home/ec2-user/.ssh/authorized_keys",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &["chmod 600 /home/ec2-user/.ssh/authorized_keys"],
    },
    Scenario {
        name: "home-owner",
        summary: "home directory handed to root (sudo chown root: ~), sshd cannot read ~/.ssh",
        break_user: "ec2-user",
        break_command: "sudo chown root:root /home/ec2-user",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &["sudo chown ec2-user:ec2-user /home/ec2-user"],
    },
    Scenario {
        name: "ssh-dir-owner",
        summary: "~/.ssh and authorized_keys owned by another user (lab-admin)",
        break_user: "ec2-user",
        break_command: "sudo chown -R lab-admin:lab-admin /home/ec2-user/.ssh",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &["sudo chown -R ec2-user:ec2-user /home/ec2-user/.ssh"],
    },
    Scenario {
        name: "missing-authorized-keys",
        summary: "~/.ssh/authorized_keys deleted",
        break_user: "ec2-user",
        break_command: "rm /home/ec2-user/.ssh/authorized_keys",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &[
            "printf '%s\\n' '{pubkey}' > /home/ec2-user/.ssh/authorized_keys",
            "chmod 600 /home/ec2-user/.ssh/authorized_keys",
        ],
    },
    Scenario {
        name: "missing-key",
        summary: "the user's key line removed from authorized_keys (file still there)",
        break_user: "ec2-user",
        break_command: "sed -i '/ ec2-serial-expect-lab$/d' /home/ec2-user/.ssh/authorized_keys",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &["printf '%s\\n' '{pubkey}' >> /home/ec2-user/.ssh/authorized_keys"],
    },
    Scenario {
        name: "home-root-owned-group-writable",
        summary: "home directory handed to root and made group-writable (chown root:, chmod 775)",
        break_user: "ec2-user",
        break_command: "sudo chown root:root /home/ec2-user && sudo chmod 775 /home/ec2-user",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &[
            "sudo chown ec2-user:ec2-user /home/ec2-user && sudo chmod 700 /home/ec2-user",
        ],
    },
    Scenario {
        name: "locked-account",
        summary:
            "account disabled: usermod --lock --expiredate 1 (passwd -l alone does not stop keys)",
        break_user: "ec2-user",
        break_command: "sudo usermod --lock --expiredate 1 ec2-user",
        repair_user: "lab-admin",
        effect: Effect::KeyRefused,
        repair_commands: &["sudo usermod --unlock --expiredate '' ec2-user"],
    },
    Scenario {
        name: "sshd-strictmodes-config",
        summary: "sshd_config AuthorizedKeysFile misspelt (.ssh/authorised_keys), sshd restarted",
        break_user: "ec2-user",
        break_command:
            "sudo sed -i 's|^#\\?AuthorizedKeysFile\\(\\s*\\).ssh/authorized_keys |AuthorizedKeysFile\\1.ssh/authorised_keys |' \
             /etc/ssh/sshd_config && sudo systemctl restart ssh",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &[
            "sudo sed -i 's|authorised_keys|authorized_keys|' /etc/ssh/sshd_config",
            "sudo systemctl restart ssh",
        ],
    },
    Scenario {
        name: "wrong-user",
        summary: "ec2-user renamed to admin, as Debian's AMIs name their default user: ssh ec2-user@ is the wrong name",
        break_user: "lab-admin",
        // usermod refuses while ec2-user has processes: end its sessions,
        // then wait for its user manager to go.
        break_command: "sudo sh -c 'loginctl terminate-user ec2-user 2>/dev/null; i=0; \\
             until usermod -l admin -d /home/admin -m ec2-user 2>/dev/null; do \\
             i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 0.5; done; groupmod -n admin ec2-user'",
        repair_user: "lab-admin",
        effect: Effect::KeyRefused,
        repair_commands: &[
            "sudo usermod -l ec2-user -d /home/ec2-user -m admin && sudo groupmod -n ec2-user admin",
        ],
    },
    Scenario {
        name: "deleted-user",
        summary: "ec2-user deleted (userdel, home left behind; its shadow line kept in /root for the repair)",
        break_user: "lab-admin",
        break_command: "sudo sh -c 'grep \"^ec2-user:\" /etc/shadow > /root/ec2-user.shadow && userdel -f ec2-user'",
        repair_user: "lab-admin",
        effect: Effect::KeyRefused,
        repair_commands: &[
            "sudo useradd -M -d /home/ec2-user -u \"$(stat -c %u /home/ec2-user)\" -U -s /bin/bash ec2-user",
            "sudo usermod -p \"$(sudo cut -d: -f2 /root/ec2-user.shadow)\" ec2-user && sudo rm /root/ec2-user.shadow",
        ],
    },
    Scenario {
        name: "sha1-rsa",
        summary: "only an RSA key authorized, and its old client signs with SHA-1 ssh-rsa (refused since OpenSSH 8.8)",
        // The old client's attempt, made from the VM itself, leaves sshd's
        // refusal in the log as a real one would.
        break_user: "ec2-user",
        break_command: "ssh-keygen -q -t rsa -b 2048 -N '' -C old-rsa-client -f /home/ec2-user/old-rsa-key \\
             && cp /home/ec2-user/old-rsa-key.pub /home/ec2-user/.ssh/authorized_keys \\
             && { ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \\
                  -o IdentitiesOnly=yes -o PubkeyAcceptedAlgorithms=ssh-rsa -i /home/ec2-user/old-rsa-key \\
                  ec2-user@localhost true 2>/dev/null; [ $? = 255 ]; }",
        repair_user: "ec2-user",
        effect: Effect::KeyRefused,
        repair_commands: &[
            "printf '%s\\n' '{pubkey}' > /home/ec2-user/.ssh/authorized_keys && rm /home/ec2-user/old-rsa-key /home/ec2-user/old-rsa-key.pub",
        ],
    },
    Scenario {
        name: "no-password",
        summary: "every password locked, root's too (passwd -l), as on an AWS AMI: no console login, only the GRUB rescue path",
        // As lab-admin: ec2-user's own key may already be broken by another scenario.
        break_user: "lab-admin",
        break_command: "for u in root ec2-user lab-admin; do sudo passwd -q -l \"$u\" || exit 1; done; \
             ! sudo grep -q '^[^:]*:[^!*:][^:]*:' /etc/shadow",
        repair_user: "root",
        effect: Effect::ConsoleLoginRefused,
        repair_commands: &[],
    },
];

/// The scenario called `name`, or a usage error listing them all.
pub fn find(name: &str) -> Result<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        Error::usage(format!(
            "unknown lab scenario {name:?}; choose one of: {} (see `lab break --list`)",
            names.join(", ")
        ))
    })
}

impl Scenario {
    /// The repair commands with `{pubkey}` filled in.
    pub fn repair_lines(&self, public_key: &str) -> Vec<String> {
        self.repair_commands
            .iter()
            .map(|c| c.replace("{pubkey}", public_key.trim()))
            .collect()
    }
}

/// Breaks the VM over SSH, then confirms the break; returns what is now
/// refused (ssh's refusal, for a key scenario).
pub async fn break_over_ssh(vm: &VmInfo, scenario: &Scenario) -> Result<String> {
    let ssh = vm.ssh();
    let out = ssh
        .as_user(scenario.break_user)
        .run(scenario.break_command)
        .await?;
    if out.status != 0 {
        return Err(Error::problems(format!(
            "breaking {:?} failed: `{}` exited with {}: {}",
            scenario.name, scenario.break_command, out.status, out.stderr
        )));
    }
    // On disk now: a reset (`lab reset`, the GRUB path's power cycle) that
    // follows at once must not lose the break with the guest's page cache.
    // As lab-admin: the break may have taken ec2-user's key login.
    ssh.as_user(super::vm::ADMIN_USER).run("sync").await?;
    if scenario.effect == Effect::ConsoleLoginRefused {
        return Ok("no account has a usable password: console logins are refused".into());
    }
    match ssh.probe_until_answered(Duration::from_secs(30)).await? {
        KeyLogin::Refused(why) => Ok(why),
        KeyLogin::Accepted => Err(Error::problems(format!(
            "after breaking {:?} sshd still accepts the lab key",
            scenario.name
        ))),
        KeyLogin::Unreachable(why) => Err(Error::io(
            format!("sshd stopped answering after breaking {:?}", scenario.name),
            std::io::Error::other(why),
        )),
    }
}

/// Types the scenario's repair on the serial console through the shell
/// layer (log in, run each command, log out on every path); fails when a
/// command exits non-zero.
pub async fn repair_on_console(
    session: &mut Session,
    vm: &VmInfo,
    scenario: &Scenario,
) -> Result<()> {
    let password = vm.password()?;
    let public_key = std::fs::read_to_string(vm.key.with_extension("pub"))
        .map_err(|e| Error::io("reading the lab public key", e))?;
    session.mark(&format!("repair {}", scenario.name));
    let spec = LoginSpec::new(scenario.repair_user, password);
    Shell::scoped(session, &spec, async |shell| {
        shell.set_command_timeout(Duration::from_secs(60));
        for line in scenario.repair_lines(&public_key) {
            let result = shell.run(&line).await?;
            if !result.success() {
                return Err(Error::problems(format!(
                    "repair step `{line}` exited with {}: {}",
                    result.status,
                    result.output.trim()
                )));
            }
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_of_the_issue_is_there_once() {
        let wanted = [
            "home-777",
            "ssh-dir-perms",
            "authorized-keys-perms",
            "home-owner",
            "ssh-dir-owner",
            "missing-authorized-keys",
            "missing-key",
            "home-root-owned-group-writable",
            "locked-account",
            "sshd-strictmodes-config",
            "wrong-user",
            "deleted-user",
            "sha1-rsa",
            "no-password",
        ];
        for name in wanted {
            assert_eq!(find(name).unwrap().name, name);
        }
        assert_eq!(SCENARIOS.len(), wanted.len());
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let err = find("home-666").unwrap_err();
        assert_eq!(err.exit_code().code(), 2);
        assert!(err.to_string().contains("home-777"));
    }

    #[test]
    fn repairs_fill_in_the_public_key() {
        let lines = find("missing-key")
            .unwrap()
            .repair_lines("ssh-ed25519 AAAA ec2-serial-expect-lab\n");
        assert_eq!(
            lines,
            ["printf '%s\\n' 'ssh-ed25519 AAAA ec2-serial-expect-lab' >> /home/ec2-user/.ssh/authorized_keys"]
        );
    }
}
