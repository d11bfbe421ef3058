//! `doctor TARGET --user U [--fix]`: the command around [`crate::doctor::examine`].
//!
//! Opens the console (recorded), logs in with the password-based user,
//! examines as root, logs out on every path, then prints the report (human
//! or JSON) and returns exit code 0 (healthy, or repaired and verified) or 1.

use crate::cli::stdout::{out, outln};
use std::io::IsTerminal;

use super::{Common, DoctorArgs, OutputFormat};
use crate::doctor::facts::UserName;
use crate::doctor::{Report, Request, ShellConsole};
use crate::error::{Error, ExitCode, Result};
use crate::secret::{Secret, SecretSource};
use crate::shell::Shell;
use crate::target::Target;

/// Runs `doctor`.
pub(super) async fn command(args: DoctorArgs, common: Common) -> Result<ExitCode> {
    let request = request(&args)?;
    let login_user = match &args.login_user {
        Some(name) => {
            UserName::parse(name).map_err(|e| Error::usage(format!("--login-user: {e}")))?
        }
        None => request.user.clone(),
    };
    let target: Target = args.target.parse()?;
    let password = password(&args, login_user.as_str())?;
    let started_at = time::OffsetDateTime::now_utc();
    let clock = std::time::Instant::now();

    let mut session = super::open_session(&target, &common, "doctor").await?;
    session.add_secret(&password);
    let transcript = session.transcript_path().map(|p| p.display().to_string());
    session.mark(&format!(
        "doctor: user {} mode {}",
        request.user.as_str(),
        if args.fix { "fix" } else { "check" }
    ));
    let spec = crate::doctor::login_spec(login_user.as_str(), password);
    let outcome = Shell::scoped(&mut session, &spec, async |shell, session| {
        crate::doctor::examine(
            &mut ShellConsole::new(shell, session),
            &request,
            args.fix,
            // Shown before it runs (stderr, so --output json stays clean).
            &mut |f| {
                eprintln!(
                    "repairing {}: {}",
                    f.check,
                    f.repair.as_deref().unwrap_or("")
                )
            },
        )
        .await
    })
    .await;
    let _ = session.close().await;
    let outcome = outcome?;

    let report = Report {
        target: target.to_string(),
        user: request.user.as_str().to_string(),
        mode: if args.fix { "fix" } else { "check" },
        policy: request.policy,
        started_at: started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        duration_ms: clock.elapsed().as_millis(),
        verified: outcome.verified,
        findings: outcome.findings,
        transcript,
        evidence: outcome.evidence,
        round_trips: outcome.round_trips,
    };
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
    Ok(request)
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
