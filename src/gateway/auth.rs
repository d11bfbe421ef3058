//! Who may open a console through the gateway.
//!
//! Three modes: SigV4-presigned URLs verified against a shared-credentials
//! file (each profile an identity; expiry, clock skew, host, path and replay
//! of a used URL all checked), a bearer token, or none (loopback only).
//! A refusal is an HTTP status with a body that says what to fix.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::aws::credentials::Credentials;
use crate::aws::sigv4;
use crate::secret::Secret;

/// How much a client's clock may differ from ours.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// The longest validity a presigned URL may claim.
const MAX_EXPIRES_SECS: i64 = 3600;

/// The configured authentication.
pub enum Auth {
    /// SigV4 presigned URLs.
    SigV4 {
        /// Known identities.
        credentials: Vec<Credentials>,
        /// If set, the Region the signature's scope must name.
        region: Option<String>,
        /// Signatures already used, with when they expire (replay protection).
        used: Mutex<HashMap<String, i64>>,
    },
    /// A bearer token.
    Token(Secret),
    /// Anyone (loopback only).
    None,
}

/// A refusal: an HTTP status and a message for the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 401 or 403.
    pub status: u16,
    /// What is wrong and what to do.
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// What the gateway saw of a handshake request.
pub struct Presented<'a> {
    /// The `Host` header.
    pub host: &'a str,
    /// The URL path.
    pub path: &'a str,
    /// The raw query string.
    pub query: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
}

impl Auth {
    /// Checks a request; returns the authenticated identity.
    pub fn check(&self, req: &Presented<'_>, now: i64) -> Result<String, Refusal> {
        match self {
            Auth::None => Ok("anonymous".into()),
            Auth::Token(token) => {
                let given = req.authorization.and_then(|h| h.strip_prefix("Bearer ")).ok_or_else(|| {
                    refuse(401, "this gateway needs a bearer token: connect with --ws-auth token --token-env VAR")
                })?;
                if sigv4::same_signature(given.trim(), token.expose()) {
                    Ok("token".into())
                } else {
                    Err(refuse(
                        403,
                        "the bearer token is not valid for this gateway",
                    ))
                }
            }
            Auth::SigV4 {
                credentials,
                region,
                used,
            } => verify_sigv4(req, credentials, region.as_deref(), used, now),
        }
    }
}

fn verify_sigv4(
    req: &Presented<'_>,
    credentials: &[Credentials],
    region: Option<&str>,
    used: &Mutex<HashMap<String, i64>>,
    now: i64,
) -> Result<String, Refusal> {
    let mut query: Vec<(String, String)> = Vec::new();
    let mut signature = None;
    for kv in req.query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let (k, v) = (decode(k), decode(v));
        if k == "X-Amz-Signature" {
            signature = Some(v);
        } else {
            query.push((k, v));
        }
    }
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let unsigned = || {
        refuse(401, "this gateway needs a SigV4-presigned URL: connect with --ws-auth sigv4 and AWS credentials")
    };
    let signature = signature.ok_or_else(unsigned)?;
    if get("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256")
        || get("X-Amz-SignedHeaders") != Some("host")
    {
        return Err(refuse(403, "unsupported signature: expected X-Amz-Algorithm=AWS4-HMAC-SHA256 and X-Amz-SignedHeaders=host"));
    }
    let credential = get("X-Amz-Credential").ok_or_else(unsigned)?;
    let date = get("X-Amz-Date").ok_or_else(unsigned)?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [key_id, day, scope_region, service, "aws4_request"] = parts[..] else {
        return Err(refuse(403, "malformed X-Amz-Credential"));
    };
    if service != sigv4::SERVICE || !date.starts_with(day) {
        return Err(refuse(
            403,
            format!(
                "the credential scope must name service {} and the signing day",
                sigv4::SERVICE
            ),
        ));
    }
    if let Some(expected) = region.filter(|r| *r != scope_region) {
        return Err(refuse(403, format!("signed for Region {scope_region}, but this gateway is in {expected}: pass --region {expected}")));
    }
    let signed_at =
        sigv4::parse_amz_date(date).ok_or_else(|| refuse(403, "malformed X-Amz-Date"))?;
    let expires: i64 = get("X-Amz-Expires")
        .and_then(|e| e.parse().ok())
        .filter(|e| (1..=MAX_EXPIRES_SECS).contains(e))
        .ok_or_else(|| refuse(403, "X-Amz-Expires must be 1 to 3600 seconds"))?;
    if signed_at > now + MAX_CLOCK_SKEW_SECS {
        return Err(refuse(
            403,
            "the URL is signed in the future: check the client's clock",
        ));
    }
    if now > signed_at + expires {
        return Err(refuse(
            403,
            format!(
                "the presigned URL expired {} s ago: sign a fresh one (they live {expires} s)",
                now - signed_at - expires
            ),
        ));
    }
    let creds = credentials
        .iter()
        .find(|c| c.access_key_id == key_id)
        .ok_or_else(|| refuse(403, "unknown access key id for this gateway"))?;
    let request = sigv4::Request {
        host: req.host,
        path: req.path,
        query: query.clone(),
    };
    let expected = sigv4::signature(
        &request,
        creds.secret_access_key.expose(),
        date,
        scope_region,
        service,
    );
    if !sigv4::same_signature(&expected, &signature) {
        return Err(refuse(
            403,
            "the signature does not match (wrong secret key, or the URL, host or path was changed)",
        ));
    }
    let mut used = used.lock().unwrap_or_else(|p| p.into_inner());
    used.retain(|_, until| *until >= now);
    if used
        .insert(signature, signed_at + expires + MAX_CLOCK_SKEW_SECS)
        .is_some()
    {
        return Err(refuse(
            403,
            "this presigned URL was already used: sign a fresh one for each connection",
        ));
    }
    Ok(creds.source.clone())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: Secret::new("k", "secret-key"),
            session_token: None,
            source: "ops-team".into(),
        }
    }

    fn sigv4_auth() -> Auth {
        Auth::SigV4 {
            credentials: vec![creds()],
            region: Some("eu-west-1".into()),
            used: Mutex::new(HashMap::new()),
        }
    }

    fn presented<'a>(host: &'a str, path: &'a str, query: &'a str) -> Presented<'a> {
        Presented {
            host,
            path,
            query,
            authorization: None,
        }
    }

    #[test]
    fn accepts_once_then_refuses_replay_expiry_and_tampering() {
        let now = 1_700_000_000;
        let q = sigv4::presign(
            "gw:9000",
            "/v1/consoles/lab",
            vec![],
            &creds(),
            "eu-west-1",
            now,
        );
        let auth = sigv4_auth();
        assert_eq!(
            auth.check(&presented("gw:9000", "/v1/consoles/lab", &q), now + 5),
            Ok("ops-team".into())
        );
        let again = auth
            .check(&presented("gw:9000", "/v1/consoles/lab", &q), now + 6)
            .unwrap_err();
        assert!(again.message.contains("already used"), "{again:?}");

        let late = sigv4_auth()
            .check(&presented("gw:9000", "/v1/consoles/lab", &q), now + 61)
            .unwrap_err();
        assert!(late.message.contains("expired"), "{late:?}");
        let moved = sigv4_auth()
            .check(&presented("gw:9000", "/v1/consoles/prod", &q), now)
            .unwrap_err();
        assert!(moved.message.contains("does not match"), "{moved:?}");
        let host = sigv4_auth()
            .check(&presented("other:9000", "/v1/consoles/lab", &q), now)
            .unwrap_err();
        assert!(host.message.contains("does not match"), "{host:?}");
        let unsigned = sigv4_auth()
            .check(&presented("gw:9000", "/v1/consoles/lab", ""), now)
            .unwrap_err();
        assert_eq!(unsigned.status, 401);
    }

    #[test]
    fn wrong_region_and_unknown_key_are_named() {
        let now = 1_700_000_000;
        let q = sigv4::presign("gw", "/p", vec![], &creds(), "us-east-1", now);
        let e = sigv4_auth()
            .check(&presented("gw", "/p", &q), now)
            .unwrap_err();
        assert!(e.message.contains("--region eu-west-1"), "{e:?}");
        let mut other = creds();
        other.access_key_id = "AKIDOTHER".into();
        let q = sigv4::presign("gw", "/p", vec![], &other, "eu-west-1", now);
        assert!(sigv4_auth()
            .check(&presented("gw", "/p", &q), now)
            .unwrap_err()
            .message
            .contains("unknown access key"));
    }

    #[test]
    fn bearer_tokens() {
        let auth = Auth::Token(Secret::new("token", "t0k3n"));
        let ok = Presented {
            authorization: Some("Bearer t0k3n"),
            ..presented("gw", "/p", "")
        };
        assert_eq!(auth.check(&ok, 0), Ok("token".into()));
        let bad = Presented {
            authorization: Some("Bearer nope"),
            ..presented("gw", "/p", "")
        };
        assert_eq!(auth.check(&bad, 0).unwrap_err().status, 403);
        assert_eq!(
            auth.check(&presented("gw", "/p", ""), 0)
                .unwrap_err()
                .status,
            401
        );
    }
}
