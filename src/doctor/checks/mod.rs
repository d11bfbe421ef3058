//! The checks: from [`Facts`] and a [`Policy`] to [`Finding`]s.
//!
//! Each finding has a stable id ([`CheckId`]: users' automation keys on
//! them), says why it matters, and carries the minimal repair when one is
//! safe. Policy `aws` is the seed article's exact modes (0755 root:root
//! /home, 0700 home, 0700 .ssh, 0600 authorized_keys); policy `sshd` flags
//! only what sshd's StrictModes really refuses (owner, and group/other
//! write).
//!
//! The checks come in groups, one file each: the account ([`account`]),
//! the path from `/home` to the key file ([`paths`]), the key file's content
//! ([`keys`]), sshd's configuration and state ([`sshd`]), and the system
//! around them: mounts, disk, SELinux ([`system`]). This file holds what
//! they share and [`run`], which calls them in report order.

mod account;
mod id;
mod keys;
mod paths;
mod sshd;
mod system;

use serde::Serialize;

pub use id::CheckId;
use id::PathRole;

use super::facts::{Facts, UserName};
use super::repair::Repair;

/// Which permission rules to hold the paths to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// AWS's recommended modes, exactly (the default).
    Aws,
    /// Only what sshd's StrictModes enforces.
    Sshd,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Makes sshd refuse the key (or very likely does).
    Error,
    /// Worth fixing, but not a cause of the refusal by itself.
    Warning,
}

/// Where a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Found and not repaired.
    Open,
    /// Repaired and verified gone.
    Fixed,
    /// A repair ran but the problem remains.
    Failed,
    /// No safe automatic repair; the `why` says what to do.
    Skipped,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable id, e.g. `home.mode`.
    pub check: CheckId,
    /// The path concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What it should be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// How bad.
    pub severity: Severity,
    /// Why it matters, in a sentence.
    pub why: String,
    /// The repair command, when there is a safe one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
    /// Open, fixed, failed or skipped.
    pub status: Status,
    /// Where the repair kept a copy of the file it edited (root-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The repair itself (not serialised; `repair` shows its command).
    #[serde(skip)]
    pub action: Option<Repair>,
}

impl Finding {
    pub(super) fn new(check: CheckId, severity: Severity, why: impl Into<String>) -> Finding {
        Finding {
            check,
            path: None,
            expected: None,
            actual: None,
            severity,
            why: why.into(),
            repair: None,
            status: Status::Open,
            backup: None,
            action: None,
        }
    }

    pub(super) fn at(mut self, path: &str) -> Self {
        self.path = Some(path.to_string());
        self
    }

    pub(super) fn values(mut self, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self.actual = Some(actual.into());
        self
    }

    fn fix(mut self, action: Repair) -> Self {
        self.repair = Some(action.command());
        self.action = Some(action);
        self
    }
}

/// What the user asked to check.
#[derive(Debug, Clone)]
pub struct Request {
    /// The SSH user being diagnosed.
    pub user: UserName,
    /// Which modes to require.
    pub policy: Policy,
    /// A public key line that must be in authorized_keys (`--public-key`).
    pub public_key: Option<String>,
    /// A fingerprint that must be in authorized_keys (`--fingerprint`).
    pub fingerprint: Option<String>,
    /// Append the public key when missing (`--add-key`).
    pub add_key: bool,
}

impl Request {
    /// Validates what was asked: a user name that cannot become a command,
    /// a public key line that parses (`public_key` may be a whole `.pub`
    /// file's text), a `SHA256:` fingerprint.
    pub fn new(
        user: &str,
        policy: Policy,
        public_key: Option<&str>,
        fingerprint: Option<&str>,
        add_key: bool,
    ) -> Result<Request, String> {
        let user = UserName::parse(user).map_err(|e| format!("user: {e}"))?;
        let public_key = match public_key {
            None => None,
            Some(text) => {
                let line = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with('#'))
                    .unwrap_or("");
                if super::repair::fingerprint_of(line).is_none() {
                    return Err("the public key is not an OpenSSH public key line (type base64 [comment]); give the .pub file".into());
                }
                Some(line.to_string())
            }
        };
        if let Some(fp) = fingerprint {
            let ok = fp.strip_prefix("SHA256:").is_some_and(|b| {
                b.len() == 43
                    && b.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
            });
            if !ok {
                return Err(format!("fingerprint {fp:?}: expected SHA256:<43 base64 characters>, as `ssh-keygen -lf KEY.pub` prints"));
            }
        }
        if add_key && public_key.is_none() {
            return Err("adding the key needs the public key itself".into());
        }
        Ok(Request {
            user,
            policy,
            public_key,
            fingerprint: fingerprint.map(str::to_string),
            add_key,
        })
    }
}

/// Runs every check.
pub fn run(facts: &Facts, req: &Request) -> Vec<Finding> {
    let mut out = Vec::new();
    let user = req.user.as_str();
    let Some(pw) = &facts.passwd else {
        out.push(
            Finding::new(CheckId::UserExists, Severity::Error, format!("user {user} does not exist on the instance (wrong user name for the AMI, or deleted)"))
                .values("an existing user", "no passwd entry"),
        );
        return out;
    };
    account::identity(facts, req, &pw.shell, &mut out);
    let ssh_dir = format!("{}/.ssh", pw.home);
    let default_ak = format!("{ssh_dir}/authorized_keys");
    let configured = facts
        .authorized_keys_path
        .clone()
        .unwrap_or_else(|| default_ak.clone());
    // A misconfigured AuthorizedKeysFile pointing nowhere is one finding
    // (sshd.authorized_keys_file), whose repair restores the default path:
    // judge the default file then, rather than create the wrong one.
    let ak = if !facts.paths.contains_key(&configured) && facts.paths.contains_key(&default_ak) {
        default_ak
    } else {
        configured
    };
    paths::home_root(facts, req.policy, &mut out);
    let parents_ok = paths::path_check(facts, req, PathRole::Home, &pw.home, true, 0o700, &mut out);
    if parents_ok && ak.starts_with(&format!("{ssh_dir}/")) {
        paths::path_check(
            facts,
            req,
            PathRole::SshDir,
            &ssh_dir,
            true,
            0o700,
            &mut out,
        );
    }
    paths::path_check(
        facts,
        req,
        PathRole::AuthorizedKeys,
        &ak,
        false,
        0o600,
        &mut out,
    );
    keys::key_content(facts, req, &ak, &mut out);
    sshd::sshd(facts, req, &mut out);
    system::system(facts, &ssh_dir, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::sshd::glob;
    use super::*;
    use crate::doctor::facts::{Passwd, PathFacts};

    fn healthy() -> Facts {
        let mut f = Facts {
            passwd: Some(Passwd {
                home: "/home/ec2-user".into(),
                shell: "/bin/bash".into(),
            }),
            shell_ok: true,
            password_status: Some("P".into()),
            authorized_keys_path: Some("/home/ec2-user/.ssh/authorized_keys".into()),
            sshd_running: true,
            keys: vec![("SHA256:abc".into(), "ED25519".into())],
            host_keys: vec!["/etc/ssh/ssh_host_ed25519_key".into()],
            disk_use: Some((10, 2)),
            groups: vec!["ec2-user".into()],
            ..Facts::default()
        };
        for (path, kind, owner, mode) in [
            ("/home", "directory", "root", 0o755),
            ("/home/ec2-user", "directory", "ec2-user", 0o700),
            ("/home/ec2-user/.ssh", "directory", "ec2-user", 0o700),
            (
                "/home/ec2-user/.ssh/authorized_keys",
                "regular file",
                "ec2-user",
                0o600,
            ),
            ("/etc/ssh", "directory", "root", 0o755),
        ] {
            f.paths.insert(
                path.into(),
                PathFacts {
                    kind: kind.into(),
                    owner: owner.into(),
                    group: owner.into(),
                    mode,
                },
            );
        }
        for (k, v) in [
            ("strictmodes", "yes"),
            ("pubkeyauthentication", "yes"),
            (
                "authorizedkeysfile",
                ".ssh/authorized_keys .ssh/authorized_keys2",
            ),
            ("usepam", "yes"),
        ] {
            f.sshd.insert(k.into(), v.into());
        }
        f
    }

    fn req(policy: Policy) -> Request {
        Request {
            user: UserName::parse("ec2-user").unwrap(),
            policy,
            public_key: None,
            fingerprint: None,
            add_key: false,
        }
    }

    fn ids(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.check.as_str()).collect()
    }

    #[test]
    fn a_healthy_instance_has_no_findings() {
        assert!(run(&healthy(), &req(Policy::Aws)).is_empty());
        assert!(run(&healthy(), &req(Policy::Sshd)).is_empty());
    }

    #[test]
    fn home_777_is_an_error_under_both_policies_with_the_right_repair() {
        let mut f = healthy();
        f.paths.get_mut("/home/ec2-user").unwrap().mode = 0o777;
        let aws = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&aws), ["home.mode"]);
        assert_eq!(aws[0].repair.as_deref(), Some("chmod 700 /home/ec2-user"));
        let sshd = run(&f, &req(Policy::Sshd));
        assert_eq!(sshd[0].repair.as_deref(), Some("chmod go-w /home/ec2-user"));
    }

    #[test]
    fn policy_sshd_accepts_what_sshd_accepts() {
        let mut f = healthy();
        f.paths.get_mut("/home/ec2-user").unwrap().mode = 0o755;
        f.paths
            .get_mut("/home/ec2-user/.ssh/authorized_keys")
            .unwrap()
            .mode = 0o644;
        assert!(run(&f, &req(Policy::Sshd)).is_empty());
        let aws = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&aws), ["home.mode", "authorized_keys.mode"]);
        assert!(aws.iter().all(|x| x.severity == Severity::Warning));
    }

    #[test]
    fn missing_pieces_and_owners() {
        let mut f = healthy();
        f.paths.remove("/home/ec2-user/.ssh/authorized_keys");
        f.paths.get_mut("/home/ec2-user/.ssh").unwrap().owner = "root".into();
        f.keys.clear();
        let found = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&found), ["ssh_dir.owner", "authorized_keys.exists"]);
        assert!(found[1]
            .repair
            .as_deref()
            .unwrap()
            .starts_with("install -m 600"));
    }

    #[test]
    fn sshd_rules() {
        let mut f = healthy();
        f.sshd.insert("allowusers".into(), "admin ops*".into());
        f.sshd
            .insert("authorizedkeysfile".into(), "/etc/ssh/keys/%u".into());
        f.authorized_keys_path = Some("/etc/ssh/keys/ec2-user".into());
        f.sshd_config_lines =
            vec!["/etc/ssh/sshd_config:40:AuthorizedKeysFile /etc/ssh/keys/%u".into()];
        let found = run(&f, &req(Policy::Aws));
        assert!(
            ids(&found).contains(&"sshd.authorized_keys_file"),
            "{:?}",
            ids(&found)
        );
        assert!(ids(&found).contains(&"sshd.user_not_allowed"));
        assert!(glob("ops*", "ops-team") && !glob("ops?", "ops") && glob("*", ""));
    }

    #[test]
    fn locked_accounts_depend_on_use_pam() {
        let mut f = healthy();
        f.password_status = Some("L".into());
        assert_eq!(run(&f, &req(Policy::Aws))[0].severity, Severity::Warning);
        f.sshd.insert("usepam".into(), "no".into());
        assert_eq!(run(&f, &req(Policy::Aws))[0].severity, Severity::Error);
    }
}
