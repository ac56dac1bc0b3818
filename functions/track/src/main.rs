//! `track`: a function URL (HTTP API v2 payload) in front of the nudge-app
//! HTTP handlers, limited to this function's paths.

use std::sync::Arc;

use nudge_aws::lambda::{HttpFunction, Stack, init_tracing};
use nudge_aws::lambda_http::{self, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let stack = Stack::from_env().await?;
    let function = Arc::new(HttpFunction::new(stack, &["/v1", "/webhooks/segment"]));
    lambda_http::run(service_fn(move |req| {
        let function = function.clone();
        async move { function.handle(req).await }
    }))
    .await
}
