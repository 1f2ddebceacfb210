//! The wall clock, read once by the CLI and handed to the pure core as a plain date.

use jiff::Timestamp;

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today_utc() -> String {
    Timestamp::now().strftime("%Y-%m-%d").to_string()
}

/// Now in UTC as RFC 3339 (`2025-06-01T12:00:00Z`).
pub fn now_rfc3339() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Seconds from an RFC 3339 time (`2026-12-03T05:17:00Z`) to now; `None` when it does not parse.
/// A time in the future (clocks disagree) is 0 seconds ago.
pub fn seconds_since(rfc3339: &str) -> Option<u64> {
    let then: Timestamp = rfc3339.trim().parse().ok()?;
    let now = Timestamp::now().as_second();
    Some(now.saturating_sub(then.as_second()).max(0) as u64)
}

/// Now as Unix time in seconds (for metrics).
pub fn unix_seconds() -> f64 {
    Timestamp::now().as_millisecond() as f64 / 1000.0
}

/// Validates `--date`: `YYYY-MM-DD` naming a real day.
pub fn parse_date(text: &str) -> Result<String, String> {
    let err = || format!("invalid date `{text}`: use YYYY-MM-DD, for example 2025-06-30");
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(err());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(err());
    }
    let numeric = [y, m, d]
        .iter()
        .all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    // The calendar (month lengths, leap years) is the pure core's, used by the end-of-life rules.
    if !numeric || crate::dates::day_number(text).is_none() {
        return Err(err());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same days as the hand-written calendar's test held, now through the one calendar.
    #[test]
    fn days_to_dates() {
        use crate::dates::day_number;
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2000-02-29"), Some(11_016));
        assert_eq!(day_number("2025-01-01"), Some(20_089));
        assert_eq!(day_number("1969-12-31"), Some(-1));
    }

    #[test]
    fn dates_are_validated() {
        assert!(parse_date("2024-02-29").is_ok());
        for bad in [
            "2023-02-29",
            "2025-13-01",
            "2025-1-01",
            "yesterday",
            "2025-06-31",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert_eq!(today_utc().len(), 10);
        assert!(now_rfc3339().ends_with('Z'));
    }
}
