//! The path sshd walks to the key: `/home`, the home directory, `~/.ssh`
//! and the key file — each must exist with the right type, owner and mode
//! (the seed article's exact modes under `aws`, StrictModes' rules under
//! `sshd`).

use super::{CheckId, Finding, PathRole, Policy, Request, Severity};
use crate::doctor::facts::{Facts, PathFacts};
use crate::doctor::repair::Repair;

pub(super) fn home_root(facts: &Facts, policy: Policy, out: &mut Vec<Finding>) {
    let Some(p) = facts.paths.get("/home") else {
        return;
    };
    if p.owner != "root" {
        out.push(
            Finding::new(
                CheckId::HomeRootOwner,
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
                CheckId::HomeRootMode,
                severity,
                "/home should be 0755: writable by others, anyone could replace a user's home",
            )
            .at("/home")
            .values("0755", format!("{:04o}", p.mode))
            .fix(mode_repair(policy, "/home", 0o755))
            .loosening(widens(policy, p.mode, 0o755)),
        );
    }
}

/// Checks one path component; returns whether it exists as it should.
pub(super) fn path_check(
    facts: &Facts,
    req: &Request,
    role: PathRole,
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
                role.exists(),
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
                role.kind(),
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
    owner_check(p, req, role, path, user, out);
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
            Finding::new(role.mode(), severity, why)
                .at(path)
                .values(expected, format!("{:04o}", p.mode))
                .fix(mode_repair(req.policy, path, aws_mode))
                .loosening(widens(req.policy, p.mode, aws_mode)),
        );
    }
    true
}

fn owner_check(
    p: &PathFacts,
    req: &Request,
    role: PathRole,
    path: &str,
    user: &str,
    out: &mut Vec<Finding>,
) {
    if p.owner != user && !(p.owner == "root" && req.policy == Policy::Sshd) {
        out.push(
            Finding::new(role.owner(), Severity::Error, format!("{path} must be owned by {user}: sshd refuses keys in paths owned by someone else"))
                .at(path)
                .values(user, format!("{}:{}", p.owner, p.group))
                .fix(Repair::Chown { path: path.into(), owner: user.into(), group: None }),
        );
    }
}

/// Whether [`mode_repair`] grants a permission `mode` lacks (`0500` made
/// `0700`, `0400` made `0600`): `go-w` never does.
fn widens(policy: Policy, mode: u32, aws_mode: u32) -> bool {
    policy == Policy::Aws && aws_mode & !mode & 0o7777 != 0
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
