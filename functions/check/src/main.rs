//! `check`: the EventBridge Scheduler target. The input is the Check JSON,
//! passed verbatim; the episode is claimed in the profile before SES is
//! called, so a redelivered check sends nothing.

use std::sync::Arc;

use nudge_aws::lambda::{CheckFunction, Stack, init_tracing, invocation_deadline, started};
use nudge_aws::lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let function = Arc::new(started(CheckFunction::new(started(Stack::from_env().await))));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let function = function.clone();
        async move { function.check_by(event.payload, invocation_deadline(&event.context)).await }
    }))
    .await
}
