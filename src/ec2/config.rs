//! AWS settings for the EC2 Serial Console: options, Region, credentials, endpoints.
//!
//! Everything is resolved the way the AWS CLI and SDKs resolve it (aws-config):
//! `--profile`/`AWS_PROFILE`, `--region`/`AWS_REGION`/the profile/IMDS, the
//! credential chain (environment, profile, SSO, process, web identity, ECS,
//! IMDS), and `AWS_ENDPOINT_URL`/`AWS_ENDPOINT_URL_<SERVICE>` (which is also
//! how the tests point the tool at local stand-ins). The HTTPS client is
//! rustls on ring, shared by the SDK and the EC2 Query calls.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials as AwsCredentials;

use crate::aws::credentials::Credentials;
use crate::secret::Secret;
use aws_types::service_config::ServiceConfigKey;

use super::aws_error;
use crate::error::{Error, Result};

/// The variables the SDK reads credentials from (the access key id names
/// the key; with the secret key it is the credential).
const CREDENTIAL_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// How to reach an instance's serial console (the command line fills it in
/// from its flags; [`crate::connect::ConnectOptions`] carries it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ec2Options {
    /// `--region`; else the AWS chain.
    pub region: Option<String>,
    /// `--profile`; else `AWS_PROFILE`, else `default`.
    pub profile: Option<String>,
    /// `--serial-endpoint HOST[:PORT]` instead of the Region's published endpoint.
    pub serial_endpoint: Option<String>,
    /// `--host-key-fingerprint SHA256:…` instead of the Region's published one.
    pub host_key_fingerprint: Option<String>,
    /// `--no-preflight`: skip the access, state and Nitro checks.
    pub no_preflight: bool,
    /// `--wait-for-session SECS`: how long to wait for another session to end.
    pub wait_for_session: Option<Duration>,
    /// `--ssh-client`: which SSH client opens the serial console.
    pub ssh_client: SshClient,
    /// Whom to trust for the AWS endpoints: the system's roots and `--ca-file`.
    pub trust: crate::tls::ClientTrust,
    /// The AWS side made once from these options and shared by every
    /// console opened with them (and their clones).
    pub(crate) account: super::SharedAccount,
}

/// Which SSH client carries the serial console session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SshClient {
    /// russh, in this process: no program needed; cannot send a break.
    #[default]
    BuiltIn,
    /// The system's `ssh`, under a PTY: sends breaks (`~B`, `send_break()`).
    OpenSsh,
}

/// The resolved AWS side of a connection: SDK configuration, Region, credentials.
#[derive(Debug, Clone)]
pub(crate) struct AwsContext {
    /// What aws-config resolved (credentials chain, endpoints, HTTP client).
    pub sdk: SdkConfig,
    /// The Region in use.
    pub region: String,
    /// The profile asked for with `--profile`, for messages.
    profile: Option<String>,
    /// Whom to trust for AWS endpoints (the EC2 Query calls use it too).
    trust: crate::tls::ClientTrust,
}

impl AwsContext {
    /// Resolves the Region and the configuration; fails when no Region is set.
    pub(crate) async fn load(options: &Ec2Options) -> Result<AwsContext> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(sdk_http_client(&options.trust)?);
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &options.profile {
            // As the AWS CLI does: an explicit --profile wins over the
            // environment's keys (the default chain would take those first).
            let provider_config = aws_config::provider_config::ProviderConfig::default()
                .with_http_client(sdk_http_client(&options.trust)?)
                .with_region(options.region.clone().map(Region::new));
            let from_profile = aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(&provider_config)
                .profile_name(profile)
                .build();
            loader = loader
                .profile_name(profile)
                .credentials_provider(from_profile);
        }
        let sdk = loader.load().await;
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            // A profile that does not exist has no Region either: say which.
            if let (Some(profile), Some(provider)) = (&options.profile, sdk.credentials_provider())
            {
                if let Err(e) = provider.provide_credentials().await {
                    if let Some(missing) = no_such_profile(profile, &e) {
                        return Err(missing);
                    }
                }
            }
            return Err(Error::usage(
                "no AWS Region for the EC2 Serial Console: pass --region R, set AWS_REGION, \
                 or set `region` in the AWS profile",
            ));
        };
        Ok(AwsContext {
            sdk,
            region,
            profile: options.profile.clone(),
            trust: options.trust.clone(),
        })
    }

    /// Whom to trust for AWS endpoints: the system's roots and `--ca-file`.
    pub(crate) fn trust(&self) -> &crate::tls::ClientTrust {
        &self.trust
    }

    /// Resolves credentials now, so that missing ones are one clear error up
    /// front. The environment's credential variables count as secret
    /// sources from now on: no program the tool starts inherits them (second
    /// review of issue 32: an `exec:` console saw `AWS_SECRET_ACCESS_KEY`).
    /// The SDK's credentials become the crate's one [`Credentials`] type
    /// here, the only place the two meet.
    pub(crate) async fn credentials(&self) -> Result<Credentials> {
        for var in CREDENTIAL_VARIABLES {
            if std::env::var_os(var).is_some() {
                crate::secret::hide_variable(var);
            }
        }
        let provider = self.sdk.credentials_provider().ok_or_else(no_credentials)?;
        let found: AwsCredentials = provider.provide_credentials().await.map_err(|e| {
            let chain = crate::error::error_chain(&e);
            tracing::debug!("credential chain: {chain}");
            self.profile
                .as_deref()
                .and_then(|profile| no_such_profile(profile, &e))
                .unwrap_or_else(no_credentials)
        })?;
        Ok(Credentials {
            access_key_id: found.access_key_id().to_string(),
            secret_access_key: Secret::new("AWS secret access key", found.secret_access_key()),
            session_token: found
                .session_token()
                .map(|t| Secret::new("AWS session token", t)),
            source: self
                .profile
                .clone()
                .unwrap_or_else(|| "the AWS credential chain".into()),
            expires_at: found.expiry(),
        })
    }

    /// The endpoint URL of an AWS service: `AWS_ENDPOINT_URL_<ENV>`, the
    /// profile's `endpoint_url`, `AWS_ENDPOINT_URL`, else AWS's own.
    pub(crate) fn endpoint_url(
        &self,
        service_id: &str,
        env_suffix: &str,
        default_host: &str,
    ) -> String {
        let env = format!("AWS_ENDPOINT_URL_{env_suffix}");
        let from_service = self.sdk.service_config().and_then(|conf| {
            let key = ServiceConfigKey::builder()
                .service_id(service_id)
                .env(&env)
                .profile("endpoint_url")
                .build()
                .ok()?;
            conf.load_config(key)
        });
        from_service
            .or_else(|| self.sdk.endpoint_url().map(str::to_string))
            .unwrap_or_else(|| {
                let suffix = if self.region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://{default_host}.{}.{suffix}", self.region)
            })
    }
}

/// The usage error for a misspelt `--profile` (bad input, not a missing
/// login), when the credential chain's failure says the profile is unknown.
fn no_such_profile(profile: &str, e: &dyn std::error::Error) -> Option<Error> {
    let chain = crate::error::error_chain(e);
    // With no config or credentials file at all, the profile provider says
    // only that it "was not enabled": the profile cannot exist either.
    let unknown = [
        "not defined",
        "could not find",
        "No profiles",
        "was not enabled",
    ]
    .iter()
    .any(|s| chain.contains(s));
    unknown.then(|| {
        Error::usage(format!(
            "--profile {profile}: no such profile in the AWS config or credentials files \
             (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE); check its name with `aws configure list-profiles`"
        ))
    })
}

fn no_credentials() -> Error {
    aws_error(
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile \
         NAME (run `aws sso login --profile NAME` for SSO profiles), or run where an instance or \
         task role provides them"
    )
}

/// The SDK's HTTPS client: rustls with ring, trusting what `trust` trusts.
/// The SDK takes its trust as a store description (system roots on or off,
/// PEM certificates), not a rustls config, so it gets the same two parts.
fn sdk_http_client(
    trust: &crate::tls::ClientTrust,
) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::tls::{
        rustls_provider::CryptoMode, Provider, TlsContext, TrustStore,
    };
    let mut store = TrustStore::empty().with_native_roots(true);
    if let Some(pem) = trust.private_ca_pem() {
        store = store.with_pem_certificate(pem.to_vec());
    }
    let context = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|e| Error::usage(format!("TLS setup for the AWS SDK failed: {e}")))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
}
