//! The lab's disk image: built once with debootstrap, cached, rebuilt when
//! the recipe changes.
//!
//! The recipe is `scripts/lab/build-image.sh`, embedded in the binary. The
//! cache key hashes the recipe, the suite and the credentials id, so an
//! edited recipe or regenerated credentials build a new image, and anything
//! else reuses the cached one (a minute of debootstrap saved on every run).
//! A file lock serialises builds: parallel tests that all need the image
//! wait for one build instead of racing five.
//!
//! The credentials (an ed25519 key pair and the console password of
//! `ec2-user` and `lab-admin`) are generated once, mode 0600, next to the
//! images; the password goes into the image through a file, never argv.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::layout::LabDirs;
use super::prereq;
use crate::error::{Error, Result};

/// The image recipe, embedded so the binary can build its lab anywhere.
pub const RECIPE: &str = include_str!("../../scripts/lab/build-image.sh");
/// The Debian release the lab runs.
pub const SUITE: &str = "bookworm";
/// The comment on the lab's public key (scenarios find the key line by it).
pub const KEY_COMMENT: &str = "ec2-serial-expect-lab";
/// Length of the generated console password.
const PASSWORD_LEN: usize = 20;

/// A built image, ready to boot.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image's cache directory.
    pub dir: PathBuf,
    /// The root filesystem (raw ext4), always booted with `-snapshot`.
    pub disk: PathBuf,
    /// The kernel.
    pub kernel: PathBuf,
    /// The initrd.
    pub initrd: PathBuf,
    /// Seconds spent building it now, or `None` when it came from the cache.
    pub built_in: Option<f64>,
}

/// Makes sure the credentials and the image for the current recipe exist,
/// building them when needed; `progress` hears about a build as it starts.
pub fn ensure(dirs: &LabDirs, progress: Option<fn(&str)>) -> Result<Image> {
    prereq::check_boot()?;
    create_dir(&dirs.cache)?;
    let lock = lock_builds(dirs)?;
    ensure_credentials(dirs)?;
    let key = cache_key(dirs)?;
    let dir = dirs.images().join(format!("{SUITE}-{key}"));
    let mut image = Image {
        disk: dir.join("disk.img"),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        dir,
        built_in: None,
    };
    if !image.dir.join("ready").exists() {
        prereq::check_build()?;
        let started = Instant::now();
        build(dirs, &image.dir, progress)?;
        image.built_in = Some(started.elapsed().as_secs_f64());
        remove_stale_images(dirs, &image.dir);
    }
    drop(lock);
    Ok(image)
}

/// The image directory name's hash: recipe, suite and credentials.
fn cache_key(dirs: &LabDirs) -> Result<String> {
    let public_key = read_text(&dirs.public_key_file())?;
    let credentials_id = read_text(&dirs.credentials_id_file())?;
    let mut hash = Fnv1a::default();
    for part in [RECIPE, SUITE, public_key.trim(), credentials_id.trim()] {
        hash.update(part.as_bytes());
        hash.update(&[0]);
    }
    Ok(format!("{:016x}", hash.0))
}

/// FNV-1a, 64 bits: a stable hash for cache keys (std's hasher may change
/// between Rust releases, which would rebuild the image for nothing).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Holds the lab's build lock (image or boot CD) until dropped.
pub(crate) fn lock_builds(dirs: &LabDirs) -> Result<nix::fcntl::Flock<File>> {
    let path = dirs.build_lock();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("opening the lab lock {}", path.display()), e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
        Error::io(
            format!("locking {} for the image build", path.display()),
            e.into(),
        )
    })
}

/// Generates the key pair and password when either is missing.
fn ensure_credentials(dirs: &LabDirs) -> Result<()> {
    let complete = [
        dirs.key_file(),
        dirs.public_key_file(),
        dirs.password_file(),
        dirs.credentials_id_file(),
    ]
    .iter()
    .all(|p| p.exists());
    if complete {
        return Ok(());
    }
    for stale in [dirs.key_file(), dirs.public_key_file()] {
        let _ = std::fs::remove_file(stale);
    }
    generate_key(&dirs.key_file())?;
    write_private(
        &dirs.password_file(),
        crate::secret::generate("lab password", PASSWORD_LEN)?.expose(),
    )?;
    write_private(
        &dirs.credentials_id_file(),
        crate::secret::generate("credentials id", 16)?.expose(),
    )?;
    Ok(())
}

fn generate_key(path: &Path) -> Result<()> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", KEY_COMMENT, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| Error::io("running ssh-keygen for the lab key", e))?;
    if !status.success() {
        return Err(Error::io(
            format!("ssh-keygen could not create {}", path.display()),
            std::io::Error::other(format!("ssh-keygen {status}")),
        ));
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    writeln!(file, "{text}").map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Runs the recipe into `<dir>.partial`, then moves it into place.
fn build(dirs: &LabDirs, dir: &Path, progress: Option<fn(&str)>) -> Result<()> {
    let mirror = super::mirror::find(SUITE)?;
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    create_dir(&partial)?;
    let script = partial.join("build-image.sh");
    std::fs::write(&script, RECIPE)
        .map_err(|e| Error::io(format!("writing {}", script.display()), e))?;
    let log_path = partial.join("build.log");
    let log = File::create(&log_path)
        .map_err(|e| Error::io(format!("creating {}", log_path.display()), e))?;
    if let Some(tell) = progress {
        tell(&format!(
            "building the lab image (Debian {SUITE} from {mirror}; about a minute, once): log in {}",
            log_path.display()
        ));
    }
    let status = Command::new("bash")
        .arg(&script)
        .env("LAB_OUT", &partial)
        .env("LAB_MIRROR", &mirror)
        .env("LAB_SUITE", SUITE)
        .env("LAB_PUBKEY_FILE", dirs.public_key_file())
        .env("LAB_PASSWORD_FILE", dirs.password_file())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| Error::io("build log", e))?)
        .stderr(log)
        .status()
        .map_err(|e| Error::io("running the lab image recipe", e))?;
    if !status.success() {
        let tail = last_lines(&log_path, 15);
        return Err(Error::io(
            format!(
                "building the lab image failed ({status}); full log: {}; last lines:\n{tail}",
                log_path.display()
            ),
            std::io::Error::other("image recipe failed"),
        ));
    }
    std::fs::write(partial.join("ready"), "")
        .map_err(|e| Error::io("marking the image ready", e))?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&partial, dir)
        .map_err(|e| Error::io(format!("moving the image to {}", dir.display()), e))
}

/// Deletes images built from older recipes (2 GB sparse each).
fn remove_stale_images(dirs: &LabDirs, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dirs.images()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path != keep && !path.to_string_lossy().ends_with(".partial") {
            tracing::info!("removing the old lab image {}", path.display());
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn last_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path)
        .map_err(|e| Error::io(format!("creating the directory {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        let mut h = Fnv1a::default();
        h.update(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn credentials_are_private_and_change_the_cache_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = LabDirs {
            cache: tmp.path().to_path_buf(),
            run: tmp.path().join("run"),
        };
        ensure_credentials(&dirs).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for p in [dirs.key_file(), dirs.password_file()] {
            let mode = p.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let first = cache_key(&dirs).unwrap();
        assert_eq!(
            first,
            cache_key(&dirs).unwrap(),
            "stable when nothing changes"
        );
        std::fs::remove_file(dirs.password_file()).unwrap();
        ensure_credentials(&dirs).unwrap();
        assert_ne!(
            first,
            cache_key(&dirs).unwrap(),
            "new credentials, new image"
        );
    }
}
