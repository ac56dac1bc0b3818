//! The stored form of a profile in its DynamoDB item: its JSON, deflated
//! (RFC 1951). DynamoDB charges one write unit per started kilobyte of the
//! item; profiles of active shoppers run 1–2.5 KB of JSON and deflate to
//! about a third, so most writes take one unit instead of two or three. The
//! cost model ([`crate::cost`]) sizes items with the same function, so the
//! modelled cost is the cost of these bytes.

use std::io::Read;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use nudge_core::Profile;

use nudge_app::ports::StoreError;

/// Profiles are small, and the fastest level already reaches most of the
/// saving: the point is fewer write units, not the last byte.
const LEVEL: Compression = Compression::fast();

/// A decoded document larger than this is refused (the item limit of
/// DynamoDB is 400 KB; a bounded profile is a few KB).
const MAX_JSON: u64 = 1 << 20;

pub fn pack(profile: &Profile) -> Result<Vec<u8>, StoreError> {
    let failed = |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("cannot pack profile: {e}"));
    let mut out = DeflateEncoder::new(Vec::with_capacity(1024), LEVEL);
    serde_json::to_writer(&mut out, profile).map_err(|e| failed(&e))?;
    out.finish().map_err(|e| failed(&e))
}

pub fn unpack(bytes: &[u8]) -> Result<Profile, StoreError> {
    let unreadable = |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("unreadable profile: {e}"));
    let mut json = Vec::with_capacity(bytes.len() * 4);
    DeflateDecoder::new(bytes).take(MAX_JSON + 1).read_to_end(&mut json).map_err(|e| unreadable(&e))?;
    if json.len() as u64 > MAX_JSON {
        return Err(unreadable(&"larger than 1 MB"));
    }
    serde_json::from_slice(&json).map_err(|e| unreadable(&nudge_app::ports::unreadable(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        serde_json::from_str(include_str!("../../../examples/profiles/cart-abandoner.json")).unwrap()
    }

    #[test]
    fn a_packed_profile_unpacks_to_the_same_profile() {
        let p = profile();
        assert_eq!(unpack(&pack(&p).unwrap()).unwrap(), p);
    }

    #[test]
    fn packing_makes_a_profile_smaller_than_its_json() {
        let p = profile();
        assert!(pack(&p).unwrap().len() < serde_json::to_vec(&p).unwrap().len());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(unpack(b"not deflate at all").is_err());
        let mut truncated = pack(&profile()).unwrap();
        truncated.truncate(truncated.len() / 2);
        assert!(unpack(&truncated).is_err());
    }
}
