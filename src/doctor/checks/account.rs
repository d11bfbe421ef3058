//! The account: there (and if not, why not: deleted, or the wrong name for
//! the AMI), a login shell that can run, not locked (when sshd would refuse
//! it), not expired.

use super::{CheckId, Finding, Request, Severity};
use crate::doctor::facts::{Facts, Leftover, Os};
use crate::doctor::repair::Repair;

pub(super) fn identity(facts: &Facts, req: &Request, shell: &str, out: &mut Vec<Finding>) {
    let user = req.user.as_str();
    if !facts.shell_ok {
        out.push(
            Finding::new(CheckId::UserShell, Severity::Error, format!("{user}'s login shell is missing or not executable: sshd refuses users whose shell cannot run; set a valid shell with `usermod -s /bin/bash {user}`"))
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
            Finding::new(CheckId::UserLocked, severity, why)
                .values("unlocked", status)
                .fix(Repair::Unlock(req.user.clone()))
                .loosening(true),
        );
    }
    if facts.expired {
        out.push(
            Finding::new(
                CheckId::UserExpired,
                Severity::Error,
                "the account has expired: PAM's account stack refuses it",
            )
            .values("never expires", "expired")
            .fix(Repair::Unexpire(req.user.clone()))
            .loosening(true),
        );
    }
}

/// The user has no account. Say what the operator needs to know instead of
/// asking: a home left behind means the account was deleted (re-created with
/// `--create-user`); a key held by other accounts, or the distribution's AMI
/// default user, names who to connect as.
pub(super) fn absent(facts: &Facts, req: &Request, out: &mut Vec<Finding>) {
    let user = req.user.as_str();
    let default = default_users(&facts.os);
    let distro = if facts.os.pretty_name.is_empty() {
        "this distribution".to_string()
    } else {
        facts.os.pretty_name.clone()
    };
    let missing = |why: String| {
        Finding::new(CheckId::UserWrongName, Severity::Error, why)
            .values("an existing user", "no passwd entry")
    };
    if let Some(code) = facts.absent.lookup_failed {
        out.push(
            Finding::new(CheckId::UserExists, Severity::Error, format!("the account {user} could not be looked up (getent exited {code}): the name service (SSSD, LDAP) may be down, so the doctor cannot tell a missing account from an unseen one"))
                .values("an existing user", "lookup failed"),
        );
        return;
    }
    let holders = holders_text(facts, user);
    let existing_default: Vec<&str> = default
        .iter()
        .copied()
        .filter(|d| facts.absent.accounts.iter().any(|a| a == d))
        .collect();
    match facts.absent.home.as_ref() {
        // The home's owner is an account: renamed (usermod -l), not deleted.
        Some(home) if home.owner != "UNKNOWN" => {
            let also = holders.map(|h| format!("; {h}")).unwrap_or_default();
            out.push(missing(format!("there is no account {user}, but its home {} belongs to {}: the account was renamed? connect as {}{also}", home.path, home.owner, home.owner)));
            return;
        }
        Some(home) => {
            out.push(deleted(facts, req, Some(home), &distro));
            return;
        }
        None => {}
    }
    if let Some(holders) = holders {
        let default_note = existing_default
            .first()
            .map(|name| format!(" ({name} is the default user of {distro}'s AMIs)"))
            .unwrap_or_default();
        out.push(missing(format!(
            "there is no account {user} on the instance; {holders}{default_note}"
        )));
    } else if let Some(name) = existing_default.first() {
        out.push(missing(format!("there is no account {user} on the instance; it runs {distro}, whose AMIs' default user is {name}, and that account exists: connect as {name}")));
    } else if default.contains(&user) {
        out.push(deleted(facts, req, None, &distro));
    } else {
        let accounts = if facts.absent.accounts.is_empty() {
            "none".to_string()
        } else {
            facts.absent.accounts.join(", ")
        };
        let hint = match default.first() {
            Some(name) => {
                format!("{distro}'s AMIs log in as {name}, which does not exist here either")
            }
            None => format!("{distro} has no AMI default user we know"),
        };
        let key = if req.sought().is_some() {
            "no account's key file holds your key"
        } else {
            "give --public-key to find which account holds your key"
        };
        out.push(
            Finding::new(
                CheckId::UserExists,
                Severity::Error,
                format!("there is no account {user} on the instance, and no trace of a deleted one; {hint}; the accounts with a login shell: {accounts}; {key}"),
            )
            .values("an existing user", "no passwd entry"),
        );
    }
}

/// `user.deleted`: the home left behind, owned by an id no account has now
/// (or the name being the AMI's own user) says the account existed.
/// Re-created only with `--create-user`, and only where `/home` is writable
/// by root alone (no one can plant a link where `useradd` works).
fn deleted(facts: &Facts, req: &Request, leftover: Option<&Leftover>, distro: &str) -> Finding {
    let user = req.user.as_str();
    let (found, what) = match leftover {
        Some(home) => (
            format!(
                "its home {} is still there ({}, owner id {}, which no account has now)",
                home.path, home.kind, home.uid
            ),
            "was deleted",
        ),
        None => (
            format!("{user} is the default user of {distro}'s AMIs"),
            "was deleted (or never created)",
        ),
    };
    let mut f = Finding::new(
        CheckId::UserDeleted,
        Severity::Error,
        format!("the account {user} {what}: {found}"),
    )
    .values("an existing user", "no passwd entry");
    let home_root_safe = facts
        .paths
        .get("/home")
        .is_some_and(|p| p.kind == "directory" && p.owner == "root" && p.mode & 0o022 == 0);
    let adopt = leftover.filter(|h| h.kind == "directory");
    let refusal = if leftover.is_some() && adopt.is_none() {
        Some(format!(
            "{} is not a directory: move it aside, then re-run with --fix --create-user",
            leftover.map_or("", |h| h.path.as_str())
        ))
    } else if !home_root_safe {
        Some("/home is not a root-owned directory others cannot write: repair /home first (doctor --user of an existing account), then re-run".into())
    } else if !req.create_user {
        Some("re-create it with --fix --create-user (and --public-key FILE --add-key to put your key in place)".into())
    } else {
        None
    };
    match refusal {
        Some(why) => {
            f.why.push_str(&format!("; {why}"));
            f
        }
        None => f.fix(Repair::CreateUser {
            user: req.user.clone(),
            home: adopt.map_or_else(|| format!("/home/{user}"), |h| h.path.clone()),
            adopt: adopt.is_some(),
            // The old id (no account has it): the files it owns everywhere
            // (the home, mail, crontab) are the user's again.
            uid: adopt.map(|h| h.uid),
            own_group: facts.absent.own_group,
            // Administrators' groups only for an AMI default user's name.
            groups: if all_default_users().any(|d| d == user) {
                admin_groups(&facts.os, &facts.absent.admin_groups)
            } else {
                Vec::new()
            },
        }),
    }
}

/// "your key is in …: connect as …", when other accounts hold the key.
pub(super) fn holders_text(facts: &Facts, user: &str) -> Option<String> {
    let mut others: Vec<&(String, String)> = facts
        .key_holders
        .iter()
        .filter(|(name, _)| name != user)
        .collect();
    // The distribution's AMI default user first: the likeliest right name.
    let default = default_users(&facts.os);
    others.sort_by_key(|(name, _)| !default.contains(&name.as_str()));
    if others.is_empty() {
        return None;
    }
    let files: Vec<&str> = others.iter().map(|(_, f)| f.as_str()).collect();
    let mut names: Vec<&str> = others.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    Some(format!(
        "your key is in {}: connect as {}",
        files.join(", "),
        names.join(" or ")
    ))
}

/// The user names AWS's AMIs of a distribution log in with (the seed
/// article's table), by `/etc/os-release` `ID`, then `ID_LIKE`.
const DEFAULT_USERS: &[(&str, &[&str])] = &[
    ("amzn", &["ec2-user"]),
    ("centos", &["centos", "ec2-user"]),
    ("debian", &["admin"]),
    ("fedora", &["fedora", "ec2-user"]),
    ("rhel", &["ec2-user"]),
    ("sles", &["ec2-user"]),
    ("opensuse-leap", &["ec2-user"]),
    ("ubuntu", &["ubuntu"]),
    ("ol", &["ec2-user"]),
    ("rocky", &["rocky"]),
    ("almalinux", &["ec2-user"]),
];

/// The default users of the distribution `os` is or is like.
fn default_users(os: &Os) -> &'static [&'static str] {
    std::iter::once(os.id.as_str())
        .chain(os.id_like.split_whitespace())
        .find_map(|id| DEFAULT_USERS.iter().find(|(d, _)| *d == id))
        .map_or(&[], |(_, names)| names)
}

/// Every distribution's default user names.
fn all_default_users() -> impl Iterator<Item = &'static str> {
    DEFAULT_USERS
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
}

/// The groups an AMI's default user is in for administration: `adm`, and
/// `sudo` on Debian and Ubuntu, `wheel` elsewhere; only those that exist.
fn admin_groups(os: &Os, existing: &[String]) -> Vec<String> {
    let debian_like = std::iter::once(os.id.as_str())
        .chain(os.id_like.split_whitespace())
        .any(|id| id == "debian" || id == "ubuntu");
    let sudo = if debian_like { "sudo" } else { "wheel" };
    ["adm", sudo]
        .into_iter()
        .filter(|g| existing.iter().any(|e| e == g))
        .map(str::to_string)
        .collect()
}
