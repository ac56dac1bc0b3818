//! The init-time baseline on a single-threaded Tokio runtime, as the seven
//! functions run: `hello_lambda` is the `lambda_runtime` example as
//! documented (`#[tokio::main]`, multi-threaded); `init_bench` reports the
//! functions against both, so the runtime flavour's share is visible.

use lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, lambda_runtime::Error>(event.payload)
    }))
    .await
}
