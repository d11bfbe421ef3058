//! SigV4 query-string presigning and verification for WebSocket URLs.
//!
//! The shape follows AWS's EC2 Instance Connect tunnel: a `GET` of a `wss://`
//! URL whose query carries `X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders=host` (and
//! `X-Amz-Security-Token` for temporary credentials), signed over the
//! canonical request with the empty body's hash, exactly as botocore's query
//! signer (the AWS CLI's) does — a test compares with a URL botocore signed.
//! The same code verifies on the gateway side.

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

/// What is signed: the host (with a non-default port), the path and the query.
#[derive(Debug, Clone)]
pub struct UrlRequest<'a> {
    /// The `Host` header value.
    pub host: &'a str,
    /// The URL path (not yet encoded).
    pub path: &'a str,
    /// Query parameters other than `X-Amz-Signature`, decoded.
    pub query: Vec<(String, String)>,
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
    let request = UrlRequest { host, path, query };
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

/// Computes the hex signature of `request`.
pub fn signature(
    request: &UrlRequest<'_>,
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

fn canonical_request(r: &UrlRequest<'_>) -> String {
    let mut pairs: Vec<(String, String)> = r
        .query
        .iter()
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let path = utf8_percent_encode(if r.path.is_empty() { "/" } else { r.path }, PATH).to_string();
    format!(
        "GET\n{path}\n{}\nhost:{}\n\nhost\n{EMPTY_SHA256}",
        query.join("&"),
        r.host.trim()
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
        let ok = UrlRequest {
            host: "gw:8443",
            path: "/v1/consoles/lab",
            query: query.clone(),
        };
        assert!(same_signature(
            &signature(&ok, secret, "20231114T221320Z", "us-east-1", SERVICE),
            sig
        ));
        let other_path = UrlRequest {
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
        let other_host = UrlRequest {
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

    #[test]
    fn dates_round_trip() {
        assert_eq!(amz_date(1_700_000_000), "20231114T221320Z");
        assert_eq!(parse_amz_date("20231114T221320Z"), Some(1_700_000_000));
    }
}
