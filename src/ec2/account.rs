//! The AWS side of a run, made once and shared by every console it opens.
//!
//! A fleet of EC2 targets must not load the AWS configuration, resolve
//! credentials or open an HTTPS pool per instance, and above all must not
//! push keys as fast as it can: AWS throttles `SendSerialConsoleSSHPublicKey`
//! per account. An [`Account`] holds the resolved configuration, the serial
//! endpoint, one EC2 Query client, one EC2 Instance Connect client and the
//! [`Pacer`] every key push waits its turn at. [`Ec2Options`] carries it as a
//! [`SharedAccount`], loaded on first use (a run without EC2 targets never
//! touches AWS), so the options cloned for each target share one account.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_ec2instanceconnect::config::retry::RetryConfig;

use super::config::{AwsContext, Ec2Options, SshClient};
use super::endpoints::SerialEndpoint;
use super::keypush::{KeyPush, Pacer};
use super::query::Ec2Query;
use super::{preflight, sshkey, Step};
use crate::aws::credentials::Credentials;
use crate::error::Result;
use crate::transport::Transport;

/// Temporary credentials are renewed when they have less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Everything the consoles of one run share on the AWS side.
pub(crate) struct Account {
    ctx: AwsContext,
    endpoint: SerialEndpoint,
    query: Ec2Query,
    instance_connect: aws_sdk_ec2instanceconnect::Client,
    pacer: Pacer,
    credentials: tokio::sync::Mutex<Credentials>,
}

impl Account {
    /// Resolves the Region, endpoints and credentials (one clear error for
    /// each thing missing) and makes the clients.
    async fn load(options: &Ec2Options) -> Result<Account> {
        let ctx = AwsContext::load(options).await?;
        let endpoint = SerialEndpoint::resolve(
            &ctx.region,
            options.serial_endpoint.as_deref(),
            options.host_key_fingerprint.as_deref(),
        )?;
        let credentials = ctx.credentials().await?;
        // Retries are decided in keypush, from the API's documented errors.
        let config = aws_sdk_ec2instanceconnect::config::Builder::from(&ctx.sdk)
            .retry_config(RetryConfig::disabled())
            .build();
        Ok(Account {
            query: Ec2Query::new(&ctx, credentials.clone()),
            instance_connect: aws_sdk_ec2instanceconnect::Client::from_conf(config),
            endpoint,
            ctx,
            pacer: Pacer::default(),
            credentials: tokio::sync::Mutex::new(credentials),
        })
    }

    /// The Region in use.
    pub(crate) fn region(&self) -> &str {
        &self.ctx.region
    }

    /// The EC2 Query client with credentials that are still good.
    pub(crate) async fn query(&self) -> Result<Ec2Query> {
        let mut held = self.credentials.lock().await;
        let expiring = held
            .expires_at
            .is_some_and(|t| t < SystemTime::now() + RENEW_BEFORE);
        if expiring {
            *held = self.ctx.credentials().await?;
        }
        Ok(self.query.with_credentials(held.clone()))
    }

    /// Opens the serial console of `instance_id`: preflight (unless
    /// `--no-preflight`), key push at the account's pace, SSH; `on_step`
    /// hears each step as it starts.
    pub(crate) async fn open(
        &self,
        instance_id: &str,
        options: &Ec2Options,
        on_step: &(dyn Fn(Step) + Sync),
    ) -> Result<Box<dyn Transport>> {
        if !options.no_preflight {
            on_step(Step::Preflight);
            let query = self.query().await?;
            tracing::info!("preflight for {instance_id} via {}", query.url());
            preflight::run(&query, self.region(), instance_id).await?;
        }
        let key = sshkey::EphemeralKey::generate()?;
        on_step(Step::PushingKey);
        tracing::info!(
            "pushing ephemeral key {} for {instance_id}",
            key.fingerprint()
        );
        KeyPush {
            client: &self.instance_connect,
            pacer: &self.pacer,
            region: self.region(),
            instance_id,
            public_key: &key.public_openssh(),
            wait_for_session: options.wait_for_session,
        }
        .run(on_step)
        .await?;
        on_step(Step::OpeningSsh);
        let key = key.into_private();
        Ok(match options.ssh_client {
            SshClient::BuiltIn => {
                Box::new(super::ssh::connect(&self.endpoint, instance_id, key).await?)
            }
            SshClient::OpenSsh => {
                Box::new(super::openssh::connect(&self.endpoint, instance_id, key).await?)
            }
        })
    }
}

/// An [`Account`] loaded on first use and shared by clones: what
/// [`Ec2Options`] carries so that every console of a run shares one.
#[derive(Clone, Default)]
pub(crate) struct SharedAccount(Arc<tokio::sync::OnceCell<Account>>);

impl SharedAccount {
    /// The account, loaded from `options` the first time (a failed load is
    /// tried again by the next caller: it may have been a passing fault).
    pub(crate) async fn get(&self, options: &Ec2Options) -> Result<&Account> {
        self.0.get_or_try_init(|| Account::load(options)).await
    }
}

impl std::fmt::Debug for SharedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedAccount")
            .field("loaded", &self.0.initialized())
            .finish()
    }
}

/// Options are equal by what they say; which account they have loaded is
/// not part of that.
impl PartialEq for SharedAccount {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
