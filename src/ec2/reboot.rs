//! Restarting an instance for the GRUB rescue path: `RebootInstances`.
//!
//! AWS: "The serial console session lasts during instance reboot and stop.
//! During reboot, you can view all of the boot messages from the start." So
//! the rescue opens the console first, then reboots the instance through the
//! EC2 API, and sees GRUB's menu on the session it already holds. The call
//! needs `ec2:RebootInstances` on the instance; its errors say which
//! permission or state is missing and what to do instead.

use super::aws_error;
use super::query::QueryError;
use super::Ec2Options;
use crate::error::{Error, Result};

/// Reboots `instance_id` with the account and Region of `options`.
pub(crate) async fn reboot_instance(options: &Ec2Options, instance_id: &str) -> Result<()> {
    let account = options.account.get(options).await?;
    let query = account.query().await?;
    query
        .call("RebootInstances", &[("InstanceId.1", instance_id)])
        .await
        .map(|_| ())
        .map_err(|e| reboot_error(e, account.region(), instance_id))
}

fn reboot_error(e: QueryError, region: &str, instance_id: &str) -> Error {
    let instead = "or restart it another way and pass --power-cycle none";
    match e {
        QueryError::Service { code, message } => aws_error(match code.as_str() {
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => format!(
                "not allowed to reboot {instance_id} ({code}): the GRUB rescue path needs \
                 ec2:RebootInstances on it; grant it to your IAM identity, {instead}"
            ),
            "IncorrectState" | "IncorrectInstanceState" => format!(
                "{instance_id} cannot be rebooted now ({code}: {message}); it must be running \
                 (`aws ec2 start-instances --instance-ids {instance_id} --region {region}`)"
            ),
            c if c.starts_with("InvalidInstanceID") => format!(
                "instance {instance_id} was not found in {region} ({code}); check the id and --region"
            ),
            "AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken"
            | "RequestExpired" => format!(
                "AWS rejected the credentials ({code}: {message}); check AWS_ACCESS_KEY_ID/--profile, \
                 refresh temporary credentials (`aws sso login`), and check the clock"
            ),
            _ => format!("RebootInstances failed in {region}: {code}: {message}; {instead}"),
        }),
        QueryError::Transport(message) => aws_error(format!(
            "rebooting {instance_id}: {message}; {instead}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str) -> QueryError {
        QueryError::Service {
            code: code.into(),
            message: "from AWS".into(),
        }
    }

    #[test]
    fn errors_name_the_permission_the_state_or_the_id() {
        let id = "i-0123456789abcdef0";
        let text = reboot_error(service("UnauthorizedOperation"), "eu-west-1", id).to_string();
        assert!(text.contains("ec2:RebootInstances"), "{text}");
        assert!(text.contains("--power-cycle none"), "{text}");
        let text = reboot_error(service("IncorrectState"), "eu-west-1", id).to_string();
        assert!(text.contains("start-instances"), "{text}");
        let text = reboot_error(service("InvalidInstanceID.NotFound"), "eu-west-1", id).to_string();
        assert!(text.contains("not found in eu-west-1"), "{text}");
        assert_eq!(
            reboot_error(service("UnauthorizedOperation"), "eu-west-1", id)
                .exit_code()
                .code(),
            3
        );
    }
}
