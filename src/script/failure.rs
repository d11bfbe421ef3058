//! How failures cross the line between the engine and a script, both ways.
//!
//! Into the script: a timeout or EOF becomes a catchable error whose value is
//! a map `#{kind, message, tail, awaited, seconds}` (`kind` is `"timeout"` or
//! `"eof"`), so `try { … } catch (e) { if e.kind == "timeout" { … } }` works.
//! Everything else — `fail()`, a replay mismatch, a broken connection, a
//! script bug such as a bad regex or an unknown secret name — stops the
//! script and cannot be caught: a catch-all `try` written for timeouts must
//! not swallow a failed check or a diverging replay. Those errors are parked
//! in a [`Halt`] slot and the script is ended with Rhai's uncatchable
//! `ErrorTerminated`.
//!
//! Out of the script: [`into_error`] turns what ended the run into the
//! crate's [`Error`], so the exit code is the one the architecture promises
//! (timeout 5, EOF and replay mismatch 3, `fail` 1, script errors 2), and
//! every message names `file:line:column`.

use std::cell::RefCell;

use rhai::{Dynamic, EvalAltResult, Map, Position};

use super::sandbox::{location, LIMITS};
use crate::error::{Error, ErrorKind};

/// The error type of every registered function.
pub(super) type ScriptResult<T> = std::result::Result<T, Box<EvalAltResult>>;

/// Where an uncatchable error waits until the run ends.
#[derive(Default)]
pub(super) struct Halt(RefCell<Option<Error>>);

impl Halt {
    /// Parks `error` and returns the Rhai error that ends the script.
    pub(super) fn stop(&self, error: Error, pos: Position) -> Box<EvalAltResult> {
        *self.0.borrow_mut() = Some(error);
        Box::new(EvalAltResult::ErrorTerminated(Dynamic::UNIT, pos))
    }

    fn take(&self) -> Option<Error> {
        self.0.borrow_mut().take()
    }
}

/// Turns a session error met at `at` (a `file:line:column`) into what the
/// script sees: a catchable map for timeout and EOF, a halt for the rest.
pub(super) fn from_session_error(
    error: Error,
    at: &str,
    pos: Position,
    halt: &Halt,
) -> Box<EvalAltResult> {
    let (kind, awaited, tail, seconds) = match error.kind() {
        ErrorKind::Timeout {
            awaited,
            seconds,
            tail,
        } => ("timeout", awaited, tail, *seconds),
        ErrorKind::Eof { awaited, tail } => ("eof", awaited, tail, 0.0),
        _ => return halt.stop(error.context(at), pos),
    };
    let mut map = Map::new();
    map.insert("kind".into(), kind.into());
    map.insert("message".into(), error.to_string().into());
    map.insert("tail".into(), tail.clone().into());
    map.insert("awaited".into(), awaited.clone().into());
    map.insert("seconds".into(), seconds.into());
    Box::new(EvalAltResult::ErrorRuntime(map.into(), pos))
}

/// The crate error for a script that ended with `err` (`name` is the script's
/// display name).
pub(super) fn into_error(err: EvalAltResult, name: &str, halt: &Halt) -> Error {
    let called_from = call_chain(&err);
    if let Some(parked) = halt.take() {
        return match called_from.is_empty() {
            true => parked,
            false => parked.context(called_from),
        };
    }
    let at = location(name, innermost_position(&err));
    let inner = into_innermost(err);
    if let EvalAltResult::ErrorRuntime(value, _) = &inner {
        if let Some(e) = rebuild_console_error(value) {
            return e.context(format!("{at}{called_from}"));
        }
        return Error::usage(format!(
            "{at}: uncaught error thrown by the script: {value}{called_from}"
        ));
    }
    let what = match inner {
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "the script ran more than {} operations (the sandbox limit); is a loop missing an expect?",
            LIMITS.max_operations
        ),
        EvalAltResult::ErrorTerminated(token, _)
            if token.clone().into_string().ok().as_deref()
                == Some(super::sandbox::OUT_OF_MEMORY) =>
        {
            format!(
                "the script's data grew past {} MiB (the sandbox limit); keep less in strings, arrays and maps",
                super::memory::SCRIPT_BUDGET >> 20
            )
        }
        mut other => {
            other.set_position(Position::NONE);
            other.to_string()
        }
    };
    Error::usage(format!("{at}: script error: {what}{called_from}"))
}

/// A timeout or EOF map thrown by a console function (and not caught, or
/// rethrown) back into the error it came from.
fn rebuild_console_error(value: &Dynamic) -> Option<Error> {
    let map = value.read_lock::<Map>()?;
    let text = |key: &str| {
        map.get(key)
            .and_then(|v| v.clone().into_string().ok())
            .unwrap_or_default()
    };
    match text("kind").as_str() {
        "timeout" => Some(Error::timeout(
            text("awaited"),
            map.get("seconds")
                .and_then(|v| v.as_float().ok())
                .unwrap_or(0.0),
            text("tail"),
        )),
        "eof" => Some(Error::eof(text("awaited"), text("tail"))),
        _ => None,
    }
}

/// The error itself, unwrapped from the script function calls it passed.
fn into_innermost(err: EvalAltResult) -> EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => into_innermost(*inner),
        other => other,
    }
}

/// The position of the error itself, inside any script functions it passed.
fn innermost_position(err: &EvalAltResult) -> Position {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, pos) => {
            let p = innermost_position(inner);
            if p.is_none() {
                *pos
            } else {
                p
            }
        }
        other => other.position(),
    }
}

/// ` (in fn f called at 3:1, …)` when the error passed through script functions.
fn call_chain(err: &EvalAltResult) -> String {
    let mut calls = Vec::new();
    let mut e = err;
    while let EvalAltResult::ErrorInFunctionCall(f, _, inner, pos) = e {
        calls.push(format!("{f}() called at line {}", pos.line().unwrap_or(0)));
        e = inner;
    }
    if calls.is_empty() {
        String::new()
    } else {
        calls.reverse();
        format!(" (in {})", calls.join(", in "))
    }
}
