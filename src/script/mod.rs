//! Console scripts in Rhai: what `run TARGET SCRIPT.rhai` and `lint
//! SCRIPT.rhai` do ([`run_script`], [`Script::check`]).
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
mod lint;
pub mod memory;
pub mod sandbox;
mod shell_calls;
pub mod suite;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

pub use inputs::ScriptInputs;

use crate::error::{Error, Result};
use crate::expect::Session;

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

    /// Whether the script reads the screen (`expect_screen`, `screen`,
    /// `cursor`). Such a script's session renders the screen from its first
    /// byte, so that what was drawn before the script asks is there when it
    /// does; the others do not pay for rendering (it costs about 60% more
    /// CPU per byte of bulk output: `seq 3000000` through `run`, 2.38 s vs
    /// 1.46 s). A mention in a comment or a string only costs that time.
    pub fn reads_the_screen(&self) -> bool {
        static CALL: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        CALL.get_or_init(|| {
            regex::Regex::new(r"\b(expect_screen|screen|cursor)\s*\(").expect("a valid regex")
        })
        .is_match(&self.source)
    }

    /// Compiles the script without running it; errors show `name:line:column`.
    pub fn check(&self) -> Result<()> {
        let engine = sandbox::sandboxed_engine();
        let ast = sandbox::compile(&engine, &self.name, &self.source)?;
        lint::check(&self.name, &ast)
    }
}

/// What a script run that reached its end leaves behind.
#[derive(Debug, Clone)]
pub struct ScriptReport {
    /// The `log()` lines, in order, secrets scrubbed.
    pub logs: Vec<String>,
    /// Where the transcript was written, if anywhere.
    pub transcript: Option<PathBuf>,
    /// How long the script ran.
    pub duration: Duration,
}

/// Runs `script` over `session` with `inputs` and closes the session.
///
/// Call from async code; the script runs on a blocking thread. `log()` lines
/// are kept in the [`ScriptReport`] and, with `on_log`, also told as they come
/// (the command line prints them).
///
/// Over a replayed console the script thread drives the session on a
/// runtime of its own with a paused (virtual) clock: the recording answers
/// at once, so waits and timeouts pass instantly, in the same order.
pub async fn run_script(
    session: Session,
    script: Script,
    inputs: ScriptInputs,
    on_log: Option<fn(&str)>,
) -> Result<ScriptReport> {
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || {
        let driver = if session.is_replay() {
            let virtual_clock = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .map_err(|e| Error::io("starting the replay's runtime", e))?;
            Driver::Virtual(Rc::new(virtual_clock))
        } else {
            Driver::Real(handle)
        };
        run_on(&driver, session, &script, inputs, on_log)
    })
    .await
    .map_err(|e| Error::usage(format!("the script thread failed: {e}")))?
}

/// What drives the session's futures from the script's (blocking) thread.
#[derive(Clone)]
pub(super) enum Driver {
    /// The caller's runtime, on the real clock.
    Real(Handle),
    /// A runtime of the script thread's own on a paused clock, for replays.
    /// (Only `Runtime::block_on` drives a current-thread runtime's timers,
    /// so the runtime itself is kept, not a handle.)
    Virtual(Rc<tokio::runtime::Runtime>),
}

impl Driver {
    /// Runs `future` to completion on this thread.
    pub(super) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match self {
            Driver::Real(handle) => handle.block_on(future),
            Driver::Virtual(runtime) => runtime.block_on(future),
        }
    }
}

/// Runs `script` on this (blocking) thread, driving `session` with `driver`.
fn run_on(
    driver: &Driver,
    mut session: Session,
    script: &Script,
    inputs: ScriptInputs,
    on_log: Option<fn(&str)>,
) -> Result<ScriptReport> {
    let started = Instant::now();
    let transcript = session.transcript_path().map(Path::to_path_buf);
    if script.reads_the_screen() {
        session.watch_screen();
    }
    let host = Rc::new(bindings::Host::new(
        &script.name,
        session,
        driver.clone(),
        inputs,
        on_log,
    ));
    let outcome = evaluate(&host, script);
    // A replay that diverged answers nothing more: logging out would only
    // repeat the mismatch in warnings.
    let diverged = matches!(&outcome, Err(e) if matches!(e.kind(), crate::error::ErrorKind::ReplayMismatch(_)));
    if diverged {
        host.let_go_of_the_shell();
    } else {
        host.logout_if_logged_in();
    }
    match &outcome {
        Ok(()) => host.mark("script passed"),
        Err(e) => host.mark(&format!("script ended: {e}")),
    }
    if let Some(session) = host.take_session() {
        let what = session.describe();
        if let Err(e) = driver.block_on(session.close()) {
            tracing::warn!("closing {what}: {}", host.scrub(&e.to_string()));
        }
    }
    outcome.map_err(|e| e.scrubbed(&|t| host.scrub(t)))?;
    Ok(ScriptReport {
        logs: host.take_logs(),
        transcript,
        duration: started.elapsed(),
    })
}

/// The tool's script API, every function bound to `host`.
fn register_api(engine: &mut rhai::Engine, host: &Rc<bindings::Host>) {
    bindings::register(engine, host);
    shell_calls::register(engine, host);
    doctor_call::register(engine, host);
}

/// Compiles and runs the script; the engine (and with it every function
/// holding the host) is gone when this returns.
fn evaluate(host: &Rc<bindings::Host>, script: &Script) -> Result<()> {
    let mut engine = sandbox::sandboxed_engine();
    register_api(&mut engine, host);
    let ast = sandbox::compile(&engine, &script.name, &script.source)?;
    host.mark(&format!("script start: {}", script.name));
    engine
        .run_ast(&ast)
        .map_err(|e| failure::into_error(*e, &script.name, &host.halt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scripts_that_read_the_screen_render_it() {
        let script = |source: &str| Script {
            name: "s.rhai".into(),
            source: source.into(),
        };
        assert!(script("expect_screen([\"GRUB\"], 5);").reads_the_screen());
        assert!(script("let rows = screen ().split(\"\\n\");").reads_the_screen());
        assert!(script("if cursor()[0] == 3 { }").reads_the_screen());
        assert!(!script("expect([\"login: $\"]); send_line(\"screenshot\");").reads_the_screen());
    }
}
