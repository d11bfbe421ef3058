//! Asking for a secret on the terminal, echo off (`--secret NAME=prompt`,
//! or a login password with nothing else given on a terminal), and where a
//! console login's password comes from (`--password-*`, else the prompt).

use std::io::{BufRead, IsTerminal, Write};

use crate::error::{Error, Result};
use crate::secret::{Secret, SecretSource};

/// The login password, from the flag that names its source, else asked on
/// the terminal.
pub(super) fn login_password(args: &super::PasswordArgs, login_user: &str) -> Result<Secret> {
    let name = format!("password for {login_user}");
    let source = if let Some(var) = &args.password_env {
        SecretSource::Env(var.clone())
    } else if let Some(path) = &args.password_file {
        SecretSource::File(path.clone())
    } else if args.password_stdin {
        SecretSource::Stdin
    } else if std::io::stdin().is_terminal() {
        SecretSource::Prompt
    } else {
        return Err(Error::usage(
            "the console login needs a password: pass --password-env VAR, --password-file PATH or --password-stdin \
             (standard input is not a terminal, so it cannot be asked for)",
        ));
    };
    source.read_with(&name, &hidden)
}

/// Asks on the controlling terminal with echo turned off.
pub(super) fn hidden(name: &str) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::usage(format!(
            "secret {name:?}: cannot prompt because standard input is not a terminal; \
             use env:VAR or file:PATH instead"
        )));
    }
    eprint!("{name}: ");
    let _ = std::io::stderr().flush();
    let saved = tcgetattr(&stdin).map_err(|e| Error::io("reading terminal settings", e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)
        .map_err(|e| Error::io("turning terminal echo off", e.into()))?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.map_err(|e| Error::io(format!("secret {name:?}: reading the terminal"), e))?;
    Ok(first_line(&line).to_string())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
