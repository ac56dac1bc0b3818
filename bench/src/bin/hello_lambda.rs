//! The init-time baseline: the smallest `lambda_runtime` function (echoes its
//! event), built with the same profile as the seven functions. See
//! `init_bench`.

use lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, lambda_runtime::Error>(event.payload)
    }))
    .await
}
