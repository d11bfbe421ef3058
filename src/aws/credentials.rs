//! AWS credentials as the SigV4 code uses them, and the gateway's
//! identities file.
//!
//! Clients resolve their credentials with aws-config (the command line's
//! `ws_sigv4`, like every EC2 call: environment, profiles, SSO, processes,
//! roles). The gateway reads a file in the shared-credentials INI format to
//! verify signatures, each profile an identity: a server-side list, not a
//! client's credential chain.

use std::path::Path;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// One set of AWS credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The access key id (not secret; it names the identity).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// A session token for temporary credentials.
    pub session_token: Option<Secret>,
    /// Where these came from, for messages (a profile name or "environment").
    pub source: String,
    /// When temporary credentials stop working (`None`: long-term keys).
    pub expires_at: Option<std::time::SystemTime>,
}

/// Reads every profile of a shared-credentials INI file.
pub fn read_file(path: &Path) -> Result<Vec<Credentials>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read AWS credentials file {}: {e}",
            path.display()
        ))
    })?;
    parse(&text)
        .map_err(|why| Error::usage(format!("AWS credentials file {}: {why}", path.display())))
}

/// A profile being read: its name and the keys seen so far.
#[derive(Default)]
struct Draft {
    name: String,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

impl Draft {
    fn finish(self) -> std::result::Result<Credentials, String> {
        match (self.access_key_id, self.secret_access_key) {
            (Some(id), Some(secret)) => Ok(Credentials {
                access_key_id: id,
                secret_access_key: Secret::new("aws_secret_access_key", secret),
                session_token: self
                    .session_token
                    .map(|t| Secret::new("aws_session_token", t)),
                source: self.name,
                expires_at: None,
            }),
            _ => Err(format!(
                "profile [{}] needs aws_access_key_id and aws_secret_access_key",
                self.name
            )),
        }
    }
}

/// Parses the INI text; a profile lacking either key is an error naming it.
pub fn parse(text: &str) -> std::result::Result<Vec<Credentials>, String> {
    let mut out = Vec::new();
    let mut current: Option<Draft> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if let Some(done) = current.take() {
                out.push(done.finish()?);
            }
            current = Some(Draft {
                name: name.trim().to_string(),
                ..Draft::default()
            });
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or(format!("line {}: expected key = value", n + 1))?;
        let draft = current
            .as_mut()
            .ok_or(format!("line {}: a key before any [profile]", n + 1))?;
        let value = Some(value.trim().to_string());
        match key.trim() {
            "aws_access_key_id" => draft.access_key_id = value,
            "aws_secret_access_key" => draft.secret_access_key = value,
            "aws_session_token" => draft.session_token = value,
            _ => {}
        }
    }
    if let Some(done) = current {
        out.push(done.finish()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles_and_names_incomplete_ones() {
        let all = parse("[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = abc\n\n[ops]\naws_access_key_id=A2\naws_secret_access_key=s2\naws_session_token=t\nregion=x\n").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].source, "ops");
        assert!(all[1].session_token.is_some());
        let err = parse("[broken]\naws_access_key_id = X\n").unwrap_err();
        assert!(err.contains("[broken]"), "{err}");
    }
}
