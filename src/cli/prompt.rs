//! Asking for a secret on the terminal, echo off (`--secret NAME=prompt`,
//! or a doctor password with nothing else given on a terminal).

use std::io::{BufRead, IsTerminal, Write};

use crate::error::{Error, Result};

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
