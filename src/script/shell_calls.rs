//! The shell-level script calls — `login`, `run`, `sudo`, `logout` — over
//! [`crate::shell::Shell`] (its state, [`ShellState`], kept between calls).
//!
//! A script logs in once and then runs commands whose output and exit
//! status come back exactly (`#{output, status, kernel_lines, warnings}`).
//! The shell is held next to the session in the [`Host`]; whatever path
//! the script ends by, a shell still logged in is logged out before the
//! session closes ([`Host::logout_if_logged_in`]), so a script never leaves
//! a serial console logged in for the next person.
//!
//! Errors follow the script rules: a timeout or EOF is catchable like an
//! `expect`'s; a refused login stops the script with exit code 4; calling
//! `run` before `login` or naming an unknown secret is a script error.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, Map, NativeCallContext, Position, FLOAT, INT};

use super::bindings::Host;
use super::failure::ScriptResult;
use crate::shell::{CommandOutput, LoginSpec, ShellState};

/// Which privilege a command runs with.
#[derive(Clone, Copy)]
enum As {
    User,
    Root,
}

impl Host {
    fn login(
        &self,
        pos: Position,
        user: &str,
        secret: &str,
        timeout: Option<Dynamic>,
    ) -> ScriptResult<()> {
        if let Some(shell) = self.shell.borrow().as_ref() {
            return Err(self.misuse(
                pos,
                format!(
                    "login({user:?}, …): already logged in as {}; call logout() first",
                    shell.user()
                ),
            ));
        }
        let password = self
            .secret(pos, &format!("login({user:?}, {secret:?})"), secret)?
            .clone();
        let mut spec = LoginSpec::new(user, password);
        if let Some(t) = self.timeout(pos, timeout)? {
            spec.timeout = t;
        }
        let result = {
            let mut session = self.session(pos)?;
            self.runtime
                .block_on(ShellState::login(&mut session, &spec))
        };
        let shell = result.map_err(|e| self.console_error(e, pos))?;
        *self.shell.borrow_mut() = Some(shell);
        Ok(())
    }

    fn command(
        &self,
        pos: Position,
        how: As,
        cmd: &str,
        timeout: Option<Dynamic>,
    ) -> ScriptResult<Map> {
        let timeout = self.timeout(pos, timeout)?;
        let name = match how {
            As::User => "run",
            As::Root => "sudo",
        };
        let mut shell_slot = self.shell.borrow_mut();
        let Some(shell) = shell_slot.as_mut() else {
            return Err(self.misuse(
                pos,
                format!("{name}(): not logged in; call login(user, secret_name) first"),
            ));
        };
        let result = {
            let mut session = self.session(pos)?;
            let saved = shell.command_timeout();
            if let Some(t) = timeout {
                shell.set_command_timeout(t);
            }
            let out = self.runtime.block_on(async {
                match how {
                    As::User => shell.run(&mut session, cmd).await,
                    As::Root => shell.sudo(&mut session, cmd).await,
                }
            });
            shell.set_command_timeout(saved);
            out
        };
        drop(shell_slot);
        result
            .map(|out| output_map(out, |text| self.scrub(text)))
            .map_err(|e| self.console_error(e, pos))
    }

    fn logout(&self, pos: Position) -> ScriptResult<()> {
        let Some(shell) = self.shell.borrow_mut().take() else {
            return Ok(());
        };
        let result = {
            let mut session = self.session(pos)?;
            self.runtime.block_on(shell.logout(&mut session))
        };
        result.map_err(|e| self.console_error(e, pos))
    }

    /// Logs out a shell the script left logged in (on every exit path).
    /// After a replay parted from its recording: the recording answers
    /// nothing more, so there is no console to log out of, and nothing to
    /// warn about.
    pub(super) fn let_go_of_the_shell(&self) {
        if let Some(shell) = self.shell.borrow_mut().take() {
            shell.abandon();
        }
    }

    pub(super) fn logout_if_logged_in(&self) {
        let Some(shell) = self.shell.borrow_mut().take() else {
            return;
        };
        let mut session_slot = self.session.borrow_mut();
        let Some(session) = session_slot.as_mut() else {
            return;
        };
        session.mark("script ended logged in: logging out");
        if let Err(e) = self.runtime.block_on(shell.logout(session)) {
            tracing::warn!(
                "logging out after the script failed; the console may still be logged in: {}",
                self.scrub(&e.to_string())
            );
        }
    }
}

/// `#{output, status, kernel_lines, warnings}` for a finished command, as
/// shown: the shell layer parsed the real text, the script gets it
/// with its secrets redacted (`scrub`).
fn output_map(out: CommandOutput, scrub: impl Fn(&str) -> String) -> Map {
    let lines = |v: Vec<String>| -> Array { v.iter().map(|l| Dynamic::from(scrub(l))).collect() };
    let mut map = Map::new();
    map.insert("output".into(), scrub(&out.output).into());
    map.insert("status".into(), (out.status as INT).into());
    map.insert("kernel_lines".into(), lines(out.kernel_lines).into());
    map.insert("warnings".into(), lines(out.warnings).into());
    map
}

/// Registers `login`, `run`, `sudo` and `logout`, each with an optional
/// timeout in seconds as the last argument.
pub(super) fn register(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    engine.register_fn(
        "login",
        move |ctx: NativeCallContext, user: &str, secret: &str| {
            h.login(ctx.call_position(), user, secret, None)
        },
    );
    let h = host.clone();
    engine.register_fn(
        "login",
        move |ctx: NativeCallContext, user: &str, secret: &str, t: INT| {
            h.login(ctx.call_position(), user, secret, Some(t.into()))
        },
    );
    let h = host.clone();
    engine.register_fn(
        "login",
        move |ctx: NativeCallContext, user: &str, secret: &str, t: FLOAT| {
            h.login(ctx.call_position(), user, secret, Some(t.into()))
        },
    );
    for (name, how) in [("run", As::User), ("sudo", As::Root)] {
        let h = host.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, cmd: &str| {
            h.command(ctx.call_position(), how, cmd, None)
        });
        let h = host.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, cmd: &str, t: INT| {
            h.command(ctx.call_position(), how, cmd, Some(t.into()))
        });
        let h = host.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, cmd: &str, t: FLOAT| {
            h.command(ctx.call_position(), how, cmd, Some(t.into()))
        });
    }
    let h = host.clone();
    engine.register_fn("logout", move |ctx: NativeCallContext| {
        h.logout(ctx.call_position())
    });
}
