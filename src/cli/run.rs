//! `run TARGET SCRIPT.rhai` and `lint SCRIPT.rhai`.
//!
//! Everything is validated before anything connects (the target, the
//! script compiles, the variables and secrets); then the script runs over a
//! recorded session ([`crate::script::run_script`]) and the result is
//! printed for people or as JSON.

use super::{open_session, Common, OutputFormat, RunArgs};
use serde::Serialize;

use crate::cli::stdout::{json_line, outln};
use crate::error::{ExitCode, Result};
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

/// `lint --output json`: a script that compiles.
#[derive(Serialize)]
struct LintResult<'a> {
    script: &'a str,
    result: &'static str,
}

/// Runs `run TARGET SCRIPT`.
pub(super) async fn run_command(args: RunArgs, common: Common) -> Result<ExitCode> {
    let target: Target = args.target.parse()?;
    let script = Script::read(&args.script)?;
    script.check()?;
    let inputs = ScriptInputs::from_args(&args.vars, &args.secrets, &super::prompt::hidden)?;
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
        tracing::info!("script passed; transcript: {}", path.display());
    }
    Ok(ExitCode::Success)
}

/// Prints a script's `log()` line on stdout, as it comes.
fn print_log(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs `lint SCRIPT`: compiles it without connecting.
pub(super) fn lint_command(script: &std::path::Path, common: &Common) -> Result<ExitCode> {
    let script = Script::read(script)?;
    script.check()?;
    match common.output {
        OutputFormat::Human => outln!("{}: ok", script.name)?,
        OutputFormat::Json => json_line(&LintResult {
            script: &script.name,
            result: "ok",
        })?,
    }
    Ok(ExitCode::Success)
}
