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
            // Boxed: GRUB's way in is the largest future of all (12 KiB),
            // and inline it made every login's future as large — a fleet of
            // a thousand logins held it a thousand times for a rescue none
            // of them ran (issue 35: memory per concurrent session).
            let mut rescue = Box::pin(crate::rescue::enter(session, options, &step)).await?;
            let outcome = job(rescue.shell()).await;
            let changed = changed(&outcome);
            let left = Box::pin(rescue.leave(changed, &step)).await;
            job_then_cleanup(outcome, left, "rebooting normally after the rescue")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::SessionOptions;
    use crate::transcript::Recorder;
    use crate::transport::StreamTransport;

    /// Issue 35: a fleet holds one of these per running target. With GRUB's
    /// way in inline, every login's future was as large as a rescue's
    /// (13 KiB in a debug build, 16 KiB for the doctor's whole job).
    #[test]
    fn reaching_root_without_a_rescue_does_not_carry_one() {
        let (ours, _console) = tokio::io::duplex(64);
        let mut session = Session::new(
            Box::new(StreamTransport::new(ours, "test".into())),
            Recorder::disabled(),
            SessionOptions::default(),
        );
        let access = RootAccess::Adopt(Duration::from_secs(1));
        let future = as_root(
            &mut session,
            &access,
            &|_| {},
            async |_shell: &mut Shell<'_>| Ok(()),
            |_| false,
        );
        let size = std::mem::size_of_val(&future);
        assert!(size <= 8 * 1024, "as_root's future is {size} bytes");
    }
}
