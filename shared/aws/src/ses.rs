//! The Mailer port on SES v2 `SendEmail`: the message the check composed
//! (the same bytes the local outbox writes, with both List-Unsubscribe
//! headers) is sent as Raw content, with the configuration set and
//! `EmailTags` (shop, trigger, variant, episode) that come back in SES
//! events. Throttling (`TooManyRequestsException`) and transient
//! failures are retried by the shared policy of [`nudge_app::retry`];
//! permanent rejections are returned as such and end as a decision, never
//! retried.

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

fn permanent(e: &SendEmailError) -> bool {
    e.is_message_rejected()
        || e.is_mail_from_domain_not_verified_exception()
        || e.is_bad_request_exception()
        || e.is_not_found_exception()
        || e.is_account_suspended_exception()
        || e.is_sending_paused_exception()
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
                Some(s) if permanent(s) => Failure::Permanent(e),
                Some(s) if s.is_too_many_requests_exception() => {
                    metrics::count(metrics::SES_THROTTLED, 1);
                    Failure::Throttled(e)
                }
                _ => Failure::Transient(e),
            })
        };
        match self.retry.run(attempt, tokio::time::sleep).await {
            Ok(id) => Ok(id),
            Err(GaveUp { error, permanent: true, .. }) => {
                // The error text can quote the address: keep only its kind.
                let kind = error.as_service_error().and_then(|s| s.meta().code()).unwrap_or("rejected");
                Err(MailError::Rejected(format!("SES: {kind}")))
            }
            Err(GaveUp { error, attempts, spent, .. }) => {
                let last = match error.as_service_error() {
                    Some(s) if s.is_too_many_requests_exception() => "throttled".to_owned(),
                    _ => DisplayErrorContext(&error).to_string(),
                };
                let spent = spent.as_secs_f64();
                Err(MailError::Unavailable(format!("SES after {attempts} attempts in {spent:.1} s: {last}")))
            }
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
