//! The doctor: why does sshd refuse this user's key, and what fixes it.
//!
//! Built on the shell layer: log in over the console, gather every fact in
//! one root command ([`facts`]), turn facts into findings ([`checks`]), and
//! with `--fix` run the minimal repairs ([`repair`]) and, in the same root
//! command, gather again what they can have changed, to verify each repaired
//! finding is gone. Repairs run inside `guard`, so a user who owns the
//! directories cannot redirect them through a link. The result is a
//! [`report::Report`].

pub mod checks;
pub mod facts;
mod guard;
pub(crate) mod job;
pub mod repair;
pub mod report;

use async_trait::async_trait;

pub use checks::{CheckId, Finding, Policy, Request, Severity, Status};
pub use report::Report;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::shell::{LoginSpec, Shell};

/// How the doctor logs in: as `user`, without the shell's own kernel
/// quieting. The doctor's root commands hold kernel messages back
/// themselves (`quietly`), which costs no round trip; the shell's
/// quieting costs two (`sudo -n dmesg` after login and before logout).
pub fn login_spec(user: &str, password: Secret) -> LoginSpec {
    let mut spec = LoginSpec::new(user, password);
    spec.quiet_kernel = false;
    spec
}

/// `command` (run as root) with the console's kernel messages held back
/// while it runs, its output being what the doctor parses, and the log
/// level given back when it ends, a signal included. The level is written
/// to `/proc/sys/kernel/printk` by the shell itself, as `dmesg -n` would set
/// it: two programs fewer per command, each about 0.1 s on an emulated
/// instance.
fn quietly(command: &str) -> String {
    format!(
        "read ese_k _ </proc/sys/kernel/printk; {{ echo 1 >/proc/sys/kernel/printk; }} 2>/dev/null; \
         trap '{{ echo \"$ese_k\" >/proc/sys/kernel/printk; }} 2>/dev/null' EXIT; trap 'exit 130' INT TERM HUP; {command}"
    )
}

/// `script` in a subshell of its own: its variables, traps and `exit` stay
/// inside, without starting another shell program. Unlike `sh -c`, it runs
/// in the shell that reads it: through sudo that is a fresh `sh -c`; in a
/// root login it is that login's shell, with its aliases and options.
fn apart(script: &str) -> String {
    format!("(\n{script}\n)")
}

/// What the doctor needs from a logged-in console: run a command as root.
#[async_trait]
pub trait RootConsole: Send {
    /// Runs `command` as root (through sudo when needed); returns output and status.
    async fn run_as_root(&mut self, command: &str) -> Result<(String, i32)>;

    /// Runs `program` (a program and its arguments, no shell syntax) as
    /// root with `input` as its one line of standard input, `input` in no
    /// process's argv.
    async fn run_as_root_with_input(&mut self, input: &str, program: &str)
        -> Result<(String, i32)>;

    /// Notes `text` in the session's record, for whoever reads the
    /// transcript later: the repairs, in words (what is typed is a script).
    fn note(&mut self, _text: &str) {}
}

/// A logged-in [`Shell`] as the doctor sees it: root through sudo unless
/// the login is root already.
#[async_trait]
impl RootConsole for Shell<'_> {
    async fn run_as_root(&mut self, command: &str) -> Result<(String, i32)> {
        let out = if self.is_root() {
            self.run(command).await?
        } else {
            self.sudo(command).await?
        };
        Ok((out.output, out.status))
    }

    async fn run_as_root_with_input(
        &mut self,
        input: &str,
        program: &str,
    ) -> Result<(String, i32)> {
        let out = self.sudo_with_input(input, program).await?;
        Ok((out.output, out.status))
    }

    fn note(&mut self, text: &str) {
        self.session().mark(text);
    }
}

/// The result of examining and (optionally) repairing.
pub struct Examination {
    /// Findings with their final status.
    pub findings: Vec<Finding>,
    /// With `fix`: whether every repair was confirmed; `None` in check mode.
    pub verified: Option<bool>,
    /// Recent sshd log lines about the login, oldest first ([`facts::Facts::log`]).
    pub evidence: Vec<String>,
    /// Commands run on the console.
    pub round_trips: u32,
    /// What could not be checked, with why ([`facts::Facts::not_checked`]):
    /// never reported healthy.
    pub not_checked: Vec<String>,
}

/// Gathers facts, checks, and with `fix` repairs and verifies.
///
/// `announce` is told each repair before it runs (the command line shows it
/// on stderr; a script marks its transcript).
pub async fn examine(
    console: &mut dyn RootConsole,
    req: &Request,
    fix: bool,
    announce: &mut (dyn FnMut(&Finding) + Send),
) -> Result<Examination> {
    let (facts, mut round_trips) = gather(console, req).await?;
    let mut findings = checks::run(&facts, req);
    let evidence = facts.log.clone();
    let mut not_checked = facts.not_checked.clone();
    if !fix {
        return Ok(Examination {
            findings,
            verified: None,
            evidence,
            round_trips,
            not_checked,
        });
    }
    let planned = plan_repairs(&mut findings, req);
    if planned.is_empty() {
        let verified =
            not_checked.is_empty() && findings.iter().all(|f| f.severity != Severity::Error);
        return Ok(Examination {
            findings,
            verified: Some(verified),
            evidence,
            round_trips,
            not_checked,
        });
    }
    for &i in &planned {
        announce(&findings[i]);
    }
    let mut now = repair_and_verify(console, req, facts, &mut findings, &planned).await?;
    round_trips += 1;
    let mut after = checks::run(&now, req);
    // A re-created account is checked for the first time now: its home, key
    // file and key. What that finds is repaired in a second round, through
    // the same guard, so that one run ends with a working login.
    let created = findings
        .iter()
        .any(|f| f.check == CheckId::UserDeleted && f.status == Status::Open);
    if created && now.passwd.is_some() {
        let mut uncovered = uncovered(&findings, after);
        let planned = plan_repairs(&mut uncovered, req);
        if !planned.is_empty() {
            for &i in &planned {
                announce(&uncovered[i]);
            }
            now = repair_and_verify(console, req, now, &mut uncovered, &planned).await?;
            round_trips += 1;
        }
        after = checks::run(&now, req);
        findings.extend(uncovered);
    }
    settle(&mut findings, after);
    for n in &now.not_checked {
        if !not_checked.contains(n) {
            not_checked.push(n.clone());
        }
    }
    let verified = not_checked.is_empty()
        && findings.iter().all(|f| {
            f.status == Status::Fixed
                || (f.severity == Severity::Warning && f.status != Status::Failed)
        });
    Ok(Examination {
        findings,
        verified: Some(verified),
        evidence,
        round_trips,
        not_checked,
    })
}

/// Settles each finding against the checks run after the repairs (`after`):
/// gone is fixed, still there is failed; what only the repairs uncovered is
/// added, open.
fn settle(findings: &mut Vec<Finding>, after: Vec<Finding>) {
    // A finding with no repair of its own can be cured by another's (`sshd -t`
    // fails for want of host keys until `ssh-keygen -A` runs): gone is fixed.
    for f in findings
        .iter_mut()
        .filter(|f| matches!(f.status, Status::Open | Status::Skipped))
    {
        let still = after.iter().any(|a| a.check == f.check && a.path == f.path);
        f.status = match (still, f.status) {
            (false, _) => Status::Fixed,
            (true, Status::Skipped) => Status::Skipped,
            (true, _) => Status::Failed,
        };
    }
    // A repair can uncover a problem the first look could not see (an empty
    // key file once it exists): report it open, and the run is not verified.
    let new = uncovered(findings, after);
    findings.extend(new);
}

/// The findings of `after` not among `findings` (same check, same path).
fn uncovered(findings: &[Finding], after: Vec<Finding>) -> Vec<Finding> {
    let known: Vec<(CheckId, Option<String>)> =
        findings.iter().map(|f| (f.check, f.path.clone())).collect();
    after
        .into_iter()
        .filter(|a| !known.contains(&(a.check, a.path.clone())))
        .collect()
}

/// Marks findings whose repair cannot run as skipped; returns the others'
/// indices in the order their repairs run.
///
/// `--fix` changes only what refuses the key: a repair that loosens
/// security (unlocking the account, widening a mode: [`Finding::loosens`])
/// runs only for a finding that refuses the key (an error), or when
/// `--loosen` asks for it; otherwise it is reported with its command.
fn plan_repairs(findings: &mut [Finding], req: &Request) -> Vec<usize> {
    let mut planned = Vec::new();
    for i in repair_order(findings) {
        let f = &mut findings[i];
        match &f.action {
            Some(action) if f.loosens && f.severity != Severity::Error && !req.loosen => {
                f.status = Status::Skipped;
                f.why.push_str(&format!(
                    " (not repaired: `{}` loosens security and this does not refuse the key; \
                     run it yourself, or add --loosen to --fix)",
                    action.command()
                ));
            }
            Some(action) if action.is_safe() => planned.push(i),
            Some(_) => {
                f.status = Status::Skipped;
                f.why
                    .push_str(" (the repair was not run: a value in it failed validation)");
            }
            None => f.status = Status::Skipped,
        }
    }
    planned
}

/// Runs the planned repairs in one guarded root script ([`guard`]), records
/// on each finding what its step did, and gathers again in the same command
/// what the repairs can have changed ([`repair::touched`]): the
/// verification costs no round trip of its own, and looks at every file the
/// repairs touched, so it still catches what a repair uncovers.
async fn repair_and_verify(
    console: &mut dyn RootConsole,
    req: &Request,
    before: facts::Facts,
    findings: &mut Vec<Finding>,
    planned: &[usize],
) -> Result<facts::Facts> {
    let actions: Vec<repair::Repair> = planned
        .iter()
        .filter_map(|&i| findings[i].action.clone())
        .collect();
    let actions: Vec<&repair::Repair> = actions.iter().collect();
    for &i in planned {
        let f = &findings[i];
        console.note(&format!(
            "doctor: repairing {}: {}",
            f.check,
            f.repair.as_deref().unwrap_or("")
        ));
    }
    let batch = guard::Batch::new(&actions);
    let scope = repair::touched(&actions);
    // The key file's path from the diagnosis, unless the account did not
    // exist then (a re-created one's comes from `sshd -T` again).
    let key_path = before
        .passwd
        .as_ref()
        .and(before.authorized_keys_path.as_deref());
    let verify = facts::script(&req.user, scope, key_path);
    let command = format!("{}; {}", apart(&batch.script), apart(&verify));
    let output = match console.run_as_root(&quietly(&command)).await {
        Ok((output, _status)) => output,
        // Cut short by a signal: say exactly how far the repairs got.
        Err(e) => return Err(interrupted_during_repairs(e, &batch, findings, planned)),
    };
    let ran = batch.parse(&output);
    if let Some(why) = &ran.unreadable {
        return Err(Error::problems(format!(
            "the repairs ran, but their report cannot be trusted ({why}); run the doctor again to see \
             where things stand, and read the transcript"
        )));
    }
    mark_repairs(&ran, findings, planned);
    for dir in &ran.unlock_failed {
        findings.push(Finding::unlock_failed(dir));
    }
    let again = read_facts(&output, scope)?;
    Ok(before.refresh(again, scope))
}

/// A signal that cut the repair run short, told with how far it got.
fn interrupted_during_repairs(
    e: Error,
    batch: &guard::Batch,
    findings: &[Finding],
    planned: &[usize],
) -> Error {
    e.map_kind(|kind| match kind {
        ErrorKind::Interrupted {
            signal,
            detail,
            output,
        } => {
            let progress = progress(&batch.parse(&output), findings, planned);
            ErrorKind::Interrupted {
                signal,
                detail: format!("{detail} during the repairs: {progress}"),
                output,
            }
        }
        other => other,
    })
}

/// Each planned finding's repair as the guard reports it: done (with its
/// backup), failed, cut short or never run.
fn mark_repairs(ran: &guard::BatchResult, findings: &mut [Finding], planned: &[usize]) {
    let stopped = ran
        .refused
        .as_deref()
        .map(|why| format!("the guard stopped the repairs: {why}"))
        .unwrap_or_else(|| "the repair run ended before this step".into());
    for (step, &i) in ran.steps.iter().zip(planned) {
        let f = &mut findings[i];
        match step {
            Some(guard::StepResult {
                status: Some(0),
                backups,
                ..
            }) => f.backup = backups.first().cloned(),
            Some(guard::StepResult {
                status: Some(status),
                output,
                ..
            }) => {
                f.status = Status::Failed;
                f.why
                    .push_str(&format!(" (repair exited {status}: {})", output.trim()));
            }
            Some(guard::StepResult { status: None, .. }) => {
                f.status = Status::Failed;
                f.why
                    .push_str(&format!(" (repair not completed: {stopped})"));
            }
            None => {
                f.status = Status::Skipped;
                f.why.push_str(&format!(" (repair not run: {stopped})"));
            }
        }
    }
}

/// Which repairs of an interrupted run completed, which were cut short and
/// which never started, and whether the guard gave the directories back.
fn progress(ran: &guard::BatchResult, findings: &[Finding], planned: &[usize]) -> String {
    let (mut done, mut cut, mut not_run) = (Vec::new(), Vec::new(), Vec::new());
    for (step, &i) in ran.steps.iter().zip(planned) {
        let id = findings[i].check.as_str();
        match step {
            Some(s) if s.status.is_some() => done.push(id),
            Some(_) => cut.push(id),
            None => not_run.push(id),
        }
    }
    let mut parts: Vec<String> = [("done", done), ("cut short", cut), ("not run", not_run)]
        .into_iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(label, ids)| format!("{label}: {}", ids.join(", ")))
        .collect();
    let back = if ran.finished && ran.unlock_failed.is_empty() {
        "every directory the guard locked was given back".to_string()
    } else if !ran.unlock_failed.is_empty() {
        format!(
            "NOT given back (owner mode path, restore as root): {}",
            ran.unlock_failed.join("; ")
        )
    } else {
        "the guard did not report its end: check the owner and mode of the home and ~/.ssh".into()
    };
    if parts.is_empty() {
        parts.push("no repair had started".into());
    }
    format!("{}; {back}", parts.join("; "))
}

/// The order repairs run in: as found, except that restarting sshd waits
/// until everything it needs (host keys, its config) has been repaired.
fn repair_order(findings: &[Finding]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by_key(|&i| matches!(findings[i].action, Some(repair::Repair::RestartSshd)));
    order
}

/// The diagnosis: every fact, in one root command; with no account, or a
/// key file without the key sought, a second one looks further
/// ([`facts::whereabouts`]). Returns the facts and the round trips.
async fn gather(console: &mut dyn RootConsole, req: &Request) -> Result<(facts::Facts, u32)> {
    let script = facts::script(&req.user, facts::Scope::EVERYTHING, None);
    let (output, _status) = console.run_as_root(&quietly(&apart(&script))).await?;
    let mut facts = read_facts(&output, facts::Scope::EVERYTHING)?;
    let sought = req.sought();
    let key_missing = facts.keys_unread.is_none()
        && sought
            .as_ref()
            .is_some_and(|fp| !facts.keys.iter().any(|(have, _)| have == fp.as_str()));
    if facts.passwd.is_some() && !key_missing {
        return Ok((facts, 1));
    }
    let script = facts::whereabouts(&req.user, sought.as_ref());
    let (output, _status) = console.run_as_root(&quietly(&apart(&script))).await?;
    facts::parse_whereabouts(&output, sought.is_some(), &mut facts);
    if !facts.unparsed.is_empty() {
        return Err(Error::problems(format!(
            "the console's answer to the command looking for the account and the key was not in the expected shape ({}); \
             the transcript shows what the instance printed",
            facts.unparsed.join("; ")
        )));
    }
    Ok((facts, 2))
}

/// Reads a gather's output, refusing one that is not in the expected shape.
fn read_facts(output: &str, scope: facts::Scope) -> Result<facts::Facts> {
    let facts = facts::parse(output, scope);
    if !facts.unparsed.is_empty() {
        return Err(Error::problems(format!(
            "the console's answer to the fact-gathering command was not in the expected shape ({}); \
             the transcript shows what the instance printed",
            facts.unparsed.join("; ")
        )));
    }
    Ok(facts)
}
