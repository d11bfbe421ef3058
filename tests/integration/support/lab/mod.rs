//! The lab test harness: boots real lab VMs for integration tests.
//!
//! Why: tests of console logic need a real serial console (getty, login,
//! PAM, sudo, sshd, kernel messages), and a crashed test must never leave a
//! QEMU process behind. So:
//! - every VM shares the cached image (built once, under a file lock, by the
//!   first test that needs it);
//! - at most [`MAX_VMS`] run at once in a test binary (2 cores: two TCG VMs
//!   already keep them busy); later tests wait for a slot;
//! - QEMU runs as a child in its own process group, killed with its group
//!   and reaped in [`LabVm`]'s `Drop`, which also runs when a test panics;
//!   and the kernel kills it (PR_SET_PDEATHSIG) if the test process dies;
//! - a missing prerequisite is a panic saying exactly what is missing: in
//!   CI these tests must run, never pass silently;
//! - with `ESE_LAB_CONSOLE=ws` the tests reach the console through the
//!   WebSocket gateway (served from this process, on its own thread) instead
//!   of the Unix socket: the lab tier over `ws://` end to end.
//!
//! Use as `crate::support::lab`.

#![allow(dead_code)]

pub mod flows;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use ec2_serial_expect::gateway::{self, Auth, GatewayConfig};
use ec2_serial_expect::lab::layout::{self, LabDirs};
use ec2_serial_expect::lab::ssh::{KeyLogin, SshTarget};
use ec2_serial_expect::lab::vm::{self, BootOptions, RunningVm, VmInfo};
use ec2_serial_expect::lab::{console, prereq};
use ec2_serial_expect::{Secret, Session, Target};

/// The `#[ignore]` reason every lab test carries.
pub const IGNORE_REASON: &str = "lab: needs root and QEMU (scripts/test.sh runs it)";
/// Most VMs booted at once by one test binary.
pub const MAX_VMS: usize = 2;

static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// One of the [`MAX_VMS`] places; released on drop.
struct Slot;

impl Slot {
    /// `wanted` places taken at once (a test that needs two VMs never holds
    /// one while waiting for the other: two such tests cannot deadlock).
    fn acquire(wanted: usize) -> Vec<Slot> {
        let (count, freed) = &SLOTS;
        let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
        while *n + wanted > MAX_VMS {
            n = freed.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += wanted;
        (0..wanted).map(|_| Slot).collect()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (count, freed) = &SLOTS;
        let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
        *n -= 1;
        // Waiters want one place or two: each looks again.
        freed.notify_all();
    }
}

/// One VM place held for a test that boots its VM another way (through
/// the CLI's `lab up`), so that no more than [`MAX_VMS`] run at once.
pub struct VmPlace(#[allow(dead_code)] Vec<Slot>);

/// Waits for and holds one VM place until the returned value is dropped.
pub fn hold_vm_place() -> VmPlace {
    VmPlace(Slot::acquire(1))
}

/// Panics, naming what is missing, unless this machine can run the lab.
pub fn require_lab() {
    let mut missing = Vec::new();
    if !layout::is_root() {
        missing.push("root (the image is built with debootstrap; run the lab tests as root, e.g. scripts/test.sh)".to_string());
    }
    if let Err(e) = prereq::check_boot() {
        missing.push(e.to_string());
    }
    if prereq::find_program("debootstrap").is_none() {
        missing.push("debootstrap (apt-get install -y debootstrap)".into());
    }
    assert!(
        missing.is_empty(),
        "this lab test cannot run: {}; `sudo bash scripts/setup.sh` installs the packages",
        missing.join("; ")
    );
}

/// A booted lab VM, torn down (QEMU's process group killed) when dropped.
pub struct LabVm {
    vm: RunningVm,
    dirs: LabDirs,
    /// Where the tests reach the console: the Unix socket, or the gateway.
    console: Target,
    _slot: Slot,
}

/// Whether the lab tests go through the WebSocket gateway (`ESE_LAB_CONSOLE=ws`).
fn over_websocket() -> bool {
    std::env::var("ESE_LAB_CONSOLE").as_deref() == Ok("ws")
}

/// Serves `console` through a gateway (`--auth none` on loopback) running on
/// a thread of its own, so that tests blocked in `Command::output()` do not
/// stall it; returns its `ws://` target. The thread ends with the process.
fn serve_over_websocket(console: Target) -> Target {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the lab's gateway");
        runtime.block_on(async move {
            let config = GatewayConfig {
                consoles: [("lab".to_string(), console)].into_iter().collect(),
                auth: Auth::None,
                record_dir: None,
                idle_timeout: Duration::from_secs(900),
                max_session: Duration::from_secs(3600),
                tls: None,
                ..GatewayConfig::default()
            };
            let (addr, server) = gateway::bind("127.0.0.1:0", config)
                .await
                .expect("binding the lab's gateway");
            let _ = tx.send(addr);
            server.await;
        });
    });
    let addr = rx.recv().expect("the lab's gateway started");
    format!("ws://{addr}/v1/consoles/lab")
        .parse()
        .expect("a ws:// target")
}

impl LabVm {
    /// Boots a pristine VM for test `test`; panics with the reason if it cannot.
    pub async fn boot(test: &str) -> LabVm {
        LabVm::boot_with(test, vm::Boot::Direct).await
    }

    /// [`LabVm::boot`], booting directly or through GRUB.
    pub async fn boot_with(test: &str, boot: vm::Boot) -> LabVm {
        require_lab();
        let slot = Slot::acquire(1).remove(0);
        LabVm::boot_in(slot, test, boot).await
    }

    /// Two VMs for test `test`, booted side by side (a fleet of two).
    pub async fn boot_pair_with(test: &str, boot: vm::Boot) -> (LabVm, LabVm) {
        require_lab();
        let mut slots = Slot::acquire(2);
        let (a, b) = (slots.remove(0), slots.remove(0));
        let (name_a, name_b) = (format!("{test}-a"), format!("{test}-b"));
        tokio::join!(
            LabVm::boot_in(a, &name_a, boot),
            LabVm::boot_in(b, &name_b, boot)
        )
    }

    async fn boot_in(slot: Slot, test: &str, boot: vm::Boot) -> LabVm {
        let short: String = test
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(20)
            .collect();
        let name = format!("t{}-{short}", std::process::id());
        let dirs = LabDirs::from_env();
        let options = BootOptions {
            detach: false,
            boot_transcript: None,
            progress: Some(|line| eprintln!("{line}")),
            timeout: Duration::from_secs(600),
            gateway: false,
            boot,
        };
        let vm = match vm::up(&dirs, &name, &options).await {
            Ok(vm) => vm,
            Err(e) => panic!("lab test {test}: the lab VM did not boot: {e}"),
        };
        if let Some(secs) = vm.image.built_in {
            eprintln!("lab: built the image in {secs:.1} s");
        }
        eprintln!(
            "lab: {} booted in {:.1} s",
            vm.info.name, vm.info.boot_seconds
        );
        let console = if over_websocket() {
            let target = serve_over_websocket(vm.info.serial_target());
            eprintln!("lab: the tests reach its console at {target}");
            target
        } else {
            vm.info.serial_target()
        };
        LabVm {
            vm,
            dirs,
            console,
            _slot: slot,
        }
    }

    /// How to reach the VM.
    pub fn info(&self) -> &VmInfo {
        &self.vm.info
    }

    /// SSH as ec2-user.
    pub fn ssh(&self) -> SshTarget {
        self.vm.info.ssh()
    }

    /// Asserts that a real SSH key login works, waiting up to 30 s for sshd
    /// to answer (a reload may be in progress); `what` names the step.
    pub async fn assert_key_login_accepted(&self, what: &str) {
        let answer = self
            .ssh()
            .probe_until_answered(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{what}: probing SSH failed: {e}"));
        assert_eq!(answer, KeyLogin::Accepted, "{what}");
    }

    /// The console password.
    pub fn password(&self) -> Secret {
        self.vm
            .info
            .password()
            .expect("reading the lab password file")
    }

    /// A session on the serial console, recorded to `transcript` when given.
    pub async fn console(&self, transcript: Option<&Path>) -> Session {
        console::open(&self.console, transcript)
            .await
            .unwrap_or_else(|e| panic!("connecting to the lab's console {}: {e}", self.console))
    }

    /// The console as a target for the CLI (`unix:…`, or `ws://…` with
    /// `ESE_LAB_CONSOLE=ws`).
    pub fn console_target(&self) -> String {
        self.console.to_string()
    }

    /// The serial socket path (names the QEMU process in `ps`).
    pub fn socket(&self) -> PathBuf {
        self.vm.info.serial_socket.clone()
    }
}

impl Drop for LabVm {
    fn drop(&mut self) {
        vm::stop(&mut self.vm);
        let _ = std::fs::remove_dir_all(self.dirs.vm_dir(&self.vm.info.name));
    }
}

/// Pids of QEMU processes whose command line mentions `needle`.
pub fn qemu_processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("qemu-system") && cmdline.contains(needle)
        })
        .collect()
}
