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
//!
//! AWS throttles the key push per account, so the pushes of a run take
//! turns at one [`Pacer`]: a steady pace while AWS accepts them, slower at
//! once when it throttles one, back to the steady pace as it accepts again.

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_ec2instanceconnect::error::{ProvideErrorMetadata, SdkError};
use tokio::time::Instant;

use super::{aws_error, Step};
use crate::error::{error_chain, Result};

/// Attempts for a transient error before giving up.
pub(crate) const MAX_ATTEMPTS: u32 = 6;
/// First backoff delay; doubled each time, capped at [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest single backoff delay.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How often to retry while waiting for another session to end.
pub(crate) const SESSION_POLL: Duration = Duration::from_secs(5);
/// The pushes of a run, at most one per this while AWS accepts them (AWS
/// documents no rate; five a second stays well under what one account is
/// seen to be allowed, and a fleet of 1,000 still starts in minutes).
pub(crate) const STEADY_GAP: Duration = Duration::from_millis(200);
/// The slowest the pacer gets after repeated throttling.
pub(crate) const SLOWEST_GAP: Duration = Duration::from_secs(5);

/// The turns every key push of a run takes: one push per gap, the gap
/// doubled on each throttling and eased back on each accepted push.
#[derive(Debug)]
pub(crate) struct Pacer {
    state: Mutex<PacerState>,
}

#[derive(Debug)]
struct PacerState {
    next: Instant,
    gap: Duration,
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer {
            state: Mutex::new(PacerState {
                next: Instant::now(),
                gap: STEADY_GAP,
            }),
        }
    }
}

impl Pacer {
    /// Waits for this push's turn.
    pub(crate) async fn turn(&self) {
        let at = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let at = state.next.max(Instant::now());
            state.next = at + state.gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// AWS throttled a push: every push of the run slows down.
    pub(crate) fn throttled(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.gap = (state.gap * 2).min(SLOWEST_GAP);
    }

    /// AWS accepted a push: ease back towards the steady pace.
    pub(crate) fn accepted(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.gap = (state.gap * 3 / 4).max(STEADY_GAP);
    }

    /// The gap between turns now.
    #[cfg(test)]
    fn gap(&self) -> Duration {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).gap
    }
}

/// How one failed push should be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PushRefusal {
    /// Worth retrying after a pause (the message is for the final error).
    Transient(String),
    /// AWS throttled the push: retry, and slow the whole run down.
    Throttled(String),
    /// Another session holds the instance's serial port.
    SessionLimit,
    /// Retrying will not help; the message says what will.
    Fatal(String),
}

/// Where the key goes and what it is.
pub(crate) struct KeyPush<'a> {
    /// The run's EC2 Instance Connect client (its own retries off).
    pub client: &'a aws_sdk_ec2instanceconnect::Client,
    /// The run's pace of pushes.
    pub pacer: &'a Pacer,
    /// The Region, for messages.
    pub region: &'a str,
    /// The instance whose serial port 0 the key opens.
    pub instance_id: &'a str,
    /// The OpenSSH public key line.
    pub public_key: &'a str,
    /// `--wait-for-session`: how long to wait for another session to end.
    pub wait_for_session: Option<Duration>,
}

impl KeyPush<'_> {
    /// Pushes the key, retrying and waiting as the errors call for;
    /// `on_step` hears when it starts waiting for another session to end.
    pub(crate) async fn run(&self, on_step: &(dyn Fn(Step) + Sync)) -> Result<()> {
        let waiting_until = self.wait_for_session.map(|d| Instant::now() + d);
        let mut attempt = 0u32;
        loop {
            self.pacer.turn().await;
            let refusal = match self.push_once().await {
                Ok(()) => {
                    self.pacer.accepted();
                    return Ok(());
                }
                Err(r) => r,
            };
            if let PushRefusal::Throttled(_) = refusal {
                self.pacer.throttled();
            }
            match refusal {
                PushRefusal::Fatal(message) => return Err(aws_error(message)),
                PushRefusal::Transient(message) | PushRefusal::Throttled(message) => {
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
                            on_step(Step::WaitingForSession);
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

    async fn push_once(&self) -> Result<(), PushRefusal> {
        let sent = self
            .client
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
                Err(classify(&code, &message, self.instance_id, self.region))
            }
            Err(e @ SdkError::ConstructionFailure(_)) => Err(PushRefusal::Fatal(format!(
                "cannot build the key push request: {}",
                error_chain(&e)
            ))),
            Err(e) => Err(PushRefusal::Transient(format!(
                "cannot reach EC2 Instance Connect in {}: {}",
                self.region,
                error_chain(&e)
            ))),
        }
    }
}

/// The pause before retry number `attempt` (1-based): exponential, capped,
/// with up to half of it random so that many clients do not retry in step.
pub(crate) fn backoff(attempt: u32) -> Duration {
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
pub(crate) fn session_limit_message(instance_id: &str, waited: Option<Duration>) -> String {
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
pub(crate) fn classify(code: &str, message: &str, instance_id: &str, region: &str) -> PushRefusal {
    let said = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    };
    let fatal = |text: String| PushRefusal::Fatal(text);
    match code {
        "ThrottlingException" => PushRefusal::Throttled(format!(
            "EC2 Instance Connect throttled the key push for {instance_id} ({said})"
        )),
        "ServiceException" | "SerialConsoleSessionUnavailableException"
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
                PushRefusal::Throttled(_) => assert_eq!(code, "ThrottlingException"),
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

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_pushes_and_slows_down_when_throttled() {
        let pacer = Pacer::default();
        let start = Instant::now();
        for _ in 0..5 {
            pacer.turn().await;
        }
        assert_eq!(start.elapsed(), STEADY_GAP * 4);
        pacer.throttled();
        pacer.throttled();
        assert_eq!(pacer.gap(), STEADY_GAP * 4);
        for _ in 0..10 {
            pacer.throttled();
        }
        assert_eq!(pacer.gap(), SLOWEST_GAP);
        for _ in 0..30 {
            pacer.accepted();
        }
        assert_eq!(pacer.gap(), STEADY_GAP);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= FIRST_BACKOFF && backoff(1) >= FIRST_BACKOFF / 2);
        assert!(backoff(3) >= FIRST_BACKOFF * 2);
        assert!(backoff(30) <= MAX_BACKOFF);
    }
}
