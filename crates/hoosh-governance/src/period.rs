//! Budget periods as calendar windows in UTC: an hour, a day (from 00:00),
//! an ISO week (from Monday 00:00), a month (from the 1st), or never.
//!
//! Calendar-aligned rather than rolling ("the last 24 h") so that a window is
//! a fact anyone can recompute from a timestamp: the ledger rebuild after a
//! restart sums exactly the rows since [`Period::window_start`], and a user
//! reads "resets at 00:00 UTC". The civil-date conversion is the usual
//! 400-year-era arithmetic on the proleptic Gregorian calendar, done here so
//! that no date library is needed for three functions.

use serde::{Deserialize, Serialize};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
const WEEK_DAYS: i64 = 7;

/// How often a budget starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    /// A lifetime budget: one window from the beginning of time.
    #[default]
    Never,
}

impl Period {
    /// The start (inclusive, unix ms) of the window containing `now_ms`.
    /// `i64::MIN` for [`Period::Never`], so "usage since the window start" is all usage.
    pub fn window_start(self, now_ms: i64) -> i64 {
        match self {
            Period::Hourly => now_ms.div_euclid(HOUR_MS).saturating_mul(HOUR_MS),
            Period::Daily => now_ms.div_euclid(DAY_MS).saturating_mul(DAY_MS),
            Period::Weekly => {
                let day = now_ms.div_euclid(DAY_MS);
                monday_of(day).saturating_mul(DAY_MS)
            }
            Period::Monthly => {
                let (y, m, _) = civil_from_days(now_ms.div_euclid(DAY_MS));
                days_from_civil(y, m, 1).saturating_mul(DAY_MS)
            }
            Period::Never => i64::MIN,
        }
    }

    /// The start of the next window (exclusive end of the current one);
    /// `None` for [`Period::Never`] or past the representable range.
    pub fn next_reset(self, now_ms: i64) -> Option<i64> {
        match self {
            Period::Hourly => self.window_start(now_ms).checked_add(HOUR_MS),
            Period::Daily => self.window_start(now_ms).checked_add(DAY_MS),
            Period::Weekly => self.window_start(now_ms).checked_add(WEEK_DAYS * DAY_MS),
            Period::Monthly => {
                let (y, m, _) = civil_from_days(now_ms.div_euclid(DAY_MS));
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(ny, nm, 1).checked_mul(DAY_MS)
            }
            Period::Never => None,
        }
    }
}

/// The Monday on or before `day` (days since 1970-01-01, a Thursday).
fn monday_of(day: i64) -> i64 {
    // Monday = 0 … Sunday = 6; day 0 is a Thursday, i.e. 3.
    let weekday = (day + 3).rem_euclid(WEEK_DAYS);
    day - weekday
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1-12, `day` 1-31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March so that the leap day is the last day of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400; // 0..=399
    let month_from_march = i64::from((month + 9) % 12); // March = 0
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month 1-12, day 1-31).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097; // 0..=146_096
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2024-05-01T12:00:00.000Z`, for exports.
pub fn format_utc(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let (h, rest) = (in_day / HOUR_MS, in_day % HOUR_MS);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PERIODS: [Period; 4] = [Period::Hourly, Period::Daily, Period::Weekly, Period::Monthly];
    /// 0001-01-01 … 9999-12-31, in ms.
    const YEAR_1: i64 = -62_135_596_800_000;
    const YEAR_9999_END: i64 = 253_402_300_799_999;

    fn at(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * DAY_MS + h * HOUR_MS
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(1_714_564_800_123), "2024-05-01T12:00:00.123Z");
    }

    #[test]
    fn windows_are_calendar_aligned_in_utc() {
        let now = at(2024, 2, 29, 13) + 1234; // Thursday, leap day
        assert_eq!(Period::Hourly.window_start(now), at(2024, 2, 29, 13));
        assert_eq!(Period::Hourly.next_reset(now), Some(at(2024, 2, 29, 14)));
        assert_eq!(Period::Daily.window_start(now), at(2024, 2, 29, 0));
        assert_eq!(Period::Daily.next_reset(now), Some(at(2024, 3, 1, 0)));
        assert_eq!(Period::Weekly.window_start(now), at(2024, 2, 26, 0)); // Monday
        assert_eq!(Period::Weekly.next_reset(now), Some(at(2024, 3, 4, 0)));
        assert_eq!(Period::Monthly.window_start(now), at(2024, 2, 1, 0));
        assert_eq!(Period::Monthly.next_reset(now), Some(at(2024, 3, 1, 0)));
        assert_eq!(Period::Monthly.next_reset(at(2023, 12, 31, 23)), Some(at(2024, 1, 1, 0)));
        assert_eq!(Period::Never.window_start(now), i64::MIN);
        assert_eq!(Period::Never.next_reset(now), None);
        // A Monday at 00:00 starts its own week; a Sunday belongs to the week before.
        assert_eq!(Period::Weekly.window_start(at(2024, 1, 1, 0)), at(2024, 1, 1, 0));
        assert_eq!(Period::Weekly.window_start(at(2024, 1, 7, 23)), at(2024, 1, 1, 0));
        // Before the epoch too.
        assert_eq!(Period::Weekly.window_start(at(1969, 12, 31, 5)), at(1969, 12, 29, 0));
    }

    #[test]
    fn period_serde_is_lowercase() {
        assert_eq!(serde_json::to_string(&Period::Monthly).unwrap(), "\"monthly\"");
        assert_eq!(serde_json::from_str::<Period>("\"never\"").unwrap(), Period::Never);
    }

    proptest! {
        #[test]
        fn civil_round_trips(days in -3_000_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn windows_contain_now_and_tile(now in YEAR_1..YEAR_9999_END, p in 0usize..4) {
            let period = PERIODS[p];
            let start = period.window_start(now);
            let next = period.next_reset(now).unwrap();
            prop_assert!(start <= now && now < next);
            // The next window starts exactly where this one ends…
            prop_assert_eq!(period.window_start(next), next);
            // …and everything up to it is still this window.
            prop_assert_eq!(period.window_start(next - 1), start);
            prop_assert_eq!(period.window_start(start), start);
            let len = next - start;
            let bounds = match period {
                Period::Hourly => (HOUR_MS, HOUR_MS),
                Period::Daily => (DAY_MS, DAY_MS),
                Period::Weekly => (7 * DAY_MS, 7 * DAY_MS),
                _ => (28 * DAY_MS, 31 * DAY_MS),
            };
            prop_assert!(bounds.0 <= len && len <= bounds.1);
        }

        #[test]
        fn week_starts_on_monday(now in YEAR_1..YEAR_9999_END) {
            let day = Period::Weekly.window_start(now).div_euclid(DAY_MS);
            prop_assert_eq!((day + 3).rem_euclid(7), 0);
        }

        #[test]
        fn extremes_do_not_panic(now in any::<i64>(), p in 0usize..4) {
            let period = PERIODS[p];
            let _ = period.window_start(now);
            let _ = period.next_reset(now);
        }
    }
}
