//! The one message builder every shell uses: RFC 5322 bytes with a text and
//! an HTML part and the RFC 8058 one-click unsubscribe headers. The local
//! outbox writes these bytes; SES sends them as Raw content.

use std::time::{Duration, UNIX_EPOCH};

use jiff::Timestamp;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use crate::{ContentError, Rendered};

/// Addresses and identifiers of one message.
pub struct Envelope<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// `<…@…>`-less id, unique per send (the episode's).
    pub message_id: &'a str,
    pub unsubscribe_url: &'a str,
    pub date: Timestamp,
    /// The value of the [`REFERENCE_HEADER`] (empty: none): which send this
    /// is, for joining mail-service feedback without a message record.
    pub reference: &'a str,
}

pub use nudge_core::event::REFERENCE_HEADER;

/// Builds the MIME message: multipart/alternative (text, then HTML),
/// `List-Unsubscribe: <url>` and `List-Unsubscribe-Post:
/// List-Unsubscribe=One-Click`.
pub fn build_message(r: &Rendered, env: &Envelope<'_>) -> Result<Vec<u8>, ContentError> {
    let err = |m: String| ContentError::Message(m);
    let from: Mailbox = env.from.parse().map_err(|e| err(format!("sender address: {e}")))?;
    // The recipient is never echoed into the error: it is personal data.
    let to: Mailbox = env.to.parse().map_err(|_| err("recipient address is not valid".into()))?;
    let domain = env.from.rsplit('@').next().unwrap_or("nudge.invalid").trim_end_matches('>');
    let date = UNIX_EPOCH + Duration::from_secs(u64::try_from(env.date.as_second()).unwrap_or(0));
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(r.subject.clone())
        .message_id(Some(format!("<{}@{domain}>", env.message_id)))
        .date(date)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{}>", env.unsubscribe_url),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_owned(),
        ));
    let message = if env.reference.is_empty() {
        message
    } else {
        message.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(REFERENCE_HEADER), env.reference.to_owned()))
    };
    let message = message
        .multipart(MultiPart::alternative_plain_html(r.text.clone(), r.html.clone()))
        .map_err(|e| err(e.to_string()))?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_has_both_parts_and_both_unsubscribe_headers() {
        let r = Rendered { subject: "Hi Ada".into(), html: "<p>Hello</p>".into(), text: "Hello".into() };
        let env = Envelope {
            from: "Shop <shop@example.com>",
            to: "ada@example.com",
            message_id: "n-1",
            unsubscribe_url: "https://shop.example/unsubscribe?t=x",
            date: "2026-10-06T14:00:00Z".parse().unwrap(),
            reference: "s=acme.myshopify.com&p=p1&t=cart&e=1&v=a",
        };
        let bytes = String::from_utf8(build_message(&r, &env).unwrap()).unwrap();
        assert!(bytes.contains("List-Unsubscribe: <https://shop.example/unsubscribe?t=x>"), "{bytes}");
        assert!(bytes.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(bytes.contains("multipart/alternative"));
        assert!(bytes.contains("text/plain") && bytes.contains("text/html"));
        assert!(bytes.contains("Message-ID: <n-1@example.com>"));
        assert!(bytes.contains("X-Nudge-Ref: s=acme.myshopify.com&p=p1&t=cart&e=1&v=a"), "{bytes}");
    }

    #[test]
    fn a_bad_recipient_is_an_error_that_does_not_repeat_the_address() {
        let r = Rendered { subject: "s".into(), html: "h".into(), text: "t".into() };
        let env = Envelope {
            from: "shop@example.com",
            to: "not an address",
            message_id: "m",
            unsubscribe_url: "u",
            date: Timestamp::UNIX_EPOCH,
            reference: "",
        };
        let e = build_message(&r, &env).unwrap_err().to_string();
        assert!(!e.contains("not an address"), "{e}");
    }
}
