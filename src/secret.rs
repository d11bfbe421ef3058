//! Secrets: passwords and other values that must never reach an artifact.
//!
//! A [`Secret`] can only be read through [`Secret::expose`], whose callers are
//! few and easy to audit: the session writing it to the console and the
//! redactor that scrubs it from transcripts. Its `Debug` prints `<redacted>`,
//! so a secret that ends up in a log line or a panic message says nothing.
//!
//! Every secret value the process holds is also remembered (zeroized when
//! the process ends) so that [`scrub_known`] can take it out of any text that
//! leaves the process outside a transcript: log lines and error messages.
//!
//! Secrets never come from argv. A [`SecretSource`] names where to read one:
//! an environment variable, a file, or an interactive prompt on the terminal.

use std::fmt;
use std::io::BufRead;
use std::path::PathBuf;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

pub use crate::text::REDACTED;

/// A value that must never be logged, recorded or shown.
#[derive(Clone)]
pub struct Secret {
    name: String,
    value: SecretString,
}

/// Every secret value read so far, longest first: what [`scrub_known`]
/// looks for. Not configuration: a process-wide fact, like the log itself.
static KNOWN: std::sync::Mutex<Vec<Zeroizing<String>>> = std::sync::Mutex::new(Vec::new());

impl Secret {
    /// Wraps `value` under a display `name` (the name is not secret).
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Secret {
            name: name.into(),
            value: SecretString::from(value),
        }
    }

    /// The secret's name, safe to show.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secret itself. Call only to write it to the console or to scrub it.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?}, {REDACTED})", self.name)
    }
}

/// A new password of `len` letters and digits (no look-alikes: 0, O, 1,
/// l, I) from the kernel's CSPRNG, known to the scrubber at once.
pub fn generate(name: &str, len: usize) -> Result<Secret> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut urandom =
        std::fs::File::open("/dev/urandom").map_err(|e| Error::io("opening /dev/urandom", e))?;
    let mut out = String::with_capacity(len);
    let limit = 256 - 256 % ALPHABET.len();
    let mut byte = [0u8; 1];
    while out.len() < len {
        urandom
            .read_exact(&mut byte)
            .map_err(|e| Error::io("reading /dev/urandom", e))?;
        // Rejection sampling keeps every character equally likely.
        if usize::from(byte[0]) < limit {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(Secret::new(name, out))
}

/// Environment variables secrets were read from.
static SOURCE_VARIABLES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The environment variables this process read secrets from: programs it
/// starts (`exec:` consoles) do not inherit them.
pub fn source_variables() -> Vec<String> {
    SOURCE_VARIABLES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Counts `var` among [`source_variables`] before it is read (a flag named
/// it: `--token-env`), so no program started meanwhile inherits it.
pub fn hide_variable(var: &str) {
    let mut vars = SOURCE_VARIABLES.lock().unwrap_or_else(|p| p.into_inner());
    if !vars.iter().any(|v| v == var) {
        vars.push(var.to_string());
    }
}

/// A command for `program` that does not inherit the variables secrets are
/// read from ([`source_variables`]): every program the tool starts (an
/// `exec:` console, a power-cycle command) is made here.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    for var in source_variables() {
        command.env_remove(var);
    }
    command
}

/// This process's environment less the variables secrets were read from
/// ([`source_variables`]): what a program started under a PTY inherits
/// (the same rule as [`command`], for programs not started by `Command`).
pub(crate) fn inherited_environment() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let hidden = source_variables();
    std::env::vars_os()
        .filter(|(k, _)| !hidden.iter().any(|h| std::ffi::OsStr::new(h) == k))
        .collect()
}

fn remember(value: &str) {
    // Short values would redact ordinary words from every log line; a
    // secret that short is not one an attacker needs the log to guess.
    if value.len() < 4 {
        return;
    }
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if !known.iter().any(|k| k.as_str() == value) {
        known.push(Zeroizing::new(value.to_string()));
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// `text` with every secret this process has read replaced by
/// `<redacted>`, and with credentials that travel in requests (signatures,
/// session tokens, authorization headers, URL queries and userinfo) taken
/// out too: for log lines and error messages.
pub fn scrub_known(text: &str) -> String {
    let mut out = crate::text::scrub_credentials(text).into_owned();
    // Borrowed under the lock: copying the secrets out for every log line
    // would leave unzeroized copies of them behind in freed memory.
    let known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let secrets: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
    crate::text::scrub_in_place(&mut out, 0, &secrets);
    out
}

/// Where a secret is read from: `env:VAR`, `file:PATH`, `stdin` or `prompt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// The first line of a file (a trailing newline is dropped).
    File(PathBuf),
    /// The first line of standard input.
    Stdin,
    /// Asked for on the terminal with echo off.
    Prompt,
}

impl FromStr for SecretSource {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(var) = s.strip_prefix("env:") {
            if var.is_empty() {
                return Err(Error::usage(
                    "secret source `env:` needs a variable name, e.g. env:CONSOLE_PASSWORD",
                ));
            }
            Ok(SecretSource::Env(var.to_string()))
        } else if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(Error::usage(
                    "secret source `file:` needs a path, e.g. file:/run/secrets/console",
                ));
            }
            Ok(SecretSource::File(PathBuf::from(path)))
        } else if s == "prompt" {
            Ok(SecretSource::Prompt)
        } else if s == "stdin" {
            Ok(SecretSource::Stdin)
        } else {
            // The value is not echoed: a user who typed the password itself
            // here must not see it again in an error message or a log.
            Err(Error::usage(
                "unknown secret source (not shown, in case it is the secret itself): \
                 use env:VAR, file:PATH, stdin or prompt; secrets are never accepted on the command line",
            ))
        }
    }
}

/// How a `prompt` source asks for a secret named by its argument: the command
/// line asks on the terminal; a library caller decides for itself.
pub type Ask = dyn Fn(&str) -> Result<String>;

/// For callers with no way to ask: a `prompt` source is an error.
fn cannot_ask(name: &str) -> Result<String> {
    Err(Error::usage(format!(
        "secret {name:?}: nothing can ask for it here; use env:VAR or file:PATH instead"
    )))
}

impl SecretSource {
    /// Reads the secret, naming it `name` for messages; `prompt` is refused.
    pub fn read(&self, name: &str) -> Result<Secret> {
        self.read_with(name, &cannot_ask)
    }

    /// Reads the secret, asking with `ask` for a `prompt` source.
    pub fn read_with(&self, name: &str, ask: &Ask) -> Result<Secret> {
        let value = match self {
            SecretSource::Env(var) => {
                hide_variable(var);
                std::env::var(var).map_err(|_| {
                Error::usage(format!(
                    "secret {name:?}: environment variable {var} is not set (or not UTF-8); export it first"
                ))
                })?
            }
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::usage(format!(
                        "secret {name:?}: cannot read {}: {e}",
                        path.display()
                    ))
                })?;
                first_line(&text).to_string()
            }
            SecretSource::Stdin => {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                    Error::io(format!("secret {name:?}: reading standard input"), e)
                })?;
                first_line(&line).to_string()
            }
            SecretSource::Prompt => ask(name)?,
        };
        if value.is_empty() {
            return Err(Error::usage(format!(
                "secret {name:?} is empty; check its source"
            )));
        }
        Ok(Secret::new(name, value))
    }
}

/// Parses `NAME=SOURCE` as given to `--secret`.
pub fn parse_named_source(arg: &str) -> Result<(String, SecretSource)> {
    let (name, source) = arg.split_once('=').ok_or_else(|| {
        Error::usage(format!(
            "--secret {arg:?}: expected NAME=env:VAR, NAME=file:PATH or NAME=prompt"
        ))
    })?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::usage(format!(
            "--secret: bad name {name:?}; use letters, digits, '_' or '-'"
        )));
    }
    Ok((name.to_string(), source.parse()?))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_random_letters_and_digits() {
        let a = generate("a", 20).unwrap();
        let b = generate("b", 20).unwrap();
        assert_eq!(a.expose().len(), 20);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
        assert!(
            !scrub_known(a.expose()).contains(a.expose()),
            "known to the scrubber"
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("password", "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn every_secret_read_is_scrubbed_from_log_text() {
        let _s = Secret::new("token", "tok-0123456789abcdef");
        let line = "sending tok-0123456789abcdef to wss://u:p@h/x?token=tok-1&a=b";
        let clean = scrub_known(line);
        assert_eq!(
            clean,
            "sending <redacted> to wss://<redacted>@h/x?<redacted>"
        );
    }

    #[test]
    fn sources_parse_and_reject_values_on_argv() {
        assert_eq!(
            "env:PW".parse::<SecretSource>().unwrap(),
            SecretSource::Env("PW".into())
        );
        assert_eq!(
            "prompt".parse::<SecretSource>().unwrap(),
            SecretSource::Prompt
        );
        let err = "hunter2".parse::<SecretSource>().unwrap_err().to_string();
        assert!(err.contains("env:VAR"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(parse_named_source("pw").is_err());
        assert!(parse_named_source("pw=env:X").is_ok());
    }

    #[test]
    fn file_source_takes_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        let s = SecretSource::File(path).read("pw").unwrap();
        assert_eq!(s.expose(), "s3cret");
    }
}
