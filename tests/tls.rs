//! TLS is verified by default, with the `ring` provider obsctl builds rustls with: a server
//! on 127.0.0.1 whose certificate chains to a test CA (`tests/tls/`, made with openssl, valid
//! for 100 years) is refused without `--ca-file`, accepted with it, and accepted without it
//! only with `--insecure-skip-verify`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use obsctl::config::{ServerConfig, ServerFile, ServerFlags};
use obsctl::error;
use obsctl::source::loki::{LokiSource, DEFAULT_SELECTOR};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls")
}

/// An HTTPS server on 127.0.0.1 that answers every request `ready`.
fn https_server() -> String {
    let certs: Vec<CertificateDer> =
        CertificateDer::pem_file_iter(tls_dir().join("cert.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(tls_dir().join("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(mut conn) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
                let mut buf = [0u8; 4096];
                if tls.read(&mut buf).is_ok() {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nready\n");
                    let _ = tls.flush();
                }
            });
        }
    });
    url
}

fn probe(url: &str, ca: Option<PathBuf>, insecure: bool) -> anyhow::Result<()> {
    let flags =
        ServerFlags { url: Some(url.into()), ca_file: ca, insecure_skip_verify: insecure, ..ServerFlags::default() };
    let cfg = ServerConfig::merge(&flags, &ServerFile::default(), "http://localhost:3100", "--url")?;
    let loki = LokiSource::new(&cfg, DEFAULT_SELECTOR.into())?;
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(loki.probe(Duration::from_secs(5)))
}

#[test]
fn tls_is_verified_unless_told_otherwise() {
    let url = https_server();
    let err = probe(&url, None, false).expect_err("an unknown CA is refused");
    assert_eq!(error::exit_code(&err), error::UNAVAILABLE);
    let message = error::describe(&err);
    assert!(message.contains("invalid peer certificate: UnknownIssuer") && message.contains("127.0.0.1"), "{message}");
    probe(&url, Some(tls_dir().join("ca.pem")), false).expect("trusted with --ca-file");
    probe(&url, None, true).expect("accepted with --insecure-skip-verify");
    // A CA that did not sign the server's certificate does not help.
    let err = probe(&url, Some(tls_dir().join("cert.pem")), false).expect_err("the leaf is no CA");
    assert_eq!(error::exit_code(&err), error::UNAVAILABLE);
}
