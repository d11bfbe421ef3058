//! `doctor TARGET… --user U [--fix]`: the command around [`crate::doctor::examine`].
//!
//! Opens the console (recorded), logs in with the password-based user,
//! examines as root, logs out on every path, then prints the report (human
//! or JSON) and returns exit code 0 (healthy, or repaired and verified) or 1.
//! With several targets (or `--targets`, `--out-dir`, `--shard`) the same
//! examination runs for each, side by side ([`super::fleet_doctor`]).

use crate::cli::stdout::{out, outln};
use std::io::IsTerminal;

use super::doctor_job::Job;
use super::{Common, DoctorArgs, OutputFormat};
use crate::doctor::Finding;
use crate::ec2::inventory::Filter;
use crate::error::{Error, ExitCode, Result};
use crate::secret::{Secret, SecretSource};
use crate::target::Target;
/// Runs `doctor`.
pub(super) async fn command(args: DoctorArgs, common: Common) -> Result<ExitCode> {
    let job = Job::new(&args)?;
    if args.targets.len() != 1
        || args.targets_file.is_some()
        || !args.filters.is_empty()
        || args.out_dir.is_some()
        || args.shard.is_some()
    {
        if args.report.is_some() {
            return Err(Error::usage(
                "--report is for one target; with several, --out-dir DIR writes one report per target and summary.json",
            ));
        }
        if common.transcript.is_some() {
            return Err(Error::usage(
                "--transcript is for one target; with several, --out-dir DIR records one transcript per target",
            ));
        }
        let filters = filters(&args)?;
        let mut connect = super::connect_options(&common).await?;
        // AWS needs about 30 s after a session ends before the next one: a
        // fleet run that follows another (or a colleague's session) waits
        // that long rather than failing the instance.
        connect
            .ec2
            .wait_for_session
            .get_or_insert(FLEET_WAIT_FOR_SESSION);
        let targets = targets(&args, &filters, &connect).await?;
        let password = password(&args, job.login_user())?;
        return super::fleet_doctor::doctor(&args, &common, &job, targets, connect, password).await;
    }
    let target: Target = args.targets[0]
        .parse()
        .map_err(|e: Error| e.context(format!("target {:?}", args.targets[0])))?;
    let password = password(&args, job.login_user())?;
    let session = super::open_session(&target, &common, "doctor").await?;
    // Shown before it runs (stderr, so --output json stays clean).
    let mut announce = |f: &Finding| {
        eprintln!(
            "repairing {}: {}",
            f.check,
            f.repair.as_deref().unwrap_or("")
        )
    };
    let report = job
        .examine(&target, session, password, &|_| {}, &mut announce)
        .await?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Some(path) = &args.report {
        crate::private_file::write(path, format!("{json}\n").as_bytes())
            .map_err(|e| Error::usage(format!("cannot write --report {}: {e}", path.display())))?;
    }
    match common.output {
        OutputFormat::Json => outln!("{json}")?,
        OutputFormat::Human => out!("{}", report.human())?,
    }
    Ok(if report.problems_remain() {
        ExitCode::Problems
    } else {
        ExitCode::Success
    })
}

/// How long a fleet run waits for an instance's other serial console
/// session to end, unless `--wait-for-session` says otherwise.
const FLEET_WAIT_FOR_SESSION: std::time::Duration = std::time::Duration::from_secs(35);

/// The `--filter`s, checked before anything connects.
fn filters(args: &DoctorArgs) -> Result<Vec<Filter>> {
    args.filters.iter().map(|f| f.parse()).collect()
}

/// The targets to examine, each once and parsed: the arguments, then the
/// `--targets` file's lines, then the instances the filters match, then
/// this `--shard`'s slice of them.
async fn targets(
    args: &DoctorArgs,
    filters: &[Filter],
    connect: &crate::connect::ConnectOptions,
) -> Result<Vec<(String, Target)>> {
    let mut all = args.targets.clone();
    if let Some(path) = &args.targets_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("cannot read --targets {}: {e}", path.display())))?;
        all.extend(crate::fleet::read_targets(
            &text,
            &path.display().to_string(),
        )?);
    }
    if !filters.is_empty() {
        let account = connect.ec2.account.get(&connect.ec2).await?;
        let found = crate::ec2::inventory::list(account, filters, args.page_size).await?;
        if found.is_empty() {
            return Err(Error::usage(format!(
                "no instance in {} matches --filter {}: check the filters and the Region (--region)",
                account.region(),
                args.filters.join(" --filter ")
            )));
        }
        tracing::info!("--filter matched {} instances", found.len());
        all.extend(found.into_iter().map(|i| i.id));
    }
    let (mut all, dropped) = crate::fleet::dedup(all);
    for target in dropped {
        tracing::warn!("{target} is listed more than once: examined once");
    }
    if let Some(shard) = &args.shard {
        all = shard.parse::<crate::fleet::Shard>()?.select(all);
    }
    all.into_iter()
        .map(|t| {
            let parsed = t
                .parse::<Target>()
                .map_err(|e| e.context(format!("target {t:?}")))?;
            Ok((t, parsed))
        })
        .collect()
}

/// Whether every target is a recording (then the clock may run virtual:
/// see `runtime_for`). A `--targets` file that cannot be read says no; the
/// command reports it.
pub(super) fn only_replays(args: &DoctorArgs) -> bool {
    let mut all = args.targets.clone();
    if let Some(path) = &args.targets_file {
        match std::fs::read_to_string(path)
            .ok()
            .and_then(|text| crate::fleet::read_targets(&text, "").ok())
        {
            Some(lines) => all.extend(lines),
            None => return false,
        }
    }
    args.filters.is_empty()
        && !all.is_empty()
        && all
            .iter()
            .all(|t| matches!(t.parse(), Ok(Target::Replay { .. })))
}

fn password(args: &DoctorArgs, login_user: &str) -> Result<Secret> {
    let name = format!("password for {login_user}");
    let source = if let Some(var) = &args.password_env {
        SecretSource::Env(var.clone())
    } else if let Some(path) = &args.password_file {
        SecretSource::File(path.clone())
    } else if args.password_stdin {
        SecretSource::Stdin
    } else if std::io::stdin().is_terminal() {
        SecretSource::Prompt
    } else {
        return Err(Error::usage(
            "the console login needs a password: pass --password-env VAR, --password-file PATH or --password-stdin \
             (standard input is not a terminal, so it cannot be asked for)",
        ));
    };
    source.read_with(&name, &super::prompt::hidden)
}
