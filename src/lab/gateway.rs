//! The lab's console behind the WebSocket gateway.
//!
//! `lab up` serves the VM's serial socket through a `gateway` process of its
//! own (`--auth none` on loopback, sessions recorded in the VM's run
//! directory), so every script, test and `console` session can reach the lab
//! over `ws://` exactly as it would reach a team's gateway. The gateway is a
//! detached child of `lab up`, like QEMU: it outlives the command, its pid is
//! kept in the VM's state, and `lab down` stops it with the VM.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The console's name on the lab gateway (`/v1/consoles/lab`).
pub const CONSOLE_NAME: &str = "lab";
/// How long the gateway may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running lab gateway (saved in the VM's state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabGateway {
    /// The gateway process.
    pub pid: i32,
    /// The console's WebSocket URL, `ws://127.0.0.1:PORT/v1/consoles/lab`.
    pub url: String,
}

impl LabGateway {
    /// Starts `gateway` for the console at `serial_socket`, logging and
    /// recording into `vm_dir`, and waits until it listens.
    pub fn start(serial_socket: &Path, vm_dir: &Path) -> Result<LabGateway> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::io("finding this program to start the lab gateway", e))?;
        let log_path = vm_dir.join("gateway.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::io(format!("creating {}", log_path.display()), e))?;
        let stderr = log
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
        let console = format!("{CONSOLE_NAME}=unix:{}", serial_socket.display());
        let record_dir = vm_dir.join("gateway-sessions");
        let mut child = Command::new(exe)
            .args(["gateway", "--listen", "127.0.0.1:0", "--auth", "none"])
            .arg("--console")
            .arg(console)
            .arg("--record-dir")
            .arg(record_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            // Its own process group: Ctrl-C in the shell that ran `lab up`
            // must not stop the lab's gateway.
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("starting the lab gateway", e))?;
        let pid = child.id() as i32;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(url) = serving_url(&said) {
                return Ok(LabGateway { pid, url });
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::io(
                    "starting the lab gateway",
                    std::io::Error::other(format!("it did not start listening: {}", said.trim())),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the gateway process is still this gateway (not a reused pid).
    pub fn is_alive(&self) -> bool {
        super::process::runs_as(self.pid, &["gateway", CONSOLE_NAME])
    }

    /// Stops the gateway if it still runs: SIGINT first, which it handles by
    /// closing its sessions, then SIGKILL if it lingers.
    pub async fn stop(&self) {
        if self.pid <= 1 || !self.is_alive() {
            return;
        }
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.is_alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.is_alive() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
    }
}

/// The URL in the `serving ws://…` line the gateway prints for each console
/// it serves, once it printed it.
fn serving_url(log: &str) -> Option<String> {
    log.lines()
        .find_map(|line| line.strip_prefix("serving "))
        .filter(|url| url.starts_with("ws://"))
        .map(|url| url.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_read_from_the_serving_line() {
        assert_eq!(serving_url(""), None);
        assert_eq!(serving_url("gateway stopping\n"), None);
        assert_eq!(
            serving_url("serving ws://127.0.0.1:40123/v1/consoles/lab\n").as_deref(),
            Some("ws://127.0.0.1:40123/v1/consoles/lab")
        );
    }
}
