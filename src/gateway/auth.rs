//! Who may open a console through the gateway.
//!
//! Three modes: SigV4-presigned URLs verified against a shared-credentials
//! file (each profile an identity; expiry, clock skew, path, the session
//! token and replay of a used URL all checked, and the host bound to the
//! gateway's configured public name, never to what the client says), a
//! bearer token of at least [`MIN_TOKEN_BYTES`], or none (loopback only).
//! A refusal is an HTTP status with a body that says what to fix.
//!
//! Replays are remembered in memory; a restart forgets them, so URLs signed
//! before the gateway started are refused ([`Auth::SigV4`]'s `not_before`):
//! no URL used before a restart can be used after it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::aws::credentials::Credentials;
use crate::aws::sigv4;
use crate::secret::Secret;

/// How much a client's clock may differ from ours.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// The longest validity a presigned URL may claim.
const MAX_EXPIRES_SECS: i64 = 3600;
/// The shortest bearer token accepted (a guessable token is no lock).
pub const MIN_TOKEN_BYTES: usize = 16;

/// The configured authentication.
#[derive(Debug)]
pub enum Auth {
    /// SigV4 presigned URLs.
    SigV4 {
        /// Known identities.
        credentials: Vec<Credentials>,
        /// If set, the Region the signature's scope must name.
        region: Option<String>,
        /// Signatures already used, with when they expire (replay protection).
        used: Mutex<HashMap<String, i64>>,
        /// URLs signed before this time (the gateway's start) are refused.
        not_before: i64,
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
    /// SigV4 verification against `credentials`, refusing URLs signed
    /// before `not_before` (pass the gateway's start time). Errors name what
    /// is wrong with the identities: none, an empty secret, a repeated id.
    pub fn sigv4(
        credentials: Vec<Credentials>,
        region: Option<String>,
        not_before: i64,
    ) -> Result<Auth, String> {
        if credentials.is_empty() {
            return Err("the credentials file holds no identity".into());
        }
        for (i, c) in credentials.iter().enumerate() {
            if c.access_key_id.is_empty() || c.secret_access_key.expose().is_empty() {
                return Err(format!(
                    "identity {:?} has an empty access key id or secret key: anyone could sign as it",
                    c.source
                ));
            }
            if let Some(other) = credentials[..i]
                .iter()
                .find(|o| o.access_key_id == c.access_key_id)
            {
                return Err(format!(
                    "identities {:?} and {:?} have the same access key id {}: which one signed would be a guess",
                    other.source, c.source, c.access_key_id
                ));
            }
        }
        Ok(Auth::SigV4 {
            credentials,
            region,
            used: Mutex::new(HashMap::new()),
            not_before,
        })
    }

    /// Bearer-token authentication; refuses tokens shorter than [`MIN_TOKEN_BYTES`].
    pub fn token(token: Secret) -> Result<Auth, String> {
        if token.expose().len() < MIN_TOKEN_BYTES {
            return Err(format!(
                "the token is {} bytes: use at least {MIN_TOKEN_BYTES} random bytes (e.g. `openssl rand -hex 24`)",
                token.expose().len()
            ));
        }
        Ok(Auth::Token(token))
    }

    /// Whether clients send a credential (token or signature) over the wire.
    pub fn sends_credentials(&self) -> bool {
        !matches!(self, Auth::None)
    }

    /// Whether `given` is this gateway's token (the web page's sign-in
    /// form); compared in constant time.
    pub fn accepts_token(&self, given: &str) -> bool {
        match self {
            Auth::Token(token) => sigv4::same_signature(given.trim(), token.expose()),
            _ => false,
        }
    }

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
                not_before,
            } => {
                let verified = verify_sigv4(req, credentials, region.as_deref(), now)?;
                remember(used, verified, *not_before, now)
            }
        }
    }
}

/// A request whose signature verified.
struct Verified {
    identity: String,
    signature: String,
    signed_at: i64,
    expires: i64,
}

/// Refuses a URL signed before `not_before` or already used; returns the identity.
fn remember(
    used: &Mutex<HashMap<String, i64>>,
    v: Verified,
    not_before: i64,
    now: i64,
) -> Result<String, Refusal> {
    if v.signed_at < not_before {
        return Err(refuse(
            403,
            "this URL was signed before the gateway (re)started: sign a fresh one for each connection",
        ));
    }
    let mut used = used.lock().unwrap_or_else(|p| p.into_inner());
    used.retain(|_, until| *until >= now);
    if used
        .insert(v.signature, v.signed_at + v.expires + MAX_CLOCK_SKEW_SECS)
        .is_some()
    {
        return Err(refuse(
            403,
            "this presigned URL was already used: sign a fresh one for each connection",
        ));
    }
    Ok(v.identity)
}

fn verify_sigv4(
    req: &Presented<'_>,
    credentials: &[Credentials],
    region: Option<&str>,
    now: i64,
) -> Result<Verified, Refusal> {
    let presented = sigv4::Presigned::parse(req.query);
    let unsigned = || {
        refuse(401, "this gateway needs a SigV4-presigned URL: connect with --ws-auth sigv4 and AWS credentials")
    };
    let signature = presented.signature.clone().ok_or_else(unsigned)?;
    if !presented.is_supported() {
        return Err(refuse(403, "unsupported signature: expected X-Amz-Algorithm=AWS4-HMAC-SHA256 and X-Amz-SignedHeaders=host"));
    }
    let credential = presented.get("X-Amz-Credential").ok_or_else(unsigned)?;
    let date = presented.get("X-Amz-Date").ok_or_else(unsigned)?;
    let scope = CredentialScope::read(credential, date, region)?;
    let (signed_at, expires) = time_window(&presented, date, now)?;
    let creds = credentials
        .iter()
        .find(|c| c.access_key_id == scope.key_id)
        .ok_or_else(|| refuse(403, "unknown access key id for this gateway"))?;
    let request = sigv4::SignedRequest::url(req.host, req.path, presented.query.clone());
    let expected = sigv4::signature(
        &request,
        creds.secret_access_key.expose(),
        date,
        scope.region,
        sigv4::SERVICE,
    );
    if !sigv4::same_signature(&expected, &signature) {
        return Err(refuse(
            403,
            "the signature does not match (wrong secret key, or signed for another gateway, \
             URL or path: the gateway's public name is its --public-host)",
        ));
    }
    check_token(presented.get("X-Amz-Security-Token"), creds)?;
    Ok(Verified {
        identity: creds.source.clone(),
        signature,
        signed_at,
        expires,
    })
}

/// `X-Amz-Credential` read and checked: `KEY/DAY/REGION/SERVICE/aws4_request`
/// for this service, signed on the URL's own day, in the gateway's Region.
struct CredentialScope<'q> {
    key_id: &'q str,
    region: &'q str,
}

impl<'q> CredentialScope<'q> {
    fn read(credential: &'q str, date: &str, gateway: Option<&str>) -> Result<Self, Refusal> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [key_id, day, region, service, "aws4_request"] = parts[..] else {
            return Err(refuse(403, "malformed X-Amz-Credential"));
        };
        let day_ok =
            day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()) && date.get(..8) == Some(day);
        if service != sigv4::SERVICE || !day_ok {
            return Err(refuse(
                403,
                format!(
                    "the credential scope must name service {} and the signing day",
                    sigv4::SERVICE
                ),
            ));
        }
        if let Some(expected) = gateway.filter(|r| *r != region) {
            return Err(refuse(403, format!("signed for Region {region}, but this gateway is in {expected}: pass --region {expected}")));
        }
        Ok(CredentialScope { key_id, region })
    }
}

/// When the URL was signed and for how long it holds, if `now` is inside.
fn time_window(presented: &sigv4::Presigned, date: &str, now: i64) -> Result<(i64, i64), Refusal> {
    let signed_at =
        sigv4::parse_amz_date(date).ok_or_else(|| refuse(403, "malformed X-Amz-Date"))?;
    let expires: i64 = presented
        .get("X-Amz-Expires")
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
    Ok((signed_at, expires))
}

/// Temporary credentials: the token must be the identity's own.
fn check_token(given: Option<&str>, creds: &Credentials) -> Result<(), Refusal> {
    let token_ok = match (given, &creds.session_token) {
        (None, None) => true,
        (Some(given), Some(known)) => sigv4::same_signature(given, known.expose()),
        _ => false,
    };
    if token_ok {
        return Ok(());
    }
    Err(refuse(
        403,
        "the session token (X-Amz-Security-Token) does not match this identity's: \
         sign with the identity's own temporary credentials, or without a token for long-term keys",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> String {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: Secret::new("k", "secret-key"),
            session_token: None,
            source: "ops-team".into(),
            expires_at: None,
        }
    }

    fn sigv4_auth() -> Auth {
        Auth::sigv4(vec![creds()], Some("eu-west-1".into()), 0).unwrap()
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
    fn identities_scope_dates_tokens_and_restarts_are_checked() {
        let now = 1_700_000_000;
        let mut empty = creds();
        empty.secret_access_key = Secret::new("k", "");
        assert!(Auth::sigv4(vec![empty], None, 0)
            .unwrap_err()
            .contains("empty"));
        let mut twin = creds();
        twin.source = "other-team".into();
        assert!(Auth::sigv4(vec![creds(), twin], None, 0)
            .unwrap_err()
            .contains("same access key id"));

        // An empty scope date used to match any date.
        let q = sigv4::presign("gw", "/p", vec![], &creds(), "eu-west-1", now);
        let emptied = q.replace("%2F20231114%2F", "%2F%2F");
        let e = sigv4_auth()
            .check(&presented("gw", "/p", &emptied), now)
            .unwrap_err();
        assert!(e.message.contains("signing day"), "{e:?}");

        // A token the identity does not have, and the identity's own token.
        let mut temporary = creds();
        temporary.session_token = Some(Secret::new("t", "FwoGZXIvYXdzEXAMPLE"));
        let q = sigv4::presign("gw", "/p", vec![], &temporary, "eu-west-1", now);
        let e = sigv4_auth()
            .check(&presented("gw", "/p", &q), now)
            .unwrap_err();
        assert!(e.message.contains("session token"), "{e:?}");
        let with_token = Auth::sigv4(vec![temporary.clone()], None, 0).unwrap();
        assert_eq!(
            with_token.check(&presented("gw", "/p", &q), now),
            Ok("ops-team".into())
        );
        let q = sigv4::presign("gw", "/p", vec![], &creds(), "eu-west-1", now);
        let e = Auth::sigv4(vec![temporary], None, 0)
            .unwrap()
            .check(&presented("gw", "/p", &q), now)
            .unwrap_err();
        assert!(e.message.contains("session token"), "{e:?}");

        // Signed before the gateway started: possibly used before a restart.
        let restarted = Auth::sigv4(vec![creds()], None, now + 1).unwrap();
        let e = restarted
            .check(&presented("gw", "/p", &q), now + 2)
            .unwrap_err();
        assert!(e.message.contains("(re)started"), "{e:?}");
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
        assert!(Auth::token(Secret::new("token", "short")).is_err());
        let auth = Auth::token(Secret::new("token", "t0k3n-0123456789abcdef")).unwrap();
        let ok = Presented {
            authorization: Some("Bearer t0k3n-0123456789abcdef"),
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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// No change to a valid presigned request verifies: not to one
            /// character of the query, nor of the host or path.
            #[test]
            fn no_mutation_of_a_valid_url_verifies(
                at in any::<prop::sample::Index>(),
                with in "[ -~]",
                part in 0usize..3,
            ) {
                let now = 1_700_000_000;
                let q = sigv4::presign("gw:9000", "/v1/consoles/lab", vec![], &creds(), "eu-west-1", now);
                let (mut host, mut path, mut query) =
                    ("gw:9000".to_string(), "/v1/consoles/lab".to_string(), q.clone());
                let target = [&mut host, &mut path, &mut query][part].clone();
                let i = at.index(target.len());
                let mut mutated = target.clone();
                mutated.replace_range(i..=i, &with);
                prop_assume!(mutated != target);
                match part {
                    0 => host = mutated,
                    1 => path = mutated,
                    _ => query = mutated,
                }
                let verdict = sigv4_auth().check(&presented(&host, &path, &query), now);
                // The one harmless change: the same query with an
                // equivalent percent-encoding is the same request.
                let same = part == 2
                    && decode(&query) == decode(&q);
                prop_assert!(verdict.is_err() || same, "{host} {path} {query}");
            }
        }
    }
}
