//! The doctor's flags as a [`Job`] (the library's `doctor::job` runs it):
//! shared by the one-target command ([`super::doctor`]) and the many-target
//! run ([`super::fleet_run`], through [`FleetDoctor`]).

use super::board::Board;
use super::fleet_run::FleetJob;
use super::{DoctorArgs, PowerCycleArg, ViaArg};
use crate::doctor::facts::UserName;
use crate::doctor::job::{AccessPlan, GrubPlan, PowerPlan, Stage};
pub(super) use crate::doctor::job::{Job, Targets};
use crate::doctor::{Finding, Report, Request, Status};
use crate::error::ExitCode;
use crate::error::{Error, Result};
use crate::expect::Session;
use crate::fleet::{Outcome, PerTarget};
use crate::rescue::{PowerCycle, RescueArgs};
use crate::target::Target;

/// The job the flags ask for, validated; for a login, the password is read
/// now (once, whatever the number of targets).
pub(super) fn job(args: &DoctorArgs, targets: Targets<'_>) -> Result<Job> {
    let mut request = request(args)?;
    let access = match args.via {
        ViaArg::Login => {
            let user = match &args.login_user {
                Some(name) => {
                    UserName::parse(name).map_err(|e| Error::usage(format!("--login-user: {e}")))?
                }
                None => request.user.clone(),
            };
            let password = super::prompt::login_password(&args.password, user.as_str())?;
            let mut spec = crate::doctor::login_spec(user.as_str(), password);
            spec.timeout = std::time::Duration::from_secs(args.login_timeout);
            AccessPlan::Login(spec)
        }
        ViaArg::Grub => {
            request.rescue = true;
            AccessPlan::Grub(grub_plan(args, targets)?)
        }
    };
    Ok(Job {
        request,
        access,
        fix: args.fix,
    })
}

/// `job` for one target of a `--targets` file whose line says its own
/// `login_user=` or `public_key=` (checked before anything connects).
pub(super) fn own_job(job: &Job, name: &str, own: &PerTarget) -> Result<Job> {
    let mut request = job.request.clone();
    if let Some(path) = &own.public_key {
        if request.fingerprint.is_some() {
            // The fingerprint would be sought, not this key (Request::sought).
            return Err(Error::usage(format!(
                "{name}: public_key= and --fingerprint name two keys; give the key per target \
                 without --fingerprint"
            )));
        }
        let text = read_public_key(path, "public_key=").map_err(|e| e.context(name))?;
        request = request
            .with_public_key(&text)
            .map_err(|e| Error::usage(format!("{name}: public_key={}: {e}", path.display())))?;
    }
    let access = match (&job.access, &own.login_user) {
        (AccessPlan::Login(spec), Some(user)) => {
            UserName::parse(user)
                .map_err(|e| Error::usage(format!("{name}: login_user={user}: {e}")))?;
            let mut spec = spec.clone();
            spec.user = user.clone();
            AccessPlan::Login(spec)
        }
        (AccessPlan::Grub(_), Some(_)) => {
            return Err(Error::usage(format!(
                "{name}: login_user= is for --via login; --via grub logs in as nobody"
            )))
        }
        (plan, None) => plan.clone(),
    };
    Ok(Job {
        request,
        access,
        fix: job.fix,
    })
}

/// `--via grub`: the power cycle, the rescue arguments, the boot timeout.
fn grub_plan(args: &DoctorArgs, targets: Targets<'_>) -> Result<GrubPlan> {
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
    GrubPlan::new(
        power,
        RescueArgs::new(&args.rescue_args)?,
        std::time::Duration::from_secs(args.boot_timeout),
        targets,
    )
}

/// A `.pub` file's text; `flag` names where the path came from.
fn read_public_key(path: &std::path::Path, flag: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read {flag}{}: {e}", path.display())))
}

fn request(args: &DoctorArgs) -> Result<Request> {
    let public_key = match &args.public_key {
        None => None,
        Some(path) => Some(read_public_key(path, "--public-key ")?),
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

/// The doctor as a fleet's job: every target examined the same way, but
/// for what its `--targets` line says of its own.
pub(super) struct FleetDoctor<'a> {
    /// What every target is asked.
    pub job: &'a Job,
    /// The jobs of targets whose line names their own login user or key,
    /// by name.
    pub own: std::collections::HashMap<String, Job>,
    /// How the consoles are opened (EC2 instances reboot with it).
    pub ec2: crate::ec2::Ec2Options,
}

impl FleetJob for FleetDoctor<'_> {
    type Done = Report;
    const NAME: &'static str = "doctor";
    const PAUSED_REPLAYS: bool = true;

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
        let stage = |s: Stage| board.phase(name, s.into());
        let job = self.own.get(name).unwrap_or(self.job);
        job.run(target, &self.ec2, session, &stage, &mut announce)
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
