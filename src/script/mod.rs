//! Console scripts in Rhai: `run TARGET SCRIPT.rhai` and `lint SCRIPT.rhai`.
//!
//! A script drives one console session through the API of the architecture
//! doc: `expect`, `expect_exact`, `send`, `send_line`, `send_secret`,
//! `send_break`, `mark`, `log`, `fail`, `var`, and the shell-level `login`,
//! `run`, `sudo`, `logout`. Scripts run in a sandbox ([`sandbox`]): no file,
//! process or network access, no `import` or `eval`, and limits on
//! operations, call depth and data sizes.
//!
//! Exit codes: 0 the script ran to its end · 1 `fail("reason")` · 2 a script
//! error (syntax, runtime, bad arguments), shown as `file:line:column` ·
//! 3 EOF, a transport error or a replay that diverges · 4 a refused `login` ·
//! 5 an uncaught timeout.
//! Timeouts and EOF are catchable (`e.kind`, `e.tail`, `e.message`); the
//! rest is not (see `failure.rs`).
//!
//! Rhai is synchronous, the session async: the whole command runs on a
//! blocking thread that drives the session with `Handle::block_on`, and the
//! session is closed (its transcript finished) on every path.

mod bindings;
mod doctor_call;
mod failure;
mod inputs;
pub mod memory;
pub mod sandbox;
mod shell_calls;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

pub use inputs::ScriptInputs;

use crate::cli::{open_session, Common, OutputFormat, RunArgs};
use crate::error::{Error, ExitCode, Result};
use crate::expect::Session;
use crate::target::Target;

/// A script to run: its text and the name errors call it by.
#[derive(Debug, Clone)]
pub struct Script {
    /// Shown in errors as `name:line:column` (usually the path as given).
    pub name: String,
    /// The Rhai source.
    pub source: String,
}

impl Script {
    /// Reads a script file; the path as given becomes its name.
    pub fn read(path: &Path) -> Result<Script> {
        Ok(Script {
            name: path.display().to_string(),
            source: sandbox::read_script(path)?,
        })
    }

    /// Compiles the script without running it; errors show `name:line:column`.
    pub fn check(&self) -> Result<()> {
        let engine = sandbox::sandboxed_engine();
        sandbox::compile(&engine, &self.name, &self.source).map(|_| ())
    }
}

/// What a script run that reached its end leaves behind.
#[derive(Debug, Clone)]
pub struct Report {
    /// The `log()` lines, in order, secrets scrubbed.
    pub logs: Vec<String>,
    /// Where the transcript was written, if anywhere.
    pub transcript: Option<PathBuf>,
    /// How long the script ran.
    pub duration: Duration,
}

/// Runs `run TARGET SCRIPT`.
pub async fn run_command(args: RunArgs, common: Common) -> Result<ExitCode> {
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || run_blocking(&handle, &args, &common))
        .await
        .map_err(|e| Error::usage(format!("the script thread failed: {e}")))?
}

/// The body of `run`, on a blocking thread: validate everything first, then
/// connect, run, close and report.
fn run_blocking(handle: &Handle, args: &RunArgs, common: &Common) -> Result<ExitCode> {
    let target: Target = args.target.parse()?;
    let script = Script::read(&args.script)?;
    script.check()?;
    let inputs = ScriptInputs::from_args(&args.vars, &args.secrets)?;
    let session = handle.block_on(open_session(&target, common, "run"))?;
    let echo_logs = common.output == OutputFormat::Human;
    let report = run_on(handle, session, &script, inputs, echo_logs)?;
    if common.output == OutputFormat::Json {
        let doc = serde_json::json!({
            "result": "passed",
            "script": script.name,
            "target": target.to_string(),
            "logs": report.logs,
            "transcript": report.transcript,
            "duration_ms": report.duration.as_millis() as u64,
        });
        println!("{doc}");
    }
    if let Some(path) = &report.transcript {
        tracing::info!("script passed; transcript: {}", path.display());
    }
    Ok(ExitCode::Success)
}

/// Runs `script` over `session` with `inputs` and closes the session.
///
/// Call from async code; the script runs on a blocking thread. `log()` lines
/// are kept in the [`Report`] and, with `echo_logs`, also printed to stdout.
pub async fn run_script(
    session: Session,
    script: Script,
    inputs: ScriptInputs,
    echo_logs: bool,
) -> Result<Report> {
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || run_on(&handle, session, &script, inputs, echo_logs))
        .await
        .map_err(|e| Error::usage(format!("the script thread failed: {e}")))?
}

/// Runs `script` on this (blocking) thread, driving `session` with `handle`.
fn run_on(
    handle: &Handle,
    session: Session,
    script: &Script,
    inputs: ScriptInputs,
    echo_logs: bool,
) -> Result<Report> {
    let started = Instant::now();
    let transcript = session.transcript_path().map(Path::to_path_buf);
    let host = Rc::new(bindings::Host::new(
        &script.name,
        session,
        handle.clone(),
        inputs,
        echo_logs,
    ));
    let outcome = evaluate(&host, script);
    host.logout_if_logged_in();
    match &outcome {
        Ok(()) => host.mark("script passed"),
        Err(e) => host.mark(&format!("script ended: {e}")),
    }
    if let Some(session) = host.take_session() {
        let what = session.describe();
        if let Err(e) = handle.block_on(session.close()) {
            tracing::warn!("closing {what}: {}", host.scrub(&e.to_string()));
        }
    }
    outcome.map_err(|e| scrub_error(e, &host))?;
    Ok(Report {
        logs: host.take_logs(),
        transcript,
        duration: started.elapsed(),
    })
}

/// Compiles and runs the script; the engine (and with it every function
/// holding the host) is gone when this returns.
fn evaluate(host: &Rc<bindings::Host>, script: &Script) -> Result<()> {
    let mut engine = sandbox::sandboxed_engine();
    bindings::register(&mut engine, host);
    let ast = sandbox::compile(&engine, &script.name, &script.source)?;
    host.mark(&format!("script start: {}", script.name));
    engine
        .run_ast(&ast)
        .map_err(|e| failure::into_error(*e, &script.name, &host.halt))
}

/// The same error with every known secret removed from its text.
fn scrub_error(error: Error, host: &bindings::Host) -> Error {
    let s = |t: String| host.scrub(&t);
    match error {
        Error::Usage(m) => Error::Usage(s(m)),
        Error::ReplayMismatch(m) => Error::ReplayMismatch(s(m)),
        Error::Login(m) => Error::Login(s(m)),
        Error::Problems(m) => Error::Problems(s(m)),
        Error::Io { context, source } => Error::Io {
            context: s(context),
            source: std::io::Error::new(source.kind(), s(source.to_string())),
        },
        Error::Timeout {
            awaited,
            seconds,
            tail,
        } => Error::Timeout {
            awaited: s(awaited),
            seconds,
            tail: s(tail),
        },
        Error::Eof { awaited, tail } => Error::Eof {
            awaited: s(awaited),
            tail: s(tail),
        },
        Error::Interrupted {
            signal,
            detail,
            output,
        } => Error::Interrupted {
            signal,
            detail: s(detail),
            output: s(output),
        },
        other @ Error::NotYetAvailable(_) => other,
    }
}

/// Runs `lint SCRIPT`: compiles it without connecting.
pub fn lint_command(script: &Path, common: &Common) -> Result<ExitCode> {
    let script = Script::read(script)?;
    script.check()?;
    match common.output {
        OutputFormat::Human => println!("{}: ok", script.name),
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"script": script.name, "result": "ok"})
        ),
    }
    Ok(ExitCode::Success)
}
