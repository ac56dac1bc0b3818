//! The time zone a customer's address implies, for quiet hours and send
//! windows in the recipient's own time.
//!
//! Storefront payloads carry addresses (ISO 3166 country, and a province
//! or state code) but no time zone. A country with one zone maps to it; a
//! country with several maps by province where the province settles it,
//! and to nothing otherwise: an unknown zone falls back to the shop's
//! (`policy.quiet_hours.time_zone`), which is better than a wrong guess.
//! States split between two zones take the zone most of their people live
//! in (Tennessee: Central; Kentucky, Indiana, Michigan, Florida: Eastern).

/// Countries with one time zone (or one zone nearly all of their people
/// live in), by ISO 3166-1 alpha-2 code.
const COUNTRIES: &[(&str, &str)] = &[
    ("AE", "Asia/Dubai"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("AT", "Europe/Vienna"),
    ("BD", "Asia/Dhaka"),
    ("BE", "Europe/Brussels"),
    ("BG", "Europe/Sofia"),
    ("CH", "Europe/Zurich"),
    ("CL", "America/Santiago"),
    ("CN", "Asia/Shanghai"),
    ("CO", "America/Bogota"),
    ("CR", "America/Costa_Rica"),
    ("CY", "Asia/Nicosia"),
    ("CZ", "Europe/Prague"),
    ("DE", "Europe/Berlin"),
    ("DK", "Europe/Copenhagen"),
    ("DO", "America/Santo_Domingo"),
    ("EE", "Europe/Tallinn"),
    ("EG", "Africa/Cairo"),
    ("FI", "Europe/Helsinki"),
    ("FR", "Europe/Paris"),
    ("GB", "Europe/London"),
    ("GR", "Europe/Athens"),
    ("HK", "Asia/Hong_Kong"),
    ("HR", "Europe/Zagreb"),
    ("HU", "Europe/Budapest"),
    ("IE", "Europe/Dublin"),
    ("IL", "Asia/Jerusalem"),
    ("IN", "Asia/Kolkata"),
    ("IS", "Atlantic/Reykjavik"),
    ("IT", "Europe/Rome"),
    ("JM", "America/Jamaica"),
    ("JP", "Asia/Tokyo"),
    ("KE", "Africa/Nairobi"),
    ("KR", "Asia/Seoul"),
    ("KW", "Asia/Kuwait"),
    ("LT", "Europe/Vilnius"),
    ("LU", "Europe/Luxembourg"),
    ("LV", "Europe/Riga"),
    ("MA", "Africa/Casablanca"),
    ("MT", "Europe/Malta"),
    ("MY", "Asia/Kuala_Lumpur"),
    ("NG", "Africa/Lagos"),
    ("NL", "Europe/Amsterdam"),
    ("NO", "Europe/Oslo"),
    ("NZ", "Pacific/Auckland"),
    ("PA", "America/Panama"),
    ("PE", "America/Lima"),
    ("PH", "Asia/Manila"),
    ("PK", "Asia/Karachi"),
    ("PL", "Europe/Warsaw"),
    ("PR", "America/Puerto_Rico"),
    ("QA", "Asia/Qatar"),
    ("RO", "Europe/Bucharest"),
    ("RS", "Europe/Belgrade"),
    ("SA", "Asia/Riyadh"),
    ("SE", "Europe/Stockholm"),
    ("SG", "Asia/Singapore"),
    ("SI", "Europe/Ljubljana"),
    ("SK", "Europe/Bratislava"),
    ("TH", "Asia/Bangkok"),
    ("TR", "Europe/Istanbul"),
    ("TW", "Asia/Taipei"),
    ("UA", "Europe/Kyiv"),
    ("UY", "America/Montevideo"),
    ("VN", "Asia/Ho_Chi_Minh"),
    ("ZA", "Africa/Johannesburg"),
];

/// Codes and the zones they map to.
type Zones = &'static [(&'static str, &'static str)];

/// Countries with several zones: by province code (as Shopify and
/// WooCommerce send them), then the zone for an unknown or missing
/// province, if one zone holds nearly everyone.
const PROVINCES: &[(&str, Zones, Option<&str>)] = &[
    (
        "US",
        &[
            ("AK", "America/Anchorage"),
            ("AL", "America/Chicago"),
            ("AR", "America/Chicago"),
            ("AZ", "America/Phoenix"),
            ("CA", "America/Los_Angeles"),
            ("CO", "America/Denver"),
            ("CT", "America/New_York"),
            ("DC", "America/New_York"),
            ("DE", "America/New_York"),
            ("FL", "America/New_York"),
            ("GA", "America/New_York"),
            ("GU", "Pacific/Guam"),
            ("HI", "Pacific/Honolulu"),
            ("IA", "America/Chicago"),
            ("ID", "America/Boise"),
            ("IL", "America/Chicago"),
            ("IN", "America/Indiana/Indianapolis"),
            ("KS", "America/Chicago"),
            ("KY", "America/New_York"),
            ("LA", "America/Chicago"),
            ("MA", "America/New_York"),
            ("MD", "America/New_York"),
            ("ME", "America/New_York"),
            ("MI", "America/Detroit"),
            ("MN", "America/Chicago"),
            ("MO", "America/Chicago"),
            ("MS", "America/Chicago"),
            ("MT", "America/Denver"),
            ("NC", "America/New_York"),
            ("ND", "America/Chicago"),
            ("NE", "America/Chicago"),
            ("NH", "America/New_York"),
            ("NJ", "America/New_York"),
            ("NM", "America/Denver"),
            ("NV", "America/Los_Angeles"),
            ("NY", "America/New_York"),
            ("OH", "America/New_York"),
            ("OK", "America/Chicago"),
            ("OR", "America/Los_Angeles"),
            ("PA", "America/New_York"),
            ("PR", "America/Puerto_Rico"),
            ("RI", "America/New_York"),
            ("SC", "America/New_York"),
            ("SD", "America/Chicago"),
            ("TN", "America/Chicago"),
            ("TX", "America/Chicago"),
            ("UT", "America/Denver"),
            ("VA", "America/New_York"),
            ("VI", "America/St_Thomas"),
            ("VT", "America/New_York"),
            ("WA", "America/Los_Angeles"),
            ("WI", "America/Chicago"),
            ("WV", "America/New_York"),
            ("WY", "America/Denver"),
        ],
        None,
    ),
    (
        "CA",
        &[
            ("AB", "America/Edmonton"),
            ("BC", "America/Vancouver"),
            ("MB", "America/Winnipeg"),
            ("NB", "America/Moncton"),
            ("NL", "America/St_Johns"),
            ("NS", "America/Halifax"),
            ("NT", "America/Yellowknife"),
            ("NU", "America/Iqaluit"),
            ("ON", "America/Toronto"),
            ("PE", "America/Halifax"),
            ("QC", "America/Toronto"),
            ("SK", "America/Regina"),
            ("YT", "America/Whitehorse"),
        ],
        None,
    ),
    (
        "AU",
        &[
            ("ACT", "Australia/Sydney"),
            ("NSW", "Australia/Sydney"),
            ("NT", "Australia/Darwin"),
            ("QLD", "Australia/Brisbane"),
            ("SA", "Australia/Adelaide"),
            ("TAS", "Australia/Hobart"),
            ("VIC", "Australia/Melbourne"),
            ("WA", "Australia/Perth"),
        ],
        None,
    ),
    (
        "MX",
        &[
            ("BC", "America/Tijuana"),
            ("SON", "America/Hermosillo"),
            ("ROO", "America/Cancun"),
            ("QR", "America/Cancun"),
        ],
        Some("America/Mexico_City"),
    ),
    (
        "BR",
        &[
            ("AC", "America/Rio_Branco"),
            ("AM", "America/Manaus"),
            ("MS", "America/Campo_Grande"),
            ("MT", "America/Cuiaba"),
            ("RO", "America/Porto_Velho"),
            ("RR", "America/Boa_Vista"),
        ],
        Some("America/Sao_Paulo"),
    ),
    (
        "ES",
        // Shopify's codes for the two Canary Islands provinces.
        &[("GC", "Atlantic/Canary"), ("TF", "Atlantic/Canary")],
        Some("Europe/Madrid"),
    ),
    ("PT", &[("PT-20", "Atlantic/Azores"), ("PT-30", "Atlantic/Madeira")], Some("Europe/Lisbon")),
];

/// The IANA zone of an address in `country` (ISO 3166-1 alpha-2) and
/// `province` (the storefront's code, with or without the `US-` prefix),
/// when the address settles it.
pub fn of_address(country: Option<&str>, province: Option<&str>) -> Option<&'static str> {
    let country = country?.trim();
    if let Some((_, zone)) = COUNTRIES.iter().find(|(c, _)| c.eq_ignore_ascii_case(country)) {
        return Some(zone);
    }
    let (code, provinces, default) = PROVINCES.iter().find(|(c, _, _)| c.eq_ignore_ascii_case(country))?;
    let province = province.map(str::trim).unwrap_or_default();
    // "US-CA" and "CA" name the same state; "PT-20" keeps its prefix.
    let bare = province
        .get(..code.len() + 1)
        .filter(|p| p[..code.len()].eq_ignore_ascii_case(code) && p.ends_with('-'))
        .map_or(province, |_| &province[code.len() + 1..]);
    provinces
        .iter()
        .find(|(p, _)| p.eq_ignore_ascii_case(province) || p.eq_ignore_ascii_case(bare))
        .map(|(_, zone)| *zone)
        .or(*default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_in_the_tables_is_a_zone_the_bundled_database_knows() {
        let zones = COUNTRIES.iter().map(|(_, z)| *z).chain(
            PROVINCES
                .iter()
                .flat_map(|(_, provinces, default)| provinces.iter().map(|(_, z)| *z).chain(default.iter().copied())),
        );
        for zone in zones {
            assert!(jiff::tz::TimeZone::get(zone).is_ok(), "{zone} is not in the time zone database");
        }
    }

    #[test]
    fn a_one_zone_country_maps_to_its_zone_whatever_the_province() {
        assert_eq!(of_address(Some("DE"), Some("BE")), Some("Europe/Berlin"));
        assert_eq!(of_address(Some("gb"), None), Some("Europe/London"));
    }

    #[test]
    fn a_state_settles_the_zone_of_a_country_with_several() {
        assert_eq!(of_address(Some("US"), Some("CA")), Some("America/Los_Angeles"));
        assert_eq!(of_address(Some("US"), Some("US-NY")), Some("America/New_York"));
        assert_eq!(of_address(Some("CA"), Some("QC")), Some("America/Toronto"));
        assert_eq!(of_address(Some("AU"), Some("WA")), Some("Australia/Perth"));
        assert_eq!(of_address(Some("ES"), Some("TF")), Some("Atlantic/Canary"));
        assert_eq!(of_address(Some("PT"), Some("PT-20")), Some("Atlantic/Azores"));
    }

    #[test]
    fn a_country_with_several_zones_and_no_state_has_no_zone_unless_one_holds_nearly_everyone() {
        assert_eq!(of_address(Some("US"), None), None);
        assert_eq!(of_address(Some("US"), Some("Atlantis")), None);
        assert_eq!(of_address(Some("MX"), None), Some("America/Mexico_City"));
        assert_eq!(of_address(Some("BR"), Some("SP")), Some("America/Sao_Paulo"));
    }

    #[test]
    fn an_unknown_or_missing_country_has_no_zone() {
        assert_eq!(of_address(Some("ZZ"), Some("CA")), None);
        assert_eq!(of_address(None, Some("CA")), None);
        assert_eq!(of_address(Some(""), None), None);
    }
}
