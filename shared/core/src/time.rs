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

#[cfg(test)]
mod tests {
    use super::*;

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
