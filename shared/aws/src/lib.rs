//! nudge-aws: the AWS shell. DynamoDB ([`dynamo::DynamoStore`]), EventBridge
//! Scheduler ([`schedule::EventBridgeScheduler`]), SES v2
//! ([`ses::SesMailer`]) and EventBridge ([`publish::EventBridgePublisher`])
//! adapters for the ports of nudge-app; the typed settings every function
//! reads; and the handlers the Lambda binaries in `functions/` run.
//!
//! Without the default `sdk` feature only [`document`] (a profile's stored
//! form) and [`cost`] (what a replayed log would cost on AWS) are built:
//! the `nudge` command uses those without linking the AWS SDK.

pub mod cost;
pub mod document;

#[cfg(feature = "sdk")]
pub mod dynamo;
#[cfg(feature = "sdk")]
pub mod lambda;
#[cfg(feature = "sdk")]
pub mod metrics;
#[cfg(feature = "sdk")]
pub mod publish;
#[cfg(feature = "sdk")]
pub mod schedule;
#[cfg(feature = "sdk")]
pub mod secrets;
#[cfg(feature = "sdk")]
pub mod ses;
#[cfg(feature = "sdk")]
pub mod settings;
#[cfg(feature = "sdk")]
pub mod tls;

#[cfg(feature = "sdk")]
pub use lambda_http;
#[cfg(feature = "sdk")]
pub use lambda_runtime;
