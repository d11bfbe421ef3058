//! Turning on EC2 Serial Console access for the account in a Region
//! (`EnableSerialConsoleAccess`, off by default): `prepare --account`.
//! With `dry_run`, EC2 only says whether the call would be allowed.

use super::aws_error;
use super::query::QueryError;
use super::Ec2Options;
use crate::error::Result;

/// What the account's access is now, or would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Enabled (or already was).
    Enabled,
    /// A dry run: the call would be allowed.
    WouldEnable,
}

/// Enables serial console access for the account of `options` in its
/// Region; a dry run changes nothing.
pub(crate) async fn enable(options: &Ec2Options, dry_run: bool) -> Result<Access> {
    let account = options.account.get(options).await?;
    let query = account.query().await?;
    let region = account.region();
    let params: &[(&str, &str)] = if dry_run { &[("DryRun", "true")] } else { &[] };
    match query.call("EnableSerialConsoleAccess", params).await {
        Ok(_) => Ok(Access::Enabled),
        // EC2's answer to a dry run that would have succeeded.
        Err(QueryError::Service { code, .. }) if dry_run && code == "DryRunOperation" => {
            Ok(Access::WouldEnable)
        }
        Err(QueryError::Service { code, message }) => Err(aws_error(match code.as_str() {
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => format!(
                "not allowed to enable serial console access in {region} ({code}): grant \
                 ec2:EnableSerialConsoleAccess to your IAM identity (an account administrator's)"
            ),
            _ => format!("EnableSerialConsoleAccess failed in {region}: {code}: {message}"),
        })),
        Err(QueryError::Transport(message)) => Err(aws_error(message)),
    }
}
