//! What the integration tests share: sessions opened the way the tool opens
//! them ([`open_session`], through `Console`), the lab VM harness ([`lab`]), the EC2 stand-in
//! ([`ec2`]), a throwaway PKI for TLS tests ([`pki`]), and running a
//! program with some standard input ([`output_with_stdin`]).

#![allow(dead_code)]

pub mod ec2;
pub mod lab;
pub mod pki;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ec2_serial_expect::connect::{ConnectOptions, Console};
use ec2_serial_expect::{Session, SessionOptions, Target};

/// Runs `command` with `input` on its standard input (then closed) and
/// its output captured; panics naming the program if it cannot start.
pub fn output_with_stdin(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Opens `target` through the connect layer (as the CLI, the lab and the
/// gateway do), recording to `transcript` when given, with the default
/// timeout `timeout_secs`; panics with the target named if it cannot.
pub async fn open_session(target: &str, transcript: Option<&Path>, timeout_secs: u64) -> Session {
    let options = SessionOptions {
        default_timeout: Duration::from_secs(timeout_secs),
        ..SessionOptions::default()
    };
    let target: Target = target.parse().unwrap();
    Console::open(&target)
        .options(options)
        .transcript(transcript.map(Path::to_path_buf))
        .session()
        .await
        .unwrap_or_else(|e| panic!("{target}: {e}"))
}

/// Opens `target` with explicit connect options (WebSocket auth and TLS),
/// unrecorded, with the default session options.
pub async fn open_session_with(
    target: &str,
    connect: ConnectOptions,
) -> ec2_serial_expect::Result<Session> {
    let target: Target = target.parse().unwrap();
    Console::open(&target).connect(connect).session().await
}
