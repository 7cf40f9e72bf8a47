//! Calendar dates and FHIR `dateTime` strings, without a date library.

use std::fmt;

/// A proleptic Gregorian calendar date (ordered chronologically).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
}

impl Date {
    /// A checked date: `None` unless it exists in the calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        ((1..=12).contains(&month) && (1..=days_in_month(year, month.clamp(1, 12))).contains(&day))
            .then_some(Self { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        Self::new(
            digits(&b[0..4])? as u16,
            digits(&b[5..7])? as u8,
            digits(&b[8..10])? as u8,
        )
    }

    /// The date `days` days after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    pub fn from_unix_days(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Self { year, month, day }
    }

    /// Today in UTC, from the system clock.
    pub fn today_utc() -> Self {
        let secs = ehr_primitives::unix_now();
        Self::from_unix_days((secs / 86_400) as i64)
    }

    /// The next day.
    pub fn succ(self) -> Self {
        if let Some(d) = Self::new(self.year, self.month, self.day + 1) {
            d
        } else if self.month < 12 {
            Self::new(self.year, self.month + 1, 1).expect("first of a month exists")
        } else {
            Self::new(self.year + 1, 1, 1).expect("January 1st exists")
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

pub(crate) fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

pub(crate) fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

pub(crate) fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Checks a FHIR `dateTime`: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or
/// `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`; returns the latest calendar day it may denote.
pub(crate) fn parse_date_time(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    match b.len() {
        4 => {
            let y = digits(b)? as u16;
            Date::new(y, 12, 31)
        }
        7 if b[4] == b'-' => {
            let (y, m) = (digits(&b[..4])? as u16, digits(&b[5..7])? as u8);
            Date::new(y, m, days_in_month(y, m.clamp(1, 12)))
        }
        10 => Date::parse(s),
        n if n > 10 && b[10] == b'T' => {
            let date = Date::parse(&s[..10])?;
            let rest = &s[11..];
            let (time, zone) = match rest.find(['Z', '+', '-']) {
                Some(i) => rest.split_at(i),
                None => return None,
            };
            let tb = time.as_bytes();
            if tb.len() < 8 || tb[2] != b':' || tb[5] != b':' {
                return None;
            }
            let (h, mi, sec) = (digits(&tb[..2])?, digits(&tb[3..5])?, digits(&tb[6..8])?);
            if h > 23 || mi > 59 || sec > 60 {
                return None;
            }
            if tb.len() > 8 && (tb[8] != b'.' || tb.len() == 9 || digits(&tb[9..]).is_none()) {
                return None;
            }
            let zb = zone.as_bytes();
            let zone_ok = zone == "Z"
                || (zb.len() == 6
                    && zb[3] == b':'
                    && digits(&zb[1..3]).is_some_and(|h| h <= 14)
                    && digits(&zb[4..6]).is_some_and(|m| m <= 59));
            zone_ok.then_some(date)
        }
        _ => None,
    }
}
