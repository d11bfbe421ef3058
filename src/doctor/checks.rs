//! The checks: from [`Facts`] and a [`Policy`] to [`Finding`]s.
//!
//! Each finding has a stable `check` id (users' automation keys on them),
//! says why it matters, and carries the minimal repair when one is safe.
//! Policy `aws` is the seed article's exact modes (0755 root:root /home,
//! 0700 home, 0700 .ssh, 0600 authorized_keys); policy `sshd` flags only
//! what sshd's StrictModes really refuses (owner, and group/other write).

use serde::Serialize;

use super::facts::{Facts, PathFacts, UserName};
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
    pub check: String,
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
    pub(super) fn new(check: &str, severity: Severity, why: impl Into<String>) -> Finding {
        Finding {
            check: check.to_string(),
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
            Finding::new("user.exists", Severity::Error, format!("user {user} does not exist on the instance (wrong user name for the AMI, or deleted)"))
                .values("an existing user", "no passwd entry"),
        );
        return out;
    };
    identity(facts, req, &pw.shell, &mut out);
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
    home_root(facts, req.policy, &mut out);
    let parents_ok = path_check(facts, req, "home", &pw.home, true, 0o700, &mut out);
    if parents_ok && ak.starts_with(&format!("{ssh_dir}/")) {
        path_check(facts, req, "ssh_dir", &ssh_dir, true, 0o700, &mut out);
    }
    path_check(facts, req, "authorized_keys", &ak, false, 0o600, &mut out);
    key_content(facts, req, &ak, &mut out);
    sshd(facts, req, &mut out);
    system(facts, &ssh_dir, &mut out);
    out
}

fn identity(facts: &Facts, req: &Request, shell: &str, out: &mut Vec<Finding>) {
    let user = req.user.as_str();
    if !facts.shell_ok {
        out.push(
            Finding::new("user.shell", Severity::Error, format!("{user}'s login shell is missing or not executable: sshd refuses users whose shell cannot run; set a valid shell with `usermod -s /bin/bash {user}`"))
                .values("an executable shell", shell)
                .at(shell),
        );
    }
    if let Some(status) = facts
        .password_status
        .as_deref()
        .filter(|s| s.starts_with('L'))
    {
        let usepam = facts.sshd.get("usepam").is_none_or(|v| v == "yes");
        let (severity, why) = if usepam {
            (Severity::Warning, "the account is locked; with UsePAM yes this sshd still accepts keys, but other AMIs (UsePAM no) refuse locked accounts")
        } else {
            (Severity::Error, "the account is locked and sshd runs with UsePAM no, so it refuses every login for it")
        };
        out.push(
            Finding::new("user.locked", severity, why)
                .values("unlocked", status)
                .fix(Repair::Unlock(req.user.clone())),
        );
    }
    if facts.expired {
        out.push(
            Finding::new(
                "user.expired",
                Severity::Error,
                "the account has expired: PAM's account stack refuses it",
            )
            .values("never expires", "expired")
            .fix(Repair::Unexpire(req.user.clone())),
        );
    }
}

fn home_root(facts: &Facts, policy: Policy, out: &mut Vec<Finding>) {
    let Some(p) = facts.paths.get("/home") else {
        return;
    };
    if p.owner != "root" {
        out.push(
            Finding::new(
                "home_root.owner",
                Severity::Error,
                "/home must be owned by root: AWS's guidance and EC2Rescue require it",
            )
            .at("/home")
            .values("root:root", format!("{}:{}", p.owner, p.group))
            .fix(Repair::Chown {
                path: "/home".into(),
                owner: "root".into(),
                group: Some("root".into()),
            }),
        );
    }
    let bad = match policy {
        Policy::Aws => p.mode != 0o755,
        Policy::Sshd => p.mode & 0o022 != 0,
    };
    if bad {
        let severity = if policy == Policy::Aws {
            Severity::Error
        } else {
            Severity::Warning
        };
        out.push(
            Finding::new(
                "home_root.mode",
                severity,
                "/home should be 0755: writable by others, anyone could replace a user's home",
            )
            .at("/home")
            .values("0755", format!("{:04o}", p.mode))
            .fix(mode_repair(policy, "/home", 0o755)),
        );
    }
}

/// Checks one path component; returns whether it exists as it should.
fn path_check(
    facts: &Facts,
    req: &Request,
    id: &str,
    path: &str,
    dir: bool,
    aws_mode: u32,
    out: &mut Vec<Finding>,
) -> bool {
    let user = req.user.as_str();
    let kind = if dir { "directory" } else { "regular file" };
    let Some(p) = facts.paths.get(path) else {
        let create = if dir {
            Repair::CreateDir {
                path: path.into(),
                user: req.user.clone(),
            }
        } else {
            Repair::CreateFile {
                path: path.into(),
                user: req.user.clone(),
            }
        };
        out.push(
            Finding::new(
                &format!("{id}.exists"),
                Severity::Error,
                format!("{path} is missing: sshd finds no key to accept"),
            )
            .at(path)
            .values(kind, "missing")
            .fix(create),
        );
        return false;
    };
    if p.kind != kind {
        out.push(
            Finding::new(
                &format!("{id}.type"),
                Severity::Error,
                format!(
                    "{path} is a {}, but sshd needs a {kind} (it refuses anything else)",
                    p.kind
                ),
            )
            .at(path)
            .values(kind, p.kind.as_str()),
        );
        return false;
    }
    owner_check(p, req, id, path, user, out);
    let (bad, expected) = match req.policy {
        Policy::Aws => (p.mode != aws_mode, format!("{aws_mode:04o}")),
        Policy::Sshd => (p.mode & 0o022 != 0, "no group/other write".to_string()),
    };
    if bad {
        let strict = p.mode & 0o022 != 0;
        let severity = if strict {
            Severity::Error
        } else {
            Severity::Warning
        };
        let why = if strict {
            format!("{path} is writable by group or others: sshd's StrictModes refuses the key (`bad ownership or modes`)")
        } else {
            format!("{path} is more open than AWS recommends ({expected})")
        };
        out.push(
            Finding::new(&format!("{id}.mode"), severity, why)
                .at(path)
                .values(expected, format!("{:04o}", p.mode))
                .fix(mode_repair(req.policy, path, aws_mode)),
        );
    }
    true
}

fn owner_check(
    p: &PathFacts,
    req: &Request,
    id: &str,
    path: &str,
    user: &str,
    out: &mut Vec<Finding>,
) {
    if p.owner != user && !(p.owner == "root" && req.policy == Policy::Sshd) {
        out.push(
            Finding::new(&format!("{id}.owner"), Severity::Error, format!("{path} must be owned by {user}: sshd refuses keys in paths owned by someone else"))
                .at(path)
                .values(user, format!("{}:{}", p.owner, p.group))
                .fix(Repair::Chown { path: path.into(), owner: user.into(), group: None }),
        );
    }
}

fn mode_repair(policy: Policy, path: &str, aws_mode: u32) -> Repair {
    match policy {
        Policy::Aws => Repair::Chmod {
            path: path.into(),
            mode: format!("{aws_mode:o}"),
        },
        Policy::Sshd => Repair::Chmod {
            path: path.into(),
            mode: "go-w".into(),
        },
    }
}

fn key_content(facts: &Facts, req: &Request, ak: &str, out: &mut Vec<Finding>) {
    // A missing file (its own finding, created empty by the repair) holds no
    // key either: say so, so that --add-key puts the key in the new file.
    let exists = facts.paths.contains_key(ak);
    if exists && facts.crlf_lines > 0 {
        out.push(
            Finding::new(
                "authorized_keys.crlf",
                Severity::Error,
                "lines end in CR LF (edited on Windows?): sshd cannot parse those keys",
            )
            .at(ak)
            .values(
                "LF line endings",
                format!("{} CRLF line(s)", facts.crlf_lines),
            )
            .fix(Repair::StripCr { path: ak.into() }),
        );
    }
    if exists && facts.bad_lines > 0 {
        out.push(
            Finding::new("authorized_keys.malformed", Severity::Warning, "some lines are not key entries (a key wrapped over several lines?): sshd ignores them; rejoin each key onto one line")
                .at(ak)
                .values("one key per line", format!("{} unparseable line(s)", facts.bad_lines)),
        );
    }
    let wanted = req.fingerprint.clone().or_else(|| {
        req.public_key
            .as_deref()
            .and_then(super::repair::fingerprint_of)
    });
    if let Some(fp) = wanted {
        if !facts.keys.iter().any(|(have, _)| *have == fp) {
            let mut f = Finding::new(
                "authorized_keys.key_missing",
                Severity::Error,
                "the key you connect with is not in authorized_keys",
            )
            .at(ak)
            .values(fp.as_str(), format!("{} other key(s)", facts.keys.len()));
            match (&req.public_key, req.add_key) {
                (Some(key), true) => {
                    f = f.fix(Repair::AppendKey {
                        path: ak.into(),
                        key: key.clone(),
                    })
                }
                _ => f
                    .why
                    .push_str(": pass --public-key FILE --add-key to append it"),
            }
            out.push(f);
        }
    } else if exists && facts.keys.is_empty() {
        out.push(
            Finding::new(
                "authorized_keys.empty",
                Severity::Error,
                "authorized_keys holds no valid key",
            )
            .at(ak)
            .values("at least one key", "none"),
        );
    }
}

fn sshd(facts: &Facts, req: &Request, out: &mut Vec<Finding>) {
    if let Some(msg) = &facts.sshd_test_error {
        out.push(
            Finding::new(
                "sshd.config",
                Severity::Error,
                format!("`sshd -t` fails, so sshd may not (re)start: {msg}"),
            )
            .values("sshd -t passes", "fails"),
        );
    }
    if !facts.sshd_running {
        out.push(
            Finding::new("sshd.running", Severity::Error, "sshd is not running")
                .values("active", "inactive")
                .fix(Repair::RestartSshd),
        );
    }
    let get = |k: &str| facts.sshd.get(k).map(String::as_str);
    if get("pubkeyauthentication") == Some("no") {
        out.push(
            Finding::new(
                "sshd.pubkey_authentication",
                Severity::Error,
                "PubkeyAuthentication is off: sshd refuses every key",
            )
            .values("yes", "no")
            .fix(Repair::CommentOutSshd {
                keyword: "PubkeyAuthentication".into(),
                lines: config_lines(facts, "pubkeyauthentication"),
            }),
        );
    }
    if get("strictmodes") == Some("no") {
        out.push(Finding::new("sshd.strict_modes", Severity::Warning, "StrictModes is off: sshd would accept keys from unsafe paths (a security risk, not a cause)").values("yes", "no"));
    }
    if let Some(akf) = get("authorizedkeysfile") {
        let default = akf.split_whitespace().next() == Some(".ssh/authorized_keys")
            || akf.split_whitespace().next() == Some("%h/.ssh/authorized_keys");
        let exists = facts
            .authorized_keys_path
            .as_ref()
            .is_some_and(|p| facts.paths.contains_key(p));
        if !default && !exists {
            out.push(
                Finding::new(
                    "sshd.authorized_keys_file",
                    Severity::Error,
                    format!("sshd reads keys from {akf:?}, which does not exist for this user"),
                )
                .values(".ssh/authorized_keys", akf)
                .fix(Repair::CommentOutSshd {
                    keyword: "AuthorizedKeysFile".into(),
                    lines: config_lines(facts, "authorizedkeysfile"),
                }),
            );
        }
    }
    allow_deny(facts, req, out);
}

fn config_lines(facts: &Facts, keyword: &str) -> Vec<String> {
    facts
        .sshd_config_lines
        .iter()
        .filter(|l| {
            l.splitn(3, ':')
                .nth(2)
                .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with(keyword))
        })
        .cloned()
        .collect()
}

fn allow_deny(facts: &Facts, req: &Request, out: &mut Vec<Finding>) {
    let user = req.user.as_str();
    let list = |k: &str| {
        facts
            .sshd
            .get(k)
            .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    };
    let user_matches = |pat: &str| pat.split('@').next().is_some_and(|p| glob(p, user));
    let group_matches = |pat: &str| facts.groups.iter().any(|g| glob(pat, g));
    let refused = if list("denyusers").is_some_and(|l| l.iter().any(|p| user_matches(p))) {
        Some("DenyUsers names the user")
    } else if list("allowusers").is_some_and(|l| !l.iter().any(|p| user_matches(p))) {
        Some("AllowUsers does not name the user")
    } else if list("denygroups").is_some_and(|l| l.iter().any(|p| group_matches(p))) {
        Some("DenyGroups names one of the user's groups")
    } else if list("allowgroups").is_some_and(|l| !l.iter().any(|p| group_matches(p))) {
        Some("AllowGroups names none of the user's groups")
    } else {
        None
    };
    if let Some(why) = refused {
        out.push(Finding::new("sshd.user_not_allowed", Severity::Error, format!("{why}: sshd refuses {user} (`User {user} not allowed because …`); edit sshd_config")).values("allowed", "not allowed"));
    }
}

/// sshd's `*` and `?` patterns.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn system(facts: &Facts, ssh_dir: &str, out: &mut Vec<Finding>) {
    if let Some(p) = facts.paths.get("/etc/ssh") {
        if p.owner != "root" || p.mode & 0o022 != 0 {
            out.push(
                Finding::new(
                    "etc_ssh.perms",
                    Severity::Warning,
                    "/etc/ssh must be root-owned and not group/other-writable",
                )
                .at("/etc/ssh")
                .values("root, no g/o write", format!("{} {:04o}", p.owner, p.mode)),
            );
        }
    }
    if facts.host_keys.is_empty() && !facts.unparsed.iter().any(|u| u.contains("hostkeys")) {
        out.push(
            Finding::new(
                "sshd.host_keys",
                Severity::Error,
                "no host keys in /etc/ssh: sshd cannot start",
            )
            .fix(Repair::HostKeys),
        );
    }
    if facts.selinux.as_deref() == Some("Enforcing")
        && facts
            .ssh_dir_context
            .as_ref()
            .is_some_and(|c| !c.contains("ssh_home_t"))
    {
        out.push(
            Finding::new(
                "selinux.ssh_dir_label",
                Severity::Error,
                "~/.ssh has the wrong SELinux label, so sshd may not read it",
            )
            .at(ssh_dir)
            .values(
                "ssh_home_t",
                facts.ssh_dir_context.clone().unwrap_or_default(),
            )
            .fix(Repair::Restorecon {
                path: ssh_dir.into(),
            }),
        );
    }
    if facts.home_unmounted {
        out.push(Finding::new("home.mounted", Severity::Error, "/etc/fstab lists /home but it is not mounted: the user's keys are on the missing filesystem").values("mounted", "not mounted"));
    }
    if let Some((blocks, inodes)) = facts.disk_use {
        if blocks >= 100 || inodes >= 100 {
            out.push(
                Finding::new(
                    "disk.full",
                    Severity::Error,
                    "the filesystem holding /home is full (space or inodes): logins can fail",
                )
                .values("< 100%", format!("{blocks}% space, {inodes}% inodes")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::facts::Passwd;

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
