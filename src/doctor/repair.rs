//! Repairs: the minimal root commands that undo one finding each.
//!
//! Every value that reaches a command is validated (user names by
//! [`UserName`], paths absolute and free of control characters, keys made of
//! key characters) and then shell-quoted anyway, so a hostile name or path
//! can never become a command. Config files are backed up before editing.

use base64::Engine;
use sha2::{Digest, Sha256};

use super::facts::{Scope, UserName};

/// One repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// `chown owner[:group]`; without a group, the owner's login group.
    Chown {
        /// The path.
        path: String,
        /// The new owner.
        owner: String,
        /// The new group.
        group: Option<String>,
    },
    /// `chmod mode` (octal or symbolic like `go-w`).
    Chmod {
        /// The path.
        path: String,
        /// The mode argument.
        mode: String,
    },
    /// Create a 0700 directory owned by the user.
    CreateDir {
        /// The path.
        path: String,
        /// The owner.
        user: UserName,
    },
    /// Create an empty 0600 file owned by the user.
    CreateFile {
        /// The path.
        path: String,
        /// The owner.
        user: UserName,
    },
    /// Convert CRLF line endings to LF (after a backup).
    StripCr {
        /// The key file.
        path: String,
    },
    /// Append a public key line.
    AppendKey {
        /// The key file.
        path: String,
        /// The public key line.
        key: String,
    },
    /// Unlock the account.
    Unlock(UserName),
    /// Remove the account's expiry date.
    Unexpire(UserName),
    /// Re-create a deleted account (`--create-user`): its own group, the
    /// administrators' groups for an AMI default user's name, bash, no password (`*`: key login only, not
    /// locked); adopting the home left behind, with its old user id when no
    /// account took it, or else making a new home.
    CreateUser {
        /// The account.
        user: UserName,
        /// Its home directory.
        home: String,
        /// Whether `home` exists and is kept as it is (`useradd -M`).
        adopt: bool,
        /// The user id to give it back.
        uid: Option<u32>,
        /// A group with the user's name is left: join it (`-g`) rather than
        /// make one (`-U` would fail).
        own_group: bool,
        /// Supplementary groups (`adm`, `sudo`/`wheel`), validated names.
        groups: Vec<String>,
    },
    /// Restart sshd.
    RestartSshd,
    /// Comment out config lines (`file:line:text`), after a backup, then reload sshd.
    CommentOutSshd {
        /// The keyword, for messages.
        keyword: String,
        /// `grep -Hn` lines naming the files and line numbers.
        lines: Vec<String>,
    },
    /// Generate missing host keys.
    HostKeys,
    /// Restore SELinux labels.
    Restorecon {
        /// The path.
        path: String,
    },
}

/// What the verification must look at again after `repairs`: the files
/// always, the account after an unlock or unexpire, sshd after an sshd
/// repair, SELinux labels after any repair (a file a repair creates or
/// moves gets one); never mounts, disk space or the log, which no repair
/// changes.
pub fn touched(repairs: &[&Repair]) -> Scope {
    let any = |f: fn(&Repair) -> bool| repairs.iter().any(|r| f(r));
    Scope {
        account: any(|r| {
            matches!(
                r,
                Repair::Unlock(_) | Repair::Unexpire(_) | Repair::CreateUser { .. }
            )
        }),
        sshd: any(|r| {
            matches!(
                r,
                Repair::RestartSshd | Repair::CommentOutSshd { .. } | Repair::HostKeys
            )
        }),
        selinux: !repairs.is_empty(),
        ..Scope::FILES
    }
}

fn q(s: &str) -> String {
    shell_words::quote(s).into_owned()
}

/// A path safe to put in a command: absolute, no control characters.
pub fn safe_path(path: &str) -> bool {
    path.starts_with('/') && !path.chars().any(|c| c.is_control())
}

impl Repair {
    /// Whether every value in the repair passed validation.
    pub fn is_safe(&self) -> bool {
        match self {
            Repair::Chown { path, owner, group } => {
                safe_path(path)
                    && UserName::parse(owner).is_ok()
                    && group.as_ref().is_none_or(|g| UserName::parse(g).is_ok())
            }
            Repair::Chmod { path, mode } => {
                safe_path(path)
                    && mode
                        .chars()
                        .all(|c| c.is_ascii_digit() || "ugoa+-=rwx".contains(c))
            }
            Repair::CreateDir { path, .. }
            | Repair::CreateFile { path, .. }
            | Repair::StripCr { path }
            | Repair::Restorecon { path } => safe_path(path),
            Repair::AppendKey { path, key } => safe_path(path) && fingerprint_of(key).is_some(),
            Repair::CreateUser { home, groups, .. } => {
                safe_path(home) && groups.iter().all(|g| UserName::parse(g).is_ok())
            }
            Repair::CommentOutSshd { lines, .. } => {
                !lines.is_empty() && lines.iter().all(|l| config_line(l).is_some())
            }
            Repair::Unlock(_) | Repair::Unexpire(_) | Repair::RestartSshd | Repair::HostKeys => {
                true
            }
        }
    }

    /// The command, as shown to the user and run as root.
    pub fn command(&self) -> String {
        match self {
            Repair::Chown { path, owner, group } => {
                format!(
                    "chown {}:{} {}",
                    q(owner),
                    group.as_deref().map(q).unwrap_or_default(),
                    q(path)
                )
            }
            Repair::Chmod { path, mode } => format!("chmod {mode} {}", q(path)),
            Repair::CreateDir { path, user } => {
                let u = q(user.as_str());
                format!("install -d -m 700 -o {u} -g \"$(id -gn {u})\" {}", q(path))
            }
            Repair::CreateFile { path, user } => {
                let u = q(user.as_str());
                format!(
                    "install -m 600 -o {u} -g \"$(id -gn {u})\" /dev/null {}",
                    q(path)
                )
            }
            Repair::StripCr { path } => format!("sed -i 's/\\r$//' {}", q(path)),
            Repair::AppendKey { path, key } => {
                format!("printf '%s\\n' {} >> {}", q(key.trim()), q(path))
            }
            Repair::CreateUser {
                user,
                home,
                adopt,
                uid,
                own_group,
                groups,
            } => {
                let group = if *own_group {
                    format!("-g {}", q(user.as_str()))
                } else {
                    "-U".to_string()
                };
                let mut cmd = format!(
                    "useradd {} -d {} {group} -s /bin/bash -p '*'",
                    if *adopt { "-M" } else { "-m" },
                    q(home)
                );
                if let Some(uid) = uid {
                    cmd.push_str(&format!(" -u {uid}"));
                }
                if !groups.is_empty() {
                    cmd.push_str(&format!(" -G {}", q(&groups.join(","))));
                }
                cmd.push_str(&format!(" {}", q(user.as_str())));
                cmd
            }
            Repair::Unlock(user) => format!("usermod -U {}", q(user.as_str())),
            Repair::Unexpire(user) => format!("chage -E -1 {}", q(user.as_str())),
            Repair::RestartSshd => {
                "systemctl restart ssh 2>/dev/null || systemctl restart sshd".into()
            }
            Repair::CommentOutSshd { lines, .. } => {
                let mut cmds: Vec<String> = Vec::new();
                for (file, line) in lines.iter().filter_map(|l| config_line(l)) {
                    let f = q(&file);
                    cmds.push(format!(
                        "sed -i '{line}s/^/# disabled by ec2-serial-expect: /' {f}"
                    ));
                }
                cmds.push(RELOAD_SSHD.into());
                cmds.join(" && ")
            }
            Repair::HostKeys => "ssh-keygen -A".into(),
            Repair::Restorecon { path } => format!("restorecon -Rv {}", q(path)),
        }
    }
}

/// Checks the configuration, then reloads sshd (Debian's unit is `ssh`).
///
/// Without systemd running (`/run/systemd/system` is how systemd says it
/// booted the machine: absent in a rescue shell) the change waits for the
/// normal boot that follows.
pub(super) const RELOAD_SSHD: &str =
    "sshd -t && { [ ! -d /run/systemd/system ] || systemctl reload-or-restart ssh 2>/dev/null || systemctl reload-or-restart sshd; }";

/// Parses `file:line:text` from `grep -Hn`, accepting only sshd config files.
pub(super) fn config_line(l: &str) -> Option<(String, u32)> {
    let mut parts = l.splitn(3, ':');
    let file = parts.next()?;
    let line: u32 = parts.next()?.parse().ok()?;
    let ok = (file == "/etc/ssh/sshd_config"
        || (file.starts_with("/etc/ssh/sshd_config.d/") && file.ends_with(".conf")))
        && safe_path(file)
        && !file.contains("..");
    ok.then(|| (file.to_string(), line))
}

/// The `SHA256:…` fingerprint of a public key line (`type base64 [comment]`,
/// possibly with options before it), as `ssh-keygen -l` prints it.
pub fn fingerprint_of(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-"))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(words.get(at + 1)?)
        .ok()?;
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return None;
    }
    let digest = Sha256::digest(&blob);
    Some(format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::facts::script;

    /// Every fact a repair can change: the files always; the rest only after
    /// the repairs that touch it. The log and disk space never.
    #[test]
    fn the_verification_looks_again_only_at_what_the_repairs_touched() {
        let user = UserName::parse("ec2-user").unwrap();
        let chmod = Repair::Chmod {
            path: "/home/ec2-user".into(),
            mode: "700".into(),
        };
        let scope = touched(&[&chmod]);
        assert!(!scope.account && !scope.sshd && !scope.system && !scope.log);
        let s = script(&user, scope, Some("/home/ec2-user/.ssh/keys file"));
        for absent in [
            "sshd -T",
            "journalctl",
            "getent shadow",
            "df --output",
            "systemctl",
            "/proc/mounts",
        ] {
            assert!(!s.contains(absent), "{absent} in {s}");
        }
        assert!(s.contains("a='/home/ec2-user/.ssh/keys file'"), "{s}");
        assert!(s.contains("stat -c") && s.contains("ssh-keygen -lf"));
        let scope = touched(&[&chmod, &Repair::RestartSshd]);
        assert!(scope.sshd);
        assert!(script(&user, scope, Some("/x")).contains("sshd -T"));
        assert!(touched(&[&Repair::Unlock(user.clone())]).account);
    }

    #[test]
    fn commands_quote_every_value() {
        let r = Repair::Chown {
            path: "/home/it's me".into(),
            owner: "ec2-user".into(),
            group: None,
        };
        assert_eq!(r.command(), "chown ec2-user: '/home/it'\\''s me'");
        assert!(r.is_safe());
        let evil = Repair::Chmod {
            path: "/home/x\n; reboot".into(),
            mode: "700".into(),
        };
        assert!(!evil.is_safe());
        let evil_mode = Repair::Chmod {
            path: "/home/x".into(),
            mode: "700; reboot".into(),
        };
        assert!(!evil_mode.is_safe());
    }

    #[test]
    fn config_edits_touch_only_sshd_config_files() {
        let ok = Repair::CommentOutSshd {
            keyword: "AuthorizedKeysFile".into(),
            lines: vec!["/etc/ssh/sshd_config:12:AuthorizedKeysFile /nope".into()],
        };
        assert!(ok.is_safe());
        assert!(ok.command().starts_with("sed -i '12s/^/# disabled"));
        let bad = Repair::CommentOutSshd {
            keyword: "x".into(),
            lines: vec!["/etc/passwd:1:root".into()],
        };
        assert!(!bad.is_safe());
    }

    #[test]
    fn fingerprints_match_ssh_keygen() {
        // ssh-keygen -lf of this key prints SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU.
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test";
        assert_eq!(
            fingerprint_of(key).as_deref(),
            Some("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU")
        );
        assert_eq!(fingerprint_of("not a key"), None);
    }
}
