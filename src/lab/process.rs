//! The lab's own background processes (QEMU, the lab gateway), found again
//! by pid: a pid is trusted only while its command line is still ours, so a
//! pid the system reused for another program is never taken for (or
//! killed as) a lab process.

use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Whether `pid` is alive and its command line holds every one of `words`
/// (so a pid reused by another program is not taken for ours).
pub(super) fn runs_as(pid: i32, words: &[&str]) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    words.iter().all(|w| cmdline.contains(w))
}
