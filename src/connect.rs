//! The connect layer: from a [`Target`] and explicit options to a console.
//!
//! It sits above [`crate::transport`] (local consoles, WebSockets, replays)
//! and [`crate::ec2`] (the EC2 Serial Console: AWS calls, key push, SSH),
//! so that neither knows the other, and it takes everything it needs as a
//! [`ConnectOptions`] value: no process-wide settings. The command line, the
//! gateway, the lab and the tests all open consoles here.

use crate::ec2::Ec2Options;
use crate::error::Result;
use crate::target::Target;
use crate::transport::{Transport, WsOptions};

/// How to reach consoles: WebSocket authentication and TLS, and the AWS
/// side of EC2 targets.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// For `ws://` and `wss://` targets.
    pub ws: WsOptions,
    /// For `i-…` targets.
    pub ec2: Ec2Options,
}

/// Opens `target` with `options`.
pub async fn open(target: &Target, options: &ConnectOptions) -> Result<Box<dyn Transport>> {
    match target {
        Target::Ec2 { instance_id } => {
            Ok(Box::new(crate::ec2::open(instance_id, &options.ec2).await?))
        }
        other => crate::transport::open_with(other, &options.ws).await,
    }
}
