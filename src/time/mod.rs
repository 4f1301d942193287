//! Time, below every other module: QuestDB's time strides: `5m`, `1h`, `1d`, `3M`, … as SAMPLE BY, the
//! timestamp functions (`timestamp_floor('1d', ts)`, `dateadd('M', 2, ts)`)
//! and interval literals use them. One place for the unit letters and for
//! calendar arithmetic on UTC microseconds.

pub mod interval;
pub mod partition;

pub use partition::PartitionBy;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

const MICRO: i64 = 1;
const MILLI: i64 = 1_000;
const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Micro,
    Milli,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Unit {
    /// QuestDB's letter: `U`/`u` µs, `T` ms, `s`, `m`, `h`, `d`, `w`, `M`, `y`
    /// (case matters: `m` is a minute, `M` a month).
    pub fn from_letter(c: char) -> Option<Unit> {
        Some(match c {
            'U' | 'u' => Unit::Micro,
            'T' => Unit::Milli,
            's' => Unit::Second,
            'm' => Unit::Minute,
            'h' => Unit::Hour,
            'd' => Unit::Day,
            'w' => Unit::Week,
            'M' => Unit::Month,
            'y' => Unit::Year,
            _ => return None,
        })
    }

    /// Its length in microseconds; `None` for months and years.
    pub fn micros(self) -> Option<i64> {
        Some(match self {
            Unit::Micro => MICRO,
            Unit::Milli => MILLI,
            Unit::Second => SECOND,
            Unit::Minute => MINUTE,
            Unit::Hour => HOUR,
            Unit::Day => DAY,
            Unit::Week => WEEK,
            Unit::Month | Unit::Year => return None,
        })
    }
}

/// `n` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stride {
    pub n: i64,
    pub unit: Unit,
}

impl Stride {
    /// `5m`, `1h`, `d` (one day): a positive count and a unit letter.
    pub fn parse(s: &str) -> Option<Stride> {
        let s = s.trim();
        let letter = s.chars().last()?;
        let unit = Unit::from_letter(letter)?;
        let digits = &s[..s.len() - letter.len_utf8()];
        let n = if digits.is_empty() {
            1
        } else {
            digits.parse::<i64>().ok()?
        };
        (n > 0).then_some(Stride { n, unit })
    }

    /// As QuestDB writes it: `15m`.
    pub fn text(&self) -> String {
        let c = match self.unit {
            Unit::Micro => 'U',
            Unit::Milli => 'T',
            Unit::Second => 's',
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
            Unit::Week => 'w',
            Unit::Month => 'M',
            Unit::Year => 'y',
        };
        format!("{}{c}", self.n)
    }

    /// The fixed length in microseconds (`None`: months and years).
    pub fn micros(&self) -> Option<i64> {
        self.unit.micros().map(|u| u.saturating_mul(self.n))
    }

    /// Months in the stride, for months and years.
    fn months(&self) -> i64 {
        match self.unit {
            Unit::Year => self.n * 12,
            _ => self.n,
        }
    }

    /// The start of the stride holding `t`, strides counted from `origin`
    /// (both UTC microseconds). Months and years count calendar months
    /// from the origin's month, starting at the origin's day and time.
    pub fn floor(&self, t: i64, origin: i64) -> i64 {
        match self.micros() {
            Some(len) => origin + (t - origin).div_euclid(len) * len,
            None => {
                let months = self.months();
                let (o, d) = (to_dt(origin), to_dt(t));
                let diff =
                    (d.year() as i64 - o.year() as i64) * 12 + d.month() as i64 - o.month() as i64;
                let mut k = diff.div_euclid(months);
                // The stride starts at the origin's day and time of month.
                while k > i64::MIN / 2 && add_months(origin, k * months) > t {
                    k -= 1;
                }
                add_months(origin, k * months)
            }
        }
    }

    /// The end of the stride holding `t` (`t` itself when it is a start).
    pub fn ceil(&self, t: i64, origin: i64) -> i64 {
        let f = self.floor(t, origin);
        if f == t { t } else { self.add(f, 1) }
    }

    /// `t` plus `k` strides.
    pub fn add(&self, t: i64, k: i64) -> i64 {
        match self.micros() {
            Some(len) => t.saturating_add(len.saturating_mul(k)),
            None => add_months(t, self.months().saturating_mul(k)),
        }
    }

    /// How many whole strides lie between `a` and `b` (QuestDB's datediff:
    /// the absolute number).
    pub fn between(&self, a: i64, b: i64) -> i64 {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        match self.micros() {
            Some(len) => (hi - lo) / len,
            None => {
                let (l, h) = (to_dt(lo), to_dt(hi));
                let mut months =
                    (h.year() as i64 - l.year() as i64) * 12 + h.month() as i64 - l.month() as i64;
                if add_months(lo, months) > hi {
                    months -= 1;
                }
                months / self.months()
            }
        }
    }
}

fn to_dt(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// `t` plus `months` calendar months, the day clamped to the month's end.
pub fn add_months(t: i64, months: i64) -> i64 {
    let dt = to_dt(t);
    let shifted = if months >= 0 {
        dt.checked_add_months(Months::new(months.min(u32::MAX as i64) as u32))
    } else {
        dt.checked_sub_months(Months::new((-months).min(u32::MAX as i64) as u32))
    };
    shifted.map_or(t, |d| d.timestamp_micros())
}

/// A time zone of the tz database (`Europe/Berlin`), or a fixed offset
/// such as `+05:30`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Named(chrono_tz::Tz),
    Fixed(i64),
}

impl Zone {
    pub fn parse(name: &str) -> Option<Zone> {
        if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
            return Some(Zone::Named(tz));
        }
        let (sign, rest) = match name.as_bytes().first()? {
            b'+' => (1, &name[1..]),
            b'-' => (-1, &name[1..]),
            _ => return None,
        };
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 18 && m < 60).then_some(Zone::Fixed(sign * (h * 3_600_000_000 + m * 60_000_000)))
    }

    /// The wall-clock time at UTC instant `t`, as microseconds.
    pub fn local(&self, t: i64) -> i64 {
        use chrono::{Offset, TimeZone};
        match self {
            Zone::Fixed(o) => t + o,
            Zone::Named(tz) => {
                let offset = tz.offset_from_utc_datetime(&to_dt(t).naive_utc()).fix();
                t + offset.local_minus_utc() as i64 * 1_000_000
            }
        }
    }

    /// The UTC instant of wall-clock time `local`. A repeated time (the
    /// clocks went back) is its first occurrence; a skipped one (they
    /// jumped forward) is read with the offset before the jump, which
    /// lands after it.
    pub fn utc(&self, local: i64) -> i64 {
        use chrono::{Offset, TimeZone};
        match self {
            Zone::Fixed(o) => local - o,
            Zone::Named(tz) => {
                let naive = to_dt(local).naive_utc();
                if let Some(d) = tz.from_local_datetime(&naive).earliest() {
                    return d.timestamp_micros();
                }
                let before = to_dt(local - 6 * HOUR).naive_utc();
                let offset = tz.offset_from_utc_datetime(&before).fix();
                local - offset.local_minus_utc() as i64 * 1_000_000
            }
        }
    }
}

/// Midnight UTC of a date, in microseconds.
pub fn date_micros(y: i32, m: u32, d: u32) -> Option<i64> {
    NaiveDate::from_ymd_opt(y, m, d)?
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_floor_and_add_on_the_calendar() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        let s = Stride::parse("15m").unwrap();
        assert_eq!(
            s.floor(t("2024-01-02T10:44:59Z"), 0),
            t("2024-01-02T10:30:00Z")
        );
        assert_eq!(
            s.ceil(t("2024-01-02T10:44:59Z"), 0),
            t("2024-01-02T10:45:00Z")
        );
        let m = Stride::parse("M").unwrap();
        assert_eq!(
            m.floor(t("2024-02-29T23:00:00Z"), 0),
            t("2024-02-01T00:00:00Z")
        );
        assert_eq!(
            m.add(t("2024-01-31T00:00:00Z"), 1),
            t("2024-02-29T00:00:00Z")
        );
        assert_eq!(
            Stride::parse("3M")
                .unwrap()
                .floor(t("2024-05-10T00:00:00Z"), 0),
            t("2024-04-01T00:00:00Z")
        );
        assert_eq!(
            Stride::parse("y")
                .unwrap()
                .floor(t("2024-05-10T00:00:00Z"), 0),
            t("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            Stride::parse("d")
                .unwrap()
                .between(t("2020-01-27T00:00:00Z"), t("2020-01-23T00:00:00Z")),
            4
        );
        assert_eq!(
            m.between(t("2020-01-23T00:00:00Z"), t("2020-02-27T00:00:00Z")),
            1
        );
        assert_eq!(
            m.between(t("2020-01-23T00:00:00Z"), t("2020-02-22T00:00:00Z")),
            0
        );
        assert!(Stride::parse("0m").is_none() && Stride::parse("5x").is_none());
    }
}
