//! The wall clock, read once by the CLI and handed to the pure core as a plain date.

use std::time::{SystemTime, UNIX_EPOCH};

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today_utc() -> String {
    let (y, m, d, _) = now_parts();
    format!("{y:04}-{m:02}-{d:02}")
}

/// Now in UTC as RFC 3339 (`2025-06-01T12:00:00Z`).
pub fn now_rfc3339() -> String {
    let (y, m, d, secs_of_day) = now_parts();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

/// Seconds from an RFC 3339 time (`2026-12-03T05:17:00Z`) to now; `None` when it does not parse.
/// A time in the future (clocks disagree) is 0 seconds ago.
pub fn seconds_since(rfc3339: &str) -> Option<u64> {
    let then: jiff::Timestamp = rfc3339.trim().parse().ok()?;
    let now = unix_seconds() as i64;
    Some(now.saturating_sub(then.as_second()).max(0) as u64)
}

/// Now as Unix time in seconds (for metrics).
pub fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn now_parts() -> (i64, u32, u32, u64) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    (y, m, d, secs % 86_400)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
    if !numeric || crate::check::day_number(text).is_none() {
        return Err(err());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_089), (2025, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
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
