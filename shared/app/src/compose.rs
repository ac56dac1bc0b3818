//! Turning a decided send into the bytes of one email, the same in every
//! shell: the local outbox writes them to a `.eml` file, SES sends them as
//! Raw content. Also the sandbox guard for staging stacks.

use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use nudge_content::mime::{Envelope, build_message};
use nudge_content::{Catalogue, EmailContext, SendInfo, Templates};
use nudge_core::Triggers;
use nudge_core::profile::CONFIRM_TRIGGER;

/// The subject of a double opt-in confirmation email (its template,
/// `confirm-subscription`, may not set one).
const CONFIRM_SUBJECT: &str = "Please confirm your subscription to {{ shop }}";

use crate::catalogue::Catalogues;
use crate::ports::{CatalogueStore, MailError, Mailer, Outgoing};
use crate::unsubscribe::UnsubscribeKey;

/// Everything needed to render a send.
pub struct Composer {
    pub rules: Triggers,
    pub templates: Templates,
    /// Per shop: the feed file overlaid with product webhooks.
    pub catalogues: Arc<Catalogues>,
    /// Sender, e.g. `Demo Shop <shop@example.com>`.
    pub from: String,
    /// Where unsubscribe links point: the unsubscribe endpoint's base URL.
    pub public_url: String,
    pub locale: String,
    pub unsubscribe_key: UnsubscribeKey,
}

/// One rendered message.
#[derive(Debug, Clone, Default)]
pub struct Composed {
    /// Unique per episode and variant; also the local part of Message-ID.
    pub id: String,
    pub to: String,
    pub subject: String,
    pub html: String,
    /// The complete RFC 5322 message.
    pub bytes: Vec<u8>,
}

impl Composed {
    /// What stands for the email where nothing is rendered (a replay
    /// without templates, the use-case tests): the id and the address only.
    pub fn unrendered(m: &Outgoing) -> Composed {
        Composed { id: message_id(m), to: m.profile.email.clone().unwrap_or_default(), ..Composed::default() }
    }
}

/// The value of the reference header: the send, form-encoded
/// (`nudge_sources::ses` reads it back from feedback).
fn reference(m: &Outgoing) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("s", &m.check.shop)
        .append_pair("p", &m.check.profile)
        .append_pair("t", &m.check.trigger)
        .append_pair("e", &m.check.episode.to_string())
        .append_pair("v", &m.variant)
        .finish()
}

/// Unique per episode and variant; the local part of the Message-ID.
fn message_id(m: &Outgoing) -> String {
    format!("{}-{}", m.check.name(), m.variant)
}

impl Composer {
    /// Renders `m` as of `now` with the catalogue this process holds for
    /// the shop. A template that fails to render, or a profile without an
    /// address, is a permanent rejection.
    pub fn compose(&self, m: &Outgoing, now: Timestamp) -> Result<Composed, MailError> {
        self.compose_with(m, &self.catalogues.get(&m.profile.shop), now)
    }

    /// As [`Composer::compose`], with the shop's catalogue reloaded from
    /// `store` first when this process's copy is too old.
    pub async fn compose_current<S: CatalogueStore>(
        &self,
        store: &S,
        m: &Outgoing,
        now: Timestamp,
    ) -> Result<Composed, MailError> {
        let catalogue = self
            .catalogues
            .current(store, &m.profile.shop)
            .await
            .map_err(|e| MailError::NotAccepted(format!("catalogue: {e}")))?;
        self.compose_with(m, &catalogue, now)
    }

    fn compose_with(&self, m: &Outgoing, catalogue: &Catalogue, now: Timestamp) -> Result<Composed, MailError> {
        let to = m.profile.email.as_deref().ok_or_else(|| MailError::Rejected("no address".into()))?;
        let base = self.public_url.trim_end_matches('/');
        let (shop, profile) = (&m.profile.shop, &m.profile.id);
        let unsubscribe_url = format!("{base}/unsubscribe?{}", self.unsubscribe_key.query(shop, profile, now));
        let rendered = if m.check.trigger == CONFIRM_TRIGGER {
            let confirm_url = format!("{base}/confirm?{}", self.unsubscribe_key.confirm_query(shop, profile, now));
            let ctx = EmailContext::confirmation(&m.profile, &unsubscribe_url, &confirm_url);
            self.templates.render(CONFIRM_TRIGGER, CONFIRM_SUBJECT, &ctx)
        } else {
            let trigger = self
                .rules
                .get(&m.check.trigger)
                .ok_or_else(|| MailError::Rejected("trigger no longer in the rules".into()))?;
            let send =
                SendInfo { trigger, variant: &m.variant, now, unsubscribe_url: &unsubscribe_url, locale: &self.locale };
            self.templates.render_send(&m.profile, &self.rules, &send, catalogue)
        }
        .map_err(|e| MailError::Rejected(e.to_string()))?;
        let id = message_id(m);
        let bytes = build_message(
            &rendered,
            &Envelope {
                from: &self.from,
                to,
                message_id: &id,
                unsubscribe_url: &unsubscribe_url,
                date: now,
                reference: &reference(m),
            },
        )
        .map_err(|e| MailError::Rejected(e.to_string()))?;
        Ok(Composed { id, to: to.to_owned(), subject: rendered.subject, html: rendered.html, bytes })
    }
}

/// Sandbox mode: mail goes only to allowlisted addresses (`ada@example.com`)
/// or domains (`@example.com`); every other send is decided and logged as in
/// production but withheld, with reason `sandbox`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sandbox {
    allow: Vec<String>,
}

impl Sandbox {
    /// A comma- or whitespace-separated allowlist. An empty list allows
    /// nobody (a sandbox that sends nothing), never everybody.
    pub fn parse(list: &str) -> Sandbox {
        let allow = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        Sandbox { allow }
    }

    pub fn allows(&self, address: &str) -> bool {
        let a = address.trim().to_ascii_lowercase();
        self.allow.iter().any(|entry| if entry.starts_with('@') { a.ends_with(entry.as_str()) } else { *entry == a })
    }
}

/// A mailer behind an optional sandbox.
pub struct Guarded<M> {
    pub inner: M,
    pub sandbox: Option<Sandbox>,
}

impl<M: Mailer> Mailer for Guarded<M> {
    fn send(&self, m: &Outgoing, email: &Composed) -> impl Future<Output = Result<String, MailError>> + Send {
        let withheld = self.sandbox.as_ref().is_some_and(|s| !s.allows(&email.to));
        async move { if withheld { Err(MailError::Sandboxed) } else { self.inner.send(m, email).await } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_allows_listed_addresses_and_domains_only() {
        let s = Sandbox::parse("qa@shop.test, @staff.example.com");
        assert!(s.allows("QA@shop.test"));
        assert!(s.allows("ada@staff.example.com"));
        assert!(!s.allows("ada@example.com"));
        assert!(!s.allows("qa@shop.test.evil"));
    }

    #[test]
    fn an_empty_sandbox_allows_nobody() {
        assert!(!Sandbox::parse(" , ").allows("ada@example.com"));
    }
}
