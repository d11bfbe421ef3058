//! The EC2 Serial Console target (`i-0123456789abcdef0`), the documented way.
//!
//! 1. Resolve the Region, credentials and endpoints as the AWS CLI does ([`config`]).
//! 2. Preflight, unless `--no-preflight` ([`preflight`] over [`query`]): serial
//!    console access on in the Region, the instance `running`, a Nitro type.
//! 3. Make an ed25519 key in memory ([`sshkey`]) and push its public half with
//!    `SendSerialConsoleSSHPublicKey` ([`keypush`]); AWS holds it for 60 s.
//!    The pushes of a run take turns at one pace ([`account`]: everything
//!    AWS-side is made once per run and shared by its consoles).
//! 4. SSH to `<instance-id>.port0@<the Region's endpoint>` with the host key
//!    pinned to AWS's published fingerprint ([`endpoints`]): with russh
//!    ([`ssh`]), or with the system's OpenSSH client when breaks are wanted
//!    ([`openssh`], `--ssh-client openssh`).
//!
//! A fleet's instances come from `--filter` through [`inventory`].
//!
//! Every failure is one sentence naming the fix, exit code 3 (2 for bad flags).

pub(crate) mod access;
pub(crate) mod account;
pub(crate) mod config;
pub(crate) mod endpoints;
pub(crate) mod inventory;
pub(crate) mod keypush;
pub(crate) mod openssh;
pub(crate) mod preflight;
pub(crate) mod query;
pub(crate) mod readiness;
pub(crate) mod reboot;
pub(crate) mod ssh;
pub(crate) mod sshkey;

pub(crate) use account::SharedAccount;
pub(crate) use config::{AwsContext, Ec2Options, SshClient};

use crate::error::Result;
use crate::transport::Transport;

/// The steps of opening an EC2 console, as they start (for progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Asking EC2 about access, the instance's state and its type.
    Preflight,
    /// Pushing the ephemeral key (at the account's pace).
    PushingKey,
    /// Another session holds the serial port; waiting for it to end.
    WaitingForSession,
    /// Connecting to the serial endpoint over SSH.
    OpeningSsh,
}

/// Opens the serial console of `instance_id` through the run's shared
/// account: preflight, key push, SSH; `on_step` hears each step.
pub(crate) async fn open(
    instance_id: &str,
    options: &Ec2Options,
    on_step: &(dyn Fn(Step) + Sync),
) -> Result<Box<dyn Transport>> {
    let account = options.account.get(options).await?;
    account.open(instance_id, options, on_step).await
}

/// An AWS-side failure (exit code 3) whose message names the fix.
pub(crate) fn aws_error(message: impl std::fmt::Display) -> crate::error::Error {
    crate::error::Error::aws(message).context("EC2 Serial Console")
}
