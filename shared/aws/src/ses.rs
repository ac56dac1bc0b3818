//! The Mailer port on SES v2 `SendEmail`: the message is built once by the
//! shared [`Composer`] (the same bytes the local outbox writes, with both
//! List-Unsubscribe headers) and sent as Raw content, with the configuration
//! set and `EmailTags` (shop, trigger, variant, episode) that come back in
//! SES events. Throttling (`TooManyRequestsException`) is retried with
//! jittered backoff for up to [`THROTTLE_BUDGET`], other transient failures
//! [`SEND_ATTEMPTS`] times; permanent rejections are returned as such and
//! end as a decision, never retried.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{DisplayErrorContext, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use jiff::Timestamp;
use nudge_app::compose::Composer;
use nudge_app::ports::{MailError, Mailer, Outgoing};

use crate::dynamo::{DynamoStore, MessageRecord};
use crate::metrics;

/// Attempts per message when SES fails transiently (throttling aside).
pub const SEND_ATTEMPTS: u32 = 5;

/// How long a throttled message keeps being retried. SES throttles when the
/// account's maximum send rate is exceeded — as when many checks come due
/// at once, at the end of quiet hours — and that passes within seconds: a
/// short attempt count would turn a burst into `mail_failed` decisions, lost
/// emails for claimed episodes. Well inside the check function's 30 s
/// timeout, so a throttled check still ends with a decision.
pub const THROTTLE_BUDGET: Duration = Duration::from_secs(20);

/// The longest single wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub struct SesMailer {
    client: Client,
    composer: Composer,
    configuration_set: String,
    /// Where the message record for the feedback join goes.
    store: DynamoStore,
    /// First backoff; doubles per attempt up to [`MAX_BACKOFF`], each wait
    /// drawn between half and all of it so that throttled senders spread out.
    pub backoff: Duration,
    /// See [`MAX_BACKOFF`].
    pub max_backoff: Duration,
    /// See [`THROTTLE_BUDGET`].
    pub throttle_budget: Duration,
}

/// The wait before attempt `attempt + 1`: `base` doubled per attempt, at
/// most `cap`, then a random point in its upper half ("equal jitter").
pub fn backoff(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(cap);
    let half = full / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    // A fresh std RandomState is randomly keyed: no random-number crate for this.
    let jitter = RandomState::new().hash_one(attempt) % nanos.max(1);
    half + Duration::from_nanos(jitter)
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
    pub fn new(client: Client, composer: Composer, configuration_set: String, store: DynamoStore) -> SesMailer {
        SesMailer {
            client,
            composer,
            configuration_set,
            store,
            backoff: Duration::from_millis(100),
            max_backoff: MAX_BACKOFF,
            throttle_budget: THROTTLE_BUDGET,
        }
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
            .from_email_address(&self.composer.from)
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
    async fn send(&self, m: &Outgoing) -> Result<String, MailError> {
        let composed = self.composer.compose_current(&self.store, m, Timestamp::now()).await?;
        let started = Instant::now();
        let (mut attempt, mut failures) = (0u32, 0u32);
        loop {
            attempt += 1;
            match self.send_once(m, &composed.to, &composed.bytes).await {
                Ok(id) => {
                    let record = MessageRecord {
                        message_id: id.clone(),
                        shop: m.check.shop.clone(),
                        profile: m.check.profile.clone(),
                        trigger: m.check.trigger.clone(),
                        variant: m.variant.clone(),
                        episode: m.check.episode,
                    };
                    // The mail is out: a lost record costs the feedback join
                    // for this message, never a second email. It is counted.
                    if let Err(e) = self.store.record_message(&record).await {
                        metrics::error("message_record");
                        tracing::error!(error = %e, message = %id, "SES message sent but its record was not stored");
                    }
                    return Ok(id);
                }
                Err(e) => {
                    let service = e.as_service_error();
                    if service.is_some_and(permanent) {
                        // The error text can quote the address: keep only its kind.
                        let kind = service.and_then(|s| s.meta().code()).unwrap_or("rejected").to_owned();
                        return Err(MailError::Rejected(format!("SES: {kind}")));
                    }
                    let throttled = service.is_some_and(|s| s.is_too_many_requests_exception());
                    let wait = backoff(self.backoff, self.max_backoff, attempt);
                    let given_up = if throttled {
                        metrics::count(metrics::SES_THROTTLED, 1);
                        started.elapsed() + wait > self.throttle_budget
                    } else {
                        failures += 1;
                        failures >= SEND_ATTEMPTS
                    };
                    if given_up {
                        let last = if throttled { "throttled".into() } else { DisplayErrorContext(&e).to_string() };
                        let spent = started.elapsed().as_secs_f64();
                        return Err(MailError::Unavailable(format!(
                            "SES after {attempt} attempts in {spent:.1} s: {last}"
                        )));
                    }
                    tracing::warn!(attempt, throttled, wait_ms = wait.as_millis(), "SES send failed; backing off");
                    tokio::time::sleep(wait).await;
                }
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

    #[test]
    fn backoff_doubles_up_to_the_cap_and_draws_from_the_upper_half() {
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(2));
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (5, 1_600), (6, 2_000), (40, 2_000)] {
            let full = Duration::from_millis(full);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(base, cap, attempt)).collect();
            assert!(waits.iter().all(|w| *w >= full / 2 && *w <= full), "attempt {attempt}: {waits:?}");
            let distinct: std::collections::HashSet<_> = waits.iter().collect();
            assert!(distinct.len() > 10, "attempt {attempt}: waits are spread, not one value: {waits:?}");
        }
    }
}
