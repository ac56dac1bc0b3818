//! `unsubscribe`: the HTTP API (payload format 2.0) in front of the nudge-app
//! HTTP handlers, limited to this function's paths.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), nudge_aws::lambda_http::Error> {
    nudge_aws::lambda::run_http(&["/unsubscribe", "/confirm"]).await
}
