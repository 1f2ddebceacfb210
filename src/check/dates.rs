//! Calendar dates as `YYYY-MM-DD`, reduced to day numbers so end-of-life rules can compare and count
//! days without a clock or a date library.

/// Days since 1970-01-01 for a `YYYY-MM-DD` date; `None` when it is not one.
pub fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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
