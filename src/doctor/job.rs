//! One target's doctor run from start to end, as every caller needs it:
//! reach a root shell (a login then sudo, or GRUB's rescue shell with no
//! password), examine as root (and with `fix` repair and verify), leave the
//! console as it was found on every path (logged out, or booted normally),
//! close the session, and hand back the [`Report`].
//!
//! The command line only turns flags into a [`Job`] (`src/cli/doctor_job.rs`)
//! and shows the [`Stage`]s it is told; a fleet runs the same job per
//! target.

use std::time::Duration;

use super::report::Via;
use super::{examine, Examination, Finding, Report, Request, Status};
use crate::ec2::config::Ec2Options;
use crate::error::{Error, Result};
use crate::expect::Session;
use crate::rescue::{PowerCycle, RescueArgs, RescueOptions, RescueStep};
use crate::root::{as_root, RootAccess, RootStage};
use crate::shell::{LoginSpec, Shell};
use crate::target::Target;

/// What every target is asked: the request, how root is reached, check or fix.
pub(crate) struct Job {
    /// What to check (and may repair).
    pub(crate) request: Request,
    /// How root is reached on each target.
    pub(crate) access: AccessPlan,
    /// Repair and verify, or only check.
    pub(crate) fix: bool,
}

/// How the job reaches root on every target: each target's
/// [`RootAccess`] comes from it.
#[derive(Clone)]
pub(crate) enum AccessPlan {
    /// Log in (then sudo): the same login everywhere.
    Login(LoginSpec),
    /// Through GRUB and a rescue shell: no password; each target its own
    /// power cycle.
    Grub(GrubPlan),
}

/// The rescue through GRUB for every target: what restarts each machine,
/// the kernel arguments, how long each boot may take.
#[derive(Clone)]
pub(crate) struct GrubPlan {
    power: PowerPlan,
    args: RescueArgs,
    boot_timeout: Duration,
}

/// What restarts each target's machine.
#[derive(Clone)]
pub(crate) enum PowerPlan {
    /// A command's words, with `{target}` replaced by each target as given.
    Command(Vec<String>),
    /// The user, when told (one target at a time).
    Manual,
    /// Each target its own way: an EC2 instance reboots through the EC2
    /// API; a replay runs no power cycle (its recording has the boot).
    ByTarget,
}

/// Which targets a job is for.
#[derive(Clone, Copy)]
pub(crate) enum Targets<'a> {
    /// Several (a fleet; [`Job::check_targets`] checks them once known).
    Many,
    /// One.
    One(&'a Target),
}

/// Where a job is, told as each stage starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Logging in.
    LoggingIn,
    /// Gathering the facts and checking.
    Examining,
    /// Repairing and verifying.
    Repairing,
    /// Logging out.
    LoggingOut,
    /// A stage of reaching the rescue shell through GRUB, or leaving it.
    Rescue(RescueStep),
}

impl From<RootStage> for Stage {
    fn from(stage: RootStage) -> Stage {
        match stage {
            RootStage::LoggingIn => Stage::LoggingIn,
            RootStage::LoggingOut => Stage::LoggingOut,
            RootStage::Rescue(step) => Stage::Rescue(step),
        }
    }
}

/// Where a power-cycle command takes the target.
const TARGET_PLACEHOLDER: &str = "{target}";

impl Job {
    /// Who logs in and for how long, for a login; `None` for the rescue.
    pub(crate) fn login_user(&self) -> Option<(&str, Duration)> {
        match &self.access {
            AccessPlan::Login(spec) => Some((spec.user.as_str(), spec.timeout)),
            AccessPlan::Grub(_) => None,
        }
    }

    /// Checks every target of a fleet before any is opened.
    pub(crate) fn check_targets<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a Target>,
    ) -> Result<()> {
        if let AccessPlan::Grub(plan) = &self.access {
            for target in targets {
                plan.check(target)?;
            }
        }
        Ok(())
    }

    /// Runs the job on `session` (opened to `target`; `ec2` is how, so an
    /// EC2 instance reboots the same way) and closes it; the report.
    /// `stage` is told each stage as it starts, `announce` each repair.
    pub(crate) async fn run(
        &self,
        target: &Target,
        ec2: &Ec2Options,
        mut session: Session,
        stage: &(dyn Fn(Stage) + Sync),
        announce: &mut (dyn FnMut(&Finding) + Send),
    ) -> Result<Report> {
        let started_at = time::OffsetDateTime::now_utc();
        let clock = std::time::Instant::now();
        let transcript = session.transcript_path().map(|p| p.display().to_string());
        // Known before anything is recorded: a password that is also a word
        // of the first marker (the user's name) is redacted there too.
        if let AccessPlan::Login(spec) = &self.access {
            session.add_secret(&spec.password);
        }
        session.mark(&format!(
            "doctor: user {} mode {}",
            self.request.user.as_str(),
            self.mode()
        ));
        let mut announce = |f: &Finding| {
            stage(Stage::Repairing);
            announce(f)
        };
        let outcome = match self.root_access(target, ec2) {
            Ok(access) => {
                let root_stage = |s: RootStage| stage(s.into());
                let job = async |shell: &mut Shell<'_>| {
                    stage(Stage::Examining);
                    examine(shell, &self.request, self.fix, &mut announce).await
                };
                // A failed examination may have changed files half-way.
                let changed = |outcome: &Result<Examination>| {
                    outcome.as_ref().map_or(true, |o| {
                        o.findings
                            .iter()
                            .any(|f| f.status != Status::Open && f.status != Status::Skipped)
                    })
                };
                as_root(&mut session, &access, &root_stage, job, changed).await
            }
            Err(e) => Err(e),
        };
        let _ = session.close().await;
        let outcome = outcome?;
        Ok(Report {
            target: target.to_string(),
            user: self.request.user.as_str().to_string(),
            mode: self.mode(),
            policy: self.request.policy,
            started_at: started_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            duration_ms: clock.elapsed().as_millis(),
            verified: outcome.verified,
            findings: outcome.findings,
            transcript,
            evidence: outcome.evidence,
            round_trips: outcome.round_trips,
            via: match self.access {
                AccessPlan::Login(_) => Via::Login,
                AccessPlan::Grub(_) => Via::Grub,
            },
            incomplete: !outcome.not_checked.is_empty(),
            not_checked: self
                .request
                .not_checked()
                .into_iter()
                .chain(outcome.not_checked)
                .collect(),
        })
    }

    /// How root is reached on `target`: the login, or the rescue with
    /// the target's own power cycle.
    fn root_access(&self, target: &Target, ec2: &Ec2Options) -> Result<RootAccess> {
        match &self.access {
            AccessPlan::Login(spec) => Ok(RootAccess::Login(spec.clone())),
            AccessPlan::Grub(plan) => Ok(RootAccess::Rescue(plan.for_target(target, ec2)?)),
        }
    }

    fn mode(&self) -> &'static str {
        if self.fix {
            "fix"
        } else {
            "check"
        }
    }
}

impl GrubPlan {
    /// The plan, checked against the targets as far as they are known.
    pub(crate) fn new(
        power: PowerPlan,
        args: RescueArgs,
        boot_timeout: Duration,
        targets: Targets<'_>,
    ) -> Result<GrubPlan> {
        let plan = GrubPlan {
            power,
            args,
            boot_timeout,
        };
        match targets {
            Targets::One(target) => plan.check(target)?,
            Targets::Many => plan.check_many()?,
        }
        Ok(plan)
    }

    /// What a run over several machines needs: each restarted on its own.
    fn check_many(&self) -> Result<()> {
        match &self.power {
            PowerPlan::Manual => Err(Error::usage(
                "--power-cycle none is for one target: with several, give --power-cycle-command \
                 with {target} where each target goes (EC2 instances reboot through the EC2 API)",
            )),
            PowerPlan::Command(words) if !words.iter().any(|w| w.contains(TARGET_PLACEHOLDER)) => {
                Err(Error::usage(format!(
                    "--power-cycle-command {:?} would restart the same machine for every target: \
                     put {TARGET_PLACEHOLDER} where the target goes (e.g. `my-reset {TARGET_PLACEHOLDER}`)",
                    shell_words::join(words)
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether `target` can be restarted as planned.
    fn check(&self, target: &Target) -> Result<()> {
        match (&self.power, target) {
            (PowerPlan::ByTarget, Target::Ec2 { .. } | Target::Replay { .. }) => Ok(()),
            (PowerPlan::ByTarget, _) => Err(Error::usage(format!(
                "--via grub restarts the machine to reach GRUB, and {target} is not an EC2 \
                 instance: give --power-cycle-command CMD (e.g. `virsh reset vm1`) or \
                 --power-cycle none to restart it yourself when told"
            ))),
            _ => Ok(()),
        }
    }

    /// The rescue of one target: its own power cycle.
    fn for_target(&self, target: &Target, ec2: &Ec2Options) -> Result<RescueOptions> {
        self.check(target)?;
        let shown = target.to_string();
        let power = match (&self.power, target) {
            (PowerPlan::Command(words), _) => PowerCycle::Command(
                words
                    .iter()
                    .map(|w| w.replace(TARGET_PLACEHOLDER, &shown))
                    .collect(),
            ),
            (PowerPlan::ByTarget, Target::Ec2 { instance_id }) => PowerCycle::Ec2 {
                instance_id: instance_id.clone(),
                options: ec2.clone(),
            },
            _ => PowerCycle::Manual,
        };
        Ok(RescueOptions {
            power,
            args: self.args.clone(),
            boot_timeout: self.boot_timeout,
        })
    }
}
