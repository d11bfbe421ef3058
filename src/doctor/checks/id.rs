//! The stable id of every check: the strings users' automation keys on
//! (`home.mode`, `authorized_keys.key_missing`, …), each defined once here.
//!
//! A finding carries a [`CheckId`], never a string built on the spot, so an
//! id cannot be misspelt in one check or renamed by accident: the JSON
//! report and the human text print [`CheckId::as_str`], and the unit tests
//! pin the whole list and hold `docs/doctor.md` to it.

use std::fmt;

use serde::{Serialize, Serializer};

/// Which check a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    /// `user.exists`
    UserExists,
    /// `user.shell`
    UserShell,
    /// `user.locked`
    UserLocked,
    /// `user.expired`
    UserExpired,
    /// `home_root.owner`
    HomeRootOwner,
    /// `home_root.mode`
    HomeRootMode,
    /// `home.exists`
    HomeExists,
    /// `home.type`
    HomeType,
    /// `home.mode`
    HomeMode,
    /// `home.owner`
    HomeOwner,
    /// `home.mounted`
    HomeMounted,
    /// `ssh_dir.exists`
    SshDirExists,
    /// `ssh_dir.type`
    SshDirType,
    /// `ssh_dir.mode`
    SshDirMode,
    /// `ssh_dir.owner`
    SshDirOwner,
    /// `authorized_keys.exists`
    AuthorizedKeysExists,
    /// `authorized_keys.type`
    AuthorizedKeysType,
    /// `authorized_keys.mode`
    AuthorizedKeysMode,
    /// `authorized_keys.owner`
    AuthorizedKeysOwner,
    /// `authorized_keys.empty`
    AuthorizedKeysEmpty,
    /// `authorized_keys.malformed`
    AuthorizedKeysMalformed,
    /// `authorized_keys.crlf`
    AuthorizedKeysCrlf,
    /// `authorized_keys.key_missing`
    AuthorizedKeysKeyMissing,
    /// `sshd.config`
    SshdConfig,
    /// `sshd.running`
    SshdRunning,
    /// `sshd.host_keys`
    SshdHostKeys,
    /// `sshd.strict_modes`
    SshdStrictModes,
    /// `sshd.pubkey_authentication`
    SshdPubkeyAuthentication,
    /// `sshd.authorized_keys_file`
    SshdAuthorizedKeysFile,
    /// `sshd.user_not_allowed`
    SshdUserNotAllowed,
    /// `selinux.ssh_dir_label`
    SelinuxSshDirLabel,
    /// `etc_ssh.perms`
    EtcSshPerms,
    /// `disk.full`
    DiskFull,
    /// `repair.unlock_failed`
    RepairUnlockFailed,
    /// `user.deleted`
    UserDeleted,
    /// `user.wrong_name`
    UserWrongName,
    /// `authorized_keys.key_algorithm`
    AuthorizedKeysKeyAlgorithm,
}

impl CheckId {
    /// Every id: the first 34 in report order of their groups, then those
    /// added since, in the order they were added.
    pub const ALL: [CheckId; 37] = [
        CheckId::UserExists,
        CheckId::UserShell,
        CheckId::UserLocked,
        CheckId::UserExpired,
        CheckId::HomeRootOwner,
        CheckId::HomeRootMode,
        CheckId::HomeExists,
        CheckId::HomeType,
        CheckId::HomeMode,
        CheckId::HomeOwner,
        CheckId::HomeMounted,
        CheckId::SshDirExists,
        CheckId::SshDirType,
        CheckId::SshDirMode,
        CheckId::SshDirOwner,
        CheckId::AuthorizedKeysExists,
        CheckId::AuthorizedKeysType,
        CheckId::AuthorizedKeysMode,
        CheckId::AuthorizedKeysOwner,
        CheckId::AuthorizedKeysEmpty,
        CheckId::AuthorizedKeysMalformed,
        CheckId::AuthorizedKeysCrlf,
        CheckId::AuthorizedKeysKeyMissing,
        CheckId::SshdConfig,
        CheckId::SshdRunning,
        CheckId::SshdHostKeys,
        CheckId::SshdStrictModes,
        CheckId::SshdPubkeyAuthentication,
        CheckId::SshdAuthorizedKeysFile,
        CheckId::SshdUserNotAllowed,
        CheckId::SelinuxSshDirLabel,
        CheckId::EtcSshPerms,
        CheckId::DiskFull,
        CheckId::RepairUnlockFailed,
        CheckId::UserDeleted,
        CheckId::UserWrongName,
        CheckId::AuthorizedKeysKeyAlgorithm,
    ];

    /// The stable id string.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::UserExists => "user.exists",
            CheckId::UserShell => "user.shell",
            CheckId::UserLocked => "user.locked",
            CheckId::UserExpired => "user.expired",
            CheckId::HomeRootOwner => "home_root.owner",
            CheckId::HomeRootMode => "home_root.mode",
            CheckId::HomeExists => "home.exists",
            CheckId::HomeType => "home.type",
            CheckId::HomeMode => "home.mode",
            CheckId::HomeOwner => "home.owner",
            CheckId::HomeMounted => "home.mounted",
            CheckId::SshDirExists => "ssh_dir.exists",
            CheckId::SshDirType => "ssh_dir.type",
            CheckId::SshDirMode => "ssh_dir.mode",
            CheckId::SshDirOwner => "ssh_dir.owner",
            CheckId::AuthorizedKeysExists => "authorized_keys.exists",
            CheckId::AuthorizedKeysType => "authorized_keys.type",
            CheckId::AuthorizedKeysMode => "authorized_keys.mode",
            CheckId::AuthorizedKeysOwner => "authorized_keys.owner",
            CheckId::AuthorizedKeysEmpty => "authorized_keys.empty",
            CheckId::AuthorizedKeysMalformed => "authorized_keys.malformed",
            CheckId::AuthorizedKeysCrlf => "authorized_keys.crlf",
            CheckId::AuthorizedKeysKeyMissing => "authorized_keys.key_missing",
            CheckId::SshdConfig => "sshd.config",
            CheckId::SshdRunning => "sshd.running",
            CheckId::SshdHostKeys => "sshd.host_keys",
            CheckId::SshdStrictModes => "sshd.strict_modes",
            CheckId::SshdPubkeyAuthentication => "sshd.pubkey_authentication",
            CheckId::SshdAuthorizedKeysFile => "sshd.authorized_keys_file",
            CheckId::SshdUserNotAllowed => "sshd.user_not_allowed",
            CheckId::SelinuxSshDirLabel => "selinux.ssh_dir_label",
            CheckId::EtcSshPerms => "etc_ssh.perms",
            CheckId::DiskFull => "disk.full",
            CheckId::RepairUnlockFailed => "repair.unlock_failed",
            CheckId::UserDeleted => "user.deleted",
            CheckId::UserWrongName => "user.wrong_name",
            CheckId::AuthorizedKeysKeyAlgorithm => "authorized_keys.key_algorithm",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CheckId {
    type Err = String;

    /// Parses an id string (`home.mode`), e.g. from a saved report.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckId::ALL
            .into_iter()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a doctor check id (see docs/doctor.md)"))
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The three path components whose existence, type, mode and owner are
/// checked alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PathRole {
    /// The user's home directory.
    Home,
    /// `~/.ssh`.
    SshDir,
    /// The authorized keys file.
    AuthorizedKeys,
}

impl PathRole {
    pub(super) fn exists(self) -> CheckId {
        match self {
            PathRole::Home => CheckId::HomeExists,
            PathRole::SshDir => CheckId::SshDirExists,
            PathRole::AuthorizedKeys => CheckId::AuthorizedKeysExists,
        }
    }

    pub(super) fn kind(self) -> CheckId {
        match self {
            PathRole::Home => CheckId::HomeType,
            PathRole::SshDir => CheckId::SshDirType,
            PathRole::AuthorizedKeys => CheckId::AuthorizedKeysType,
        }
    }

    pub(super) fn mode(self) -> CheckId {
        match self {
            PathRole::Home => CheckId::HomeMode,
            PathRole::SshDir => CheckId::SshDirMode,
            PathRole::AuthorizedKeys => CheckId::AuthorizedKeysMode,
        }
    }

    pub(super) fn owner(self) -> CheckId {
        match self {
            PathRole::Home => CheckId::HomeOwner,
            PathRole::SshDir => CheckId::SshDirOwner,
            PathRole::AuthorizedKeys => CheckId::AuthorizedKeysOwner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids as they were when they became a type: renaming one breaks
    /// users' automation, so this list changes only by adding.
    const PINNED: &[&str] = &[
        "user.exists",
        "user.shell",
        "user.locked",
        "user.expired",
        "home_root.owner",
        "home_root.mode",
        "home.exists",
        "home.type",
        "home.mode",
        "home.owner",
        "home.mounted",
        "ssh_dir.exists",
        "ssh_dir.type",
        "ssh_dir.mode",
        "ssh_dir.owner",
        "authorized_keys.exists",
        "authorized_keys.type",
        "authorized_keys.mode",
        "authorized_keys.owner",
        "authorized_keys.empty",
        "authorized_keys.malformed",
        "authorized_keys.crlf",
        "authorized_keys.key_missing",
        "sshd.config",
        "sshd.running",
        "sshd.host_keys",
        "sshd.strict_modes",
        "sshd.pubkey_authentication",
        "sshd.authorized_keys_file",
        "sshd.user_not_allowed",
        "selinux.ssh_dir_label",
        "etc_ssh.perms",
        "disk.full",
        "repair.unlock_failed",
        "user.deleted",
        "user.wrong_name",
        "authorized_keys.key_algorithm",
    ];

    #[test]
    fn the_id_strings_are_pinned_and_round_trip() {
        let strings: Vec<&str> = CheckId::ALL.iter().map(|id| id.as_str()).collect();
        assert_eq!(strings, PINNED);
        for id in CheckId::ALL {
            assert_eq!(id.as_str().parse::<CheckId>(), Ok(id));
            assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        }
        assert!("home.modes".parse::<CheckId>().is_err());
    }

    #[test]
    fn docs_doctor_md_lists_every_id() {
        let doc = include_str!("../../../docs/doctor.md");
        for id in CheckId::ALL {
            assert!(
                doc.contains(&format!("`{id}`")),
                "docs/doctor.md does not list {id}"
            );
        }
    }
}
