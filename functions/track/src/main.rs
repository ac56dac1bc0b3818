//! `track`: a function URL (HTTP API v2 payload) in front of the nudge-app
//! HTTP handlers, limited to this function's paths.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), nudge_aws::lambda_http::Error> {
    nudge_aws::lambda::run_http(&["/v1", "/webhooks/segment"]).await
}
