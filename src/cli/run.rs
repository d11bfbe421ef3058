//! `run TARGET… SCRIPT.rhai` and `lint SCRIPT.rhai`.
//!
//! Everything is validated before anything connects (the targets, the
//! script compiles, the variables and secrets); then the script runs over a
//! recorded session ([`crate::script::run_script`]) and the result is
//! printed for people or as JSON. With several targets (`--targets`,
//! `--filter`, …) the script runs on each, side by side, as a fleet
//! ([`super::fleet_run`]): a line per target and a summary; `log()` lines
//! are in each target's report rather than printed as they come.

use super::board::Board;
use super::fleet_run::FleetJob;
use super::{open_session, targets, Common, OutputFormat, RunArgs};
use serde::Serialize;

use crate::cli::stdout::{json_line, outln};
use crate::error::{Error, ExitCode, Result};
use crate::expect::Session;
use crate::fleet::Outcome;
use crate::script::{run_script, Script, ScriptInputs};
use crate::target::Target;

/// `run --output json`: a script that passed.
#[derive(Serialize)]
struct RunResult<'a> {
    result: &'static str,
    script: &'a str,
    target: String,
    logs: &'a [String],
    transcript: Option<&'a std::path::Path>,
    duration_ms: u64,
}

/// `lint --output json`: one line per script.
#[derive(Serialize)]
struct LintResult<'a> {
    script: &'a str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<super::stdout::ErrorJson>,
}

/// Runs `run TARGET… SCRIPT`.
pub(super) async fn run_command(args: RunArgs, mut common: Common) -> Result<ExitCode> {
    let script = Script::read(&args.script())?;
    script.check()?;
    let named = args.targets();
    if named.is_empty() && args.fleet.targets_file.is_none() && args.fleet.filters.is_empty() {
        return Err(Error::usage(
            "run needs a TARGET before the script (or --targets FILE, or --filter): run TARGET… SCRIPT.rhai",
        ));
    }
    let inputs = ScriptInputs::from_args(&args.vars, &args.secrets, &super::prompt::hidden)?;
    if targets::is_many(named, &args.fleet) {
        if args.watch {
            return Err(super::watch_is_for_one_target());
        }
        let resolved = targets::resolve(named, &args.fleet, &common, false).await?;
        let fleet = FleetScript { script, inputs };
        return super::fleet_run::run(&fleet, &args.fleet, &common, resolved).await;
    }
    let target: Target = named[0].parse()?;
    common.watch = args.watch;
    let session = open_session(&target, &common, "run").await?;
    let on_log = (common.output == OutputFormat::Human).then_some(print_log as fn(&str));
    let name = script.name.clone();
    let report = run_script(session, script, inputs, on_log).await?;
    if common.output == OutputFormat::Json {
        json_line(&RunResult {
            result: "passed",
            script: &name,
            target: target.to_string(),
            logs: &report.logs,
            transcript: report.transcript.as_deref(),
            duration_ms: report.duration.as_millis() as u64,
        })?;
    }
    if let Some(path) = &report.transcript {
        if common.output == OutputFormat::Human && !common.quiet {
            eprintln!("transcript: {}", path.display());
        }
    }
    Ok(ExitCode::Success)
}

/// A script as a fleet's job: the same script and inputs on every target.
struct FleetScript {
    script: Script,
    inputs: ScriptInputs,
}

/// What a target that passed reports.
#[derive(Serialize)]
struct Passed {
    script: String,
    logs: Vec<String>,
    duration_ms: u64,
}

impl FleetJob for FleetScript {
    type Done = Passed;
    const NAME: &'static str = "run";
    const PAUSED_REPLAYS: bool = false;

    async fn run(&self, _: &Target, session: Session, _: &str, _: &Board) -> Result<Passed> {
        let report = run_script(session, self.script.clone(), self.inputs.clone(), None).await?;
        Ok(Passed {
            script: self.script.name.clone(),
            logs: report.logs,
            duration_ms: report.duration.as_millis() as u64,
        })
    }

    fn outcome(&self, _: &Passed) -> (ExitCode, Outcome) {
        (ExitCode::Success, Outcome::Passed)
    }

    fn detail(&self, passed: &Passed) -> String {
        let last = passed
            .logs
            .last()
            .map_or(String::new(), |l| format!("{l}; "));
        format!("{last}{:.1} s", passed.duration_ms as f64 / 1000.0)
    }
}

/// Prints a script's `log()` line on stdout, as it comes.
fn print_log(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs `lint SCRIPT…`: checks each without connecting, reports each;
/// exit 2 when any has a problem (the first one of each is shown).
pub(super) fn lint_command(scripts: &[std::path::PathBuf], common: &Common) -> Result<ExitCode> {
    if let [one] = scripts {
        // One script: its error is the command's error, as before.
        let script = Script::read(one)?;
        script.check()?;
        return lint_line(&script.name, None, common).map(|()| ExitCode::Success);
    }
    let mut worst = ExitCode::Success;
    for path in scripts {
        let name = path.display().to_string();
        let checked = Script::read(path).and_then(|s| s.check());
        if let Err(e) = &checked {
            worst = e.exit_code();
        }
        lint_line(&name, checked.err().as_ref(), common)?;
    }
    Ok(worst)
}

/// One script's line: `NAME: ok` or its error (JSON: `result`, `error`).
fn lint_line(name: &str, error: Option<&Error>, common: &Common) -> Result<()> {
    match (common.output, error) {
        (OutputFormat::Human, None) => outln!("{name}: ok"),
        (OutputFormat::Human, Some(e)) => {
            outln!("{}", crate::text::printable_lines(&e.to_string()))
        }
        (OutputFormat::Json, e) => json_line(&LintResult {
            script: name,
            result: if e.is_some() { "error" } else { "ok" },
            error: e.map(super::stdout::ErrorJson::of),
        }),
    }
}
