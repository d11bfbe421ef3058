//! ec2-serial-expect: drive serial consoles the way Expect does, built first
//! for the EC2 Serial Console.
//!
//! # The library in five steps
//!
//! 1. Name a console: a [`Target`] parses from the same text the command
//!    line takes (`i-…`, `ws://…`, `unix:PATH`, `tcp:HOST:PORT`,
//!    `exec:COMMAND`, `replay:FILE.cast`).
//! 2. Open it with [`connect::Console`], the one way to open a console,
//!    setting only what differs from the defaults (a transcript, timeouts,
//!    WebSocket authentication, AWS options).
//! 3. Talk to it with the [`Session`]: [`Session::send`], then
//!    [`Session::expect`] a [`Pattern`] (regex or exact) with a timeout; the
//!    earliest match in the stream wins, and [`Secret`]s never reach the
//!    transcript, errors or logs.
//! 4. Or let the [`shell`] log in and run commands (`shell.run("uname -n")`
//!    gives the output and the exit status), and the
//!    [`doctor`] diagnose why SSH refuses a key; [`script`] runs Rhai
//!    scripts against a session, as the `run` and `test` commands do.
//! 5. Keep what happened: every session can record an asciicast
//!    [`transcript`], and a recording replays as a console (`replay:`), so
//!    a test can drive the recording instead of a machine.
//!
//! ```
//! use ec2_serial_expect::connect::Console;
//! use ec2_serial_expect::shell::{LoginSpec, Shell};
//! use ec2_serial_expect::{Secret, Target};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> ec2_serial_expect::Result<()> {
//! // A recording made on the lab VM: log in, `uname -n`, log out.
//! let target: Target = "replay:fixtures/shell/lab-doc-example.cast".parse()?;
//! let mut session = Console::open(&target).session().await?;
//! // A replay shows secrets as <redacted>: any password matches.
//! let login = LoginSpec::new("ec2-user", Secret::new("password", "anything"));
//! let out = Shell::scoped(&mut session, &login, async |shell| {
//!     shell.run("uname -n").await
//! })
//! .await?;
//! assert_eq!(out.output, "lab-instance\n");
//! # Ok(())
//! # }
//! ```
//!
//! The `examples/` directory has runnable programs: a replay inside a
//! `#[test]`, a script against a local program, the doctor on a console.
//!
//! # Layers
//!
//! From the top down; each uses only the ones below it
//! (`docs/architecture.md` has the picture and where each concern lives):
//!
//! - the command line (private to the binary): the only layer that knows
//!   clap and the terminal;
//! - the jobs: [`doctor`] ("Server refused our key": facts, checks, guarded
//!   repairs), [`script`] (Rhai scripts), [`gateway`] (consoles served over
//!   WebSocket), and inside the crate the fleet runner, `prepare` (a
//!   password user and GRUB on the serial console) and `rescue` (a root
//!   shell with no password, through GRUB);
//! - [`shell`]: login, prompt sync, `run`, `sudo`, logout over a session;
//! - [`expect`]: the [`Session`] that sends, waits for patterns and records
//!   into a [`transcript`];
//! - [`connect`]: from a [`Target`] and explicit options to a console, over
//!   [`transport`] (PTY, Unix socket, TCP, WebSocket, replay) and the EC2
//!   Serial Console (AWS calls, key push, SSH);
//! - the ground floor: [`secret`], [`target`], [`error`].
//!
//! Library code never prints: it returns data, and reports progress through
//! callbacks the caller passes in.

#![deny(missing_docs)]
#![warn(unreachable_pub)]

// What a user of the library learns: open a console, expect on it, log in
// and run commands, record and replay, diagnose, script.
pub mod connect;
pub mod doctor;
pub mod error;
pub mod expect;
pub mod gateway;
pub mod script;
pub mod secret;
pub mod shell;
pub mod target;
pub mod transcript;
pub mod transport;

// The project's own test bench and the pieces its tests and benchmarks
// reach into: public so that `tests/` and `benches/` can use them, hidden
// from the documentation because they are not an interface anyone else
// should build on (they change with the tool).
#[doc(hidden)]
pub mod aws;
#[doc(hidden)]
pub mod lab;
#[doc(hidden)]
pub mod text;
#[doc(hidden)]
pub mod tls;

// The binary's and the library's insides.
mod cli;
mod ec2;
mod fleet;
mod prepare;
mod private_file;
mod rescue;
mod root;

pub use error::{Error, ErrorKind, ExitCode, Result};
pub use expect::{Match, Pattern, Session, SessionOptions};
pub use secret::Secret;
pub use target::Target;

/// Runs the `ec2-serial-expect` command line and returns the process exit
/// code: the binary's whole `main`. Not an API to build on: the flags are
/// the interface.
#[doc(hidden)]
pub fn run_command_line() -> i32 {
    cli::main()
}
