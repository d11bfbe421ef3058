//! SigV4, the one implementation: presigning WebSocket URLs (the client),
//! verifying them (the gateway) and signing the EC2 Query API's `POST`s in
//! headers, all through one canonical-request and signature function.
//!
//! The URL shape follows AWS's EC2 Instance Connect tunnel: a `GET` of a
//! `wss://` URL whose query carries `X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders=host` (and
//! `X-Amz-Security-Token` for temporary credentials), signed over the
//! canonical request with the empty body's hash, exactly as botocore's query
//! signer (the AWS CLI's) does — a test compares with a URL botocore signed.
//! Header signing is compared with the AWS SDK's own signer (aws-sigv4, a
//! dev-dependency): that crate signs but has no verifier, and the gateway
//! must verify with the same code that signs, so the crate signs nothing
//! here.

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;

/// The service name in the credential scope.
pub const SERVICE: &str = "ec2-instance-connect";
/// How long a presigned URL stays valid, as AWS's tunnel uses it.
pub const EXPIRES_SECS: u64 = 60;
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The body hash of a GET: SHA-256 of nothing (botocore signs it so for this
/// service; only S3 uses `UNSIGNED-PAYLOAD` in presigned URLs).
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 3986 unreserved characters stay; everything else is %-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, but `/` stays (for paths).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Percent-encodes a query key or value the SigV4 way.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Formats a Unix time as SigV4's `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap_or_default()
}

/// Parses `YYYYMMDDTHHMMSSZ` back to Unix time.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// The parts of an HTTP request a SigV4 signature covers.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`.
    pub method: &'a str,
    /// The `Host` header value.
    pub host: &'a str,
    /// The URL path (not yet encoded).
    pub path: &'a str,
    /// Query parameters other than `X-Amz-Signature`, decoded.
    pub query: Vec<(String, String)>,
    /// Signed headers besides `host`: lowercase names, values as sent.
    pub headers: Vec<(&'a str, String)>,
    /// The hex SHA-256 of the body.
    pub payload_sha256: String,
}

impl<'a> SignedRequest<'a> {
    /// A `GET` of `host` `path` with `query` and only `host` signed: a
    /// presigned URL, as [`presign`] makes and the gateway verifies.
    pub fn url(host: &'a str, path: &'a str, query: Vec<(String, String)>) -> Self {
        SignedRequest {
            method: "GET",
            host,
            path,
            query,
            headers: Vec::new(),
            payload_sha256: EMPTY_SHA256.to_string(),
        }
    }

    /// The signed header names, `;`-joined, as the signature states them.
    fn signed_headers(&self) -> String {
        let mut names: Vec<&str> = self.headers.iter().map(|(k, _)| *k).collect();
        names.push("host");
        names.sort_unstable();
        names.join(";")
    }
}

/// Adds the SigV4 parameters to `query` and returns the complete query string.
pub fn presign(
    host: &str,
    path: &str,
    mut query: Vec<(String, String)>,
    creds: &Credentials,
    region: &str,
    now: i64,
) -> String {
    let date = amz_date(now);
    let scope = format!("{}/{region}/{SERVICE}/aws4_request", &date[..8]);
    query.push(("X-Amz-Algorithm".into(), ALGORITHM.into()));
    query.push((
        "X-Amz-Credential".into(),
        format!("{}/{scope}", creds.access_key_id),
    ));
    query.push(("X-Amz-Date".into(), date.clone()));
    query.push(("X-Amz-Expires".into(), EXPIRES_SECS.to_string()));
    if let Some(token) = &creds.session_token {
        query.push(("X-Amz-Security-Token".into(), token.expose().to_string()));
    }
    query.push(("X-Amz-SignedHeaders".into(), "host".into()));
    let request = SignedRequest::url(host, path, query);
    let signature = signature(
        &request,
        creds.secret_access_key.expose(),
        &date,
        region,
        SERVICE,
    );
    let mut out: Vec<String> = request
        .query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    out.push(format!("X-Amz-Signature={signature}"));
    out.join("&")
}

/// Signs `request` in its headers, as AWS APIs take it (the EC2 Query
/// API's `POST`): adds `x-amz-date` (and `x-amz-security-token` for
/// temporary credentials) to the signed headers and returns every header to
/// send, `authorization` last.
pub fn sign_in_headers(
    mut request: SignedRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: i64,
) -> Vec<(&'static str, String)> {
    let date = amz_date(now);
    let mut added = vec![("x-amz-date", date.clone())];
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token", token.expose().to_string()));
    }
    request.headers.extend(added.iter().cloned());
    let signature = signature(
        &request,
        creds.secret_access_key.expose(),
        &date,
        region,
        service,
    );
    let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
    added.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            creds.access_key_id,
            request.signed_headers()
        ),
    ));
    added
}

/// A presigned URL's query read back: what [`presign`] wrote, for the
/// gateway to check.
#[derive(Debug)]
pub struct Presigned {
    /// Every parameter but the signature, decoded: what the signature covers.
    pub query: Vec<(String, String)>,
    /// `X-Amz-Signature`, if the URL has one.
    pub signature: Option<String>,
}

impl Presigned {
    /// Splits a raw query string (`k=v&…`, percent-encoded).
    pub fn parse(query: &str) -> Presigned {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut read = Presigned {
            query: Vec::new(),
            signature: None,
        };
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let (k, v) = (decode(k), decode(v));
            if k == "X-Amz-Signature" {
                read.signature = Some(v);
            } else {
                read.query.push((k, v));
            }
        }
        read
    }

    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the URL uses the one shape [`presign`] makes.
    pub fn is_supported(&self) -> bool {
        self.get("X-Amz-Algorithm") == Some(ALGORITHM)
            && self.get("X-Amz-SignedHeaders") == Some("host")
    }
}

/// Computes the hex signature of `request`: the one function that both
/// signs (URLs, API calls) and verifies (the gateway).
pub fn signature(
    request: &SignedRequest<'_>,
    secret: &str,
    amz_date: &str,
    region: &str,
    service: &str,
) -> String {
    let scope = format!(
        "{}/{region}/{service}/aws4_request",
        &amz_date[..8.min(amz_date.len())]
    );
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request(request).as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{secret}").as_bytes(),
        amz_date.get(..8).unwrap_or("").as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    hex::encode(hmac(&key, to_sign.as_bytes()))
}

fn canonical_request(r: &SignedRequest<'_>) -> String {
    let mut pairs: Vec<(String, String)> = r
        .query
        .iter()
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let path = utf8_percent_encode(if r.path.is_empty() { "/" } else { r.path }, PATH).to_string();
    let mut headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.trim())).collect();
    headers.push(("host", r.host.trim()));
    headers.sort_unstable();
    let headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    format!(
        "{}\n{path}\n{}\n{headers}\n{}\n{}",
        r.method,
        query.join("&"),
        r.signed_headers(),
        r.payload_sha256
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Compares two signatures in constant time.
pub fn same_signature(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("k", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
            source: "test".into(),
            expires_at: None,
        }
    }

    #[test]
    fn signing_key_matches_the_aws_documented_example() {
        // AWS docs, "Examples of how to derive a signing key": secret
        // wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn presigned_query_verifies_and_tampering_breaks_it() {
        let q = presign(
            "gw:8443",
            "/v1/consoles/lab",
            vec![],
            &creds(),
            "us-east-1",
            1_700_000_000,
        );
        assert!(q.contains("X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Fus-east-1%2Fec2-instance-connect%2Faws4_request"));
        let (rest, sig) = q.rsplit_once("&X-Amz-Signature=").unwrap();
        let query: Vec<(String, String)> = rest
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .map(|(k, v)| {
                (
                    k.to_string(),
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
            .collect();
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let ok = SignedRequest::url("gw:8443", "/v1/consoles/lab", query.clone());
        assert!(same_signature(
            &signature(&ok, secret, "20231114T221320Z", "us-east-1", SERVICE),
            sig
        ));
        let other_path = SignedRequest {
            path: "/v1/consoles/prod",
            ..ok.clone()
        };
        assert!(!same_signature(
            &signature(
                &other_path,
                secret,
                "20231114T221320Z",
                "us-east-1",
                SERVICE
            ),
            sig
        ));
        let other_host = SignedRequest {
            host: "evil:8443",
            ..ok
        };
        assert!(!same_signature(
            &signature(
                &other_host,
                secret,
                "20231114T221320Z",
                "us-east-1",
                SERVICE
            ),
            sig
        ));
    }

    #[test]
    fn presign_matches_botocore() {
        // Produced by botocore's SigV4QueryAuth (the AWS CLI's signer) for
        // the tunnel URL shape, service ec2-instance-connect, 60 s expiry.
        let query = [
            ("instanceConnectEndpointId", "eice-0123"),
            ("remotePort", "22"),
            ("privateIpAddress", "10.0.0.5"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let now = parse_amz_date("20261123T210939Z").unwrap();
        let q = presign(
            "gw.example.com:8443",
            "/openTunnel",
            query,
            &creds(),
            "us-east-1",
            now,
        );
        assert_eq!(
            q,
            "instanceConnectEndpointId=eice-0123&remotePort=22&privateIpAddress=10.0.0.5&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20261123%2Fus-east-1%2Fec2-instance-connect%2Faws4_request\
             &X-Amz-Date=20261123T210939Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=3b1d120c6cd994f358da28ab7dbf05e5c77c5f7d12e1496edbe53a181e044148"
        );
    }

    /// The EC2 Query API's `POST`, signed by us and by the AWS SDK's signer
    /// at the same instant: the same headers, byte for byte, with
    /// long-term and with temporary credentials.
    #[test]
    fn header_signing_matches_the_aws_sdk_signer() {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        use std::time::{Duration, UNIX_EPOCH};
        let now = 1_700_000_000;
        let body = "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123";
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        for token in [None, Some("FQoGZXIvYXdzEXAMPLETOKEN")] {
            let sdk = aws_credential_types::Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                token.map(str::to_string),
                None,
                "test",
            );
            let identity = sdk.into();
            let params = aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region("eu-west-1")
                .name("ec2")
                .time(UNIX_EPOCH + Duration::from_secs(now as u64))
                .settings(SigningSettings::default())
                .build()
                .unwrap()
                .into();
            let signable = SignableRequest::new(
                "POST",
                "https://ec2.eu-west-1.amazonaws.com/",
                [("content-type", content_type)].into_iter(),
                SignableBody::Bytes(body.as_bytes()),
            )
            .unwrap();
            let (instructions, _) = sign(signable, &params).unwrap().into_parts();
            let mut theirs: Vec<(String, String)> = instructions
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            theirs.sort();
            let ours_creds = Credentials {
                session_token: token.map(|t| Secret::new("token", t)),
                ..creds()
            };
            let request = SignedRequest {
                method: "POST",
                host: "ec2.eu-west-1.amazonaws.com",
                path: "/",
                query: Vec::new(),
                headers: vec![("content-type", content_type.to_string())],
                payload_sha256: hex::encode(Sha256::digest(body.as_bytes())),
            };
            let mut ours: Vec<(String, String)> =
                sign_in_headers(request, &ours_creds, "eu-west-1", "ec2", now)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
            ours.sort();
            assert_eq!(ours, theirs, "token: {token:?}");
        }
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(amz_date(1_700_000_000), "20231114T221320Z");
        assert_eq!(parse_amz_date("20231114T221320Z"), Some(1_700_000_000));
    }
}
