//! The QEMU process of a lab VM: its command line (TCG, `-snapshot`, the
//! serial port on a Unix socket, sshd forwarded to a free loopback port),
//! started detached for the CLI or as a child for the tests, retried on
//! another port when the chosen one was taken in the meantime.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Boot, VmInfo, QEMU_ATTEMPTS, USER};
use crate::error::{Error, Result};
use crate::lab::image::Image;
use crate::lab::layout::LabDirs;

/// Starts QEMU, retrying with another port when the chosen one was taken.
pub(super) fn launch(
    dirs: &LabDirs,
    name: &str,
    vm_dir: &Path,
    image: &Image,
    boot: &BootMedia,
    detach: bool,
) -> Result<(VmInfo, Option<Child>)> {
    let socket = vm_dir.join("serial.sock");
    let monitor = vm_dir.join("monitor.sock");
    let mut last_error = String::new();
    for _ in 0..QEMU_ATTEMPTS {
        let port = free_port()?;
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&monitor);
        let mut command = qemu_command(name, image, boot, [&socket, &monitor], port);
        let started = if detach {
            start_detached(&mut command, vm_dir)
        } else {
            start_child(&mut command, vm_dir, &socket)
        };
        match started {
            Ok((pid, child)) => {
                let info = VmInfo {
                    name: name.to_string(),
                    pid,
                    serial_socket: socket,
                    ssh_port: port,
                    user: USER.to_string(),
                    key: dirs.key_file(),
                    password_file: dirs.password_file(),
                    image: image.dir.clone(),
                    boot_seconds: 0.0,
                    ready: false,
                    gateway: None,
                    boot: boot.boot(),
                    monitor_socket: Some(monitor.clone()),
                };
                return Ok((info, child));
            }
            Err(message) if message.contains("hostfwd") || message.contains("forwarding") => {
                last_error = message;
            }
            Err(message) => return Err(qemu_failed(&message)),
        }
    }
    Err(qemu_failed(&last_error))
}

fn qemu_failed(message: &str) -> Error {
    Error::io(
        "starting QEMU for the lab VM",
        std::io::Error::other(message.trim().to_string()),
    )
}

/// How the VM's kernel starts.
pub(super) enum BootMedia {
    /// QEMU loads the kernel and initrd itself (`-kernel`): the fastest boot.
    Direct,
    /// The BIOS boots a GRUB 2 CD image whose menu is on the serial port.
    Grub(PathBuf),
}

impl BootMedia {
    fn boot(&self) -> Boot {
        match self {
            BootMedia::Direct => Boot::Direct,
            BootMedia::Grub(_) => Boot::Grub,
        }
    }
}

/// The QEMU command line for one VM; `sockets` are the serial console's and
/// the monitor's (`lab reset` sends it `system_reset`).
fn qemu_command(
    name: &str,
    image: &Image,
    boot: &BootMedia,
    [socket, monitor]: [&Path; 2],
    port: u16,
) -> Command {
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args(["-name", &format!("ec2-serial-expect-lab-{name}")])
        .args(["-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2"])
        .args(["-nodefaults", "-no-user-config", "-display", "none"]);
    match boot {
        BootMedia::Direct => {
            command
                .arg("-kernel")
                .arg(&image.kernel)
                .arg("-initrd")
                .arg(&image.initrd)
                .args(["-append", "console=ttyS0 root=/dev/vda rw"]);
        }
        BootMedia::Grub(iso) => {
            command
                .arg("-drive")
                .arg(format!(
                    "file={},format=raw,media=cdrom,readonly=on",
                    iso.display()
                ))
                .args(["-boot", "d"])
                // A video card, as an instance has (its screenshot): GRUB's
                // gfxterm, which the VM's own menu selects until `prepare`
                // puts it on serial, hangs in the BIOS without one.
                .args(["-vga", "std"]);
        }
    }
    command
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio",
            image.disk.display()
        ))
        .arg("-snapshot")
        .args([
            "-netdev",
            &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22"),
        ])
        // Slot 3: the guest names the NIC ens3, as the image's interfaces file says.
        .args(["-device", "virtio-net-pci,netdev=n0,addr=0x3"])
        .arg("-serial")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .arg("-monitor")
        .arg(format!("unix:{},server=on,wait=off", monitor.display()));
    command
}

/// `-daemonize`: QEMU's parent exits once the VM is set up (errors included).
fn start_detached(
    command: &mut Command,
    vm_dir: &Path,
) -> std::result::Result<(i32, Option<Child>), String> {
    let pidfile = vm_dir.join("qemu.pid");
    let output = command
        .arg("-daemonize")
        .arg("-pidfile")
        .arg(&pidfile)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run qemu-system-x86_64: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| format!("QEMU started but wrote no pid to {}", pidfile.display()))?;
    Ok((pid, None))
}

/// A child in its own process group that the kernel kills when this
/// process's spawning thread dies, so a crashed test leaves no QEMU behind.
fn start_child(
    command: &mut Command,
    vm_dir: &Path,
    socket: &Path,
) -> std::result::Result<(i32, Option<Child>), String> {
    let log_path = vm_dir.join("qemu.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    // SAFETY: only async-signal-safe calls (setpgid, prctl) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run qemu-system-x86_64: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("QEMU exited ({status}): {log}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("QEMU did not create its serial socket within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child.id() as i32, Some(child)))
}

/// A loopback port free right now (QEMU binds it a moment later; a lost race
/// is retried by [`launch`]).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("finding a free loopback port for SSH", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free loopback port for SSH", e))
}
