//! SendSerialConsoleSSHPublicKey: push the ephemeral key, explain every refusal.
//!
//! The call goes through aws-sdk-ec2instanceconnect with the SDK's own retries
//! turned off, so that what is retried, how often and with what message is
//! decided here, from the reference table of the API's errors: transient
//! errors (`ServiceException`, `ThrottlingException`,
//! `SerialConsoleSessionUnavailableException`,
//! `EC2InstanceUnavailableException`, network failures) are retried with
//! exponential backoff and jitter; `SerialConsoleSessionLimitExceededException`
//! explains the one-session rule and, with `--wait-for-session`, waits for the
//! other session to end; everything else is one sentence naming the fix.

use std::time::{Duration, Instant};

use aws_sdk_ec2instanceconnect::config::retry::RetryConfig;
use aws_sdk_ec2instanceconnect::error::{ProvideErrorMetadata, SdkError};

use super::aws_error;
use super::config::AwsContext;
use crate::error::{error_chain, Result};

/// Attempts for a transient error before giving up.
pub const MAX_ATTEMPTS: u32 = 6;
/// First backoff delay; doubled each time, capped at [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest single backoff delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How often to retry while waiting for another session to end.
pub const SESSION_POLL: Duration = Duration::from_secs(5);

/// How one failed push should be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushRefusal {
    /// Worth retrying after a pause (the message is for the final error).
    Transient(String),
    /// Another session holds the instance's serial port.
    SessionLimit,
    /// Retrying will not help; the message says what will.
    Fatal(String),
}

/// Where the key goes and what it is.
pub struct KeyPush<'a> {
    /// The resolved AWS configuration.
    pub ctx: &'a AwsContext,
    /// The instance whose serial port 0 the key opens.
    pub instance_id: &'a str,
    /// The OpenSSH public key line.
    pub public_key: &'a str,
    /// `--wait-for-session`: how long to wait for another session to end.
    pub wait_for_session: Option<Duration>,
}

impl KeyPush<'_> {
    /// Pushes the key, retrying and waiting as the errors call for.
    pub async fn run(&self) -> Result<()> {
        let client = self.client();
        let waiting_until = self.wait_for_session.map(|d| Instant::now() + d);
        let mut attempt = 0u32;
        loop {
            let refusal = match self.push_once(&client).await {
                Ok(()) => return Ok(()),
                Err(r) => r,
            };
            match refusal {
                PushRefusal::Fatal(message) => return Err(aws_error(message)),
                PushRefusal::Transient(message) => {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(aws_error(format!(
                            "{message}; gave up after {attempt} attempts, try again in a minute"
                        )));
                    }
                    let pause = backoff(attempt);
                    tracing::warn!("{message}; retrying in {:.1} s", pause.as_secs_f64());
                    tokio::time::sleep(pause).await;
                }
                PushRefusal::SessionLimit => {
                    let left = waiting_until.map(|t| t.saturating_duration_since(Instant::now()));
                    match left {
                        Some(left) if !left.is_zero() => {
                            tracing::warn!(
                                "another serial console session is open on {}; waiting for it to end \
                                 ({:.0} s left, retrying every {} s)",
                                self.instance_id,
                                left.as_secs_f64(),
                                SESSION_POLL.as_secs()
                            );
                            tokio::time::sleep(left.min(SESSION_POLL)).await;
                        }
                        _ => {
                            return Err(aws_error(session_limit_message(
                                self.instance_id,
                                self.wait_for_session,
                            )))
                        }
                    }
                }
            }
        }
    }

    fn client(&self) -> aws_sdk_ec2instanceconnect::Client {
        let config = aws_sdk_ec2instanceconnect::config::Builder::from(&self.ctx.sdk)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_ec2instanceconnect::Client::from_conf(config)
    }

    async fn push_once(
        &self,
        client: &aws_sdk_ec2instanceconnect::Client,
    ) -> Result<(), PushRefusal> {
        let sent = client
            .send_serial_console_ssh_public_key()
            .instance_id(self.instance_id)
            .serial_port(0)
            .ssh_public_key(self.public_key)
            .send()
            .await;
        match sent {
            Ok(out) if out.success() => Ok(()),
            Ok(_) => Err(PushRefusal::Transient(
                "EC2 Instance Connect answered Success=false to the key push".into(),
            )),
            Err(SdkError::ServiceError(e)) => {
                let e = e.into_err();
                let code = e.code().unwrap_or("UnknownError").to_string();
                let message = e.message().unwrap_or("").to_string();
                Err(classify(
                    &code,
                    &message,
                    self.instance_id,
                    &self.ctx.region,
                ))
            }
            Err(e @ SdkError::ConstructionFailure(_)) => Err(PushRefusal::Fatal(format!(
                "cannot build the key push request: {}",
                error_chain(&e)
            ))),
            Err(e) => Err(PushRefusal::Transient(format!(
                "cannot reach EC2 Instance Connect in {}: {}",
                self.ctx.region,
                error_chain(&e)
            ))),
        }
    }
}

/// The pause before retry number `attempt` (1-based): exponential, capped,
/// with up to half of it random so that many clients do not retry in step.
pub fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = full.mul_f64(f64::from(nanos % 1000) / 2000.0);
    full - jitter
}

/// The one-session rule, and what to do about it.
pub fn session_limit_message(instance_id: &str, waited: Option<Duration>) -> String {
    let waited = match waited {
        Some(d) => format!(" (waited {} s)", d.as_secs()),
        None => String::new(),
    };
    format!(
        "another serial console session is already open on {instance_id}{waited} \
         (SerialConsoleSessionLimitExceededException): AWS allows one session per instance and needs \
         about 30 s after it closes before a new one; close the other session, or pass \
         --wait-for-session SECS to wait for it"
    )
}

/// Maps an error code of SendSerialConsoleSSHPublicKey to what to do.
pub fn classify(code: &str, message: &str, instance_id: &str, region: &str) -> PushRefusal {
    let said = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    };
    let fatal = |text: String| PushRefusal::Fatal(text);
    match code {
        "ThrottlingException" | "ServiceException" | "SerialConsoleSessionUnavailableException"
        | "EC2InstanceUnavailableException" => PushRefusal::Transient(format!(
            "EC2 Instance Connect could not take the key for {instance_id} right now ({said})"
        )),
        "SerialConsoleSessionLimitExceededException" => PushRefusal::SessionLimit,
        "AuthException" => fatal(format!(
            "EC2 Instance Connect refused the key push ({said}): the credentials are invalid, or IAM \
             does not allow ec2-instance-connect:SendSerialConsoleSSHPublicKey on \
             arn:aws:ec2:{region}:ACCOUNT:instance/{instance_id}; add that permission to your identity"
        )),
        "SerialConsoleAccessDisabledException" => fatal(format!(
            "EC2 Serial Console access is disabled for this account in {region} ({code}); enable it \
             with `aws ec2 enable-serial-console-access --region {region}`"
        )),
        "InvalidArgsException" => fatal(format!(
            "EC2 Instance Connect rejected the request as invalid ({said}); check the instance id \
             {instance_id}"
        )),
        "EC2InstanceNotFoundException" => fatal(format!(
            "instance {instance_id} was not found in {region} ({code}); check the instance id and \
             the Region (--region or AWS_REGION)"
        )),
        "EC2InstanceTypeInvalidException" => fatal(format!(
            "instance {instance_id} has a type without the EC2 Serial Console ({code}); it needs a \
             Nitro-based type: stop it, change the type (e.g. t3.micro), start it"
        )),
        "EC2InstanceStateInvalidException" => fatal(format!(
            "instance {instance_id} is not running ({code}); start it with \
             `aws ec2 start-instances --instance-ids {instance_id} --region {region}` and try again"
        )),
        "SerialConsoleSessionUnsupportedException" => fatal(format!(
            "instance {instance_id} cannot open a serial console session yet ({code}): its firmware \
             predates the feature; reboot it (`aws ec2 reboot-instances --instance-ids {instance_id} \
             --region {region}`) and try again"
        )),
        _ => fatal(format!("EC2 Instance Connect refused the key push for {instance_id} ({said})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 12] = [
        "AuthException",
        "SerialConsoleAccessDisabledException",
        "InvalidArgsException",
        "ServiceException",
        "ThrottlingException",
        "EC2InstanceNotFoundException",
        "EC2InstanceTypeInvalidException",
        "SerialConsoleSessionLimitExceededException",
        "SerialConsoleSessionUnavailableException",
        "EC2InstanceStateInvalidException",
        "EC2InstanceUnavailableException",
        "SerialConsoleSessionUnsupportedException",
    ];

    #[test]
    fn every_documented_error_has_its_handling() {
        let transient = [
            "ServiceException",
            "ThrottlingException",
            "SerialConsoleSessionUnavailableException",
            "EC2InstanceUnavailableException",
        ];
        for code in ALL {
            let r = classify(code, "m", "i-0123456789abcdef0", "eu-west-1");
            match r {
                PushRefusal::Transient(_) => assert!(transient.contains(&code), "{code}"),
                PushRefusal::SessionLimit => {
                    assert_eq!(code, "SerialConsoleSessionLimitExceededException")
                }
                PushRefusal::Fatal(text) => {
                    assert!(!transient.contains(&code), "{code}");
                    assert!(text.contains(code), "{text}");
                }
            }
        }
        let PushRefusal::Fatal(text) = classify(
            "SerialConsoleAccessDisabledException",
            "",
            "i-1",
            "eu-west-1",
        ) else {
            panic!()
        };
        assert!(
            text.contains("aws ec2 enable-serial-console-access --region eu-west-1"),
            "{text}"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= FIRST_BACKOFF && backoff(1) >= FIRST_BACKOFF / 2);
        assert!(backoff(3) >= FIRST_BACKOFF * 2);
        assert!(backoff(30) <= MAX_BACKOFF);
    }
}
