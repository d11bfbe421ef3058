//! sshd itself: a configuration that parses, a running daemon with host
//! keys, public key authentication on, the key file it really reads, and
//! AllowUsers/DenyUsers/groups that let the user in.

use super::{CheckId, Finding, Request, Severity};
use crate::doctor::facts::Facts;
use crate::doctor::repair::Repair;

pub(super) fn sshd(facts: &Facts, req: &Request, out: &mut Vec<Finding>) {
    if let Some(msg) = &facts.sshd_test_error {
        out.push(
            Finding::new(
                CheckId::SshdConfig,
                Severity::Error,
                format!("`sshd -t` fails, so sshd may not (re)start: {msg}"),
            )
            .values("sshd -t passes", "fails"),
        );
    }
    if !facts.sshd_running && !req.rescue {
        out.push(
            Finding::new(CheckId::SshdRunning, Severity::Error, "sshd is not running")
                .values("active", "inactive")
                .fix(Repair::RestartSshd),
        );
    }
    let get = |k: &str| facts.sshd.get(k).map(String::as_str);
    if get("pubkeyauthentication") == Some("no") {
        out.push(
            Finding::new(
                CheckId::SshdPubkeyAuthentication,
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
        out.push(Finding::new(CheckId::SshdStrictModes, Severity::Warning, "StrictModes is off: sshd would accept keys from unsafe paths (a security risk, not a cause)").values("yes", "no"));
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
                    CheckId::SshdAuthorizedKeysFile,
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
        out.push(Finding::new(CheckId::SshdUserNotAllowed, Severity::Error, format!("{why}: sshd refuses {user} (`User {user} not allowed because …`); edit sshd_config")).values("allowed", "not allowed"));
    }
}

/// sshd's `*` and `?` patterns.
pub(super) fn glob(pattern: &str, text: &str) -> bool {
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
