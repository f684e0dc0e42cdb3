//! Graph's `dateTimeTimeZone`: a civil date-time without offset plus a zone name that
//! is either a Windows zone ("W. Europe Standard Time"), an IANA zone, or UTC.
//!
//! Windows names are resolved through CLDR's `windowsZones.xml` mapping (territory
//! `001`, the "golden" zone of each Windows name), then through jiff's bundled tzdb.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use crate::Error;

/// Resolves a Graph time zone name (Windows, IANA or UTC spelling) to a zone.
pub fn resolve_time_zone(name: &str) -> Option<TimeZone> {
    let name = name.trim();
    if name.is_empty()
        || name.eq_ignore_ascii_case("utc")
        || name.eq_ignore_ascii_case("tzone://Microsoft/Utc")
        || name.eq_ignore_ascii_case("Etc/UTC")
        || name.eq_ignore_ascii_case("Coordinated Universal Time")
    {
        return Some(TimeZone::UTC);
    }
    if let Some(iana) = windows_zone_to_iana(name) {
        return TimeZone::get(iana).ok();
    }
    TimeZone::get(name).ok()
}

/// The IANA zone CLDR maps a Windows zone name to (territory `001`), if known.
pub fn windows_zone_to_iana(windows: &str) -> Option<&'static str> {
    WINDOWS_ZONES
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(windows))
        .map(|(_, iana)| *iana)
}

/// Parses a `dateTimeTimeZone` pair into an instant.
pub fn parse_date_time_time_zone(date_time: &str, time_zone: &str) -> Result<Timestamp, Error> {
    let civil = parse_civil(date_time)?;
    let zone = resolve_time_zone(time_zone)
        .ok_or_else(|| Error::InvalidInput(format!("unknown time zone {time_zone:?}")))?;
    civil
        .to_zoned(zone)
        .map(|z| z.timestamp())
        .map_err(|e| Error::InvalidInput(format!("date-time {date_time:?} not in zone: {e}")))
}

/// Parses the civil date of an all-day event's `dateTimeTimeZone` (the time part must be
/// midnight; the zone is irrelevant for an all-day date).
pub fn parse_all_day_date(date_time: &str) -> Result<Date, Error> {
    let civil = parse_civil(date_time)?;
    if civil.time() != jiff::civil::Time::midnight() {
        return Err(Error::InvalidInput(format!(
            "all-day boundary {date_time:?} is not at midnight"
        )));
    }
    Ok(civil.date())
}

/// Formats an instant as Graph writes UTC date-times (`2026-03-02T09:00:00.0000000`).
pub fn format_utc(ts: Timestamp) -> String {
    let dt = ts.to_zoned(TimeZone::UTC).datetime();
    format_civil(dt)
}

/// Formats a civil date-time the way Graph does (seven fractional digits).
pub fn format_civil(dt: DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 100
    )
}

/// Formats an instant as an ISO 8601 UTC string with `Z` (query parameters, subscription expiry).
pub fn format_iso_z(ts: Timestamp) -> String {
    format!("{}Z", format_utc(ts))
}

fn parse_civil(date_time: &str) -> Result<DateTime, Error> {
    let s = date_time.trim();
    // Graph sends offset-less values; tolerate a trailing `Z` (UTC-only fields).
    let s = s.strip_suffix('Z').unwrap_or(s);
    s.parse::<DateTime>()
        .map_err(|e| Error::InvalidInput(format!("not a date-time {date_time:?}: {e}")))
}

/// Parses an ISO 8601 instant as Graph sends them for UTC-only fields
/// (`createdDateTime`, `expirationDateTime`, `originalStart`): with `Z` or an offset,
/// or offset-less meaning UTC.
pub fn parse_instant(value: &str) -> Result<Timestamp, Error> {
    if let Ok(ts) = value.parse::<Timestamp>() {
        return Ok(ts);
    }
    parse_date_time_time_zone(value, "UTC")
}

/// CLDR `windowsZones.xml`, `territory="001"` entries.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("UTC-11", "Etc/GMT+11"),
    ("Aleutian Standard Time", "America/Adak"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Marquesas Standard Time", "Pacific/Marquesas"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("UTC-09", "Etc/GMT+9"),
    ("Pacific Standard Time (Mexico)", "America/Tijuana"),
    ("UTC-08", "Etc/GMT+8"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
    ("Mountain Standard Time", "America/Denver"),
    ("Yukon Standard Time", "America/Whitehorse"),
    ("Central America Standard Time", "America/Guatemala"),
    ("Central Standard Time", "America/Chicago"),
    ("Easter Island Standard Time", "Pacific/Easter"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Eastern Standard Time (Mexico)", "America/Cancun"),
    ("Eastern Standard Time", "America/New_York"),
    ("Haiti Standard Time", "America/Port-au-Prince"),
    ("Cuba Standard Time", "America/Havana"),
    ("US Eastern Standard Time", "America/Indianapolis"),
    ("Turks And Caicos Standard Time", "America/Grand_Turk"),
    ("Paraguay Standard Time", "America/Asuncion"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Venezuela Standard Time", "America/Caracas"),
    ("Central Brazilian Standard Time", "America/Cuiaba"),
    ("SA Western Standard Time", "America/La_Paz"),
    ("Pacific SA Standard Time", "America/Santiago"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("Tocantins Standard Time", "America/Araguaina"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("SA Eastern Standard Time", "America/Cayenne"),
    ("Argentina Standard Time", "America/Buenos_Aires"),
    ("Greenland Standard Time", "America/Godthab"),
    ("Montevideo Standard Time", "America/Montevideo"),
    ("Magallanes Standard Time", "America/Punta_Arenas"),
    ("Saint Pierre Standard Time", "America/Miquelon"),
    ("Bahia Standard Time", "America/Bahia"),
    ("UTC-02", "Etc/GMT+2"),
    ("Azores Standard Time", "Atlantic/Azores"),
    ("Cape Verde Standard Time", "Atlantic/Cape_Verde"),
    ("UTC", "Etc/UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("Sao Tome Standard Time", "Africa/Sao_Tome"),
    ("Morocco Standard Time", "Africa/Casablanca"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("Jordan Standard Time", "Asia/Amman"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Middle East Standard Time", "Asia/Beirut"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Syria Standard Time", "Asia/Damascus"),
    ("West Bank Standard Time", "Asia/Hebron"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("South Sudan Standard Time", "Africa/Juba"),
    ("Kaliningrad Standard Time", "Europe/Kaliningrad"),
    ("Sudan Standard Time", "Africa/Khartoum"),
    ("Libya Standard Time", "Africa/Tripoli"),
    ("Namibia Standard Time", "Africa/Windhoek"),
    ("Arabic Standard Time", "Asia/Baghdad"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Belarus Standard Time", "Europe/Minsk"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("E. Africa Standard Time", "Africa/Nairobi"),
    ("Volgograd Standard Time", "Europe/Volgograd"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Astrakhan Standard Time", "Europe/Astrakhan"),
    ("Azerbaijan Standard Time", "Asia/Baku"),
    ("Russia Time Zone 3", "Europe/Samara"),
    ("Mauritius Standard Time", "Indian/Mauritius"),
    ("Saratov Standard Time", "Europe/Saratov"),
    ("Georgian Standard Time", "Asia/Tbilisi"),
    ("Caucasus Standard Time", "Asia/Yerevan"),
    ("Afghanistan Standard Time", "Asia/Kabul"),
    ("West Asia Standard Time", "Asia/Tashkent"),
    ("Qyzylorda Standard Time", "Asia/Qyzylorda"),
    ("Ekaterinburg Standard Time", "Asia/Yekaterinburg"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("India Standard Time", "Asia/Calcutta"),
    ("Sri Lanka Standard Time", "Asia/Colombo"),
    ("Nepal Standard Time", "Asia/Katmandu"),
    ("Central Asia Standard Time", "Asia/Bishkek"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("Omsk Standard Time", "Asia/Omsk"),
    ("Myanmar Standard Time", "Asia/Rangoon"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("Altai Standard Time", "Asia/Barnaul"),
    ("W. Mongolia Standard Time", "Asia/Hovd"),
    ("North Asia Standard Time", "Asia/Krasnoyarsk"),
    ("N. Central Asia Standard Time", "Asia/Novosibirsk"),
    ("Tomsk Standard Time", "Asia/Tomsk"),
    ("China Standard Time", "Asia/Shanghai"),
    ("North Asia East Standard Time", "Asia/Irkutsk"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("Ulaanbaatar Standard Time", "Asia/Ulaanbaatar"),
    ("Aus Central W. Standard Time", "Australia/Eucla"),
    ("Transbaikal Standard Time", "Asia/Chita"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("North Korea Standard Time", "Asia/Pyongyang"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Yakutsk Standard Time", "Asia/Yakutsk"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Central Standard Time", "Australia/Darwin"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("West Pacific Standard Time", "Pacific/Port_Moresby"),
    ("Tasmania Standard Time", "Australia/Hobart"),
    ("Vladivostok Standard Time", "Asia/Vladivostok"),
    ("Lord Howe Standard Time", "Australia/Lord_Howe"),
    ("Bougainville Standard Time", "Pacific/Bougainville"),
    ("Russia Time Zone 10", "Asia/Srednekolymsk"),
    ("Magadan Standard Time", "Asia/Magadan"),
    ("Norfolk Standard Time", "Pacific/Norfolk"),
    ("Sakhalin Standard Time", "Asia/Sakhalin"),
    ("Central Pacific Standard Time", "Pacific/Guadalcanal"),
    ("Russia Time Zone 11", "Asia/Kamchatka"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("UTC+12", "Etc/GMT-12"),
    ("Fiji Standard Time", "Pacific/Fiji"),
    ("Chatham Islands Standard Time", "Pacific/Chatham"),
    ("UTC+13", "Etc/GMT-13"),
    ("Tonga Standard Time", "Pacific/Tongatapu"),
    ("Samoa Standard Time", "Pacific/Apia"),
    ("Line Islands Standard Time", "Pacific/Kiritimati"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_zone_names_resolve_with_dst() {
        // 09:00 in Amsterdam/Berlin is 08:00Z in winter and 07:00Z in summer.
        let winter =
            parse_date_time_time_zone("2026-01-15T09:00:00.0000000", "W. Europe Standard Time");
        assert_eq!(winter.ok(), "2026-01-15T08:00:00Z".parse().ok());
        let summer = parse_date_time_time_zone("2026-07-15T09:00:00", "W. Europe Standard Time");
        assert_eq!(summer.ok(), "2026-07-15T07:00:00Z".parse().ok());
        let pacific = parse_date_time_time_zone("2026-03-02T09:00:00", "Pacific Standard Time");
        assert_eq!(pacific.ok(), "2026-03-02T17:00:00Z".parse().ok());
    }

    #[test]
    fn iana_and_utc_spellings() {
        let utc = parse_date_time_time_zone("2026-03-02T09:00:00.0000000", "UTC");
        assert_eq!(utc.ok(), "2026-03-02T09:00:00Z".parse().ok());
        let london = parse_date_time_time_zone("2026-07-01T09:00:00", "Europe/London");
        assert_eq!(london.ok(), "2026-07-01T08:00:00Z".parse().ok());
        assert!(parse_date_time_time_zone("2026-07-01T09:00:00", "Mars/Olympus").is_err());
        assert!(parse_date_time_time_zone("yesterday", "UTC").is_err());
    }

    #[test]
    fn all_day_dates_need_midnight() {
        assert_eq!(
            parse_all_day_date("2026-03-02T00:00:00.0000000").ok(),
            Some(jiff::civil::date(2026, 3, 2))
        );
        assert!(parse_all_day_date("2026-03-02T09:00:00").is_err());
    }

    #[test]
    fn utc_format_has_seven_digits() {
        let ts: Timestamp = "2026-03-02T09:00:00Z".parse().unwrap();
        assert_eq!(format_utc(ts), "2026-03-02T09:00:00.0000000");
        assert_eq!(format_iso_z(ts), "2026-03-02T09:00:00.0000000Z");
    }

    #[test]
    fn every_mapped_zone_exists_in_tzdb() {
        for (windows, iana) in WINDOWS_ZONES {
            assert!(TimeZone::get(iana).is_ok(), "{windows} -> {iana}");
        }
    }
}
