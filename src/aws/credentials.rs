//! AWS credentials: the environment and the shared credentials file.
//!
//! The client side reads `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN`, else the profile (`--profile`, `AWS_PROFILE`, else
//! `default`) of `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`). The
//! gateway reads a credentials file of the same INI format to verify
//! signatures, each profile an identity.

use std::path::{Path, PathBuf};

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
}

impl Credentials {
    /// Finds credentials the AWS way: environment first, then the profile.
    pub fn discover(profile: Option<&str>) -> Result<Credentials> {
        if profile.is_none() {
            if let (Ok(id), Ok(secret)) = (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                return Ok(Credentials {
                    access_key_id: id,
                    secret_access_key: Secret::new("AWS_SECRET_ACCESS_KEY", secret),
                    session_token: std::env::var("AWS_SESSION_TOKEN")
                        .ok()
                        .map(|t| Secret::new("AWS_SESSION_TOKEN", t)),
                    source: "environment".into(),
                });
            }
        }
        let profile = profile
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_PROFILE").ok())
            .unwrap_or_else(|| "default".into());
        let path = shared_credentials_path()?;
        let all = read_file(&path)?;
        all.into_iter().find(|c| c.source == profile).ok_or_else(|| {
            Error::usage(format!(
                "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and profile {profile:?} \
                 is not in {}; set them or pass --profile",
                path.display()
            ))
        })
    }
}

fn shared_credentials_path() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("AWS_SHARED_CREDENTIALS_FILE") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var("HOME")
        .map_err(|_| Error::usage("HOME is not set; set AWS_SHARED_CREDENTIALS_FILE"))?;
    Ok(Path::new(&home).join(".aws").join("credentials"))
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
