//! `ses-events`: SES event publishing via EventBridge. Permanent bounces and
//! complaints suppress the person; opens and clicks become engagement
//! events; every kind is counted per trigger variant.

use std::sync::Arc;

use nudge_aws::lambda::{Stack, init_tracing, ses_event, started};
use nudge_aws::lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let stack = Arc::new(started(Stack::from_env().await));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let stack = stack.clone();
        async move { ses_event(&stack, event.payload).await }
    }))
    .await
}
