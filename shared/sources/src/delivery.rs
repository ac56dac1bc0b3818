//! What an endpoint receives, what a decoder makes of it, and the one place
//! where a rejection becomes an HTTP status.

use http::HeaderMap;
use jiff::Timestamp;
use nudge_core::{Event, ProductChange};

/// A raw delivery: headers and body bytes exactly as received.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub received_at: Timestamp,
}

impl<'a> Delivery<'a> {
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The same delivery with another body (its content decoded).
    pub fn with_body<'b>(&self, body: &'b [u8]) -> Delivery<'b>
    where
        'a: 'b,
    {
        Delivery { headers: self.headers, body, received_at: self.received_at }
    }
}

/// A delivery the decoder accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Events for the core, each with its dedupe id.
    Events(Vec<Event>),
    /// Everything a shop holds must go (Shopify `shop/redact`).
    EraseShop { shop: String },
    /// Product webhooks: changes to the shop's catalogue, no person involved.
    Products { shop: String, changes: Vec<ProductChange> },
    /// A valid delivery nudge has no use for; acknowledged so it is not retried.
    Ignored { topic: String },
    /// A source's set-up ping (WooCommerce); touches nothing.
    Ping,
}

/// Why a delivery was refused. Nothing is stored for any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("signature does not match")]
    BadSignature,
    #[error("unknown shop or source")]
    UnknownShop,
    #[error("unknown write key")]
    UnknownWriteKey,
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Too large for Segment's limits: a permanent reject the official SDKs
    /// must not retry, so it is a 400 like Segment's own API answers.
    #[error("{0}")]
    OverSegmentLimit(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("invalid payload: {0}")]
    Invalid(String),
    /// The client did not send its whole body in time.
    #[error("body not received within {secs} s")]
    SlowBody { secs: u64 },
    /// A signed body that is not what its (unsigned) headers say it is.
    #[error("payload does not match its topic: {0}")]
    WrongShape(String),
    /// A `Content-Encoding` this endpoint does not take.
    #[error("unsupported Content-Encoding {0:?} (gzip, deflate or none)")]
    UnsupportedEncoding(String),
    /// A body whose `Content-Encoding` does not decode.
    #[error("body is not valid {0}")]
    BadEncoding(&'static str),
}

impl Rejection {
    /// The HTTP status for this rejection: the only place statuses are chosen.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::MissingHeader(_)
            | Rejection::BadSignature
            | Rejection::UnknownShop
            | Rejection::UnknownWriteKey => 401,
            Rejection::TooLarge { .. } => 413,
            Rejection::UnsupportedEncoding(_) => 415,
            Rejection::SlowBody { .. } => 408,
            Rejection::OverSegmentLimit(_)
            | Rejection::MalformedJson(_)
            | Rejection::Invalid(_)
            | Rejection::WrongShape(_)
            | Rejection::BadEncoding(_) => 400,
        }
    }
}

/// serde_json's message without the input echoed back.
pub(crate) fn json_error(e: &serde_json::Error) -> Rejection {
    Rejection::MalformedJson(format!("{} at line {} column {}", classify(e), e.line(), e.column()))
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "unexpected end of input",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_map_to_one_status_each() {
        assert_eq!(Rejection::BadSignature.status(), 401);
        assert_eq!(Rejection::MissingHeader("X").status(), 401);
        assert_eq!(Rejection::UnknownWriteKey.status(), 401);
        assert_eq!(Rejection::TooLarge { limit: 1 }.status(), 413);
        assert_eq!(Rejection::MalformedJson("x".into()).status(), 400);
        assert_eq!(Rejection::OverSegmentLimit("x".into()).status(), 400);
    }
}
