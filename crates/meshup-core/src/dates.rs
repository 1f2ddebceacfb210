//! Calendar dates as `YYYY-MM-DD`, reduced to day numbers so end-of-life rules can compare and count
//! days without a clock: jiff's civil calendar (month lengths, leap years), no hand-written one.

use jiff::civil::Date;

/// Days since 1970-01-01 for a `YYYY-MM-DD` date; `None` when it is not one.
pub fn day_number(date: &str) -> Option<i64> {
    let date = date.trim();
    // Only the extended form: jiff also reads `20261121` and other ISO 8601 spellings.
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let day: Date = date.parse().ok()?;
    let since = Date::constant(1970, 1, 1).until(day).ok()?;
    Some(i64::from(since.get_days()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_count_real_calendar_days() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(
            day_number("2024-03-01").unwrap() - day_number("2024-02-28").unwrap(),
            2
        );
        assert_eq!(
            day_number("2026-11-21").unwrap() - day_number("2025-11-21").unwrap(),
            365
        );
        assert_eq!(
            day_number("2025-01-01").unwrap() - day_number("2024-01-01").unwrap(),
            366
        );
    }

    #[test]
    fn non_dates_are_refused() {
        for bad in [
            "",
            "2026-13-01",
            "2026-02-29",
            "2026-11",
            "21.11.2026",
            "2026-11-21T00:00:00Z",
        ] {
            assert_eq!(day_number(bad), None, "{bad}");
        }
    }
}
