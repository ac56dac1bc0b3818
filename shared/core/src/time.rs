//! Durations written the way rules files write them ("10m", "48h", "7d") and
//! the second-resolution instants profiles store.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds since the Unix epoch. Profiles store instants this way: compact and
/// exact enough for windows measured in minutes to days.
pub type Secs = i64;

pub fn secs(t: Timestamp) -> Secs {
    t.as_second()
}

/// Converts stored seconds back to a timestamp, clamping values outside the
/// representable range instead of failing (stored data is trusted but bounded).
pub fn ts(s: Secs) -> Timestamp {
    Timestamp::from_second(s.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second()))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A non-negative span of time, whole seconds. Parses `"90s"`, `"10m"`, `"48h"`,
/// `"7d"`, `"2w"` and sums such as `"1h30m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(Secs);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected a number and a unit, e.g. \"10m\", \"48h\", \"7d\" (units: s, m, h, d, w)"
)]
pub struct DurError {
    input: String,
}

impl Dur {
    pub const ZERO: Dur = Dur(0);
    /// Longest duration accepted: ten years keeps every sum far from overflow.
    pub const MAX: Dur = Dur(10 * 365 * 86_400);

    pub const fn from_secs(s: Secs) -> Dur {
        Dur(s)
    }
    pub const fn as_secs(self) -> Secs {
        self.0
    }
    pub fn parse(input: &str) -> Result<Dur, DurError> {
        let err = || DurError { input: input.to_owned() };
        let s = input.trim();
        if s.is_empty() {
            return Err(err());
        }
        let mut total: Secs = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return Err(err());
            }
            let n: Secs = rest[..digits].parse().map_err(|_| err())?;
            let unit = rest[digits..].chars().next().ok_or_else(err)?;
            let per = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                _ => return Err(err()),
            };
            total = total.checked_add(n.checked_mul(per).ok_or_else(err)?).ok_or_else(err)?;
            rest = &rest[digits + unit.len_utf8()..];
        }
        if total > Dur::MAX.0 {
            return Err(err());
        }
        Ok(Dur(total))
    }
}

impl FromStr for Dur {
    type Err = DurError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dur::parse(s)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.0;
        if s == 0 {
            return f.write_str("0s");
        }
        for (unit, per) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if s >= per {
                write!(f, "{}{unit}", s / per)?;
                s %= per;
            }
        }
        Ok(())
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses an RFC 3339 timestamp as jiff does. Tracking APIs write nearly
/// every one as `YYYY-MM-DDTHH:MM:SS[.fraction]Z`; that form is read here
/// by position (callgrind: ~260 instructions less per timestamp than
/// jiff's general parser), which takes everything else (offsets, lower-case
/// letters, leap seconds) and every error. Property tests pin the two to the
/// same result.
pub fn parse_timestamp(s: &str) -> Result<Timestamp, jiff::Error> {
    match utc_fast(s.as_bytes()) {
        Some(t) => Ok(t),
        None => s.parse(),
    }
}

fn utc_fast(b: &[u8]) -> Option<Timestamp> {
    let num = |r: std::ops::Range<usize>| {
        b.get(r)?.iter().try_fold(0i32, |n, &c| c.is_ascii_digit().then(|| n * 10 + i32::from(c - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let nanos = match &b[19..] {
        [b'Z'] => 0,
        [b'.', digits @ .., b'Z'] if (1..=9).contains(&digits.len()) => {
            num(20..20 + digits.len())? * 10i32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    if second > 59 {
        return None; // a leap second: jiff's rules
    }
    let dt =
        jiff::civil::DateTime::new(year as i16, month as i8, day as i8, hour as i8, minute as i8, second as i8, nanos)
            .ok()?;
    jiff::tz::Offset::UTC.to_timestamp(dt).ok()
}

/// `#[serde(deserialize_with = "nudge_core::time::optional_timestamp")]`
/// for an `Option<Timestamp>` read with [`parse_timestamp`].
pub fn optional_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = Timestamp;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 timestamp")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
            parse_timestamp(s).map_err(E::custom)
        }
    }
    struct Optional;
    impl<'de> serde::de::Visitor<'de> for Optional {
        type Value = Option<Timestamp>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 timestamp or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_str(Text).map(Some)
        }
    }
    d.deserialize_option(Optional)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the text, the fast path and jiff agree: the same
        /// instant, or both an error.
        #[test]
        fn parse_timestamp_reads_every_text_as_jiff_does(
            year in 0u32..10_000, month in 0u32..14, day in 0u32..33,
            hour in 0u32..26, minute in 0u32..61, second in 0u32..62,
            fraction in "[0-9]{0,10}", sep in "[T t]", zone in "Z|z|\\+01:00|-00:00|",
        ) {
            let dot = if fraction.is_empty() { "" } else { "." };
            let text = format!("{year:04}-{month:02}-{day:02}{sep}{hour:02}:{minute:02}:{second:02}{dot}{fraction}{zone}");
            prop_assert_eq!(parse_timestamp(&text).ok(), text.parse::<Timestamp>().ok(), "{}", text);
        }

        #[test]
        fn parse_timestamp_agrees_with_jiff_on_any_text(text in "[-0-9TZ:.+ ]{0,32}") {
            prop_assert_eq!(parse_timestamp(&text).ok(), text.parse::<Timestamp>().ok(), "{}", text);
        }

        #[test]
        fn parse_timestamp_reads_back_every_instant_jiff_writes(s in -62_000_000_000i64..253_000_000_000, ns in 0i32..1_000_000_000) {
            let t = Timestamp::new(s, ns).unwrap();
            prop_assert_eq!(parse_timestamp(&t.to_string()).unwrap(), t);
        }
    }

    #[test]
    fn optional_timestamp_reads_null_missing_and_text() {
        #[derive(serde::Deserialize)]
        struct M {
            #[serde(default, deserialize_with = "optional_timestamp")]
            at: Option<Timestamp>,
        }
        let at = |json: &str| serde_json::from_str::<M>(json).map(|m| m.at).map_err(|e| e.to_string());
        assert_eq!(at(r#"{"at":null}"#), Ok(None));
        assert_eq!(at("{}"), Ok(None));
        assert_eq!(at(r#"{"at":"2026-09-01T00:00:28.59Z"}"#), Ok(Some("2026-09-01T00:00:28.59Z".parse().unwrap())));
        assert!(at(r#"{"at":"2026-02-30T00:00:00Z"}"#).unwrap_err().contains("line 1"));
        assert!(at(r#"{"at":5}"#).unwrap_err().contains("an RFC 3339 timestamp"));
    }

    #[test]
    fn durations_parse_units_and_sums() {
        assert_eq!(Dur::parse("10m").unwrap().as_secs(), 600);
        assert_eq!(Dur::parse("48h").unwrap().as_secs(), 172_800);
        assert_eq!(Dur::parse("7d").unwrap().as_secs(), 604_800);
        assert_eq!(Dur::parse("1h30m").unwrap().as_secs(), 5_400);
        assert_eq!(Dur::parse("2w").unwrap().as_secs(), 1_209_600);
    }

    #[test]
    fn bad_durations_are_rejected_not_guessed() {
        for bad in ["", "10", "m", "10x", "-5m", "1.5h", "99999999999d", "4000w"] {
            assert!(Dur::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn durations_display_round_trip() {
        for s in ["10m", "48h", "7d", "1h30m", "0s", "1d2h3m4s"] {
            let d = Dur::parse(s).unwrap();
            assert_eq!(Dur::parse(&d.to_string()).unwrap(), d);
        }
        assert_eq!(Dur::parse("48h").unwrap().to_string(), "2d");
    }
}
