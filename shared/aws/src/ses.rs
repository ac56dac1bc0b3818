//! The Mailer port on SES v2 `SendEmail`: the message the check composed
//! (the same bytes the local outbox writes, with both List-Unsubscribe
//! headers) is sent as Raw content, with the configuration set and
//! `EmailTags` (shop, trigger, variant, episode) that come back in SES
//! events.
//!
//! `SendEmail` has no idempotency key: a request retried after its answer
//! was lost can become a second email. So the client makes one attempt per
//! call (no SDK retries, see [`client`]), and a failure is sorted by what
//! is known about the message:
//! - throttled (`TooManyRequestsException`): provably not accepted, so
//!   retried here with backoff for the throttle budget of
//!   [`nudge_app::retry`], then not accepted;
//! - over the daily quota, sending paused or suspended, the endpoint
//!   refusing the connection, a request that could not be built: not
//!   accepted (the check defers and tries again later);
//! - refused for good (message rejected, unverified sender, bad request):
//!   rejected;
//! - anything after the request may have reached SES (a timeout, a lost or
//!   unreadable answer, a 5xx): unconfirmed, never sent again.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{DisplayErrorContext, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use nudge_app::compose::Composed;
use nudge_app::ports::{MailError, Mailer, Outgoing};
use nudge_app::retry::{Failure, GaveUp, Retry};

use crate::metrics;

pub struct SesMailer {
    client: Client,
    /// The sender, e.g. `Shop <shop@example.com>`.
    from: String,
    configuration_set: String,
    /// How throttling and transient failures are retried.
    pub retry: Retry,
}

/// An `EmailTags` value: ASCII letters, digits, `_` and `-` only, ≤ 256.
pub fn tag_value(v: &str) -> String {
    let mut out: String =
        v.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(256).collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The SES client for sending, configured by [`one_attempt`].
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    Client::from_conf(one_attempt(aws_sdk_sesv2::config::Builder::from(sdk)).build())
}

/// How long one `SendEmail` may take before it is given up as unconfirmed
/// (SES answers in well under a second; a hung call must not run into the
/// invocation's own timeout).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The SDK's own retries off (why: module docs), and each attempt bounded
/// by [`SEND_TIMEOUT`]. Throttling is retried by [`SesMailer`], which
/// knows that is safe.
pub fn one_attempt(config: aws_sdk_sesv2::config::Builder) -> aws_sdk_sesv2::config::Builder {
    config.retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled()).timeout_config(
        aws_sdk_sesv2::config::timeout::TimeoutConfig::builder().operation_attempt_timeout(SEND_TIMEOUT).build(),
    )
}

/// The error's code, from the response or, for an error built without
/// one, its kind.
fn code(e: &SendEmailError) -> &str {
    use aws_sdk_sesv2::error::ProvideErrorMetadata as _;
    if let Some(c) = e.code() {
        return c;
    }
    match e {
        SendEmailError::TooManyRequestsException(_) => "TooManyRequestsException",
        SendEmailError::LimitExceededException(_) => "LimitExceededException",
        SendEmailError::SendingPausedException(_) => "SendingPausedException",
        SendEmailError::AccountSuspendedException(_) => "AccountSuspendedException",
        SendEmailError::MessageRejected(_) => "MessageRejected",
        SendEmailError::MailFromDomainNotVerifiedException(_) => "MailFromDomainNotVerifiedException",
        SendEmailError::BadRequestException(_) => "BadRequestException",
        SendEmailError::NotFoundException(_) => "NotFoundException",
        _ => "error",
    }
}

fn rejected(e: &SendEmailError) -> bool {
    e.is_message_rejected()
        || e.is_mail_from_domain_not_verified_exception()
        || e.is_bad_request_exception()
        || e.is_not_found_exception()
}

fn not_accepted(e: &SendEmailError) -> bool {
    e.is_limit_exceeded_exception()
        || e.is_sending_paused_exception()
        || e.is_account_suspended_exception()
        || e.is_too_many_requests_exception()
}

/// Whether the connection was refused: the request never left.
fn refused(e: &SdkError<SendEmailError>) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound)
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// What is known about a message whose `SendEmail` failed.
fn classify(e: &SdkError<SendEmailError>) -> MailError {
    match e {
        SdkError::ServiceError(s) => {
            let code = code(s.err());
            if rejected(s.err()) {
                // The error text can quote the address: keep only its kind.
                MailError::Rejected(format!("SES: {code}"))
            } else if not_accepted(s.err()) {
                MailError::NotAccepted(format!("SES: {code}"))
            } else {
                MailError::Unconfirmed(format!("SES: {code}"))
            }
        }
        SdkError::ConstructionFailure(_) => MailError::NotAccepted("SES request not built".into()),
        SdkError::DispatchFailure(_) if refused(e) => {
            MailError::NotAccepted("SES endpoint refused the connection".into())
        }
        _ => MailError::Unconfirmed(format!("SES: {}", DisplayErrorContext(e))),
    }
}

impl SesMailer {
    pub fn new(client: Client, from: String, configuration_set: String) -> SesMailer {
        SesMailer { client, from, configuration_set, retry: Retry::default() }
    }

    async fn send_once(&self, m: &Outgoing, to: &str, bytes: &[u8]) -> Result<String, SdkError<SendEmailError>> {
        let tags = [
            ("shop", m.check.shop.as_str()),
            ("trigger", m.check.trigger.as_str()),
            ("variant", m.variant.as_str()),
            ("episode", &m.check.episode.to_string()),
        ]
        .into_iter()
        .filter_map(|(k, v)| MessageTag::builder().name(k).value(tag_value(v)).build().ok())
        .collect();
        let raw = RawMessage::builder().data(Blob::new(bytes)).build().map_err(SdkError::construction_failure)?;
        let resp = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().raw(raw).build())
            .configuration_set_name(&self.configuration_set)
            .set_email_tags(Some(tags))
            .send()
            .await?;
        Ok(resp.message_id().unwrap_or_default().to_owned())
    }
}

impl Mailer for SesMailer {
    async fn send(&self, m: &Outgoing, composed: &Composed) -> Result<String, MailError> {
        let attempt = || async {
            self.send_once(m, &composed.to, &composed.bytes).await.map_err(|e| match e.as_service_error() {
                Some(s) if s.is_too_many_requests_exception() => {
                    metrics::count(metrics::SES_THROTTLED, 1);
                    Failure::Throttled(e)
                }
                // Nothing else is retried here (module docs).
                _ => Failure::Permanent(e),
            })
        };
        match self.retry.run(attempt, tokio::time::sleep).await {
            Ok(id) => Ok(id),
            Err(GaveUp { error, attempts, spent, .. }) => Err(match classify(&error) {
                MailError::NotAccepted(why) if attempts > 1 => {
                    MailError::NotAccepted(format!("{why} after {attempts} attempts in {:.1} s", spent.as_secs_f64()))
                }
                other => other,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_keep_only_what_ses_allows() {
        assert_eq!(tag_value("acme.myshopify.com"), "acme_myshopify_com");
        assert_eq!(tag_value("cart-abandoned"), "cart-abandoned");
        assert_eq!(tag_value(""), "_");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }
}
