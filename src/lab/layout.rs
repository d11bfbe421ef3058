//! Where the lab keeps things: the image cache and the per-VM run state.
//!
//! The image cache lives outside any git clone (`/var/cache/ec2-serial-expect/lab`
//! as root, `$ESE_LAB_CACHE` to move it) so every clone, and every CI run on
//! the same machine, shares one built image. Each running VM gets its own
//! directory under the run dir (`/run/ec2-serial-expect/lab/NAME`,
//! `$ESE_LAB_RUN` to move it) holding its pid, serial socket and state, so
//! several named VMs can run at once.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variable that moves the image cache.
pub const CACHE_ENV: &str = "ESE_LAB_CACHE";
/// Environment variable that moves the run directory.
pub const RUN_ENV: &str = "ESE_LAB_RUN";
/// Longest VM name: the serial socket path must stay under the 108-byte limit.
const MAX_NAME: usize = 32;

/// The lab's two directories.
#[derive(Debug, Clone)]
pub struct LabDirs {
    /// Image cache: built images, the SSH key pair, the console password.
    pub cache: PathBuf,
    /// Run state: one directory per VM name.
    pub run: PathBuf,
}

impl LabDirs {
    /// The directories from the environment, or the defaults for this user.
    pub fn from_env() -> LabDirs {
        let root = is_root();
        let cache = env_path(CACHE_ENV).unwrap_or_else(|| default_cache(root));
        let run = env_path(RUN_ENV).unwrap_or_else(|| default_run(root));
        LabDirs { cache, run }
    }

    /// The run directory of VM `name`.
    pub fn vm_dir(&self, name: &str) -> PathBuf {
        self.run.join(name)
    }

    /// Where built images live, one directory per recipe hash.
    pub fn images(&self) -> PathBuf {
        self.cache.join("images")
    }

    /// The console password of `ec2-user` and `lab-admin` (mode 0600).
    pub fn password_file(&self) -> PathBuf {
        self.cache.join("ec2-user.password")
    }

    /// The private SSH key authorized for both lab users (mode 0600).
    pub fn key_file(&self) -> PathBuf {
        self.cache.join("id_ed25519")
    }

    /// The public half of [`LabDirs::key_file`].
    pub fn public_key_file(&self) -> PathBuf {
        self.cache.join("id_ed25519.pub")
    }

    /// A random id that changes whenever the credentials are regenerated,
    /// so images built with old credentials are not reused.
    pub fn credentials_id_file(&self) -> PathBuf {
        self.cache.join("credentials.id")
    }

    /// The lock held while building an image (parallel tests wait on it).
    pub fn build_lock(&self) -> PathBuf {
        self.cache.join("build.lock")
    }
}

/// Checks a VM name: letters, digits, `-` and `_`, at most 32 characters.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "bad lab VM name {name:?}: use 1 to {MAX_NAME} letters, digits, '-' or '_' (e.g. --name lab1)"
        )))
    }
}

/// The effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    effective_uid() == 0
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn default_cache(root: bool) -> PathBuf {
    if root {
        return PathBuf::from("/var/cache/ec2-serial-expect/lab");
    }
    directories::BaseDirs::new()
        .map(|d| d.cache_dir().join("ec2-serial-expect/lab"))
        .unwrap_or_else(|| std::env::temp_dir().join("ec2-serial-expect-cache/lab"))
}

fn default_run(root: bool) -> PathBuf {
    if root {
        return PathBuf::from("/run/ec2-serial-expect/lab");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Path::new(&dir).join("ec2-serial-expect/lab"),
        None => std::env::temp_dir().join(format!("ec2-serial-expect-{}/lab", effective_uid())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("default").is_ok());
        assert!(validate_name("t-1_a").is_ok());
        for bad in ["", "a/b", "..", "x y", &"n".repeat(33)] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(err.exit_code().code(), 2, "{bad}");
        }
    }
}
