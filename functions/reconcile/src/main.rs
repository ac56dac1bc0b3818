//! `reconcile`: on a rate schedule, runs the checks that are overdue by more
//! than the grace period (missed, dead-lettered or never scheduled).

use std::sync::Arc;

use nudge_aws::lambda::{CheckFunction, Stack, init_tracing, invocation_deadline, started};
use nudge_aws::lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let function = Arc::new(started(CheckFunction::new(started(Stack::from_env().await))));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let function = function.clone();
        let deadline = invocation_deadline(&event.context);
        async move { function.reconcile(deadline).await }
    }))
    .await
}
