//! Booting, finding and stopping lab VMs.
//!
//! A VM is QEMU under software emulation (KVM is unreliable on the machines
//! this runs on: `-accel tcg -cpu max`), booting the cached image with
//! `-snapshot` so every boot starts pristine, its serial port on a Unix
//! socket and its sshd forwarded to a free loopback port. Its state (pid,
//! socket, port) is a JSON file in the VM's run directory, so `lab status`,
//! `lab break` and `lab down` find it from another process.
//!
//! QEMU runs in its own process group, so stopping a VM kills everything it
//! started. The CLI detaches QEMU (`-daemonize`) so the VM outlives `lab up`;
//! the test harness keeps it as a child that dies with the test process.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::gateway::LabGateway;
use super::image::{self, Image};
use super::layout::{validate_name, LabDirs};
use super::ssh::SshTarget;
use crate::error::{Error, Result};
use crate::secret::{Secret, SecretSource};
use crate::target::Target;

mod grub;
mod qemu;
mod ready;

use qemu::{launch, BootMedia};
use ready::wait_until_ready;

/// The user the lab is reached as, like an AMI's default user.
pub const USER: &str = "ec2-user";
/// A second admin with the same password and key, for repairs that lock out `ec2-user`.
pub const ADMIN_USER: &str = "lab-admin";
/// The guest's hostname.
pub const HOSTNAME: &str = "lab-instance";
const STATE_FILE: &str = "state.json";
const QEMU_ATTEMPTS: usize = 3;

/// Everything needed to reach a running VM (saved as `state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmInfo {
    /// The VM's name.
    pub name: String,
    /// QEMU's pid (also its process group).
    pub pid: i32,
    /// The serial console's Unix socket.
    pub serial_socket: PathBuf,
    /// The loopback port forwarded to the guest's sshd.
    pub ssh_port: u16,
    /// The login user.
    pub user: String,
    /// The private key authorized for the user.
    pub key: PathBuf,
    /// The file holding the console password (never the password itself).
    pub password_file: PathBuf,
    /// The image directory it booted.
    pub image: PathBuf,
    /// Seconds from starting QEMU to SSH answering (0 while booting).
    pub boot_seconds: f64,
    /// True once `login:` was seen and SSH accepted the key.
    pub ready: bool,
    /// The WebSocket gateway serving the console (VMs started by `lab up`).
    #[serde(default)]
    pub gateway: Option<LabGateway>,
    /// How it boots (directly, or through GRUB on the serial console).
    #[serde(default)]
    pub boot: Boot,
    /// QEMU's monitor socket (`lab reset`); absent in VMs started by older versions.
    #[serde(default)]
    pub monitor_socket: Option<PathBuf>,
}

/// How a lab VM boots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Boot {
    /// QEMU starts the kernel itself: the fastest boot, no boot loader.
    #[default]
    Direct,
    /// Through a real GRUB 2 whose menu and editor are on the serial
    /// console, as on an EC2 instance: what the GRUB rescue path needs.
    Grub,
}

impl VmInfo {
    /// The serial console as a target (`unix:…`).
    pub fn serial_target(&self) -> Target {
        Target::Unix {
            path: self.serial_socket.clone(),
        }
    }

    /// SSH to the VM as [`VmInfo::user`].
    pub fn ssh(&self) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: self.ssh_port,
            user: self.user.clone(),
            key: self.key.clone(),
        }
    }

    /// The console password, read from [`VmInfo::password_file`].
    pub fn password(&self) -> Result<Secret> {
        SecretSource::File(self.password_file.clone()).read("lab password")
    }

    /// Whether the QEMU process is still this VM's (not a reused pid).
    pub fn is_alive(&self) -> bool {
        super::process::runs_as(
            self.pid,
            &["qemu-system", &self.serial_socket.to_string_lossy()],
        )
    }
}

/// How to boot.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// Detach QEMU so the VM outlives this process (the CLI); otherwise it
    /// is a child killed when this process dies (tests).
    pub detach: bool,
    /// Where to record the boot's console output (default: the VM dir's `boot.cast`).
    pub boot_transcript: Option<PathBuf>,
    /// Told about slow steps (the image build) as they start; the command
    /// line prints them, the library never does.
    pub progress: Option<fn(&str)>,
    /// Longest wait for `login:` and SSH.
    pub timeout: Duration,
    /// Serve the console over WebSocket too (a detached `gateway`; the CLI).
    pub gateway: bool,
    /// Boot directly or through GRUB.
    pub boot: Boot,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            detach: true,
            boot_transcript: None,
            progress: None,
            timeout: Duration::from_secs(300),
            gateway: false,
            boot: Boot::Direct,
        }
    }
}

/// A VM this process booted.
#[derive(Debug)]
pub struct RunningVm {
    /// How to reach it.
    pub info: VmInfo,
    /// The image it booted (with the build time when built now).
    pub image: Image,
    /// QEMU, when not detached: the owner must kill and reap it.
    pub child: Option<Child>,
}

/// Builds the image if needed, boots VM `name`, waits for `login:` and SSH.
pub async fn up(dirs: &LabDirs, name: &str, options: &BootOptions) -> Result<RunningVm> {
    validate_name(name)?;
    if let Some(info) = find(dirs, name)? {
        if info.is_alive() {
            return Err(Error::usage(format!(
                "lab VM {name:?} is already running; stop it with `lab down --name {name}` or pick another --name"
            )));
        }
    }
    let dirs_owned = dirs.clone();
    let progress = options.progress;
    let image = tokio::task::spawn_blocking(move || image::ensure(&dirs_owned, progress))
        .await
        .map_err(|e| Error::io("building the lab image", std::io::Error::other(e)))??;
    let media = match options.boot {
        Boot::Direct => BootMedia::Direct,
        Boot::Grub => {
            let (dirs, image) = (dirs.clone(), image.clone());
            BootMedia::Grub(
                tokio::task::spawn_blocking(move || grub::ensure_iso(&dirs, &image))
                    .await
                    .map_err(|e| {
                        Error::io("building the GRUB boot image", std::io::Error::other(e))
                    })??,
            )
        }
    };
    let vm_dir = fresh_vm_dir(dirs, name)?;
    let started = Instant::now();
    let (mut info, child) = launch(dirs, name, &vm_dir, &image, &media, options.detach)?;
    let mut vm = RunningVm {
        info: info.clone(),
        image,
        child,
    };
    save(&vm_dir, &info)?;
    if let Some(tell) = options.progress {
        tell(&format!(
            "booting lab VM {name} under QEMU (TCG): waiting for `login:` and sshd (usually 15-55 s, up to {} s)",
            options.timeout.as_secs()
        ));
    }
    if let Err(e) = wait_until_ready(&info, &vm_dir, options).await {
        stop(&mut vm);
        let _ = std::fs::remove_dir_all(&vm_dir);
        return Err(e);
    }
    info.boot_seconds = started.elapsed().as_secs_f64();
    info.ready = true;
    if options.gateway {
        match LabGateway::start(&info.serial_socket, &vm_dir) {
            Ok(gateway) => info.gateway = Some(gateway),
            Err(e) => {
                stop(&mut vm);
                let _ = std::fs::remove_dir_all(&vm_dir);
                return Err(e);
            }
        }
    }
    save(&vm_dir, &info)?;
    vm.info = info;
    Ok(vm)
}

/// Kills a VM this process booted (its whole process group) and reaps it.
pub fn stop(vm: &mut RunningVm) {
    kill_group(vm.info.pid, Signal::SIGKILL);
    if let Some(mut child) = vm.child.take() {
        let _ = child.wait();
    }
}

/// Starts the gateway of a running VM whose gateway is missing or died
/// (`lab up` on a VM that is already up), saving the new state.
pub fn ensure_gateway(dirs: &LabDirs, mut info: VmInfo) -> Result<VmInfo> {
    if info.gateway.as_ref().is_some_and(LabGateway::is_alive) {
        return Ok(info);
    }
    let vm_dir = dirs.vm_dir(&info.name);
    info.gateway = Some(LabGateway::start(&info.serial_socket, &vm_dir)?);
    save(&vm_dir, &info)?;
    Ok(info)
}

/// The saved state of VM `name`, if it has a run directory.
pub fn find(dirs: &LabDirs, name: &str) -> Result<Option<VmInfo>> {
    validate_name(name)?;
    let path = dirs.vm_dir(name).join(STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::usage(format!(
                "the lab state {} is damaged ({e}); remove that directory",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// The running VM `name`, or a usage error saying how to start it.
pub fn require_running(dirs: &LabDirs, name: &str) -> Result<VmInfo> {
    match find(dirs, name)? {
        Some(info) if info.is_alive() && info.ready => Ok(info),
        _ => Err(Error::usage(format!(
            "no lab VM named {name:?} is running; start it with `ec2-serial-expect lab up --name {name}`"
        ))),
    }
}

/// Every VM with a run directory, with whether it is alive.
pub fn list(dirs: &LabDirs) -> Vec<(VmInfo, bool)> {
    let Ok(entries) = std::fs::read_dir(&dirs.run) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|n| find(dirs, n).ok().flatten())
        .map(|info| {
            let alive = info.is_alive();
            (info, alive)
        })
        .collect()
}

/// Stops VM `name` (politely, then by force) and removes its run directory.
/// Returns whether it was running.
pub async fn down(dirs: &LabDirs, name: &str) -> Result<bool> {
    let Some(info) = find(dirs, name)? else {
        return Ok(false);
    };
    if let Some(gateway) = &info.gateway {
        gateway.stop().await;
    }
    let was_alive = info.is_alive();
    if was_alive {
        kill_group(info.pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while info.is_alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if info.is_alive() {
            kill_group(info.pid, Signal::SIGKILL);
        }
    }
    let dir = dirs.vm_dir(name);
    std::fs::remove_dir_all(&dir)
        .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
    Ok(was_alive)
}

/// Presses the VM's reset button (QEMU's `system_reset`): the guest
/// reboots at once, without shutting down, as a power cycle would; the
/// serial console stays connected and shows the boot from the start.
pub fn reset(info: &VmInfo) -> Result<()> {
    use std::io::{Read, Write};
    let Some(path) = info.monitor_socket.as_ref().filter(|_| info.is_alive()) else {
        return Err(Error::usage(format!(
            "lab VM {:?} cannot be reset: it is not running, or was started by an older \
             version without a monitor socket; restart it with `lab down` and `lab up`",
            info.name
        )));
    };
    let failed = |e: std::io::Error| {
        Error::io(
            format!(
                "resetting lab VM {:?} through {}",
                info.name,
                path.display()
            ),
            e,
        )
    };
    let mut monitor = std::os::unix::net::UnixStream::connect(path).map_err(failed)?;
    monitor
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(failed)?;
    // The monitor greets with a banner and a `(qemu) ` prompt; after the
    // command, a second prompt says it ran.
    let mut heard = Vec::new();
    let mut sent = false;
    let mut buf = [0u8; 4096];
    loop {
        let prompts = heard.windows(7).filter(|w| w == b"(qemu) ").count();
        if !sent && prompts >= 1 {
            monitor.write_all(b"system_reset\n").map_err(failed)?;
            sent = true;
        } else if sent && prompts >= 2 {
            return Ok(());
        }
        let n = monitor.read(&mut buf).map_err(failed)?;
        if n == 0 {
            return Err(failed(std::io::Error::other(
                "the monitor closed the connection",
            )));
        }
        heard.extend_from_slice(&buf[..n]);
    }
}

fn kill_group(pid: i32, signal: Signal) {
    if pid > 1 {
        let _ = kill(Pid::from_raw(-pid), signal);
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

fn fresh_vm_dir(dirs: &LabDirs, name: &str) -> Result<PathBuf> {
    let dir = dirs.vm_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            Error::io(
                format!("creating the lab run directory {}", dir.display()),
                e,
            )
        })?;
    Ok(dir)
}

fn save(vm_dir: &Path, info: &VmInfo) -> Result<()> {
    let path = vm_dir.join(STATE_FILE);
    let text = serde_json::to_string_pretty(info).unwrap_or_default();
    std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}
