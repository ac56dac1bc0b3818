//! The trust store of the SDK's HTTPS client.
//!
//! Every AWS endpoint nudge calls (DynamoDB, EventBridge Scheduler and
//! EventBridge, SES v2, SSM) presents a certificate of Amazon Trust
//! Services, whose roots are Amazon Root CA 1–4 and the Starfield Services
//! root that cross-signs them (`amazon-trust-services.pem`, as shipped in
//! the system stores). Trusting those five alone, compiled in, spares every
//! cold start the system store: the SDK's default loads and parses it at
//! init — here 146 files and most of a function's init time, see the
//! README's init benchmark.
//!
//! The system store is used instead (with these roots added) when the
//! environment asks for it: `SSL_CERT_FILE` or `SSL_CERT_DIR` set (a proxy
//! that inspects TLS, a private CA), or a custom endpoint
//! (`AWS_ENDPOINT_URL…`) that may not be Amazon's.

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

/// Amazon Root CA 1–4 and Starfield Services Root Certificate Authority – G2.
pub const AMAZON_TRUST_SERVICES: &str = include_str!("amazon-trust-services.pem");

/// Whether this environment asks for the system's trust store.
pub fn wants_system_roots(vars: impl IntoIterator<Item = String>) -> bool {
    vars.into_iter().any(|k| k == "SSL_CERT_FILE" || k == "SSL_CERT_DIR" || k.starts_with("AWS_ENDPOINT_URL"))
}

/// The HTTPS client for the SDK: Amazon Trust Services' roots, plus the
/// system store when `system` (see [`wants_system_roots`]).
pub fn http_client(system: bool) -> Result<SharedHttpClient, String> {
    let roots = TrustStore::empty().with_native_roots(system).with_pem_certificate(AMAZON_TRUST_SERVICES.as_bytes());
    let context = TlsContext::builder().with_trust_store(roots).build().map_err(|e| format!("TLS setup: {e}"))?;
    Ok(Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(context).build_https())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cert_file_dir_or_custom_endpoint_asks_for_the_system_store() {
        let env = |ks: &[&str]| ks.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        assert!(!wants_system_roots(env(&["AWS_REGION", "NUDGE_TABLE", "PATH"])));
        assert!(wants_system_roots(env(&["SSL_CERT_FILE"])));
        assert!(wants_system_roots(env(&["SSL_CERT_DIR"])));
        assert!(wants_system_roots(env(&["AWS_ENDPOINT_URL"])));
        assert!(wants_system_roots(env(&["AWS_ENDPOINT_URL_DYNAMODB"])));
    }
}
