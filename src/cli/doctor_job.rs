//! What `doctor` asks of every target, and how one target is examined:
//! shared by the one-target command ([`super::doctor`]) and the many-target
//! run ([`super::fleet_run`], through [`FleetDoctor`]).

use super::board::{Board, Phase};
use super::fleet_run::FleetJob;
use super::DoctorArgs;
use crate::doctor::facts::UserName;
use crate::doctor::Status;
use crate::doctor::{Finding, Report, Request, ShellConsole};
use crate::error::ExitCode;
use crate::error::{Error, Result};
use crate::expect::Session;
use crate::fleet::Outcome;
use crate::secret::Secret;
use crate::shell::Shell;
use crate::target::Target;

/// What every target is asked: the request, who logs in, check or fix.
pub(super) struct Job {
    request: Request,
    login_user: UserName,
    login_timeout: std::time::Duration,
    fix: bool,
}

impl Job {
    /// The job the flags ask for, validated.
    pub(super) fn new(args: &DoctorArgs) -> Result<Job> {
        let request = request(args)?;
        let login_user = match &args.login_user {
            Some(name) => {
                UserName::parse(name).map_err(|e| Error::usage(format!("--login-user: {e}")))?
            }
            None => request.user.clone(),
        };
        Ok(Job {
            request,
            login_user,
            login_timeout: std::time::Duration::from_secs(args.login_timeout),
            fix: args.fix,
        })
    }

    /// Who logs in on the console.
    pub(super) fn login_user(&self) -> &str {
        self.login_user.as_str()
    }

    /// How long the login may take.
    pub(super) fn login_timeout(&self) -> std::time::Duration {
        self.login_timeout
    }

    /// Logs in on `session`, examines (and with `--fix` repairs) as root,
    /// logs out on every path, closes the session; the report. `phase` is
    /// told each step as it starts, `announce` each repair.
    pub(super) async fn examine(
        &self,
        target: &Target,
        mut session: Session,
        password: Secret,
        phase: &(dyn Fn(Phase) + Sync),
        announce: &mut (dyn FnMut(&Finding) + Send),
    ) -> Result<Report> {
        let started_at = time::OffsetDateTime::now_utc();
        let clock = std::time::Instant::now();
        session.add_secret(&password);
        let transcript = session.transcript_path().map(|p| p.display().to_string());
        session.mark(&format!(
            "doctor: user {} mode {}",
            self.request.user.as_str(),
            self.mode()
        ));
        let mut spec = crate::doctor::login_spec(self.login_user.as_str(), password);
        spec.timeout = self.login_timeout;
        phase(Phase::LoggingIn);
        let outcome = Shell::scoped(&mut session, &spec, async |shell, session| {
            phase(Phase::Examining);
            let mut announce = |f: &Finding| {
                phase(Phase::Repairing);
                announce(f)
            };
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
        .await;
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
        })
    }

    fn mode(&self) -> &'static str {
        if self.fix {
            "fix"
        } else {
            "check"
        }
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
    Ok(request)
}

/// The doctor as a fleet's job: every target examined with one password.
pub(super) struct FleetDoctor<'a> {
    /// What every target is asked.
    pub job: &'a Job,
    /// The login password, the same for every target.
    pub password: Secret,
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
            .examine(
                target,
                session,
                self.password.clone(),
                &phase,
                &mut announce,
            )
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
