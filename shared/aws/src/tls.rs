//! The trust store of the SDK's HTTPS client.
//!
//! Every AWS endpoint nudge calls (DynamoDB, EventBridge Scheduler and
//! EventBridge, SES v2, SSM) presents a certificate of Amazon Trust
//! Services, whose roots are Amazon Root CA 1–4 and the Starfield Services
//! root that cross-signs them (`amazon-trust-services.pem`, as shipped in
//! the system stores). Trusting those five alone, compiled in, spares every
//! cold start the system store: the SDK's default loads and parses it at
//! init — here 146 files and most of a function's init time
//! (docs/performance.md, Lambda init time).
//!
//! The system store is used instead (with these roots added) when the
//! environment asks for it: `SSL_CERT_FILE` or `SSL_CERT_DIR` set (a proxy
//! that inspects TLS, a private CA), or a custom endpoint
//! (`AWS_ENDPOINT_URL…`) that may not be Amazon's.

use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

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
    let client =
        Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(context).build_https();
    Ok(if system { client } else { SharedHttpClient::new(OnFirstRequest(client)) })
}

/// The SDK's client, minus its eager connector build: the SDK builds (and
/// drops) a connector when each service client is created, so that a
/// system store is read at init rather than on the first request. With the
/// roots compiled in there is nothing to read, and that build was a rustls
/// configuration per service client at every cold start; the one connector
/// the clients share is built, once, for the first request.
#[derive(Debug)]
struct OnFirstRequest(SharedHttpClient);

impl HttpClient for OnFirstRequest {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
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
