//! The console functions a script calls, bound to one [`Session`].
//!
//! Rhai is synchronous and the session is async, so a script runs on a
//! blocking thread and each function drives the session to completion with
//! [`Handle::block_on`]. The session lives in a [`Host`] shared (`Rc`, one
//! thread) by every registered function; the host also holds the script's
//! variables and secrets, its log and the [`Halt`] slot that carries an
//! uncatchable error out of the run. The shell-level calls (`login`, `run`,
//! `sudo`, `logout`) are in [`super::shell_calls`].
//!
//! Nothing a script can see carries a secret: match text, `before`, errors
//! and tails come from the session, which scrubs them, and `log`, `mark`
//! and `fail` text is scrubbed again here before it is shown or recorded.

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::time::Duration;

use super::Driver;
use rhai::{Array, Dynamic, Engine, Map, NativeCallContext, Position, FLOAT, INT};

use super::failure::{from_session_error, Halt, ScriptResult};
use super::inputs::ScriptInputs;
use super::sandbox::{
    location, register_var_syntax, seconds_in_range, shown_seconds, MAX_WAIT_SECS,
};
use crate::error::Error;
use crate::expect::{Match, Pattern, Session};
use crate::secret::Secret;
use crate::shell::ShellState;
use crate::text::Scrubber;

/// Everything the registered functions share during one run.
pub(super) struct Host {
    name: String,
    pub(super) session: RefCell<Option<Session>>,
    /// The logged-in shell of `login()`, if any.
    pub(super) shell: RefCell<Option<ShellState>>,
    pub(super) runtime: Driver,
    inputs: ScriptInputs,
    scrubber: Scrubber,
    logs: RefCell<Vec<String>>,
    /// Bytes in `logs`, for the sandbox's cap.
    log_bytes: std::cell::Cell<usize>,
    on_log: Option<fn(&str)>,
    /// The uncatchable error that ended the run, if one did.
    pub halt: Halt,
}

impl Host {
    /// A host for the script `name` over `session`. Every secret in `inputs`
    /// is registered with the session at once, so an echo is scrubbed even
    /// before the first send. `on_log` hears each `log()` line as
    /// they come (they are always kept for [`Host::take_logs`]).
    pub(super) fn new(
        name: &str,
        mut session: Session,
        runtime: Driver,
        inputs: ScriptInputs,
        on_log: Option<fn(&str)>,
    ) -> Self {
        let mut scrubber = Scrubber::new();
        for secret in inputs.secrets.values() {
            session.add_secret(secret);
            scrubber.add(secret.expose());
        }
        Host {
            name: name.to_string(),
            session: RefCell::new(Some(session)),
            shell: RefCell::new(None),
            runtime,
            inputs,
            scrubber,
            logs: RefCell::new(Vec::new()),
            log_bytes: std::cell::Cell::new(0),
            on_log,
            halt: Halt::default(),
        }
    }

    /// Takes the session back (to close it); later calls find none.
    pub(super) fn take_session(&self) -> Option<Session> {
        self.session.borrow_mut().take()
    }

    /// The `log()` lines so far, scrubbed.
    pub(super) fn take_logs(&self) -> Vec<String> {
        std::mem::take(&mut *self.logs.borrow_mut())
    }

    /// Removes every known secret from `text`.
    pub(super) fn scrub(&self, text: &str) -> String {
        self.scrubber.scrub(text)
    }

    /// Records a transcript marker, if the session is still open.
    pub(super) fn mark(&self, label: &str) {
        if let Some(s) = self.session.borrow_mut().as_mut() {
            s.mark(&self.scrub(label));
        }
    }

    fn at(&self, pos: Position) -> String {
        location(&self.name, pos)
    }

    pub(super) fn session(&self, pos: Position) -> ScriptResult<RefMut<'_, Session>> {
        let at = self.at(pos);
        RefMut::filter_map(self.session.borrow_mut(), Option::as_mut).map_err(|_| {
            self.halt.stop(
                Error::usage(format!("{at}: the console session is already closed")),
                pos,
            )
        })
    }

    /// Stops the script with a usage error (a script bug) at `pos`.
    pub(super) fn misuse(
        &self,
        pos: Position,
        message: impl std::fmt::Display,
    ) -> Box<rhai::EvalAltResult> {
        let message = self.scrub(&message.to_string());
        self.halt
            .stop(Error::usage(format!("{}: {message}", self.at(pos))), pos)
    }

    pub(super) fn console_error(&self, e: Error, pos: Position) -> Box<rhai::EvalAltResult> {
        from_session_error(e, &self.at(pos), pos, &self.halt)
    }

    /// `expect` on the stream, or with `on_screen` on the rendered screen.
    fn expect(
        &self,
        pos: Position,
        patterns: Vec<Pattern>,
        timeout: Option<Dynamic>,
        on_screen: bool,
    ) -> ScriptResult<Map> {
        if patterns.is_empty() {
            return Err(self.misuse(pos, "expect needs at least one pattern"));
        }
        let timeout = self.timeout(pos, timeout)?;
        let result = {
            let mut session = self.session(pos)?;
            if on_screen {
                self.runtime
                    .block_on(session.expect_screen(&patterns, timeout))
            } else {
                self.runtime.block_on(session.expect(&patterns, timeout))
            }
        };
        result
            .map(match_map)
            .map_err(|e| self.console_error(e, pos))
    }

    pub(super) fn timeout(
        &self,
        pos: Position,
        timeout: Option<Dynamic>,
    ) -> ScriptResult<Option<Duration>> {
        timeout
            .map(|value| self.seconds(pos, "timeout", value, false))
            .transpose()
    }

    /// A number of seconds the script gave (`what`: "timeout", "sleep"),
    /// checked as `lint` checks literals ([`seconds_in_range`]).
    fn seconds(
        &self,
        pos: Position,
        what: &str,
        value: Dynamic,
        zero_ok: bool,
    ) -> ScriptResult<Duration> {
        let secs = if let Ok(i) = value.as_int() {
            i as f64
        } else if let Ok(f) = value.as_float() {
            f
        } else {
            return Err(self.misuse(
                pos,
                format!(
                    "the {what} must be a number of seconds, not {}",
                    value.type_name()
                ),
            ));
        };
        if !seconds_in_range(secs, zero_ok) {
            let least = if zero_ok { "0 or more" } else { "above 0" };
            return Err(self.misuse(
                pos,
                format!(
                    "{what} {}: give a number of seconds {least} and at most {MAX_WAIT_SECS}",
                    shown_seconds(secs)
                ),
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// `sleep(secs)`: waits on the session, so the first signal ends it (the
    /// engine's own `sleep` blocks the thread through a SIGTERM) and the
    /// console's text meanwhile is recorded and kept for the next `expect`.
    fn sleep(&self, pos: Position, secs: Dynamic) -> ScriptResult<()> {
        let wait = self.seconds(pos, "sleep", secs, true)?;
        let result = {
            let mut session = self.session(pos)?;
            self.runtime.block_on(session.pause(wait))
        };
        result.map_err(|e| self.console_error(e, pos))
    }

    fn patterns(&self, pos: Position, list: Array, literal: bool) -> ScriptResult<Vec<Pattern>> {
        list.into_iter()
            .enumerate()
            .map(|(i, item)| {
                let type_name = item.type_name();
                match item.into_immutable_string() {
                    Ok(s) if literal => Ok(Pattern::exact(s.as_str())),
                    Ok(s) => Ok(Pattern::regex(s.as_str())),
                    Err(_) => Err(self.misuse(
                        pos,
                        format!("pattern #{i} is a {type_name}; patterns are strings"),
                    )),
                }
            })
            .collect()
    }

    fn send(&self, pos: Position, text: &str) -> ScriptResult<()> {
        let result = {
            let mut session = self.session(pos)?;
            self.runtime.block_on(session.send(text))
        };
        result.map_err(|e| self.console_error(e, pos))
    }

    /// The secret `name` (asked for by `call`, as shown in errors), or a
    /// script error naming the fix.
    pub(super) fn secret(&self, pos: Position, call: &str, name: &str) -> ScriptResult<&Secret> {
        let given = self.inputs.secrets.get(name);
        given.or(self.inputs.any_secret.as_ref()).ok_or_else(|| {
            let known: Vec<&str> = self.inputs.secrets.keys().map(String::as_str).collect();
            self.misuse(
                pos,
                format!(
                    "{call}: no secret named {name:?} was given (known: {}); \
                     pass --secret {name}=env:VAR, --secret {name}=file:PATH or --secret {name}=prompt",
                    list_or_none(&known)
                ),
            )
        })
    }

    fn send_secret(&self, pos: Position, name: &str) -> ScriptResult<()> {
        let secret = self.secret(pos, &format!("send_secret({name:?})"), name)?;
        let result = {
            let mut session = self.session(pos)?;
            self.runtime.block_on(session.send_secret(secret))
        };
        result.map_err(|e| self.console_error(e, pos))
    }

    fn send_break(&self, pos: Position) -> ScriptResult<()> {
        let result = {
            let mut session = self.session(pos)?;
            self.runtime.block_on(session.send_break())
        };
        result.map_err(|e| self.console_error(e, pos))
    }

    fn log(&self, message: &str) -> ScriptResult<()> {
        use super::sandbox::{MAX_LOG_BYTES, MAX_LOG_LINES};
        let (lines, bytes) = (self.logs.borrow().len(), self.log_bytes.get());
        if lines >= MAX_LOG_LINES || bytes + message.len() > MAX_LOG_BYTES {
            return Err(format!(
                "log(): the script logged more than {MAX_LOG_LINES} lines or {} MiB (the sandbox limit)",
                MAX_LOG_BYTES >> 20
            )
            .into());
        }
        let line = self.scrub(message);
        self.mark(&format!("log: {line}"));
        if let Some(tell) = self.on_log {
            tell(&line);
        }
        self.log_bytes.set(bytes + line.len());
        self.logs.borrow_mut().push(line);
        Ok(())
    }

    fn fail(&self, pos: Position, reason: &str) -> Box<rhai::EvalAltResult> {
        let reason = self.scrub(reason);
        self.mark(&format!("fail: {reason}"));
        let error = Error::problems(format!("script failed: {reason}"));
        self.halt.stop(error.context(self.at(pos)), pos)
    }

    fn var(&self, pos: Position, name: &str, default: Option<Dynamic>) -> ScriptResult<Dynamic> {
        if let Some(value) = self.inputs.vars.get(name) {
            return Ok(value.clone().into());
        }
        if let Some(default) = default {
            return Ok(default);
        }
        let known: Vec<&str> = self.inputs.vars.keys().map(String::as_str).collect();
        Err(self.misuse(
            pos,
            format!(
                "var({name:?}): no --var {name}=VALUE was given (known: {}); pass it, \
                 or give a default with var({name:?}, \"default\")",
                list_or_none(&known)
            ),
        ))
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// `#{index, text, before, groups}` for a match; unmatched groups are `()`.
fn match_map(m: Match) -> Map {
    let groups: Array = m
        .groups
        .into_iter()
        .map(|g| g.map_or(Dynamic::UNIT, Dynamic::from))
        .collect();
    let mut map = Map::new();
    map.insert("index".into(), (m.index as INT).into());
    map.insert("text".into(), m.text.into());
    map.insert("before".into(), m.before.into());
    map.insert("groups".into(), groups.into());
    map
}

/// Registers the console functions of the script API on `engine`.
pub(super) fn register(engine: &mut Engine, host: &Rc<Host>) {
    register_expect(engine, host);
    register_screen(engine, host);
    register_send(engine, host);
    register_steps(engine, host);
    register_sleep(engine, host);
}

/// `sleep(secs)`, integer or decimal, in place of Rhai's own.
fn register_sleep(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    engine.register_fn("sleep", move |ctx: NativeCallContext, secs: INT| {
        h.sleep(ctx.call_position(), Dynamic::from(secs))
    });
    let h = host.clone();
    engine.register_fn("sleep", move |ctx: NativeCallContext, secs: FLOAT| {
        h.sleep(ctx.call_position(), Dynamic::from(secs))
    });
}

fn register_expect(engine: &mut Engine, host: &Rc<Host>) {
    for (name, literal, on_screen) in [
        ("expect", false, false),
        ("expect_exact", true, false),
        ("expect_screen", false, true),
    ] {
        let h = host.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, list: Array| {
            let pos = ctx.call_position();
            let patterns = h.patterns(pos, list, literal)?;
            h.expect(pos, patterns, None, on_screen)
        });
        let h = host.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, list: Array, t: INT| {
            let pos = ctx.call_position();
            let patterns = h.patterns(pos, list, literal)?;
            h.expect(pos, patterns, Some(t.into()), on_screen)
        });
        let h = host.clone();
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, list: Array, t: FLOAT| {
                let pos = ctx.call_position();
                let patterns = h.patterns(pos, list, literal)?;
                h.expect(pos, patterns, Some(t.into()), on_screen)
            },
        );
        let h = host.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, one: &str| {
            let pos = ctx.call_position();
            h.expect(pos, vec![single(one, literal)], None, on_screen)
        });
        let h = host.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, one: &str, t: INT| {
            let pos = ctx.call_position();
            h.expect(pos, vec![single(one, literal)], Some(t.into()), on_screen)
        });
        let h = host.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, one: &str, t: FLOAT| {
            let pos = ctx.call_position();
            h.expect(pos, vec![single(one, literal)], Some(t.into()), on_screen)
        });
    }
}

fn single(text: &str, literal: bool) -> Pattern {
    if literal {
        Pattern::exact(text)
    } else {
        Pattern::regex(text)
    }
}

fn register_send(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    engine.register_fn("send", move |ctx: NativeCallContext, text: &str| {
        h.send(ctx.call_position(), text)
    });
    let h = host.clone();
    engine.register_fn("send_line", move |ctx: NativeCallContext, text: &str| {
        h.send(ctx.call_position(), &format!("{text}\r"))
    });
    let h = host.clone();
    engine.register_fn("send_line", move |ctx: NativeCallContext| {
        h.send(ctx.call_position(), "\r")
    });
    let h = host.clone();
    engine.register_fn("send_secret", move |ctx: NativeCallContext, name: &str| {
        h.send_secret(ctx.call_position(), name)
    });
    let h = host.clone();
    engine.register_fn("send_break", move |ctx: NativeCallContext| {
        h.send_break(ctx.call_position())
    });
}

fn register_screen(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    engine.register_fn(
        "screen",
        move |ctx: NativeCallContext| -> ScriptResult<String> {
            Ok(h.session(ctx.call_position())?.screen())
        },
    );
    let h = host.clone();
    engine.register_fn(
        "cursor",
        move |ctx: NativeCallContext| -> ScriptResult<Array> {
            let (row, column) = h.session(ctx.call_position())?.cursor();
            Ok(vec![
                Dynamic::from(row as INT),
                Dynamic::from(column as INT),
            ])
        },
    );
}

fn register_steps(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    engine.register_fn("mark", move |label: Dynamic| h.mark(&label.to_string()));
    let h = host.clone();
    engine.register_fn("log", move |message: Dynamic| h.log(&message.to_string()));
    let h = host.clone();
    engine.on_print(move |message| {
        // print() cannot fail in Rhai; past the cap its lines are dropped.
        let _ = h.log(message);
    });
    let h = host.clone();
    engine.on_debug(move |message, _, pos| {
        tracing::debug!("{}: {}", h.at(pos), h.scrub(message));
    });
    let h = host.clone();
    engine.register_fn(
        "fail",
        move |ctx: NativeCallContext, reason: Dynamic| -> ScriptResult<()> {
            Err(h.fail(ctx.call_position(), &reason.to_string()))
        },
    );
    let h = host.clone();
    register_var_syntax(engine, move |name, default, pos| h.var(pos, name, default));
}
