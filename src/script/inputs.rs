//! What a script is given from the command line: `--var NAME=VALUE` values and
//! `--secret NAME=SOURCE` secrets.
//!
//! Both are parsed before anything connects, so a typo is a usage error
//! (exit code 2) and never a half-run script. Secret values are read through
//! [`crate::secret`] (environment, file or prompt, never argv) and stay
//! [`Secret`]s: scripts can only name them, never read them.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::secret::{parse_named_source, Secret};

/// The variables and secrets a script runs with.
#[derive(Debug, Default, Clone)]
pub struct ScriptInputs {
    /// `var("name")` values, by name.
    pub vars: BTreeMap<String, String>,
    /// `send_secret("name")` values, by name.
    pub secrets: BTreeMap<String, Secret>,
    /// The value of every secret not given, for replays only: a replay
    /// compares a secret send with the recording's `<redacted>`, never its
    /// value, so a test needs no real secret.
    pub any_secret: Option<Secret>,
}

impl ScriptInputs {
    /// Parses the `--var` and `--secret` arguments and reads every secret.
    /// `ask` asks for `prompt` sources (the command line: on the terminal).
    pub fn from_args(
        vars: &[String],
        secrets: &[String],
        ask: &crate::secret::Ask,
    ) -> Result<Self> {
        let mut inputs = ScriptInputs::default();
        for arg in vars {
            let (name, value) = parse_var(arg)?;
            if inputs.vars.insert(name.clone(), value).is_some() {
                return Err(Error::usage(format!(
                    "--var {name}=… is given twice; give each variable once"
                )));
            }
        }
        for arg in secrets {
            let (name, source) = parse_named_source(arg)?;
            if inputs.secrets.contains_key(&name) {
                return Err(Error::usage(format!(
                    "--secret {name}=… is given twice; give each secret once"
                )));
            }
            let secret = source.read_with(&name, ask)?;
            inputs.secrets.insert(name, secret);
        }
        Ok(inputs)
    }

    /// Adds a variable (for callers that build inputs in code).
    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    /// Adds a secret under its own name.
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secrets.insert(secret.name().to_string(), secret);
        self
    }
}

/// Parses one `NAME=VALUE`; the value may be empty or contain `=`.
fn parse_var(arg: &str) -> Result<(String, String)> {
    let (name, value) = arg.split_once('=').ok_or_else(|| {
        Error::usage(format!(
            "--var {arg:?}: expected NAME=VALUE, e.g. --var user=ec2-user"
        ))
    })?;
    if !is_name(name) {
        return Err(Error::usage(format!(
            "--var {arg:?}: bad name {name:?}; use letters, digits, '_' or '-'"
        )));
    }
    Ok((name.to_string(), value.to_string()))
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_prompt(name: &str) -> crate::error::Result<String> {
        Err(crate::error::Error::usage(format!(
            "no terminal to ask for {name}"
        )))
    }

    #[test]
    fn vars_parse_with_equals_in_the_value_and_reject_bad_names() {
        let inputs = ScriptInputs::from_args(
            &["user=ec2-user".into(), "expr=a=b".into(), "e=".into()],
            &[],
            &no_prompt,
        )
        .unwrap();
        assert_eq!(inputs.vars["user"], "ec2-user");
        assert_eq!(inputs.vars["expr"], "a=b");
        assert_eq!(inputs.vars["e"], "");
        for bad in ["novalue", "=x", "sp ace=1"] {
            let err = ScriptInputs::from_args(&[bad.into()], &[], &no_prompt).unwrap_err();
            assert_eq!(err.exit_code().code(), 2, "{bad}: {err}");
            assert!(err.to_string().contains("--var"), "{err}");
        }
        let err =
            ScriptInputs::from_args(&["a=1".into(), "a=2".into()], &[], &no_prompt).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn secrets_are_read_from_their_source_and_never_echoed() {
        std::env::set_var("SCRIPT_INPUTS_TEST_PW", "pa55word");
        let inputs =
            ScriptInputs::from_args(&[], &["pw=env:SCRIPT_INPUTS_TEST_PW".into()], &no_prompt)
                .unwrap();
        assert_eq!(inputs.secrets["pw"].expose(), "pa55word");
        assert!(!format!("{inputs:?}").contains("pa55word"));
        let err = ScriptInputs::from_args(&[], &["pw=pa55word".into()], &no_prompt).unwrap_err();
        assert!(!err.to_string().contains("pa55word"), "{err}");
        let err =
            ScriptInputs::from_args(&[], &["pw=env:SCRIPT_INPUTS_TEST_UNSET".into()], &no_prompt)
                .unwrap_err();
        assert!(
            err.to_string().contains("SCRIPT_INPUTS_TEST_UNSET"),
            "{err}"
        );
    }
}
