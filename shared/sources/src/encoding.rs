//! `Content-Encoding` on the tracking API: Segment's and RudderStack's
//! libraries compress their batches (RudderStack's by default).
//!
//! A compressed body is inflated to at most the endpoint's limit: one that
//! would grow past it (a zip bomb) is refused as 413 without inflating the
//! rest, and every later limit applies to the inflated body.

use std::borrow::Cow;
use std::io::Read;

use crate::delivery::{Delivery, Rejection};

/// The body as its sender wrote it: `gzip` (or `x-gzip`) and `deflate`
/// undone, at most `limit` bytes; without a `Content-Encoding` (or with
/// `identity`) the body itself.
pub fn decoded<'b>(d: &Delivery<'b>, limit: usize) -> Result<Cow<'b, [u8]>, Rejection> {
    let Some(encoding) = d.header("content-encoding") else { return Ok(Cow::Borrowed(d.body)) };
    let inflated = match encoding.to_ascii_lowercase().as_str() {
        "identity" => return Ok(Cow::Borrowed(d.body)),
        "gzip" | "x-gzip" => inflate(flate2::read::GzDecoder::new(d.body), limit, "gzip")?,
        // HTTP's `deflate` is zlib-wrapped (RFC 9110); some clients send
        // the bare stream.
        "deflate" => match inflate(flate2::read::ZlibDecoder::new(d.body), limit, "deflate") {
            Err(Rejection::BadEncoding(_)) => inflate(flate2::read::DeflateDecoder::new(d.body), limit, "deflate")?,
            other => other?,
        },
        other => return Err(Rejection::UnsupportedEncoding(other.chars().take(32).collect())),
    };
    Ok(Cow::Owned(inflated))
}

fn inflate(reader: impl Read, limit: usize, name: &'static str) -> Result<Vec<u8>, Rejection> {
    let mut out = Vec::new();
    let read = reader.take(limit as u64 + 1).read_to_end(&mut out);
    match read {
        Err(_) => Err(Rejection::BadEncoding(name)),
        Ok(n) if n > limit => Err(Rejection::TooLarge { limit }),
        Ok(_) => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use http::HeaderMap;

    use super::*;

    fn delivery<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Delivery<'a> {
        Delivery { headers, body, received_at: jiff::Timestamp::UNIX_EPOCH }
    }

    fn headers(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", encoding.parse().unwrap());
        h
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn gzip_deflate_and_bare_deflate_bodies_are_inflated() {
        let body = br#"{"batch":[]}"#;
        let h = headers("gzip");
        assert_eq!(&*decoded(&delivery(&h, &gzip(body)), 100).unwrap(), body);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(body).unwrap();
        let h = headers("Deflate");
        assert_eq!(&*decoded(&delivery(&h, &zlib.finish().unwrap()), 100).unwrap(), body);
        let mut bare = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        bare.write_all(body).unwrap();
        assert_eq!(&*decoded(&delivery(&h, &bare.finish().unwrap()), 100).unwrap(), body);
    }

    #[test]
    fn a_body_without_an_encoding_is_itself() {
        let h = HeaderMap::new();
        assert!(matches!(decoded(&delivery(&h, b"{}"), 100).unwrap(), Cow::Borrowed(b"{}")));
        let h = headers("identity");
        assert!(matches!(decoded(&delivery(&h, b"{}"), 100).unwrap(), Cow::Borrowed(b"{}")));
    }

    #[test]
    fn a_body_that_inflates_past_the_limit_is_413_and_is_not_inflated_further() {
        // 64 MB of zeros compress to about 64 KB.
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            w.write_all(&zeros).unwrap();
        }
        let bomb = w.finish().unwrap();
        let h = headers("gzip");
        assert_eq!(decoded(&delivery(&h, &bomb), 500 * 1024), Err(Rejection::TooLarge { limit: 500 * 1024 }));
    }

    #[test]
    fn corrupt_or_unknown_encodings_are_refused() {
        let h = headers("gzip");
        assert_eq!(decoded(&delivery(&h, b"{\"not\":\"gzip\"}"), 100), Err(Rejection::BadEncoding("gzip")));
        let h = headers("br");
        assert_eq!(decoded(&delivery(&h, b"x"), 100).unwrap_err().status(), 415);
        let h = headers("gzip, gzip");
        assert_eq!(decoded(&delivery(&h, b"x"), 100).unwrap_err().status(), 415);
    }
}
