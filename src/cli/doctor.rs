//! `doctor TARGET… --user U [--fix]`: the command around the library's
//! doctor job (`crate::doctor::job`).
//!
//! Opens the console (recorded), logs in with the password-based user (or,
//! with `--via grub`, reaches a rescue shell through GRUB), examines as
//! root, logs out (or reboots normally) on every path, then prints the
//! report (human or JSON) and returns exit code 0 (healthy, or repaired and
//! verified) or 1.
//! With several targets (or `--targets`, `--out-dir`, `--shard`) the same
//! examination runs for each, side by side ([`super::fleet_run`]).

use crate::cli::stdout::out;

use super::doctor_job::{job, own_job, FleetDoctor, Job, Targets};
use super::{targets, Common, DoctorArgs, OutputFormat};
use crate::doctor::job::Stage;
use crate::doctor::{Finding, Report};
use crate::error::{Error, ExitCode, Result};
use crate::target::Target;
/// Runs `job` on the one `target` (its transcript named after `what`):
/// progress and each repair, as it starts, on stderr; the report.
pub(super) async fn examine_one(
    job: &Job,
    target: &Target,
    common: &Common,
    what: &str,
    connect: crate::connect::ConnectOptions,
) -> Result<Report> {
    let ec2 = connect.ec2.clone();
    let session = super::open_session_over(target, common, what, connect).await?;
    // Shown before it runs (stderr, so --output json stays clean).
    let mut announce = |f: &Finding| {
        eprintln!(
            "repairing {}: {}",
            f.check,
            f.repair.as_deref().unwrap_or("")
        )
    };
    let progress = super::progress::Progress::new(common);
    let stage = |s: Stage| progress.phase(s.into(), job.login_user());
    job.run(target, &ec2, session, &stage, &mut announce).await
}

/// Runs `doctor`.
pub(super) async fn command(args: DoctorArgs, mut common: Common) -> Result<ExitCode> {
    let many = targets::is_many(&args.targets, &args.fleet);
    if many && args.report.is_some() {
        return Err(Error::usage(
            "--report is for one target; with several, --out-dir DIR writes one report per target and summary.json",
        ));
    }
    if many && args.watch {
        return Err(super::watch_is_for_one_target());
    }
    if many {
        let job = job(&args, Targets::Many)?;
        let resolved = targets::resolve(&args.targets, &args.fleet, &common, true).await?;
        job.check_targets(resolved.targets.iter().map(|(_, target)| target))?;
        let own = resolved
            .per_target
            .iter()
            .map(|(name, options)| Ok((name.clone(), own_job(&job, name, options)?)))
            .collect::<Result<_>>()?;
        let fleet = FleetDoctor {
            job: &job,
            own,
            ec2: resolved.connect.ec2.clone(),
        };
        return super::fleet_run::run(&fleet, &args.fleet, &common, resolved).await;
    }
    let target: Target = args.targets[0].parse()?;
    common.watch = args.watch;
    let connect = super::connect_options(&common).await?;
    let job = job(&args, Targets::One(&target))?;
    let report = examine_one(&job, &target, &common, "doctor", connect).await?;
    let json = super::stdout::json_pretty(&report)?;
    if let Some(path) = &args.report {
        crate::private_file::write(path, json.as_bytes())
            .map_err(|e| Error::usage(format!("cannot write --report {}: {e}", path.display())))?;
    }
    match common.output {
        OutputFormat::Json => out!("{json}")?,
        OutputFormat::Human => out!("{}", report.human())?,
    }
    Ok(if report.problems_remain() {
        ExitCode::Problems
    } else {
        ExitCode::Success
    })
}
