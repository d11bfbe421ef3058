//! What `doctor` asks of every target, and how one target is examined:
//! shared by the one-target command ([`super::doctor`]) and the many-target
//! run ([`super::fleet_run`], through [`FleetDoctor`]).

use super::board::{Board, Phase};
use super::fleet_run::FleetJob;
use super::{DoctorArgs, PowerCycleArg, ViaArg};
use crate::doctor::facts::UserName;
use crate::doctor::report::Via;
use crate::doctor::Status;
use crate::doctor::{Examination, Finding, Report, Request, ShellConsole};
use crate::error::ExitCode;
use crate::error::{Error, Result};
use crate::expect::Session;
use crate::fleet::Outcome;
use crate::rescue::{PowerCycle, RescueArgs, RescueOptions};
use crate::secret::Secret;
use crate::shell::Shell;
use crate::target::Target;

/// What every target is asked: the request, how root is reached, check or fix.
pub(super) struct Job {
    request: Request,
    access: RootAccess,
    fix: bool,
}

/// How the job reaches a root shell on each console.
enum RootAccess {
    /// Log in as `user` with `password` (then sudo).
    Login {
        user: UserName,
        password: Secret,
        timeout: std::time::Duration,
    },
    /// Through GRUB and a rescue shell: no password (`--via grub`).
    Grub(GrubPlan),
}

/// `--via grub` for every target: what restarts each machine, the kernel
/// arguments, how long each boot may take.
struct GrubPlan {
    power: PowerPlan,
    args: RescueArgs,
    boot_timeout: std::time::Duration,
}

/// What restarts each target's machine.
enum PowerPlan {
    /// `--power-cycle-command`: its words, with `{target}` replaced by
    /// each target as given.
    Command(Vec<String>),
    /// `--power-cycle none`: the user, when told (one target at a time).
    Manual,
    /// Each target its own way: an EC2 instance reboots through the EC2
    /// API; a replay runs no power cycle (its recording has the boot).
    ByTarget,
}

/// Where a power-cycle command takes the target.
const TARGET_PLACEHOLDER: &str = "{target}";

impl Job {
    /// The job the flags ask for, validated; for a login, the password is
    /// read now (once, whatever the number of targets).
    pub(super) fn new(args: &DoctorArgs, targets: Targets<'_>) -> Result<Job> {
        let mut request = request(args)?;
        let access = match args.via {
            ViaArg::Login => {
                let user = match &args.login_user {
                    Some(name) => UserName::parse(name)
                        .map_err(|e| Error::usage(format!("--login-user: {e}")))?,
                    None => request.user.clone(),
                };
                RootAccess::Login {
                    password: super::prompt::login_password(&args.password, user.as_str())?,
                    user,
                    timeout: std::time::Duration::from_secs(args.login_timeout),
                }
            }
            ViaArg::Grub => {
                request.rescue = true;
                RootAccess::Grub(GrubPlan::new(args, targets)?)
            }
        };
        Ok(Job {
            request,
            access,
            fix: args.fix,
        })
    }

    /// Tells `phase` a login is under way: who logs in, for how long.
    pub(super) fn login_user(&self) -> Option<(&str, std::time::Duration)> {
        match &self.access {
            RootAccess::Login { user, timeout, .. } => Some((user.as_str(), *timeout)),
            RootAccess::Grub(_) => None,
        }
    }

    /// Reaches a root shell on `session` (a login, or the GRUB rescue),
    /// examines (and with `--fix` repairs) as root, leaves the console as
    /// it found it (logged out, or booted normally) on every path, closes
    /// the session; the report. `phase` is told each step as it starts,
    /// `announce` each repair; `ec2` is how the console was opened (an EC2
    /// instance reboots with it).
    pub(super) async fn examine(
        &self,
        target: &Target,
        ec2: &crate::ec2::Ec2Options,
        mut session: Session,
        phase: &(dyn Fn(Phase) + Sync),
        announce: &mut (dyn FnMut(&Finding) + Send),
    ) -> Result<Report> {
        let started_at = time::OffsetDateTime::now_utc();
        let clock = std::time::Instant::now();
        let transcript = session.transcript_path().map(|p| p.display().to_string());
        // Known before anything is recorded: a password that is also a word
        // of the first marker (the user's name) is redacted there too.
        if let RootAccess::Login { password, .. } = &self.access {
            session.add_secret(password);
        }
        session.mark(&format!(
            "doctor: user {} mode {}",
            self.request.user.as_str(),
            self.mode()
        ));
        let mut announce = |f: &Finding| {
            phase(Phase::Repairing);
            announce(f)
        };
        let outcome = match &self.access {
            RootAccess::Login {
                user,
                password,
                timeout,
            } => {
                session.add_secret(password);
                let mut spec = crate::doctor::login_spec(user.as_str(), password.clone());
                spec.timeout = *timeout;
                phase(Phase::LoggingIn);
                Shell::scoped(&mut session, &spec, async |shell, session| {
                    phase(Phase::Examining);
                    let outcome = crate::doctor::examine(
                        &mut ShellConsole::new(shell, session),
                        &self.request,
                        self.fix,
                        &mut announce,
                    )
                    .await;
                    phase(Phase::LoggingOut);
                    outcome
                })
                .await
            }
            RootAccess::Grub(plan) => match plan.for_target(target, ec2) {
                Ok(options) => {
                    self.rescue(&mut session, &options, phase, &mut announce)
                        .await
                }
                Err(e) => Err(e),
            },
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
                RootAccess::Login { .. } => Via::Login,
                RootAccess::Grub(_) => Via::Grub,
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

    /// The examination in a rescue shell reached through GRUB; the machine
    /// is rebooted normally afterwards, also when the examination failed
    /// (a signal aside: then the console is left at the rescue shell, and
    /// the error says so).
    async fn rescue(
        &self,
        session: &mut Session,
        options: &RescueOptions,
        phase: &(dyn Fn(Phase) + Sync),
        announce: &mut (dyn FnMut(&Finding) + Send),
    ) -> Result<Examination> {
        let step = |s| phase(Phase::Rescue(s));
        let mut rescue = crate::rescue::enter(session, options, &step).await?;
        phase(Phase::Examining);
        let outcome = crate::doctor::examine(
            &mut ShellConsole::new(rescue.shell(), session),
            &self.request,
            self.fix,
            announce,
        )
        .await;
        let changed = outcome.as_ref().map_or(true, |o| {
            o.findings
                .iter()
                .any(|f| f.status != Status::Open && f.status != Status::Skipped)
        });
        let left = rescue.leave(session, changed, &step).await;
        match (outcome, left) {
            (Ok(outcome), Ok(())) => Ok(outcome),
            (Ok(_), Err(e)) => Err(e.context("rebooting normally after the rescue")),
            (Err(e), left) => {
                if let Err(l) = left {
                    tracing::warn!("rebooting after a failed rescue also failed: {l}");
                }
                Err(e)
            }
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

/// Which targets a job is for.
#[derive(Clone, Copy)]
pub(super) enum Targets<'a> {
    /// Several (a fleet; [`Job::check_targets`] checks them once known).
    Many,
    /// One.
    One(&'a Target),
}

impl GrubPlan {
    /// The plan the flags ask for, checked against the targets as far as
    /// they are known.
    fn new(args: &DoctorArgs, targets: Targets<'_>) -> Result<GrubPlan> {
        if args.login_user.is_some() {
            return Err(Error::usage(
                "--login-user is for --via login; --via grub logs in as nobody (the rescue shell is root)",
            ));
        }
        let power = match (&args.power_cycle_command, args.power_cycle) {
            (Some(command), _) => match PowerCycle::parse(command)? {
                PowerCycle::Command(words) => PowerPlan::Command(words),
                _ => PowerPlan::Manual,
            },
            (None, Some(PowerCycleArg::None)) => PowerPlan::Manual,
            (None, None) => PowerPlan::ByTarget,
        };
        let plan = GrubPlan {
            power,
            args: RescueArgs::new(&args.rescue_args)?,
            boot_timeout: std::time::Duration::from_secs(args.boot_timeout),
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
    fn for_target(&self, target: &Target, ec2: &crate::ec2::Ec2Options) -> Result<RescueOptions> {
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

impl Job {
    /// Checks every target of a fleet before any is opened.
    pub(super) fn check_targets<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a Target>,
    ) -> Result<()> {
        if let RootAccess::Grub(plan) = &self.access {
            for target in targets {
                plan.check(target)?;
            }
        }
        Ok(())
    }
}

fn request(args: &DoctorArgs) -> Result<Request> {
    let public_key = match &args.public_key {
        None => None,
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!("cannot read --public-key {}: {e}", path.display()))
        })?),
    };
    let mut request = Request::new(
        &args.user,
        args.policy.into(),
        public_key.as_deref(),
        args.fingerprint.as_deref(),
        args.add_key,
    )
    .map_err(|e| Error::usage(format!("doctor: {e}")))?;
    request.create_user = args.create_user;
    request.loosen = args.loosen;
    Ok(request)
}

/// The doctor as a fleet's job: every target examined the same way.
pub(super) struct FleetDoctor<'a> {
    /// What every target is asked.
    pub job: &'a Job,
    /// How the consoles are opened (EC2 instances reboot with it).
    pub ec2: crate::ec2::Ec2Options,
}

impl FleetJob for FleetDoctor<'_> {
    type Done = Report;
    const NAME: &'static str = "doctor";

    async fn run(
        &self,
        target: &Target,
        session: Session,
        name: &str,
        board: &Board,
    ) -> Result<Report> {
        let mut announce = |f: &Finding| {
            board.print(|| {
                eprintln!(
                    "{name}: repairing {}: {}",
                    f.check,
                    f.repair.as_deref().unwrap_or("")
                )
            })
        };
        let phase = |p| board.phase(name, p);
        self.job
            .examine(target, &self.ec2, session, &phase, &mut announce)
            .await
    }

    fn outcome(&self, report: &Report) -> (ExitCode, Outcome) {
        let code = if report.problems_remain() {
            ExitCode::Problems
        } else {
            ExitCode::Success
        };
        let repaired = report.findings.iter().any(|f| f.status == Status::Fixed);
        (code, Outcome::of(code, repaired))
    }

    /// How many were fixed, the checks still open, how long it took.
    fn detail(&self, report: &Report) -> String {
        let open: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.status != Status::Fixed)
            .map(|f| f.check.as_str())
            .collect();
        let fixed = report.findings.len() - open.len();
        let mut parts = Vec::new();
        if fixed > 0 {
            parts.push(format!("{fixed} fixed"));
        }
        if !open.is_empty() {
            parts.push(open.join(", "));
        }
        format!(
            "{} ({:.1} s)",
            parts.join("; "),
            report.duration_ms as f64 / 1000.0
        )
    }
}
