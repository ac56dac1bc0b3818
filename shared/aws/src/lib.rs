//! nudge-aws: the AWS shell. DynamoDB ([`dynamo::DynamoStore`]), EventBridge
//! Scheduler ([`schedule::EventBridgeScheduler`]), SES v2
//! ([`ses::SesMailer`]) and EventBridge ([`publish::EventBridgePublisher`])
//! adapters for the ports of nudge-app; the typed settings every function
//! reads; and the handlers the Lambda binaries in `functions/` run.

pub mod dynamo;
pub mod lambda;
pub mod metrics;
pub mod publish;
pub mod schedule;
pub mod secrets;
pub mod ses;
pub mod settings;
pub mod tls;

pub use lambda_http;
pub use lambda_runtime;
