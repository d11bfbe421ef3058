//! When a booted lab VM counts as ready: its getty shows `login:` on the
//! serial console, and its sshd accepts the lab key.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{BootOptions, VmInfo};
use crate::error::{Error, Result};
use crate::lab::console;
use crate::lab::ssh::KeyLogin;

/// Waits for `login:` on the serial console, then for SSH to accept the key.
pub(super) async fn wait_until_ready(
    info: &VmInfo,
    vm_dir: &Path,
    options: &BootOptions,
) -> Result<()> {
    let deadline = Instant::now() + options.timeout;
    let transcript = options
        .boot_transcript
        .clone()
        .unwrap_or_else(|| vm_dir.join("boot.cast"));
    // QEMU creates the socket file when it binds, a moment before it
    // listens: a refused connect right after is retried briefly.
    let mut tries = 0;
    let mut session = loop {
        match console::open(&info.serial_target(), Some(&transcript)).await {
            Ok(session) => break session,
            Err(_) if tries < 50 && info.is_alive() => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let alive = || info.is_alive();
    console::wait_for_login(&mut session, options.timeout, alive).await?;
    session.close().await?;
    let left = deadline.saturating_duration_since(Instant::now());
    match info
        .ssh()
        .probe_until_answered(left.max(Duration::from_secs(30)))
        .await?
    {
        KeyLogin::Accepted => Ok(()),
        KeyLogin::Refused(why) => Err(Error::problems(format!(
            "the freshly booted lab refused the lab key ({why}); the image may be damaged: \
             delete {} and run `lab up` again",
            info.image.display()
        ))),
        KeyLogin::Unreachable(why) => Err(Error::io(
            format!(
                "sshd in the lab VM did not answer on 127.0.0.1:{}",
                info.ssh_port
            ),
            std::io::Error::other(why),
        )),
    }
}
