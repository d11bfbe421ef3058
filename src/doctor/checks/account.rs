//! The account: a login shell that can run, not locked (when sshd would
//! refuse it), not expired.

use super::{CheckId, Finding, Request, Severity};
use crate::doctor::facts::Facts;
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
                .fix(Repair::Unlock(req.user.clone())),
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
            .fix(Repair::Unexpire(req.user.clone())),
        );
    }
}
