//! ec2-serial-expect: drive serial consoles the way Expect does, built first
//! for the EC2 Serial Console.
//!
//! The layers, from the top down; each uses only the ones below it
//! (`docs/architecture.md` has the picture and where each concern lives):
//!
//! - [`cli`]: the command line, the only layer that knows clap and the
//!   terminal: parses and validates flags once, calls the library, prints
//!   results as text or JSON;
//! - the jobs: [`doctor`] ("Server refused our key": facts, checks, guarded
//!   repairs), [`script`] (Rhai scripts), [`gateway`] (consoles served over
//!   WebSocket), [`lab`] (a local Debian VM with a real serial console);
//!   [`fleet`] runs a job over many targets (the list, shards, a bounded
//!   runner, the summary);
//! - [`prepare`]: a password user and GRUB on the serial console, made
//!   while the machine can still be reached;
//! - [`rescue`]: a root shell with no password at all, through GRUB's
//!   editor and a rescue boot (the doctor's `--via grub`);
//! - [`shell`]: login, prompt sync, `run`, `sudo`, logout over a session;
//! - [`expect`]: the [`Session`] that sends, waits for patterns and records
//!   into a [`transcript`];
//! - [`connect`]: from a [`Target`] and explicit options to a console, over
//!   [`transport`] (PTY, Unix socket, TCP, WebSocket, replay) and [`ec2`]
//!   (the EC2 Serial Console, with [`aws`] signing);
//! - the ground floor: [`text`] (bytes to readable text, scrubbing),
//!   [`secret`], [`target`], [`error`], [`private_file`], [`tls`].
//!
//! Library code never prints: it returns data, and reports progress through
//! callbacks the caller passes in.

#![warn(missing_docs, unreachable_pub)]

pub mod aws;
pub mod cli;
pub mod connect;
pub mod doctor;
pub mod ec2;
pub mod error;
pub mod expect;
pub mod fleet;
pub mod gateway;
pub mod lab;
pub mod prepare;
pub mod private_file;
pub mod rescue;
pub mod script;
pub mod secret;
pub mod shell;
pub mod target;
pub mod text;
pub mod tls;
pub mod transcript;
pub mod transport;

pub use error::{Error, ErrorKind, ExitCode, Result};
pub use expect::{Match, Pattern, Session, SessionOptions};
pub use secret::Secret;
pub use target::Target;
