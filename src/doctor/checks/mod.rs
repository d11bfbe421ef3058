//! The checks: from [`Facts`] and a [`Policy`] to [`Finding`]s.
//!
//! Each finding has a stable id ([`CheckId`]: users' automation keys on
//! them), says why it matters, and carries the minimal repair when one is
//! safe. Policy `aws` is the seed article's exact modes (0755 root:root
//! /home, 0700 home, 0700 .ssh, 0600 authorized_keys); policy `sshd` flags
//! only what sshd's StrictModes really refuses (owner, and group/other
//! write).
//!
//! The checks come in groups, one file each: the account (`account`),
//! the path from `/home` to the key file (`paths`), the key file's content
//! (`keys`), sshd's configuration and state (`sshd`), and the system
//! around them: mounts, disk, SELinux (`system`). This file holds what
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

use super::facts::{Facts, Fingerprint, UserName};
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

/// As users type it (`--policy aws`).
impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::Aws => "aws",
            Policy::Sshd => "sshd",
        })
    }
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
    /// Whether the repair loosens security (unlocks the account, widens a
    /// mode): `--fix` runs it only when the finding refuses the key (an
    /// error), or with `--loosen`.
    #[serde(skip)]
    pub loosens: bool,
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
            loosens: false,
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

    /// Marks the repair as one that loosens security ([`Finding::loosens`]).
    fn loosening(mut self, loosens: bool) -> Self {
        self.loosens = loosens;
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
    /// Re-create the account when it was deleted (`--create-user`): never
    /// implied by `--fix` alone.
    pub create_user: bool,
    /// The facts come from a rescue shell (`--via grub`): no service runs,
    /// so whether sshd runs cannot be checked ([`Request::not_checked`]),
    /// and restarts are left to the normal boot that follows.
    pub rescue: bool,
    /// Also run repairs that loosen security where the finding does not
    /// refuse the key (`--loosen`): never implied by `--fix` alone.
    pub loosen: bool,
}

/// The key line of a `.pub` file's text, checked to be an OpenSSH public key.
fn key_line(text: &str) -> Result<String, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    if super::repair::fingerprint_of(line).is_none() {
        return Err("the public key is not an OpenSSH public key line (type base64 [comment]); give the .pub file".into());
    }
    Ok(line.to_string())
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
        let public_key = public_key.map(key_line).transpose()?;
        if let Some(fp) = fingerprint {
            Fingerprint::parse(fp)?;
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
            create_user: false,
            rescue: false,
            loosen: false,
        })
    }

    /// The same request for another public key (a `.pub` file's text).
    pub fn with_public_key(mut self, text: &str) -> Result<Request, String> {
        self.public_key = Some(key_line(text)?);
        Ok(self)
    }

    /// The checks this request cannot make, with why: reported as not
    /// checked, never as healthy.
    pub fn not_checked(&self) -> Vec<String> {
        if self.rescue {
            vec![
                format!(
                    "{}: nothing runs in the rescue shell; the normal boot that follows starts sshd",
                    CheckId::SshdRunning
                ),
                "evidence: the sshd log of the boot before the rescue is not read".into(),
            ]
        } else {
            Vec::new()
        }
    }

    /// The fingerprint of the key the user connects with, if given.
    pub fn sought(&self) -> Option<Fingerprint> {
        self.fingerprint
            .as_deref()
            .and_then(|fp| Fingerprint::parse(fp).ok())
            .or_else(|| {
                self.public_key
                    .as_deref()
                    .and_then(super::repair::fingerprint_of)
                    .and_then(|fp| Fingerprint::parse(&fp).ok())
            })
    }
}

/// Runs every check.
pub fn run(facts: &Facts, req: &Request) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(pw) = &facts.passwd else {
        account::absent(facts, req, &mut out);
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
    // A key file root did not read (a link, a special file) is not
    // checked (facts.not_checked says so), never taken for an empty one.
    if facts.keys_unread.is_none() {
        keys::key_content(facts, req, &ak, &mut out);
        keys::key_algorithm(facts, req, &ak, &mut out);
    }
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
            create_user: false,
            rescue: false,
            loosen: false,
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

    /// `--fix` changes only what refuses the key: a repair that loosens
    /// security runs for a cause (an error) or with `--loosen`; otherwise it
    /// is reported with its command. Issue 31 item 4.
    #[test]
    fn fix_loosens_only_what_refuses_the_key() {
        use crate::doctor::plan_repairs;
        // `passwd -l` by an admin, sshd with UsePAM yes: the lock does not
        // refuse keys, so `usermod -U` is shown, not run.
        let mut f = healthy();
        f.password_status = Some("L".into());
        f.sshd.insert("usepam".into(), "yes".into());
        let mut found = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&found), ["user.locked"]);
        assert!(plan_repairs(&mut found, &req(Policy::Aws)).is_empty());
        assert_eq!(found[0].status, Status::Skipped);
        assert_eq!(found[0].repair.as_deref(), Some("usermod -U ec2-user"));
        assert!(
            found[0]
                .why
                .contains("`usermod -U ec2-user` loosens security")
                && found[0].why.contains("--loosen"),
            "{}",
            found[0].why
        );
        // Asked for with --loosen, it runs.
        let mut loosen = req(Policy::Aws);
        loosen.loosen = true;
        let mut found = run(&f, &loosen);
        assert_eq!(plan_repairs(&mut found, &loosen), [0]);
        // With UsePAM no the lock refuses the key: the cause is repaired.
        f.sshd.insert("usepam".into(), "no".into());
        let mut found = run(&f, &req(Policy::Aws));
        assert_eq!(plan_repairs(&mut found, &req(Policy::Aws)), [0]);
        // A warning whose chmod widens a mode (a 0400 key file made 0600)
        // is shown; one that narrows it (a 0750 home made 0700) runs.
        let mut f = healthy();
        f.paths.get_mut("/home/ec2-user").unwrap().mode = 0o750;
        f.paths
            .get_mut("/home/ec2-user/.ssh/authorized_keys")
            .unwrap()
            .mode = 0o400;
        let mut found = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&found), ["home.mode", "authorized_keys.mode"]);
        assert!(found.iter().all(|x| x.severity == Severity::Warning));
        assert_eq!(plan_repairs(&mut found, &req(Policy::Aws)), [0]);
        assert_eq!(found[1].status, Status::Skipped);
        assert!(found[1]
            .why
            .contains("`chmod 600 /home/ec2-user/.ssh/authorized_keys`"));
        // An expired account refuses the key: `chage -E -1` runs.
        let mut f = healthy();
        f.expired = true;
        let mut found = run(&f, &req(Policy::Aws));
        assert_eq!(plan_repairs(&mut found, &req(Policy::Aws)), [0]);
    }

    /// A key file root did not read is not checked: no `key_missing` (which
    /// `--add-key` would repair through a link), no `empty`.
    #[test]
    fn an_unread_key_file_is_not_checked() {
        let mut f = healthy();
        f.keys.clear();
        f.keys_unread = Some("the key file is a symbolic link".into());
        let mut r = req(Policy::Aws);
        r.fingerprint = Some("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU".into());
        assert!(run(&f, &r).is_empty());
        f.keys_unread = None;
        assert_eq!(ids(&run(&f, &r)), ["authorized_keys.key_missing"]);
    }

    fn absent() -> Facts {
        let mut f = healthy();
        f.passwd = None;
        f.os = crate::doctor::facts::Os {
            id: "debian".into(),
            id_like: String::new(),
            pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
        };
        f.absent.accounts = vec!["lab-admin".into()];
        f.absent.admin_groups = vec!["adm".into(), "sudo".into(), "wheel".into()];
        f
    }

    #[test]
    fn a_deleted_user_is_recreated_only_when_asked_adopting_its_home_and_id() {
        let mut f = absent();
        f.absent.home = Some(crate::doctor::facts::Leftover {
            kind: "directory".into(),
            uid: 1000,
            gid: 1000,
            owner: "UNKNOWN".into(),
            path: "/home/ec2-user".into(),
        });
        let found = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&found), ["user.deleted"]);
        assert!(found[0].action.is_none(), "never implied by --fix alone");
        assert!(found[0].why.contains("--create-user"), "{}", found[0].why);
        let mut ask = req(Policy::Aws);
        ask.create_user = true;
        let found = run(&f, &ask);
        assert_eq!(
            found[0].repair.as_deref(),
            Some(
                "useradd -M -d /home/ec2-user -U -s /bin/bash -p '*' -u 1000 -G adm,sudo ec2-user"
            )
        );
        // A group left with the user's name is joined, not made again.
        f.absent.own_group = true;
        assert!(run(&f, &ask)[0]
            .repair
            .as_deref()
            .unwrap()
            .contains(" -g ec2-user "));
        // Not an AMI default user's name: no administrators' groups.
        let mut other = ask.clone();
        other.user = UserName::parse("alice").unwrap();
        f.absent.home.as_mut().unwrap().path = "/home/alice".into();
        assert!(!run(&f, &other)[0].repair.as_deref().unwrap().contains("-G"));
        // A /home others can write: no useradd there.
        f.paths.get_mut("/home").unwrap().mode = 0o777;
        let found = run(&f, &ask);
        assert!(found[0].action.is_none());
        assert!(found[0].why.contains("/home"), "{}", found[0].why);
        // The home's owner is an account: renamed, never re-created over it.
        f.paths.get_mut("/home").unwrap().mode = 0o755;
        f.absent.home.as_mut().unwrap().owner = "admin".into();
        let found = run(&f, &ask);
        assert_eq!(ids(&found), ["user.wrong_name"]);
        assert!(
            found[0].why.contains("connect as admin"),
            "{}",
            found[0].why
        );
        // A name service that failed: no guess at all.
        f.absent.lookup_failed = Some(1);
        let found = run(&f, &ask);
        assert_eq!(ids(&found), ["user.exists"]);
        assert!(found[0].action.is_none());
        assert!(
            found[0].why.contains("could not be looked up"),
            "{}",
            found[0].why
        );
    }

    #[test]
    fn a_missing_user_is_answered_with_who_holds_the_key_or_the_ami_default() {
        let mut f = absent();
        f.key_holders = vec![
            (
                "lab-admin".into(),
                "/home/lab-admin/.ssh/authorized_keys".into(),
            ),
            ("admin".into(), "/home/admin/.ssh/authorized_keys".into()),
        ];
        f.absent.accounts.push("admin".into());
        let found = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&found), ["user.wrong_name"]);
        assert!(
            found[0]
                .why
                .contains("your key is in /home/admin/.ssh/authorized_keys, /home/lab-admin/.ssh/authorized_keys: connect as admin or lab-admin"),
            "the AMI's default user first: {}",
            found[0].why
        );
        f.key_holders.clear();
        let found = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&found), ["user.wrong_name"]);
        assert!(
            found[0].why.contains("connect as admin"),
            "{}",
            found[0].why
        );
        f.absent.accounts.retain(|a| a != "admin");
        let found = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&found), ["user.exists"]);
        assert!(found[0].why.contains("lab-admin"), "{}", found[0].why);
        // Asked about the distribution's own default user: deleted.
        let mut ask = req(Policy::Aws);
        ask.user = UserName::parse("admin").unwrap();
        assert_eq!(ids(&run(&f, &ask)), ["user.deleted"]);
    }

    const ACCEPTED_9_2: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256";

    #[test]
    fn key_types_are_judged_against_pubkey_accepted_algorithms() {
        let mut f = healthy();
        f.sshd
            .insert("pubkeyacceptedalgorithms".into(), ACCEPTED_9_2.into());
        assert!(run(&f, &req(Policy::Aws)).is_empty(), "ed25519 is fine");
        f.keys.push(("SHA256:rsa".into(), "RSA".into()));
        let found = run(&f, &req(Policy::Aws));
        assert_eq!(ids(&found), ["authorized_keys.key_algorithm"]);
        assert_eq!(
            found[0].severity,
            Severity::Warning,
            "new clients sign with SHA-2"
        );
        assert!(
            found[0].why.contains("PuTTY before 0.75"),
            "{}",
            found[0].why
        );
        assert!(
            found[0].action.is_none(),
            "the server's policy is never changed"
        );
        f.log = vec!["sshd[403]: userauth_pubkey: signature algorithm ssh-rsa not in PubkeyAcceptedAlgorithms [preauth]".into()];
        assert_eq!(
            run(&f, &req(Policy::Aws))[0].severity,
            Severity::Error,
            "seen refused"
        );
        f.keys.push(("SHA256:dsa".into(), "DSA".into()));
        let found = run(&f, &req(Policy::Aws));
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|x| x.severity == Severity::Error));
        assert!(found[0]
            .actual
            .as_deref()
            .unwrap()
            .contains("DSA key SHA256:dsa"));
        // The key given is the one judged: an ed25519 key being added is fine.
        let mut ask = req(Policy::Aws);
        ask.public_key = Some(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl t"
                .into(),
        );
        let judged: Vec<&str> = run(&f, &ask).iter().map(|x| x.check.as_str()).collect();
        assert_eq!(judged, ["authorized_keys.key_missing"]);
        // OpenSSH before 8.5 calls it PubkeyAcceptedKeyTypes.
        let algorithms = f.sshd.remove("pubkeyacceptedalgorithms").unwrap();
        f.sshd.insert("pubkeyacceptedkeytypes".into(), algorithms);
        assert_eq!(run(&f, &req(Policy::Aws)).len(), 2);
        // With ssh-rsa allowed again, RSA is no finding at all.
        f.sshd.insert(
            "pubkeyacceptedalgorithms".into(),
            format!("{ACCEPTED_9_2},ssh-rsa"),
        );
        f.keys.retain(|(_, t)| t != "DSA");
        assert!(run(&f, &req(Policy::Aws)).is_empty());
    }
}
