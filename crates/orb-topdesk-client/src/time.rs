//! Date-time parsing and formatting as TOPdesk writes them.
//!
//! The Reservations API writes `Z`, other modules write `+0000` (no colon), and older
//! examples use `+02:00`: every form is accepted. orb always writes UTC with `Z`.

use jiff::Timestamp;

/// Parses an ISO 8601 date-time with a `Z`, `+00:00` or `+0000` style offset.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    // `+0000` / `-0130`: insert the colon jiff's RFC 3339 parser wants.
    let bytes = text.as_bytes();
    if bytes.len() > 5 && text.is_char_boundary(bytes.len() - 5) {
        let split = bytes.len() - 5;
        let (head, tail) = text.split_at(split);
        let tail_bytes = tail.as_bytes();
        if (tail_bytes[0] == b'+' || tail_bytes[0] == b'-')
            && tail_bytes[1..].iter().all(u8::is_ascii_digit)
        {
            let fixed = format!("{head}{}:{}", &tail[..3], &tail[3..]);
            return fixed.parse::<Timestamp>().ok();
        }
    }
    None
}

/// Formats an instant in UTC with `Z`, without sub-second digits when there are none.
pub fn format_timestamp(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
}

/// Truncates an instant to the whole minute, as TOPdesk does with planned dates.
pub fn truncate_to_minute(ts: Timestamp) -> Timestamp {
    let seconds = ts.as_second();
    let floored = seconds - seconds.rem_euclid(60);
    // Flooring a valid timestamp stays within jiff's range except at its very minimum.
    Timestamp::from_second(floored).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_offset_form() {
        let z = parse_timestamp("2026-05-04T08:00:00Z").unwrap();
        assert_eq!(parse_timestamp("2026-05-04T08:00:00+00:00"), Some(z));
        assert_eq!(parse_timestamp("2026-05-04T08:00:00.000+0000"), Some(z));
        assert_eq!(parse_timestamp("2026-05-04T10:00:00+0200"), Some(z));
        assert_eq!(parse_timestamp("2026-05-04T10:00:00+02:00"), Some(z));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            "2026-05-04",
            "2026-05-04T08:00:00",
            "x+0000",
            "+0000",
            "2026-05-04T08:00:00é0000",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_with_z_and_truncates_to_minutes() {
        let ts = parse_timestamp("2026-05-04T08:01:59.5Z").unwrap();
        assert_eq!(format_timestamp(ts), "2026-05-04T08:01:59.5Z");
        assert_eq!(
            format_timestamp(truncate_to_minute(ts)),
            "2026-05-04T08:01:00Z"
        );
    }
}
