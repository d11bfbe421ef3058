//! The lab: a local Debian VM with a real serial console, to practise on and
//! to test against.
//!
//! Users need a safe place to try console scripts before pointing them at a
//! locked-out production instance; the tests need a real console (getty,
//! login, PAM, sudo, bash, sshd, kernel messages), not a simulation. The lab
//! builds a Debian image once ([`image`]), boots it under QEMU with its
//! serial port on a Unix socket ([`vm`]), breaks SSH key login on purpose
//! ([`scenario`], over [`ssh`]) and repairs it over the serial console
//! ([`console`], with the crate's own `Session`).
//!
//! The `lab` command (`up`, `down`, `status`, `break`, `repair`, `demo`)
//! lives with the command line, in `cli::lab`.

pub mod console;
pub mod gateway;
pub mod image;
pub mod layout;
pub mod mirror;
pub mod prereq;
mod process;
pub mod scenario;
pub mod ssh;
pub mod vm;
