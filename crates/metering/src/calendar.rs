//! UTC days and calendar months on milliseconds since the Unix epoch.
//!
//! The free tier resets on the first day of each calendar month in UTC, so billing needs
//! the proleptic Gregorian calendar. It is small enough to carry here instead of a date
//! crate: one conversion each way between a day number and a (year, month, day) triple.

/// Milliseconds in a day (the model's constant: usage rows are per UTC day).
pub use gureum_model::MS_PER_DAY;

/// Days from 0000-03-01 to 1970-01-01 in the March-based count `day_from_date` uses.
const EPOCH_OFFSET: i64 = 719_468;

/// Days in one 400-year Gregorian cycle (the calendar repeats exactly after it).
const DAYS_PER_400_YEARS: i64 = 146_097;

/// The UTC day containing `ms`, as days since 1970-01-01 (negative before it).
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// The first millisecond of `day` (days since 1970-01-01).
pub fn day_start_ms(day: i64) -> i64 {
    day * MS_PER_DAY
}

/// The first millisecond of the UTC calendar month containing `ms`.
pub fn month_start_ms(ms: i64) -> i64 {
    day_start_ms(month_start_day(day_of(ms)))
}

/// The first millisecond of the UTC calendar month after the one containing `ms`.
pub fn next_month_start_ms(ms: i64) -> i64 {
    day_start_ms(next_month_start_day(day_of(ms)))
}

/// `day` as `YYYY-MM-DD` (e.g. "2026-11-25").
pub fn format_day(day: i64) -> String {
    let (year, month, dom) = date_of_day(day);
    format!("{year:04}-{month:02}-{dom:02}")
}

/// Days since 1970-01-01 of the date `year-month-day` in the proleptic Gregorian calendar.
///
/// `month` is 1..=12 and `day` 1..=31; out-of-range days simply count on (Feb 30 is Mar 1 or
/// 2), which `date_of_day` relies on never producing.
pub fn day_from_date(year: i64, month: u32, day: u32) -> i64 {
    // Counting years from March puts the leap day at the end of the year, so the day of the
    // year no longer depends on whether the year is leap.
    let (year, months_since_march) = if month <= 2 {
        (year - 1, i64::from(month) + 9)
    } else {
        (year, i64::from(month) - 3)
    };
    // Month lengths from March run 31 30 31 30 31 31 30 31 30 31 31 (29): the cumulative
    // count is (153 * m + 2) / 5, exact for all twelve months.
    let day_of_year = (153 * months_since_march + 2) / 5 + i64::from(day) - 1;
    let leap_days = year.div_euclid(4) - year.div_euclid(100) + year.div_euclid(400);
    365 * year + leap_days + day_of_year - EPOCH_OFFSET
}

/// The (year, month 1..=12, day 1..=31) of `day` (days since 1970-01-01).
pub fn date_of_day(day: i64) -> (i64, u32, u32) {
    // The mean Gregorian year guesses the year to within one; the loops settle it.
    let mut year = 1970 + (day * 400).div_euclid(DAYS_PER_400_YEARS);
    while day_from_date(year, 1, 1) > day {
        year -= 1;
    }
    while day_from_date(year + 1, 1, 1) <= day {
        year += 1;
    }
    let mut month = 1;
    while month < 12 && day_from_date(year, month + 1, 1) <= day {
        month += 1;
    }
    let first = day_from_date(year, month, 1);
    // The difference is below 31 by construction, so the cast cannot truncate.
    (year, month, (day - first + 1) as u32)
}

/// The first day of the month containing `day`.
pub(crate) fn month_start_day(day: i64) -> i64 {
    let (year, month, _) = date_of_day(day);
    day_from_date(year, month, 1)
}

/// The first day of the month after the one containing `day`.
pub(crate) fn next_month_start_day(day: i64) -> i64 {
    let (year, month, _) = date_of_day(day);
    if month == 12 {
        day_from_date(year + 1, 1, 1)
    } else {
        day_from_date(year, month + 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_day_zero() {
        assert_eq!(day_from_date(1970, 1, 1), 0);
        assert_eq!(date_of_day(0), (1970, 1, 1));
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399_999), 0);
        assert_eq!(day_of(86_400_000), 1);
        assert_eq!(day_of(-1), -1);
        assert_eq!(date_of_day(-1), (1969, 12, 31));
        assert_eq!(month_start_ms(0), 0);
        // January 1970 has 31 days.
        assert_eq!(next_month_start_ms(0), 31 * MS_PER_DAY);
    }

    #[test]
    fn known_dates() {
        // 2026-11-25: 56 years after 1970 with 14 leap days (1972..=2024), then
        // Jan..Oct 2026 = 304 days, plus 24: 56*365 + 14 + 304 + 24 = 20_782.
        assert_eq!(day_from_date(2026, 11, 25), 20_782);
        assert_eq!(format_day(20_782), "2026-11-25");
        // 2000-03-01 is 11_017 days after the epoch (a well-known check value).
        assert_eq!(day_from_date(2000, 3, 1), 11_017);
        assert_eq!(date_of_day(11_016), (2000, 2, 29));
        // 1_700_000_000_000 ms is 2023-11-14T22:13:20Z.
        assert_eq!(format_day(day_of(1_700_000_000_000)), "2023-11-14");
    }

    #[test]
    fn month_boundaries() {
        let ms = |y, m, d| day_start_ms(day_from_date(y, m, d));
        // December rolls into January of the next year.
        let dec_15 = ms(2026, 12, 15) + 3_600_000;
        assert_eq!(month_start_ms(dec_15), ms(2026, 12, 1));
        assert_eq!(next_month_start_ms(dec_15), ms(2027, 1, 1));
        assert_eq!(
            format_day(day_of(next_month_start_ms(dec_15))),
            "2027-01-01"
        );
        // The last millisecond of a month still belongs to it.
        assert_eq!(month_start_ms(ms(2026, 11, 1) - 1), ms(2026, 10, 1));
        // February 2028 is leap: 29 days; February 2027 is not: 28; 2100 is not leap.
        let feb_2028 = ms(2028, 2, 10);
        assert_eq!(
            next_month_start_ms(feb_2028) - month_start_ms(feb_2028),
            29 * MS_PER_DAY
        );
        assert_eq!(format_day(day_from_date(2028, 2, 29)), "2028-02-29");
        let feb_2027 = ms(2027, 2, 10);
        assert_eq!(
            next_month_start_ms(feb_2027) - month_start_ms(feb_2027),
            28 * MS_PER_DAY
        );
        assert_eq!(format_day(day_from_date(2027, 2, 28) + 1), "2027-03-01");
        assert_eq!(format_day(day_from_date(2100, 2, 28) + 1), "2100-03-01");
        assert_eq!(format_day(day_from_date(2000, 2, 28) + 1), "2000-02-29");
    }

    #[test]
    fn conversion_walks_every_day_in_order() {
        // Over ~1,100 years around the epoch, successive day numbers must give successive
        // dates, and each date must map back to its number.
        let month_len = |y: i64, m: u32| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let start = day_from_date(1500, 1, 1);
        let (mut y, mut m, mut d) = (1500, 1, 1);
        for day in start..start + 400_000 {
            assert_eq!(date_of_day(day), (y, m, d), "day {day}");
            assert_eq!(day_from_date(y, m, d), day);
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
