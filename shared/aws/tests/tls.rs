//! The SDK's HTTPS client (`nudge_aws::tls`) over a real TLS handshake with
//! a local server whose certificate comes from a CA made here: by default
//! the client trusts Amazon Trust Services' roots only, so that server is
//! refused before any request is sent; with `SSL_CERT_FILE` naming the CA,
//! the system-store path accepts it. Accepting a real AWS endpoint would
//! need the network, which tests here do not have: that the compiled-in
//! roots are five parsable trust anchors is checked instead.
//!
//! One test in this file: it sets `SSL_CERT_FILE` for the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use nudge_aws::tls::{AMAZON_TRUST_SERVICES, http_client};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::{self, pki_types::pem::PemObject};

/// A TLS server for `localhost` answering every request with an empty
/// DynamoDB ListTables result; counts the requests that got through.
async fn server(cert: rustls::pki_types::CertificateDer<'static>, key: &KeyPair) -> (u16, Arc<AtomicUsize>) {
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = vec![0u8; 64 * 1024];
                if matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {
                    seen.fetch_add(1, Ordering::SeqCst);
                    let body = r#"{"TableNames":[]}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(format!("{head}{body}").as_bytes()).await;
                    let _ = tls.flush().await;
                }
            });
        }
    });
    (port, requests)
}

async fn list_tables(http: impl aws_sdk_dynamodb::config::HttpClient + 'static, port: u16) -> Result<(), String> {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
        .endpoint_url(format!("https://localhost:{port}"))
        .http_client(http)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    client.list_tables().send().await.map(|_| ()).map_err(|e| DisplayErrorContext(e).to_string())
}

#[tokio::test]
async fn the_sdk_trusts_amazon_trust_services_alone_unless_the_environment_names_a_cert_file() {
    let anchors: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES.as_bytes())
        .map(Result::unwrap)
        .collect();
    let mut store = rustls::RootCertStore::empty();
    assert_eq!(store.add_parsable_certificates(anchors), (5, 0), "five trust anchors, none ignored");

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    let (port, requests) = server(cert.der().clone(), &key).await;

    let refused = list_tables(http_client(false).unwrap(), port).await.expect_err("an unknown CA is refused");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    assert_eq!(requests.load(Ordering::SeqCst), 0, "nothing was sent to the untrusted server");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, ca.pem()).unwrap();
    // SAFETY: the only test in this binary; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("SSL_CERT_FILE", &file) };
    list_tables(http_client(true).unwrap(), port).await.expect("the CA in SSL_CERT_FILE is trusted");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}
