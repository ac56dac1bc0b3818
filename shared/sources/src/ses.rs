//! SES v2 event publishing → nudge events. The `ses-events` function gets
//! these through EventBridge (the SES event is the envelope's `detail`);
//! a bare SES event (SNS / Firehose destinations) parses the same.
//!
//! Recipients' addresses in the event are never read into the result: the
//! message id joins the feedback back to a profile.

use jiff::Timestamp;
use nudge_core::EventKind;
use nudge_core::event::{EventId, MessageRef};
use serde::Deserialize;

/// What SES reported about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesFeedback {
    /// The event's own id (SES may publish an event more than once).
    pub id: EventId,
    /// SES's id of the message.
    pub message_id: String,
    /// The local part of the message's own `Message-ID` header
    /// (`mail.commonHeaders.messageId`), when it has one: the id a message
    /// sent through SES's SMTP interface by `nudge serve` is recorded under.
    pub header_id: Option<String>,
    /// The send the message was, from its `X-Nudge-Ref` header (nudge
    /// writes it into every message; SES reports the headers back).
    pub reference: Option<SentRef>,
    pub kind: Feedback,
    /// When it happened (the event's own time, else the send time).
    pub at: Timestamp,
    /// `mail.tags`, first value of each.
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    Bounce {
        permanent: bool,
    },
    Complaint,
    Open,
    Click,
    Delivery,
    /// Send, Reject, DeliveryDelay, Rendering Failure, Subscription: counted,
    /// not folded into a profile.
    Other(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an SES event: {0}")]
pub struct SesError(String);

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "eventType", alias = "notificationType")]
    event_type: String,
    mail: Mail,
    #[serde(default)]
    bounce: Option<Stamped<BounceBody>>,
    #[serde(default)]
    complaint: Option<Stamped<Empty>>,
    #[serde(default)]
    open: Option<Stamped<Empty>>,
    #[serde(default)]
    click: Option<Stamped<Empty>>,
    #[serde(default)]
    delivery: Option<Stamped<Empty>>,
}

#[derive(Deserialize)]
struct Mail {
    #[serde(rename = "messageId")]
    message_id: String,
    timestamp: Timestamp,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "commonHeaders")]
    common_headers: Option<CommonHeaders>,
    #[serde(default)]
    headers: Vec<Header>,
}

#[derive(Deserialize)]
struct CommonHeaders {
    #[serde(default, rename = "messageId")]
    message_id: Option<String>,
}

/// Which send a message was: what its `X-Nudge-Ref` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRef {
    pub shop: String,
    pub profile: String,
    pub trigger: String,
    pub episode: u32,
    pub variant: String,
}

impl SentRef {
    /// Reads the header's value; `None` unless every part is there and
    /// of a sensible length.
    pub fn parse(value: &str) -> Option<SentRef> {
        let (mut shop, mut profile, mut trigger, mut episode, mut variant) = (None, None, None, None, None);
        for (k, v) in form_urlencoded::parse(value.trim().as_bytes()) {
            let v = v.into_owned();
            if v.is_empty() || v.len() > 253 || v.chars().any(char::is_control) {
                return None;
            }
            match &*k {
                "s" => shop = Some(v),
                "p" => profile = Some(v),
                "t" => trigger = Some(v),
                "e" => episode = v.parse().ok(),
                "v" => variant = Some(v),
                _ => {}
            }
        }
        Some(SentRef { shop: shop?, profile: profile?, trigger: trigger?, episode: episode?, variant: variant? })
    }
}

#[derive(Deserialize)]
struct Header {
    name: String,
    value: String,
}

/// `<local@domain>` → `local`.
fn local_part(message_id: &str) -> Option<String> {
    let id = message_id.trim().trim_start_matches('<').trim_end_matches('>');
    let local = id.split('@').next().unwrap_or_default();
    (!local.is_empty()).then(|| local.to_owned())
}

#[derive(Deserialize)]
struct Stamped<T> {
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(flatten)]
    body: T,
}

#[derive(Deserialize)]
struct BounceBody {
    #[serde(rename = "bounceType")]
    bounce_type: String,
}

#[derive(Deserialize)]
struct Empty {}

/// Parses an EventBridge envelope (`{"detail-type": …, "detail": {…}}`) or
/// a bare SES event.
pub fn parse(body: &[u8]) -> Result<SesFeedback, SesError> {
    parse_value(serde_json::from_slice(body).map_err(|e| SesError(e.to_string()))?)
}

/// [`parse`], for an event the Lambda runtime already decoded.
pub fn parse_value(mut value: serde_json::Value) -> Result<SesFeedback, SesError> {
    let enveloped = value.get("detail-type").is_some() && value.get("detail").is_some();
    let detail = if enveloped { value["detail"].take() } else { value };
    let raw: Raw = serde_json::from_value(detail).map_err(|e| SesError(e.to_string()))?;
    let own = |s: &Option<Stamped<Empty>>| s.as_ref().and_then(|s| s.timestamp);
    let (kind, at) = match raw.event_type.as_str() {
        "Bounce" => {
            let b = raw.bounce.as_ref().ok_or_else(|| SesError("Bounce without `bounce`".into()))?;
            (Feedback::Bounce { permanent: b.body.bounce_type == "Permanent" }, b.timestamp)
        }
        "Complaint" => (Feedback::Complaint, own(&raw.complaint)),
        "Open" => (Feedback::Open, own(&raw.open)),
        "Click" => (Feedback::Click, own(&raw.click)),
        "Delivery" => (Feedback::Delivery, own(&raw.delivery)),
        other => (Feedback::Other(other.to_owned()), None),
    };
    let tags = raw.mail.tags.into_iter().filter_map(|(k, v)| v.into_iter().next().map(|v| (k, v))).collect();
    let header_id = raw.mail.common_headers.and_then(|h| h.message_id).as_deref().and_then(local_part);
    let reference = raw
        .mail
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(nudge_core::event::REFERENCE_HEADER))
        .and_then(|h| SentRef::parse(&h.value));
    let at = at.unwrap_or(raw.mail.timestamp);
    let id = EventId::parse(format!("ses:{}:{}:{}", raw.mail.message_id, kind.name(), at.as_millisecond()))
        .map_err(|e| SesError(format!("mail.messageId: {e}")))?;
    Ok(SesFeedback { id, message_id: raw.mail.message_id, header_id, reference, kind, at, tags })
}

impl SesFeedback {
    /// The profile event this feedback is, for the message of `message`.
    pub fn event_kind(&self, message: MessageRef) -> Option<EventKind> {
        Some(match self.kind {
            Feedback::Bounce { permanent } => EventKind::EmailBounced { permanent },
            Feedback::Complaint => EventKind::EmailComplained {},
            Feedback::Open => EventKind::EmailOpened { message },
            Feedback::Click => EventKind::EmailClicked { message },
            Feedback::Delivery | Feedback::Other(_) => return None,
        })
    }

    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Feedback {
    pub fn name(&self) -> &str {
        match self {
            Feedback::Bounce { .. } => "bounce",
            Feedback::Complaint => "complaint",
            Feedback::Open => "open",
            Feedback::Click => "click",
            Feedback::Delivery => "delivery",
            Feedback::Other(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../../fixtures/aws/ses/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_published_permanent_bounce_is_a_suppressing_bounce_with_its_own_time() {
        let f = parse(&fixture("ses.event-publishing.bounce.json")).unwrap();
        assert_eq!(f.kind, Feedback::Bounce { permanent: true });
        assert_eq!(f.message_id, "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000");
        assert_eq!(f.at, "2017-08-05T00:41:02.669Z".parse::<Timestamp>().unwrap());
        assert!(matches!(f.event_kind(MessageRef::default()), Some(EventKind::EmailBounced { permanent: true })));
    }

    #[test]
    fn every_published_fixture_parses_and_maps_to_the_expected_kind() {
        for (file, kind) in [
            ("complaint", "complaint"),
            ("open", "open"),
            ("click", "click"),
            ("delivery", "delivery"),
            ("send", "Send"),
            ("reject", "Reject"),
            ("delivery_delay", "DeliveryDelay"),
        ] {
            let f = parse(&fixture(&format!("ses.event-publishing.{file}.json"))).unwrap();
            assert_eq!(f.kind.name(), kind, "{file}");
        }
    }

    #[test]
    fn an_eventbridge_envelope_is_unwrapped() {
        let detail: serde_json::Value = serde_json::from_slice(&fixture("ses.event-publishing.open.json")).unwrap();
        let env = serde_json::json!({"detail-type": "Email Opened", "source": "aws.ses", "detail": detail});
        let f = parse(env.to_string().as_bytes()).unwrap();
        assert_eq!(f.kind, Feedback::Open);
    }

    #[test]
    fn the_message_id_header_is_kept_as_its_local_part() {
        let f = parse(&fixture("ses.event-publishing.click.json")).unwrap();
        assert_eq!(f.header_id.as_deref(), Some("EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"));
        let with_header = |id: &str| {
            let body = serde_json::json!({"eventType": "Open", "open": {}, "mail": {
                "messageId": "ses-1", "timestamp": "2026-10-06T14:00:00Z", "commonHeaders": {"messageId": id}}});
            parse(body.to_string().as_bytes()).unwrap().header_id
        };
        assert_eq!(with_header("<acme.p1.cart.1-a@shop.example>").as_deref(), Some("acme.p1.cart.1-a"));
        assert_eq!(with_header("<>"), None);
        assert_eq!(with_header("@x"), None);
    }

    #[test]
    fn the_reference_header_names_the_send_only_when_it_is_whole() {
        let r = SentRef::parse("s=acme.myshopify.com&p=p-1&t=cart&e=3&v=a").unwrap();
        assert_eq!(
            (r.shop.as_str(), r.profile.as_str(), r.trigger.as_str(), r.episode),
            ("acme.myshopify.com", "p-1", "cart", 3)
        );
        for bad in ["", "s=a&p=b&t=c&v=d", "s=a&p=b&t=c&e=x&v=d", "s=a&p=&t=c&e=1&v=d", "s=a%0A&p=b&t=c&e=1&v=d"] {
            assert_eq!(SentRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn something_else_is_an_error_not_a_panic() {
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
        assert!(
            parse(br#"{"eventType":"Bounce","mail":{"messageId":"m","timestamp":"2017-08-05T00:41:02Z"}}"#).is_err()
        );
    }
}
