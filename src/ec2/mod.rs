//! The EC2 Serial Console target (`i-0123456789abcdef0`), the documented way.
//!
//! 1. Resolve the Region, credentials and endpoints as the AWS CLI does ([`config`]).
//! 2. Preflight, unless `--no-preflight` ([`preflight`] over [`query`]): serial
//!    console access on in the Region, the instance `running`, a Nitro type.
//! 3. Make an ed25519 key in memory ([`sshkey`]) and push its public half with
//!    `SendSerialConsoleSSHPublicKey` ([`keypush`]); AWS holds it for 60 s.
//! 4. SSH to `<instance-id>.port0@<the Region's endpoint>` with the host key
//!    pinned to AWS's published fingerprint ([`endpoints`], [`ssh`]).
//!
//! Every failure is one sentence naming the fix, exit code 3 (2 for bad flags).

pub mod config;
pub mod endpoints;
pub mod keypush;
pub mod preflight;
pub mod query;
pub mod ssh;
pub mod sshkey;

pub use config::{AwsContext, Ec2Options};
pub use endpoints::SerialEndpoint;
pub use ssh::SerialSshTransport;

use crate::error::Result;

/// Opens the serial console of `instance_id`: preflight, key push, SSH.
pub async fn open(instance_id: &str, options: &Ec2Options) -> Result<SerialSshTransport> {
    let ctx = AwsContext::load(options).await?;
    let endpoint = SerialEndpoint::resolve(
        &ctx.region,
        options.serial_endpoint.as_deref(),
        options.host_key_fingerprint.as_deref(),
    )?;
    let credentials = ctx.credentials().await?;
    if !options.no_preflight {
        let query = query::Ec2Query::new(&ctx, credentials);
        tracing::info!("preflight for {instance_id} via {}", query.url());
        preflight::run(&query, &ctx.region, instance_id).await?;
    }
    let key = sshkey::EphemeralKey::generate()?;
    tracing::info!(
        "pushing ephemeral key {} for {instance_id}",
        key.fingerprint()
    );
    keypush::KeyPush {
        ctx: &ctx,
        instance_id,
        public_key: &key.public_openssh(),
        wait_for_session: options.wait_for_session,
    }
    .run()
    .await?;
    ssh::connect(&endpoint, instance_id, key.into_private()).await
}

/// An AWS-side failure (exit code 3) whose message names the fix.
pub fn aws_error(message: impl std::fmt::Display) -> crate::error::Error {
    crate::error::Error::aws(message).context("EC2 Serial Console")
}
