//! `doctor(#{user, fix, policy, public_key, fingerprint, add_key, create_user, loosen})`: the
//! doctor from a script, on the console the script is logged in to.
//!
//! It runs exactly what `ec2-serial-expect doctor` runs after login
//! ([`crate::doctor::examine`]) and returns the findings as maps with the
//! report's field names, so a script can decide what to do with each:
//! `#{findings: [#{check, path, expected, actual, severity, why, repair,
//! status}], verified (`()` in check mode), evidence, round_trips,
//! not_checked, problems_remain}`.

use std::rc::Rc;

use rhai::{Dynamic, Engine, Map, NativeCallContext, Position};
use serde_json::Value;

use super::bindings::Host;
use super::failure::ScriptResult;
use crate::doctor::{self, Policy, Request, Severity, Status};
use crate::shell::Shell;

impl Host {
    fn doctor(&self, pos: Position, options: Map) -> ScriptResult<Map> {
        let request = self.doctor_request(pos, &options)?;
        let fix = flag(&options, "fix");
        let mut shell_slot = self.shell.borrow_mut();
        if shell_slot.is_none() {
            return Err(self.misuse(
                pos,
                "doctor(): not logged in; call login(user, secret_name) first",
            ));
        }
        let outcome = {
            // The session first: a closed one must not drop the shell's state.
            let mut session = self.session(pos)?;
            let Some(state) = shell_slot.take() else {
                unreachable!("checked above, under the same borrow")
            };
            session.mark(&format!(
                "doctor: user {} mode {}",
                request.user.as_str(),
                if fix { "fix" } else { "check" }
            ));
            let mut announced = Vec::new();
            let mut shell = Shell::bind(state, &mut session);
            let outcome =
                self.runtime
                    .block_on(doctor::examine(&mut shell, &request, fix, &mut |f| {
                        announced.push(format!(
                            "doctor: repairing {}: {}",
                            f.check,
                            f.repair.as_deref().unwrap_or("")
                        ))
                    }));
            *shell_slot = Some(shell.into_state().0);
            for line in announced {
                session.mark(&line);
            }
            outcome
        };
        drop(shell_slot);
        let outcome = outcome.map_err(|e| self.console_error(e, pos))?;
        let problems = !outcome.not_checked.is_empty()
            || outcome
                .findings
                .iter()
                .any(|f| f.severity == Severity::Error && f.status != Status::Fixed);
        let mut map = Map::new();
        let findings = serde_json::to_value(&outcome.findings).unwrap_or(Value::Null);
        map.insert("findings".into(), to_dynamic(findings));
        map.insert(
            "verified".into(),
            outcome.verified.map_or(Dynamic::UNIT, Dynamic::from),
        );
        map.insert("problems_remain".into(), problems.into());
        map.insert("evidence".into(), to_dynamic(Value::from(outcome.evidence)));
        map.insert(
            "not_checked".into(),
            to_dynamic(Value::from(outcome.not_checked)),
        );
        map.insert(
            "round_trips".into(),
            (outcome.round_trips as rhai::INT).into(),
        );
        Ok(map)
    }

    fn doctor_request(&self, pos: Position, options: &Map) -> ScriptResult<Request> {
        let known = [
            "user",
            "fix",
            "policy",
            "public_key",
            "fingerprint",
            "add_key",
            "create_user",
            "loosen",
        ];
        if let Some(k) = options.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(self.misuse(
                pos,
                format!(
                    "doctor(): unknown option {k:?}; known: {}",
                    known.join(", ")
                ),
            ));
        }
        let text = |k: &str| options.get(k).and_then(|v| v.clone().into_string().ok());
        let user =
            text("user").ok_or_else(|| self.misuse(pos, "doctor() needs #{user: \"name\"}"))?;
        let policy = match text("policy").as_deref() {
            None | Some("aws") => Policy::Aws,
            Some("sshd") => Policy::Sshd,
            Some(other) => {
                return Err(self.misuse(
                    pos,
                    format!("doctor(): policy {other:?}: use \"aws\" or \"sshd\""),
                ))
            }
        };
        let mut request = Request::new(
            &user,
            policy,
            text("public_key").as_deref(),
            text("fingerprint").as_deref(),
            flag(options, "add_key"),
        )
        .map_err(|e| self.misuse(pos, format!("doctor(): {e}")))?;
        request.create_user = flag(options, "create_user");
        request.loosen = flag(options, "loosen");
        Ok(request)
    }
}

fn flag(options: &Map, key: &str) -> bool {
    options
        .get(key)
        .and_then(|v| v.as_bool().ok())
        .unwrap_or(false)
}

/// JSON to Rhai values (the report is JSON-shaped already).
fn to_dynamic(value: Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => b.into(),
        Value::Number(n) => n
            .as_i64()
            .map(Dynamic::from)
            .unwrap_or_else(|| n.to_string().into()),
        Value::String(s) => s.into(),
        Value::Array(a) => Dynamic::from_array(a.into_iter().map(to_dynamic).collect()),
        Value::Object(o) => Dynamic::from_map(
            o.into_iter()
                .map(|(k, v)| (k.into(), to_dynamic(v)))
                .collect(),
        ),
    }
}

/// Registers `doctor(options)`.
pub(super) fn register(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    engine.register_fn("doctor", move |ctx: NativeCallContext, options: Map| {
        h.doctor(ctx.call_position(), options)
    });
}
