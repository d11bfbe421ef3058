//! The three EC2 Query API calls the preflight needs, without aws-sdk-ec2.
//!
//! aws-sdk-ec2 is one of the largest generated crates (it takes minutes to
//! compile on a small machine) and we need three read-only calls from it:
//! `GetSerialConsoleAccessStatus`, `DescribeInstances` and
//! `DescribeInstanceTypes`. The EC2 Query protocol is simple: a form-encoded
//! `POST /` with `Action` and `Version`, signed with SigV4 (`crate::aws::sigv4`, the
//! same code that presigns and verifies WebSocket URLs), answered in XML. Only the handful of fields we read are
//! picked out of the response.
//!
//! Like the SDK's standard retry mode, a call is tried up to three times
//! when the failure is worth retrying (no answer, HTTP 5xx, a throttling or
//! transient error code), with the same jittered backoff as the key push;
//! every request says who sends it (`User-Agent: ec2-serial-expect/VERSION`).
//! One HTTPS client per [`Ec2Query`], trusting what the run trusts
//! ([`crate::tls::ClientTrust`]), so the calls of a preflight share it.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use sha2::{Digest, Sha256};

use super::aws_error;
use super::config::AwsContext;
use crate::aws::credentials::Credentials;
use crate::aws::sigv4::{sign_in_headers, SignedRequest};
use crate::error::{error_chain, Error, Result};

/// The EC2 API version every Query call names.
pub(crate) const API_VERSION: &str = "2016-11-15";
/// Who sends the Query calls.
const USER_AGENT: &str = concat!("ec2-serial-expect/", env!("CARGO_PKG_VERSION"));
/// Tries per call, the first included (the SDK's standard retry mode).
const MAX_ATTEMPTS: u32 = 3;
/// Longest wait for one answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// Error codes worth another try: throttling and transient service faults.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "EC2ThrottledException",
    "BandwidthLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
];

/// An error the EC2 API returned (its `Code` and `Message`), or a failure to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The service answered with an error document.
    Service {
        /// The error code, e.g. `InvalidInstanceID.NotFound`.
        code: String,
        /// The service's message.
        message: String,
    },
    /// The request never got a parseable answer.
    Transport(String),
}

impl QueryError {
    /// Whether another try may succeed (as the SDK's standard retry mode
    /// decides): no answer, or a throttling/transient error.
    fn is_retryable(&self) -> bool {
        match self {
            QueryError::Transport(_) => true,
            QueryError::Service { code, .. } => RETRYABLE_CODES.contains(&code.as_str()),
        }
    }
}

/// A signed EC2 Query client for one Region and one set of credentials.
pub(crate) struct Ec2Query {
    url: String,
    region: String,
    credentials: Credentials,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Ec2Query {
    /// A client for the Region and endpoint of `ctx`.
    pub(crate) fn new(ctx: &AwsContext, credentials: Credentials) -> Ec2Query {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*ctx.trust().config()).clone())
            .https_or_http()
            .enable_http1()
            .build();
        Ec2Query {
            url: ctx.endpoint_url("EC2", "EC2", "ec2"),
            region: ctx.region.clone(),
            credentials,
            client: Client::builder(TokioExecutor::new()).build(https),
        }
    }

    /// The same client (and connection pool) signing with `credentials`.
    pub(crate) fn with_credentials(&self, credentials: Credentials) -> Ec2Query {
        Ec2Query {
            url: self.url.clone(),
            region: self.region.clone(),
            credentials,
            client: self.client.clone(),
        }
    }

    /// The endpoint URL in use (for messages).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Calls `action` with `params` and returns the XML body of a success,
    /// retrying what is worth retrying.
    pub(crate) async fn call(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<String, QueryError> {
        let mut attempt = 1;
        loop {
            match self.call_once(action, params).await {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    let pause = super::keypush::backoff(attempt);
                    tracing::info!(
                        "EC2 {action} failed ({e:?}); try {} in {pause:?}",
                        attempt + 1
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn call_once(&self, action: &str, params: &[(&str, &str)]) -> Result<String, QueryError> {
        let body = form_body(action, params);
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&self.url)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header("user-agent", USER_AGENT)
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| {
                QueryError::Transport(format!("bad EC2 endpoint URL {}: {e}", self.url))
            })?;
        self.sign(&mut request, body.as_bytes())?;
        let (status, text) = self.send(request).await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(parse_error(status.as_u16(), &text))
        }
    }

    async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(http::StatusCode, String), QueryError> {
        let uri = request.uri().to_string();
        let unreachable = |e: &dyn std::fmt::Display| {
            QueryError::Transport(format!("cannot reach the EC2 API at {uri}: {e}"))
        };
        let response = tokio::time::timeout(ANSWER_WITHIN, self.client.request(request))
            .await
            .map_err(|_| unreachable(&"no answer within 30 s"))?
            .map_err(|e| unreachable(&error_chain(&e)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Signs with [`crate::aws::sigv4`], the code that also presigns
    /// WebSocket URLs and verifies them on the gateway.
    fn sign(
        &self,
        request: &mut http::Request<Full<Bytes>>,
        body: &[u8],
    ) -> Result<(), QueryError> {
        let uri = request.uri().clone();
        let host = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let content_type = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let signed = SignedRequest {
            method: "POST",
            host,
            path: uri.path(),
            query: Vec::new(),
            headers: vec![("content-type", content_type)],
            payload_sha256: hex::encode(Sha256::digest(body)),
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for (name, value) in sign_in_headers(signed, &self.credentials, &self.region, "ec2", now) {
            let value = http::HeaderValue::from_str(&value)
                .map_err(|e| QueryError::Transport(format!("cannot sign the EC2 request: {e}")))?;
            request.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

fn form_body(action: &str, params: &[(&str, &str)]) -> String {
    let mut pairs = vec![("Action", action), ("Version", API_VERSION)];
    pairs.extend_from_slice(params);
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::aws::sigv4::encode(k),
                crate::aws::sigv4::encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Reads `<Response><Errors><Error><Code>…</Code><Message>…</Message>` from an error body.
pub(crate) fn parse_error(status: u16, xml: &str) -> QueryError {
    match xml_text(xml, "Code") {
        Some(code) => QueryError::Service {
            code,
            message: xml_text(xml, "Message").unwrap_or_default(),
        },
        None => QueryError::Transport(format!(
            "the EC2 API answered HTTP {status} without an error code"
        )),
    }
}

/// The text of the first `<name>…</name>` element in `xml`, entities decoded.
pub(crate) fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(decode_entities(xml[start..end].trim()))
}

/// The part of `xml` inside the first `<name>…</name>` element.
pub(crate) fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Error {
        match e {
            QueryError::Service { code, message } => {
                aws_error(format!("EC2 API error {code}: {message}"))
            }
            QueryError::Transport(message) => aws_error(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_body_encodes_like_the_query_protocol() {
        assert_eq!(
            form_body(
                "DescribeInstances",
                &[("InstanceId.1", "i-0123456789abcdef0")]
            ),
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0"
        );
    }

    #[test]
    fn reads_error_documents_and_fields() {
        let xml = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>\
                   <Message>The instance ID 'i-1' does not exist &amp; never did</Message></Error></Errors>\
                   <RequestID>x</RequestID></Response>";
        assert_eq!(
            parse_error(400, xml),
            QueryError::Service {
                code: "InvalidInstanceID.NotFound".into(),
                message: "The instance ID 'i-1' does not exist & never did".into()
            }
        );
        assert!(matches!(
            parse_error(503, "<html>busy</html>"),
            QueryError::Transport(_)
        ));
        let state = "<instanceState><code>16</code><name>running</name></instanceState>";
        assert_eq!(
            xml_text(xml_element(state, "instanceState").unwrap(), "name").as_deref(),
            Some("running")
        );
    }
}
