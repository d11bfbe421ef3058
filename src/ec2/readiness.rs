//! What EC2 offers an instance's rescue, asked without touching it (`ready`):
//! can its serial console be opened (the preflight: account access, state,
//! Nitro), and may it be rebooted for the GRUB path (`RebootInstances`
//! with `DryRun`: EC2 answers `DryRunOperation` when the call would be
//! allowed, `UnauthorizedOperation` when not).

use super::query::QueryError;
use super::Ec2Options;
use crate::error::Result;

/// The answers, each `Ok` or why not.
#[derive(Debug, Clone)]
pub(crate) struct Readiness {
    /// The serial console can be opened.
    pub console: std::result::Result<(), String>,
    /// `RebootInstances` would be allowed.
    pub reboot: std::result::Result<(), String>,
}

/// Asks EC2 about `instance_id` with the account of `options`.
pub(crate) async fn check(options: &Ec2Options, instance_id: &str) -> Result<Readiness> {
    let account = options.account.get(options).await?;
    let query = account.query().await?;
    let console = super::preflight::run(&query, account.region(), instance_id)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let dry_run = query
        .call(
            "RebootInstances",
            &[("InstanceId.1", instance_id), ("DryRun", "true")],
        )
        .await;
    let reboot = match dry_run {
        Err(QueryError::Service { code, .. }) if code == "DryRunOperation" => Ok(()),
        Ok(_) => Ok(()),
        Err(QueryError::Service { code, message }) => Err(match code.as_str() {
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => format!(
                "not allowed ({code}): grant ec2:RebootInstances, or restart it another way \
                 (--power-cycle none)"
            ),
            _ => format!("{code}: {message}"),
        }),
        Err(QueryError::Transport(message)) => Err(message),
    };
    Ok(Readiness { console, reboot })
}
