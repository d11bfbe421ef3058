//! TLS: whom our clients trust, and the gateway's server configuration.
//!
//! One trust story for every TLS client the tool has — `wss://` consoles,
//! the EC2 Query calls of the preflight and the AWS SDK's own HTTPS client:
//! the system's roots (the OS store, or `SSL_CERT_FILE`/`SSL_CERT_DIR` as
//! OpenSSL and the AWS CLI honour them) plus the private CA of `--ca-file`.
//! [`ClientTrust`] is built once, when the flags are validated, and handed
//! down in the connect options; nothing here is global. rustls with the
//! `ring` provider: no OpenSSL, no C toolchain beyond ring's.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, pki_types::pem::PemObject};

use crate::error::{Error, Result};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The PEM certificates in `pem` (read from `path`, named `what` in errors).
fn parse_certs(pem: &[u8], path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::usage(format!("{what} {} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::usage(format!(
            "{what} {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::usage(format!("cannot read {what} {}: {e}", path.display())))
}

/// Whom TLS clients trust: the system's roots plus an optional private CA.
///
/// Cheap to clone (shared); built once per run by [`ClientTrust::new`]. The
/// rustls configuration is made on first use: loading the system's roots
/// parses a few hundred certificates, which a run that never opens a TLS
/// connection (a replay, a local console) should not pay (it was a quarter
/// of the CPU of 1,000 replayed sessions in one process).
#[derive(Clone)]
pub struct ClientTrust {
    /// The private CA of `--ca-file`, checked when the trust is built.
    private_ca: Option<Arc<PrivateCa>>,
    config: Arc<OnceLock<Arc<rustls::ClientConfig>>>,
}

/// A private CA: its certificates, and its PEM text for clients that take
/// PEM (the AWS SDK).
struct PrivateCa {
    certs: Vec<CertificateDer<'static>>,
    pem: Vec<u8>,
}

impl ClientTrust {
    /// The system's roots, plus the CA certificates in `ca_file` when given
    /// (a bad file is a usage error naming it, now rather than at first use).
    pub fn new(ca_file: Option<&Path>) -> Result<ClientTrust> {
        let private_ca = match ca_file {
            None => None,
            Some(path) => {
                let pem = read(path, "--ca-file")?;
                let certs = parse_certs(&pem, path, "--ca-file")?;
                let mut check = rustls::RootCertStore::empty();
                for cert in &certs {
                    check.add(cert.clone()).map_err(|e| {
                        Error::usage(format!(
                            "--ca-file {}: unusable certificate: {e}",
                            path.display()
                        ))
                    })?;
                }
                Some(Arc::new(PrivateCa { certs, pem }))
            }
        };
        Ok(ClientTrust {
            private_ca,
            config: Arc::new(OnceLock::new()),
        })
    }

    /// The rustls client configuration (for `wss://` and the EC2 Query calls).
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config
            .get_or_init(|| {
                let mut roots = system_roots();
                if let Some(ca) = &self.private_ca {
                    // Each was added to a store once already, in `new`.
                    let _ = roots.add_parsable_certificates(ca.certs.iter().cloned());
                }
                let config = rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .expect("ring supports TLS 1.2 and 1.3")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Arc::new(config)
            })
            .clone()
    }

    /// The private CA's PEM text, if `--ca-file` gave one.
    pub fn private_ca_pem(&self) -> Option<&[u8]> {
        self.private_ca.as_ref().map(|ca| ca.pem.as_slice())
    }
}

impl Default for ClientTrust {
    /// The system's roots alone.
    fn default() -> Self {
        ClientTrust {
            private_ca: None,
            config: Arc::new(OnceLock::new()),
        }
    }
}

impl std::fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTrust")
            .field("private_ca", &self.private_ca.is_some())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientTrust {
    /// Two trusts are the same when they add the same private CA: the system
    /// roots are the same for the whole run.
    fn eq(&self, other: &Self) -> bool {
        self.private_ca_pem() == other.private_ca_pem()
    }
}

/// The system's roots, as the AWS SDK's own client reads them
/// (rustls-native-certs: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the OS store).
/// A machine without any falls back to the Mozilla roots built in, with a
/// warning, so that public endpoints still verify.
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!("reading the system's TLS roots: {e}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            "no TLS root certificates found on this system (install ca-certificates, or set \
             SSL_CERT_FILE); trusting the Mozilla roots built into this program"
        );
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// A server config from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let chain = parse_certs(&read(cert, "--tls-cert")?, cert, "--tls-cert")?;
    let pem = read(key, "--tls-key")?;
    let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            Error::usage(format!("--tls-key {} holds no private key", key.display()))
        }
        e => Error::usage(format!("--tls-key {} is not valid PEM: {e}", key.display())),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::usage(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            Error::usage(format!(
                "--tls-cert/--tls-key do not form a usable pair: {e}"
            ))
        })?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_file_is_a_usage_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = ClientTrust::new(Some(&missing)).unwrap_err();
        assert_eq!(err.exit_code(), crate::ExitCode::Usage);
        assert!(err.to_string().contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = ClientTrust::new(Some(&empty)).unwrap_err();
        assert!(
            err.to_string().contains("empty.pem") && err.to_string().contains("no PEM"),
            "{err}"
        );
    }
}
