//! Preflight: the checks that turn AWS's vague failures into one-line fixes.
//!
//! Before pushing a key we ask EC2 three things, each with a specific fix
//! when the answer is wrong: is serial console access enabled for the account
//! in this Region (`GetSerialConsoleAccessStatus`), does the instance exist
//! and is it `running` (`DescribeInstances`), and is its type built on Nitro
//! (`DescribeInstanceTypes` → hypervisor). `--no-preflight` skips them all
//! (for IAM policies that grant only the key push).

use super::aws_error;
use super::query::{xml_element, xml_text, Ec2Query, QueryError};
use crate::error::{Error, Result};

/// What the preflight learned about the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceFacts {
    /// `running`, `stopped`, …
    pub state: String,
    /// e.g. `t3.micro`.
    pub instance_type: String,
}

/// Runs every check; the first failure is the error (exit code 3).
pub(crate) async fn run(
    query: &Ec2Query,
    region: &str,
    instance_id: &str,
) -> Result<InstanceFacts> {
    check_access(query, region).await?;
    let facts = describe_instance(query, region, instance_id).await?;
    if facts.state != "running" {
        return Err(aws_error(not_running(region, instance_id, &facts.state)));
    }
    check_nitro(query, region, instance_id, &facts.instance_type).await?;
    Ok(facts)
}

async fn check_access(query: &Ec2Query, region: &str) -> Result<()> {
    let xml = query
        .call("GetSerialConsoleAccessStatus", &[])
        .await
        .map_err(|e| api_error(e, "ec2:GetSerialConsoleAccessStatus", region))?;
    let enabled = xml_text(&xml, "serialConsoleAccessEnabled").as_deref() == Some("true");
    if enabled {
        return Ok(());
    }
    let managed_by = xml_text(&xml, "managedBy").unwrap_or_default();
    Err(aws_error(if managed_by == "declarative-policy" {
        format!(
            "EC2 Serial Console access is disabled in {region} by a declarative policy of your AWS \
             Organization; ask its administrator to allow it (enable-serial-console-access cannot \
             override the policy)"
        )
    } else {
        format!(
            "EC2 Serial Console access is disabled for this account in {region}; enable it with \
             `aws ec2 enable-serial-console-access --region {region}` (it is off by default, per Region)"
        )
    }))
}

async fn describe_instance(
    query: &Ec2Query,
    region: &str,
    instance_id: &str,
) -> Result<InstanceFacts> {
    let xml = query
        .call("DescribeInstances", &[("InstanceId.1", instance_id)])
        .await
        .map_err(|e| match &e {
            QueryError::Service { code, .. } if code.starts_with("InvalidInstanceID") => {
                aws_error(not_found(region, instance_id))
            }
            _ => api_error(e, "ec2:DescribeInstances", region),
        })?;
    // One id asked, so the set holds one instance (or none).
    let instance = xml_element(&xml, "instancesSet")
        .filter(|set| xml_text(set, "instanceId").as_deref() == Some(instance_id))
        .ok_or_else(|| aws_error(not_found(region, instance_id)))?;
    let state = xml_element(instance, "instanceState")
        .and_then(|s| xml_text(s, "name"))
        .unwrap_or_else(|| "unknown".into());
    let instance_type = xml_text(instance, "instanceType").unwrap_or_default();
    Ok(InstanceFacts {
        state,
        instance_type,
    })
}

async fn check_nitro(
    query: &Ec2Query,
    region: &str,
    instance_id: &str,
    instance_type: &str,
) -> Result<()> {
    let xml = query
        .call(
            "DescribeInstanceTypes",
            &[("InstanceType.1", instance_type)],
        )
        .await
        .map_err(|e| api_error(e, "ec2:DescribeInstanceTypes", region))?;
    let hypervisor = xml_text(&xml, "hypervisor").unwrap_or_default();
    let bare_metal = xml_text(&xml, "bareMetal").as_deref() == Some("true");
    if supports_serial_console(instance_type, &hypervisor, bare_metal) {
        return Ok(());
    }
    let what = if bare_metal {
        "a bare-metal type the EC2 Serial Console does not support".to_string()
    } else {
        format!(
            "a {} type; the EC2 Serial Console needs a Nitro-based type",
            if hypervisor.is_empty() {
                "non-Nitro".into()
            } else {
                hypervisor
            }
        )
    };
    Err(aws_error(format!(
        "instance {instance_id} is {instance_type}, {what}; stop it, change the type to a Nitro one \
         (e.g. `aws ec2 modify-instance-attribute --instance-id {instance_id} --instance-type t3.micro \
         --region {region}`), then start it"
    )))
}

/// Whether AWS offers the serial console on this type (Nitro, or bare metal
/// other than a1.metal, mac*.metal, g5g.metal and u-*.metal).
pub(crate) fn supports_serial_console(
    instance_type: &str,
    hypervisor: &str,
    bare_metal: bool,
) -> bool {
    if bare_metal {
        let excluded = instance_type == "a1.metal"
            || instance_type == "g5g.metal"
            || (instance_type.starts_with("mac") && instance_type.ends_with(".metal"))
            || (instance_type.starts_with("u-") && instance_type.ends_with(".metal"));
        return !excluded;
    }
    hypervisor == "nitro"
}

fn not_found(region: &str, instance_id: &str) -> String {
    format!(
        "instance {instance_id} was not found in {region}; check the instance id and the Region \
         (--region or AWS_REGION)"
    )
}

fn not_running(region: &str, instance_id: &str, state: &str) -> String {
    let fix = match state {
        "stopped" => format!(
            "start it with `aws ec2 start-instances --instance-ids {instance_id} --region {region}`"
        ),
        "pending" | "stopping" | "rebooting" => {
            "wait until it is running, then try again".to_string()
        }
        _ => "a terminated instance cannot be reached; pick a running one".to_string(),
    };
    format!("instance {instance_id} is {state}, and the serial console needs it running; {fix}")
}

/// Maps an EC2 API failure during the preflight to a sentence with the fix.
fn api_error(e: QueryError, action: &str, region: &str) -> Error {
    let skip = "or pass --no-preflight to skip these checks";
    match e {
        QueryError::Service { code, message } => aws_error(match code.as_str() {
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => format!(
                "not allowed to call {action} ({code}); grant ec2:GetSerialConsoleAccessStatus, \
                 ec2:DescribeInstances and ec2:DescribeInstanceTypes to your IAM identity, {skip}"
            ),
            "AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken"
            | "RequestExpired" => format!(
                "AWS rejected the credentials ({code}: {message}); check AWS_ACCESS_KEY_ID/--profile, \
                 refresh temporary credentials (`aws sso login`), and check the clock"
            ),
            "OptInRequired" => format!("Region {region} is not enabled for this account ({code}): {message}"),
            _ => format!("{action} failed in {region}: {code}: {message}"),
        }),
        QueryError::Transport(message) => aws_error(format!("{message} ({skip})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nitro_and_bare_metal_rules() {
        assert!(supports_serial_console("t3.micro", "nitro", false));
        assert!(!supports_serial_console("t2.micro", "xen", false));
        assert!(supports_serial_console("m5.metal", "", true));
        for excluded in [
            "a1.metal",
            "mac1.metal",
            "mac2-m2.metal",
            "g5g.metal",
            "u-6tb1.metal",
        ] {
            assert!(!supports_serial_console(excluded, "", true), "{excluded}");
        }
    }

    #[test]
    fn api_errors_name_the_missing_permission_or_the_credentials() {
        let denied = QueryError::Service {
            code: "UnauthorizedOperation".into(),
            message: "You are not authorized".into(),
        };
        let text = api_error(denied, "ec2:DescribeInstances", "eu-west-1").to_string();
        assert!(
            text.contains("ec2:DescribeInstances") && text.contains("--no-preflight"),
            "{text}"
        );
        let bad = QueryError::Service {
            code: "AuthFailure".into(),
            message: "AWS was not able to validate the provided access credentials".into(),
        };
        let text = api_error(bad, "ec2:DescribeInstances", "eu-west-1").to_string();
        assert!(text.contains("rejected the credentials"), "{text}");
    }

    #[test]
    fn stopped_instance_message_names_the_start_command() {
        let m = not_running("eu-west-1", "i-0123456789abcdef0", "stopped");
        assert!(
            m.contains(
                "aws ec2 start-instances --instance-ids i-0123456789abcdef0 --region eu-west-1"
            ),
            "{m}"
        );
    }
}
