//! ec2-serial-expect: drive serial consoles the way Expect does, built first
//! for the EC2 Serial Console.
//!
//! The layers, from the wire up (data flows down, bytes flow back up):
//!
//! - [`transport`]: a duplex byte stream to a console (PTY, Unix socket, TCP,
//!   replayed transcript; WebSocket and EC2 slot in behind the same trait);
//! - [`text`]: bytes to readable text (UTF-8, escape sequences, secrets);
//! - [`expect`]: the [`expect::Session`] that sends and waits for patterns;
//! - [`transcript`]: every session recorded as asciicast v2, redacted;
//! - [`script`]: user scripts in Rhai over the session;
//! - [`lab`]: a local Debian VM with a real serial console;
//! - [`cli`]: the command line.
//!
//! [`target::Target`] names a console, [`secret::Secret`] holds what must not
//! leak, and [`error::Error`] carries every failure with its exit code.

pub mod aws;
pub mod cli;
pub mod doctor;
pub mod ec2;
pub mod error;
pub mod expect;
pub mod gateway;
pub mod interact;
pub mod lab;
pub mod private_file;
pub mod script;
pub mod secret;
pub mod shell;
pub mod target;
pub mod text;
pub mod tls;
pub mod transcript;
pub mod transport;

pub use error::{Error, ExitCode, Result};
pub use expect::{Match, Pattern, Session, SessionOptions};
pub use secret::Secret;
pub use target::Target;
