//! TLS configuration: the certificates and keys named under `[tls]`, loaded into
//! rustls configurations ([`Tls`]), what a verified client certificate is
//! called (its subject common name), and how a failed handshake is counted
//! (by kind).
//!
//! rustls with the `ring` provider: no OpenSSL, nothing to link. The daemon
//! drives rustls itself over the runtime seam's readiness (the `endpoint`
//! module), so that one implementation serves tokio, smol and
//! async-std alike; the runtimes' own TLS glue (`tokio-rustls`,
//! `futures-rustls`) would have added a second I/O path per runtime beside the
//! one the relay already uses.
//!
//! The files are read when settings are loaded, so a bad file is a
//! configuration error with its path: at start-up the server does not start,
//! and on SIGHUP the reload is refused and the running certificate stays (new
//! connections get a new certificate only from a reload that succeeded).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use socks4_proto::server::TlsFailure;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `[tls]` files, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our certificate chain (PEM), for TLS listeners.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The authority that signs client certificates (PEM); when set, TLS
    /// listeners require a client certificate it signed.
    pub client_ca: Option<PathBuf>,
    /// The authorities trusted for destinations and parents (PEM); when unset,
    /// the system's.
    pub ca: Option<PathBuf>,
}

/// The loaded TLS configurations a server runs with; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// For connections accepted over TLS (`listen_tls`, `dual`): our
    /// certificate, and the client-certificate verifier. `None` without a
    /// certificate.
    pub server: Option<Arc<ServerConfig>>,
    /// For TLS towards destinations (`forward_tls`) and parents
    /// (`socks4+tls://`, `https://`): the trusted authorities. `None` when
    /// nothing needs it.
    pub client: Option<Arc<ClientConfig>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(
            "no trusted authorities found on this system for TLS to destinations and parents: \
             name them with --tls-ca FILE (config: [tls] ca)"
                .to_owned(),
        );
    }
    Ok(roots)
}

impl Tls {
    /// Loads what `files` name: the server side when a certificate is given
    /// (`server_needed`: a listener needs one, so its absence is an error),
    /// the client side when `client_needed`.
    pub fn load(files: &TlsFiles, server_needed: bool, client_needed: bool) -> Result<Tls, String> {
        let server = match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => Some(Arc::new(server_config(cert, key, files)?)),
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "[tls] cert and key go together (--tls-cert FILE --tls-key FILE)".to_owned(),
                )
            }
            (None, None) if server_needed => {
                return Err(
                    "a TLS listener (listen_tls) needs a certificate and its key: \
                     --tls-cert FILE --tls-key FILE (config: [tls] cert, key)"
                        .to_owned(),
                )
            }
            (None, None) => {
                if files.client_ca.is_some() {
                    return Err("[tls] client_ca needs a certificate to serve TLS with: \
                         --tls-cert FILE --tls-key FILE"
                        .to_owned());
                }
                None
            }
        };
        let client = if client_needed || files.ca.is_some() {
            let roots = match &files.ca {
                Some(path) => roots(path)?,
                None => system_roots()?,
            };
            let config = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(Tls { server, client })
    }
}

fn server_config(cert: &Path, key: &Path, files: &TlsFiles) -> Result<ServerConfig, String> {
    let chain = certificates(cert)?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))
}

/// The subject common name of a verified peer certificate chain's first
/// (end-entity) certificate; `None` without a certificate or a common name.
pub(crate) fn common_name(chain: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let der = chain?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The kind of a handshake failure, as counted and logged.
pub(crate) fn failure(e: &rustls::Error) -> TlsFailure {
    match e {
        rustls::Error::NoCertificatesPresented => TlsFailure::NoCertificate,
        rustls::Error::InvalidCertificate(_) => TlsFailure::BadCertificate,
        rustls::Error::AlertReceived(_) => TlsFailure::PeerAlert,
        _ => TlsFailure::Protocol,
    }
}
