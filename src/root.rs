//! Reaching a root shell on a console, in one place for every job that
//! needs one (the doctor, `prepare`, `ready`): a login then sudo, a root
//! shell already there, or GRUB's rescue shell with no password at all.
//! The job runs with the shell; the console is left as it was found on
//! every path the job takes (logged out, let go of, or booted normally).
//!
//! Scripts log in and out as calls of their own and reach root through the
//! same [`Shell`] (`sudo`); the command line only turns flags into a
//! [`RootAccess`].

use std::time::Duration;

use crate::error::{job_then_cleanup, Result};
use crate::expect::Session;
use crate::rescue::{RescueOptions, RescueStep};
use crate::shell::{LoginSpec, Shell};

/// How a job reaches root on one console.
pub(crate) enum RootAccess {
    /// Log in (then sudo, unless the login is root).
    Login(LoginSpec),
    /// A root shell is already on the console (a test's, an `exec:ssh`
    /// target's): take it over within the timeout, never exit it.
    Adopt(Duration),
    /// Restart the machine into GRUB's rescue shell; reboot normally after.
    Rescue(RescueOptions),
}

/// Where reaching (or leaving) root is, told as each stage starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootStage {
    /// Logging in.
    LoggingIn,
    /// The job is done: logging out.
    LoggingOut,
    /// A stage of the GRUB rescue, or of leaving it.
    Rescue(RescueStep),
}

/// Reaches root on `session` as `access` says, runs `job` with the shell,
/// then leaves the console as found. After a rescue, `changed` says whether
/// the job changed files (an SELinux system then relabels at the next boot).
/// The job's error wins over a failed leaving, which is logged.
pub(crate) async fn as_root<T>(
    session: &mut Session,
    access: &RootAccess,
    stage: &(dyn Fn(RootStage) + Sync),
    job: impl AsyncFnOnce(&mut Shell<'_>) -> Result<T>,
    changed: impl FnOnce(&Result<T>) -> bool,
) -> Result<T> {
    match access {
        RootAccess::Login(spec) => {
            stage(RootStage::LoggingIn);
            Shell::scoped(session, spec, async |shell| {
                let outcome = job(shell).await;
                stage(RootStage::LoggingOut);
                outcome
            })
            .await
        }
        RootAccess::Adopt(timeout) => {
            let mut shell = Shell::adopt(session, *timeout).await?;
            let outcome = job(&mut shell).await;
            shell.release();
            outcome
        }
        RootAccess::Rescue(options) => {
            let step = |s| stage(RootStage::Rescue(s));
            let mut rescue = crate::rescue::enter(session, options, &step).await?;
            let outcome = job(rescue.shell()).await;
            let changed = changed(&outcome);
            let left = rescue.leave(changed, &step).await;
            job_then_cleanup(outcome, left, "rebooting normally after the rescue")
        }
    }
}
