//! TLS helpers for end-to-end tests: a certificate authority made by the test
//! (rcgen), certificates it signs written as PEM files, a blocking rustls
//! client over a std socket, a TLS echo server on loopback, and our server
//! with a TLS listener asking for client certificates ([`tls_server`]). Nothing here
//! trusts anything but the test's own authorities.

use crate::e2e::{connect_to, socks_over, Server};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use socks4_proto::client::Event;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

/// A TLS stream over a std socket, as a blocking client sees it.
pub type TlsClient = StreamOwned<ClientConnection, TcpStream>;

/// A certificate authority of the test's own, with its PEM file in `dir`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The authority's certificate (PEM file).
    pub cert: PathBuf,
    dir: PathBuf,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM file).
    pub cert: PathBuf,
    /// Its private key (PEM file).
    pub key: PathBuf,
    /// The certificate (DER), to compare with what a peer presents.
    pub der: Vec<u8>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Issued {
    /// A server's arguments for a TLS listener on a free port of 127.0.0.1
    /// with this certificate: `--listen-tls 127.0.0.1:0 --tls-cert ...
    /// --tls-key ...`.
    pub fn listen_tls_args(&self) -> Vec<&str> {
        vec![
            "--listen-tls",
            "127.0.0.1:0",
            "--tls-cert",
            self.cert.to_str().expect("a UTF-8 path"),
            "--tls-key",
            self.key.to_str().expect("a UTF-8 path"),
        ]
    }
}

impl TestCa {
    /// A new authority called `name`, its files under `dir` (created).
    pub fn new(dir: &Path, name: &str) -> TestCa {
        std::fs::create_dir_all(dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, cert.pem()).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            cert: path,
            dir: dir.to_path_buf(),
        }
    }

    /// A certificate with subject common name `cn`, valid for the DNS names
    /// and IP addresses in `names`, written as `<file>.pem` and
    /// `<file>.key`.
    pub fn issue(&self, file: &str, cn: &str, names: &[&str]) -> Issued {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let issued = Issued {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

fn roots(ca: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

fn chain(issued: &Issued) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let certs = CertificateDer::pem_file_iter(&issued.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (certs, PrivateKeyDer::from_pem_file(&issued.key).unwrap())
}

/// A client configuration that trusts `ca` only and presents `identity`, if
/// given.
pub fn client_config(ca: &Path, identity: Option<&Issued>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(ca));
    Arc::new(match identity {
        Some(issued) => {
            let (certs, key) = chain(issued);
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    })
}

/// Connects to `addr` and completes a TLS handshake for `name`; the error
/// says why it failed.
pub fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> Result<TlsClient, std::io::Error> {
    handshake(TcpStream::connect(addr)?, config, name)
}

/// Like [`connect`], from the loopback address `from` (so that a test can
/// be several client addresses: 127.0.0.2, 127.0.0.3...).
pub fn connect_from(
    from: std::net::Ipv4Addr,
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> Result<TlsClient, std::io::Error> {
    handshake(crate::e2e::connect_from(from, addr), config, name)
}

/// A TLS handshake for `name` over `tcp`, with the tests' step timeouts.
fn handshake(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: &str,
) -> Result<TlsClient, std::io::Error> {
    tcp.set_read_timeout(Some(crate::e2e::STEP))?;
    tcp.set_write_timeout(Some(crate::e2e::STEP))?;
    let conn = ClientConnection::new(config, ServerName::try_from(name.to_owned()).unwrap())
        .map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// A TLS echo server on loopback with `identity`, for `count` connections,
/// each echoing until the client's end of stream.
pub fn echo_server(identity: &Issued, count: usize) -> SocketAddr {
    let (certs, key) = chain(identity);
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming().take(count).flatten() {
            let config = config.clone();
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(crate::e2e::STEP));
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = StreamOwned::new(conn, tcp);
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

/// A server with a TLS listener that asks for client certificates of the
/// `clients` authority, a control socket and `extra` arguments.
pub struct TlsServer {
    /// The server.
    pub server: Server,
    /// The authority the server's certificate is from (clients trust it).
    pub ca: PathBuf,
    /// The authority whose certificates the server takes from clients.
    pub clients: TestCa,
    /// The control socket.
    pub socket: PathBuf,
}

/// Starts `bin` with a TLS listener (a certificate for `localhost` from a
/// new authority) asking for certificates of another new authority, a
/// control socket and `extra` arguments, its files in a fresh scratch
/// folder named after `name` and `bin`.
pub fn tls_server(bin: &str, name: &str, extra: &[&str]) -> TlsServer {
    let dir = crate::scratch::fresh(&format!("{name}-{bin}"));
    let socket = dir.join("control.sock");
    let ca = TestCa::new(&dir, "test-ca");
    let cert = ca.issue("server", "socks4d", &["localhost"]);
    let clients = TestCa::new(&dir, "client-ca");
    let mut args = vec!["--control-socket", socket.to_str().unwrap()];
    args.extend(cert.listen_tls_args());
    args.extend(["--tls-client-ca", clients.cert.to_str().unwrap()]);
    args.extend_from_slice(extra);
    TlsServer {
        server: Server::start(bin, &args),
        ca: ca.cert.clone(),
        clients,
        socket,
    }
}

impl TlsServer {
    /// A SOCKS request over TLS from `from` with `who`'s certificate; the
    /// stream and the proxy's last reply.
    pub fn request(&self, from: Ipv4Addr, who: &Issued, dest: SocketAddr) -> (TlsClient, Event) {
        let config = client_config(&self.ca, Some(who));
        let mut s = connect_from(from, self.server.listener("tls"), config, "localhost")
            .expect("the handshake");
        // The destination may start sending at once: its first bytes can
        // come in the same read as the reply (they are not measured: the
        // budgets are read after the first second's burst).
        let (events, _early) = socks_over(&mut s, &connect_to(dest, b""));
        let last = events.last().cloned().expect("a reply");
        (s, last)
    }
}
