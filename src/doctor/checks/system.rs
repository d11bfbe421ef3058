//! The system around sshd: `/home` mounted when fstab lists it, room on
//! the disk, SELinux labels on `~/.ssh`, and `/etc/ssh` itself.

use super::{CheckId, Finding, Severity};
use crate::doctor::facts::Facts;
use crate::doctor::repair::Repair;

pub(super) fn system(facts: &Facts, ssh_dir: &str, out: &mut Vec<Finding>) {
    if let Some(p) = facts.paths.get("/etc/ssh") {
        if p.owner != "root" || p.mode & 0o022 != 0 {
            out.push(
                Finding::new(
                    CheckId::EtcSshPerms,
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
                CheckId::SshdHostKeys,
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
                CheckId::SelinuxSshDirLabel,
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
        out.push(Finding::new(CheckId::HomeMounted, Severity::Error, "/etc/fstab lists /home but it is not mounted: the user's keys are on the missing filesystem").values("mounted", "not mounted"));
    }
    if let Some((blocks, inodes)) = facts.disk_use {
        if blocks >= 100 || inodes >= 100 {
            out.push(
                Finding::new(
                    CheckId::DiskFull,
                    Severity::Error,
                    "the filesystem holding /home is full (space or inodes): logins can fail",
                )
                .values("< 100%", format!("{blocks}% space, {inodes}% inodes")),
            );
        }
    }
}
