//! A Segment-compatible tracking API (`POST /v1/batch|track|identify|page|…`)
//! and the Segment webhook destination (`X-Signature`).
//!
//! The official SDKs retry every answer except 2xx and 400, so only
//! permanent problems are 400 (bad JSON, over Segment's size limits, invalid
//! messages); an unknown write key is 401.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nudge_core::hash::stable_hash;
use nudge_core::{ConsentSource, Event};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::{KeyKind, SourcesConfig};
use crate::delivery::{Accepted, Delivery, Rejection, json_error};
use crate::segment::{SegmentMessage, attribute};
use crate::signature::verify_hex_sha1;

pub const MAX_MESSAGE: usize = 32 * 1024;
pub const MAX_BATCH: usize = 500 * 1024;
pub const MAX_BATCH_MESSAGES: usize = 2_500;
pub const SIGNATURE: &str = "x-signature";
pub const SIGNATURE_ALT: &str = "x-segment-signature";

/// Which tracking endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Batch,
    /// A single message of this type (`track`, `identify`, `page`, ...).
    Single(&'static str),
}

impl Endpoint {
    /// `/v1/batch` → `Batch`, `/v1/track` → `Single("track")`, ...
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let name = path.strip_prefix("/v1/")?.trim_end_matches('/');
        Some(match name {
            "batch" | "import" => Endpoint::Batch,
            "track" => Endpoint::Single("track"),
            "identify" => Endpoint::Single("identify"),
            "page" => Endpoint::Single("page"),
            "screen" => Endpoint::Single("screen"),
            "group" => Endpoint::Single("group"),
            "alias" => Endpoint::Single("alias"),
            _ => return None,
        })
    }
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(default, rename = "writeKey")]
    write_key: Option<String>,
}

#[derive(Deserialize)]
struct KeyOnly {
    #[serde(default, rename = "writeKey")]
    write_key: Option<String>,
}

/// Decodes one call to the tracking API.
pub fn decode(endpoint: Endpoint, d: &Delivery<'_>, config: &SourcesConfig) -> Result<Accepted, Rejection> {
    let body = crate::encoding::decoded(d, MAX_BATCH)?;
    let d = &d.with_body(&body);
    if d.body.len() > MAX_BATCH {
        return Err(Rejection::OverSegmentLimit(format!("request larger than {MAX_BATCH} bytes")));
    }
    let (messages, body_key): (Vec<&[u8]>, Option<String>) = match endpoint {
        Endpoint::Batch => {
            let b: BatchBody<'_> = serde_json::from_slice(d.body).map_err(|e| json_error(&e))?;
            if b.batch.len() > MAX_BATCH_MESSAGES {
                return Err(Rejection::OverSegmentLimit(format!("more than {MAX_BATCH_MESSAGES} messages in a batch")));
            }
            (b.batch.iter().map(|m| m.get().as_bytes()).collect(), b.write_key)
        }
        Endpoint::Single(_) => {
            let k: KeyOnly = serde_json::from_slice(d.body).map_err(|e| json_error(&e))?;
            (vec![d.body], k.write_key)
        }
    };
    let key = basic_auth_user(d).or(body_key).ok_or(Rejection::MissingHeader("Authorization"))?;
    let (shop, key_kind) = config.shop_for_write_key(&key).ok_or(Rejection::UnknownWriteKey)?;
    let mut events = Vec::new();
    for (i, raw) in messages.iter().enumerate() {
        if raw.len() > MAX_MESSAGE {
            return Err(Rejection::OverSegmentLimit(format!("message {i} is larger than {MAX_MESSAGE} bytes")));
        }
        let mut msg: SegmentMessage = serde_json::from_slice(raw).map_err(|e| match json_error(&e) {
            Rejection::MalformedJson(m) => Rejection::MalformedJson(format!("message {i}: {m}")),
            other => other,
        })?;
        if let Endpoint::Single(kind) = endpoint {
            msg.kind.get_or_insert_with(|| kind.to_owned());
        }
        let fallback = format!("raw-{:016x}", stable_hash(&[shop.as_bytes(), raw]));
        let mapped = msg
            .into_events(shop, &fallback, Some(d.received_at))
            .map_err(|e| Rejection::Invalid(format!("message {i}: {e}")))?;
        events.extend(mapped);
    }
    let source = match key_kind {
        KeyKind::Browser => ConsentSource::BrowserKey,
        KeyKind::Server => ConsentSource::ServerKey,
    };
    attribute(&mut events, source);
    Ok(Accepted::Events(events))
}

/// A Segment webhook destination delivery: one message, signed with
/// `X-Signature` (or `X-Segment-Signature`) = hex(HMAC-SHA1(secret, body)),
/// over the body as written (a compressed one is inflated first).
pub fn decode_webhook(d: &Delivery<'_>, config: &SourcesConfig) -> Result<Accepted, Rejection> {
    let body = crate::encoding::decoded(d, MAX_MESSAGE)?;
    let d = &d.with_body(&body);
    if d.body.len() > MAX_MESSAGE {
        return Err(Rejection::OverSegmentLimit(format!("message larger than {MAX_MESSAGE} bytes")));
    }
    let signature = d.header(SIGNATURE).or(d.header(SIGNATURE_ALT)).ok_or(Rejection::MissingHeader("X-Signature"))?;
    let shop = config
        .shops
        .iter()
        .find(|s| verify_hex_sha1(d.body, signature, &s.segment_webhook_secrets).is_ok())
        .map(|s| s.shop.as_str())
        .ok_or(Rejection::BadSignature)?;
    let msg: SegmentMessage = serde_json::from_slice(d.body).map_err(|e| json_error(&e))?;
    let fallback = format!("raw-{:016x}", stable_hash(&[shop.as_bytes(), d.body]));
    let mut events: Vec<Event> =
        msg.into_events(shop, &fallback, Some(d.received_at)).map_err(|e| Rejection::Invalid(e.to_string()))?;
    attribute(&mut events, ConsentSource::SegmentWebhook);
    Ok(Accepted::Events(events))
}

/// The user part of `Authorization: Basic base64(user:password)`.
fn basic_auth_user(d: &Delivery<'_>) -> Option<String> {
    let value = d.header("authorization")?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    (!user.is_empty()).then(|| user.to_owned())
}
