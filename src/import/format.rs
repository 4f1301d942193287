//! QuestDB's date/timestamp pattern language (`yyyy-MM-ddTHH:mm:ss.SSSUUUZ`),
//! compiled once and matched against byte slices. A value must match the
//! whole pattern. Results are UTC nanoseconds, converted to the target
//! column's unit by the caller.

use crate::schema::ColumnType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Literal(u8),
    Era,
    /// Year with a digit range; `two_digit` maps to the current century.
    Year {
        min: usize,
        max: usize,
        two_digit: bool,
    },
    Month {
        min: usize,
        max: usize,
    },
    MonthName,
    Day {
        min: usize,
        max: usize,
    },
    DayName,
    DayOfWeek,
    DayOfYear {
        min: usize,
        max: usize,
    },
    Hour24 {
        min: usize,
        max: usize,
    },
    Hour1To24 {
        min: usize,
        max: usize,
    },
    Hour0To11 {
        min: usize,
        max: usize,
    },
    Hour1To12 {
        min: usize,
        max: usize,
    },
    AmPm,
    Minute {
        min: usize,
        max: usize,
    },
    Second {
        min: usize,
        max: usize,
    },
    Millis {
        min: usize,
        max: usize,
    },
    /// Digits 4–6 of the fraction.
    Micros {
        min: usize,
        max: usize,
    },
    /// Digits 7–9 of the fraction.
    Nanos {
        min: usize,
        max: usize,
    },
    /// A whole second fraction of `min..=max` digits (`U+`, `N+`, and
    /// runs of more than three `S`, e.g. `SSSSSS` for microseconds).
    Fraction {
        min: usize,
        max: usize,
    },
    Zone,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    units: Vec<Unit>,
    /// The pattern has nanosecond units: values are TIMESTAMP_NS.
    pub nanos: bool,
    /// Set when every unit has a fixed width (ISO-8601 layouts): each
    /// value then sits at a known position.
    fixed: Option<Fixed>,
    /// `epoch_s`, `epoch_ms`, `epoch_us`, `epoch_ns`: an integer count of
    /// this many nanoseconds since 1970-01-01 UTC.
    epoch: Option<i64>,
}

/// Positions of the values of a fixed-width pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fixed {
    /// (what, first byte, width, multiplier into nanoseconds for fractions).
    slots: Vec<(Slot, usize, usize, i64)>,
    literals: Vec<(usize, u8)>,
    /// Length of a value, without the zone.
    len: usize,
    /// The pattern ends with a zone; the fast path takes only `Z`.
    zone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Fraction,
}

impl Fixed {
    fn of(units: &[Unit]) -> Option<Fixed> {
        let mut f = Fixed {
            slots: Vec::new(),
            literals: Vec::new(),
            len: 0,
            zone: false,
        };
        for (i, u) in units.iter().enumerate() {
            let (slot, width, scale) = match *u {
                Unit::Literal(c) => {
                    f.literals.push((f.len, c));
                    f.len += 1;
                    continue;
                }
                Unit::Zone if i == units.len() - 1 => {
                    f.zone = true;
                    continue;
                }
                Unit::Year {
                    min: 4,
                    max: 4,
                    two_digit: false,
                } => (Slot::Year, 4, 1),
                Unit::Month { min, max } if min == max => (Slot::Month, min, 1),
                Unit::Day { min, max } if min == max => (Slot::Day, min, 1),
                Unit::Hour24 { min, max } if min == max => (Slot::Hour, min, 1),
                Unit::Minute { min, max } if min == max => (Slot::Minute, min, 1),
                Unit::Second { min, max } if min == max => (Slot::Second, min, 1),
                Unit::Millis { min: 3, max: 3 } => (Slot::Fraction, 3, 1_000_000),
                Unit::Micros { min: 3, max: 3 } => (Slot::Fraction, 3, 1_000),
                Unit::Nanos { min: 3, max: 3 } => (Slot::Fraction, 3, 1),
                Unit::Fraction { min, max } if min == max && max <= 9 => {
                    (Slot::Fraction, min, 10i64.pow((9 - min) as u32))
                }
                _ => return None,
            };
            f.slots.push((slot, f.len, width, scale));
            f.len += width;
        }
        Some(f)
    }

    /// The value, when `s` has exactly this layout with digits in every
    /// numeric position (and `Z` as the zone); `None` sends the text to the
    /// general parser, which decides (signed years, other zones, errors).
    #[inline]
    fn parse(&self, s: &[u8]) -> Option<Option<i64>> {
        let len = if self.zone {
            if s.last() != Some(&b'Z') {
                return None;
            }
            s.len() - 1
        } else {
            s.len()
        };
        if len != self.len {
            return None;
        }
        for &(at, c) in &self.literals {
            if s[at] != c {
                return None;
            }
        }
        let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
        let (mut hour, mut minute, mut second, mut frac) = (0i64, 0i64, 0i64, 0i64);
        for &(slot, at, width, scale) in &self.slots {
            let mut v = 0i64;
            for &c in &s[at..at + width] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            match slot {
                Slot::Year => year = v,
                Slot::Month => month = v,
                Slot::Day => day = v,
                Slot::Hour => hour = v,
                Slot::Minute => minute = v,
                Slot::Second => second = v,
                Slot::Fraction => frac += v * scale,
            }
        }
        if !(1..=12).contains(&month)
            || hour > 23
            || minute > 59
            || second > 59
            || day < 1
            || day > days_in_month(year, month)
        {
            return Some(None);
        }
        let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        Some(
            secs.checked_mul(1_000_000_000)
                .and_then(|n| n.checked_add(frac)),
        )
    }
}

fn numeric(u: &Unit) -> bool {
    !matches!(
        u,
        Unit::Literal(_) | Unit::Era | Unit::MonthName | Unit::DayName | Unit::AmPm | Unit::Zone
    )
}

impl Pattern {
    pub fn compile(text: &str) -> Result<Pattern, String> {
        if let Some(scale) = epoch_scale(text) {
            return Ok(Pattern {
                text: text.to_string(),
                units: Vec::new(),
                nanos: scale == 1,
                fixed: None,
                epoch: Some(scale),
            });
        }
        let b = text.as_bytes();
        let mut units = Vec::new();
        let mut nanos = false;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let mut n = 1;
            while i + n < b.len() && b[i + n] == c {
                n += 1;
            }
            let plus = b.get(i + n) == Some(&b'+');
            let Some(unit) = unit_of(c, n, plus) else {
                // Anything else is literal text, one byte at a time.
                units.push(Unit::Literal(c));
                i += 1;
                continue;
            };
            if matches!(c, b'N') {
                nanos = true;
            }
            units.push(unit);
            i += n + usize::from(plus && matches!(c, b'U' | b'N') && n == 1);
        }
        if units.iter().all(|u| matches!(u, Unit::Literal(_))) {
            return Err(format!(
                "invalid timestamp format '{text}': no date or time units"
            ));
        }
        pack_numeric_runs(&mut units);
        Ok(Pattern {
            text: text.to_string(),
            fixed: Fixed::of(&units),
            units,
            nanos,
            epoch: None,
        })
    }

    /// The column type values of this pattern get when inferred.
    pub fn column_type(&self) -> ColumnType {
        if self.nanos {
            ColumnType::TimestampNs
        } else {
            ColumnType::Timestamp
        }
    }

    /// Parses `s` completely; UTC nanoseconds since the epoch.
    #[inline]
    pub fn parse(&self, s: &[u8]) -> Option<i64> {
        if let Some(scale) = self.epoch {
            return crate::schema::values::parse_int(s)?.checked_mul(scale);
        }
        if let Some(fixed) = &self.fixed
            && let Some(v) = fixed.parse(s)
        {
            return v;
        }
        self.parse_general(s)
    }

    /// Writes UTC microseconds `t` in this pattern (`to_str`): numbers
    /// padded to the unit's fewest digits, names in English (`MMM`, `E`),
    /// the zone as `Z`. `None` outside chrono's range of dates.
    pub fn format(&self, t: i64) -> Option<String> {
        use chrono::{Datelike, Timelike};
        use std::fmt::Write;
        if let Some(scale) = self.epoch {
            return Some((i128::from(t) * 1_000 / i128::from(scale)).to_string());
        }
        let d = chrono::DateTime::from_timestamp_micros(t)?;
        let sub_micros = t.rem_euclid(1_000_000);
        let mut out = String::new();
        let pad = |out: &mut String, v: i64, min: usize| {
            let _ = write!(out, "{v:0min$}");
        };
        for u in &self.units {
            match *u {
                Unit::Literal(c) => out.push(c as char),
                Unit::Era => out.push_str(if d.year() > 0 { "AD" } else { "BC" }),
                Unit::Year { min, two_digit, .. } => {
                    let y = i64::from(d.year());
                    if two_digit && min <= 2 {
                        pad(&mut out, y.rem_euclid(100), 2);
                    } else {
                        pad(&mut out, y, min);
                    }
                }
                Unit::Month { min, .. } => pad(&mut out, i64::from(d.month()), min),
                Unit::MonthName => {
                    let n = MONTHS[d.month0() as usize];
                    out.push_str(&n[..1].to_uppercase());
                    out.push_str(&n[1..3]);
                }
                Unit::Day { min, .. } => pad(&mut out, i64::from(d.day()), min),
                Unit::DayName => {
                    let n = DAYS[d.weekday().num_days_from_monday() as usize];
                    out.push_str(&n[..1].to_uppercase());
                    out.push_str(&n[1..3]);
                }
                Unit::DayOfWeek => pad(&mut out, i64::from(d.weekday().number_from_monday()), 1),
                Unit::DayOfYear { min, .. } => pad(&mut out, i64::from(d.ordinal()), min),
                Unit::Hour24 { min, .. } => pad(&mut out, i64::from(d.hour()), min),
                Unit::Hour1To24 { min, .. } => {
                    let h = i64::from(d.hour());
                    pad(&mut out, if h == 0 { 24 } else { h }, min)
                }
                Unit::Hour0To11 { min, .. } => pad(&mut out, i64::from(d.hour() % 12), min),
                Unit::Hour1To12 { min, .. } => {
                    let h = i64::from(d.hour() % 12);
                    pad(&mut out, if h == 0 { 12 } else { h }, min)
                }
                Unit::AmPm => out.push_str(if d.hour() < 12 { "AM" } else { "PM" }),
                Unit::Minute { min, .. } => pad(&mut out, i64::from(d.minute()), min),
                Unit::Second { min, .. } => pad(&mut out, i64::from(d.second()), min),
                Unit::Millis { min, .. } => pad(&mut out, sub_micros / 1_000, min),
                Unit::Micros { min, .. } => pad(&mut out, sub_micros % 1_000, min),
                Unit::Nanos { min, .. } => pad(&mut out, 0, min),
                Unit::Fraction { max, .. } => {
                    let nanos = format!("{:09}", sub_micros * 1_000);
                    out.push_str(&nanos[..max.min(9)]);
                }
                Unit::Zone => out.push('Z'),
            }
        }
        Some(out)
    }

    /// [`Pattern::parse`] unit by unit, for every pattern and text.
    fn parse_general(&self, s: &[u8]) -> Option<i64> {
        let mut p = 0usize;
        let mut f = Fields::default();
        for u in &self.units {
            match *u {
                Unit::Literal(c) => {
                    if s.get(p) != Some(&c) {
                        return None;
                    }
                    p += 1;
                }
                Unit::Era => f.bc = two_letters(s, &mut p, b"AD", b"BC")?,
                Unit::Year {
                    min,
                    max,
                    two_digit,
                } => {
                    let neg = s.get(p) == Some(&b'-') && !two_digit;
                    if neg {
                        p += 1;
                    }
                    let (v, n) =
                        digits(s, &mut p, min, if two_digit && max == 4 { 9 } else { max })?;
                    f.year = if two_digit && n <= 2 {
                        current_century() + v
                    } else {
                        v
                    };
                    if neg {
                        f.year = -f.year;
                    }
                }
                Unit::Month { min, max } => f.month = digits(s, &mut p, min, max)?.0,
                Unit::MonthName => f.month = name(s, &mut p, &MONTHS)? as i64 + 1,
                Unit::Day { min, max } => f.day = digits(s, &mut p, min, max)?.0,
                Unit::DayName => {
                    name(s, &mut p, &DAYS)?;
                }
                Unit::DayOfWeek => {
                    digits(s, &mut p, 1, 1)?;
                }
                Unit::DayOfYear { min, max } => {
                    f.day_of_year = Some(digits(s, &mut p, min, max)?.0)
                }
                Unit::Hour24 { min, max } => f.hour = digits(s, &mut p, min, max)?.0,
                Unit::Hour1To24 { min, max } => f.hour = digits(s, &mut p, min, max)?.0 % 24,
                Unit::Hour0To11 { min, max } => f.hour = digits(s, &mut p, min, max)?.0,
                Unit::Hour1To12 { min, max } => f.hour = digits(s, &mut p, min, max)?.0 % 12,
                Unit::AmPm => f.pm = Some(two_letters(s, &mut p, b"AM", b"PM")?),
                Unit::Minute { min, max } => f.minute = digits(s, &mut p, min, max)?.0,
                Unit::Second { min, max } => f.second = digits(s, &mut p, min, max)?.0,
                Unit::Millis { min, max } => {
                    f.frac_nanos += digits(s, &mut p, min, max)?.0 * 1_000_000
                }
                Unit::Micros { min, max } => f.frac_nanos += digits(s, &mut p, min, max)?.0 * 1_000,
                Unit::Nanos { min, max } => f.frac_nanos += digits(s, &mut p, min, max)?.0,
                Unit::Fraction { min, max } => {
                    let (v, n) = digits(s, &mut p, min, max)?;
                    f.frac_nanos += v * 10i64.pow((9 - n) as u32);
                }
                Unit::Zone => f.offset_secs = zone(s, &mut p)?,
            }
        }
        if p != s.len() {
            return None;
        }
        f.epoch_nanos()
    }
}

/// What a pattern's units read from a text, before they are checked and
/// made one instant.
struct Fields {
    year: i64,
    month: i64,
    day: i64,
    day_of_year: Option<i64>,
    hour: i64,
    minute: i64,
    second: i64,
    frac_nanos: i64,
    /// AM (false) or PM (true), when the pattern has the marker.
    pm: Option<bool>,
    offset_secs: i64,
    bc: bool,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            year: 1970,
            month: 1,
            day: 1,
            day_of_year: None,
            hour: 0,
            minute: 0,
            second: 0,
            frac_nanos: 0,
            pm: None,
            offset_secs: 0,
            bc: false,
        }
    }
}

impl Fields {
    /// Nanoseconds since the epoch, when every field is in its range.
    fn epoch_nanos(mut self) -> Option<i64> {
        if let Some(pm) = self.pm {
            if self.hour > 11 {
                return None;
            }
            if pm {
                self.hour += 12;
            }
        }
        if self.bc {
            self.year = 1 - self.year;
        }
        if !(1..=12).contains(&self.month) || self.hour > 23 || self.minute > 59 || self.second > 59
        {
            return None;
        }
        let days = match self.day_of_year {
            Some(doy) => {
                if !(1..=366).contains(&doy) {
                    return None;
                }
                days_from_civil(self.year, 1, 1) + doy - 1
            }
            None => {
                if self.day < 1 || self.day > days_in_month(self.year, self.month) {
                    return None;
                }
                days_from_civil(self.year, self.month, self.day)
            }
        };
        let secs =
            days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second - self.offset_secs;
        secs.checked_mul(1_000_000_000)?
            .checked_add(self.frac_nanos)
    }
}

/// One of two two-letter markers (AD/BC, AM/PM), any case, at `p`:
/// whether it is the second.
fn two_letters(s: &[u8], p: &mut usize, first: &[u8; 2], second: &[u8; 2]) -> Option<bool> {
    let rest = s.get(*p..*p + 2)?;
    let is_second = if rest.eq_ignore_ascii_case(first) {
        false
    } else if rest.eq_ignore_ascii_case(second) {
        true
    } else {
        return None;
    };
    *p += 2;
    Some(is_second)
}

/// PostgreSQL's timestamp input as every driver writes it, one value at a
/// time: `YYYY-MM-DD`, then optionally `T` or a space and `HH:MM`, `:SS`,
/// a fraction of 1 to 9 digits, then optionally `Z` or an offset (`+hh`,
/// `+hhmm`, `+hh:mm`, also after one space). Values of one column may mix
/// precisions and separators (`2024-01-01 00:00:00` beside
/// `2024-01-02 00:00:00.123456`), which one fixed pattern cannot. UTC
/// nanoseconds; `None` for anything else or an impossible date or time.
pub fn parse_iso(s: &[u8]) -> Option<i64> {
    let mut p = 0usize;
    let neg = s.first() == Some(&b'-');
    if neg {
        p += 1;
    }
    let (mut year, _) = digits(s, &mut p, 4, 4)?;
    if neg {
        year = -year;
    }
    let lit = |p: &mut usize, c: u8| -> Option<()> { (s.get(*p) == Some(&c)).then(|| *p += 1) };
    lit(&mut p, b'-')?;
    let (month, _) = digits(s, &mut p, 2, 2)?;
    lit(&mut p, b'-')?;
    let (day, _) = digits(s, &mut p, 2, 2)?;
    let (mut hour, mut minute, mut second, mut frac) = (0, 0, 0, 0);
    let mut offset = 0;
    if p < s.len() && (s[p] == b'T' || s[p] == b' ') {
        p += 1;
        hour = digits(s, &mut p, 2, 2)?.0;
        lit(&mut p, b':')?;
        minute = digits(s, &mut p, 2, 2)?.0;
        if s.get(p) == Some(&b':') {
            p += 1;
            second = digits(s, &mut p, 2, 2)?.0;
            if s.get(p) == Some(&b'.') {
                p += 1;
                let (v, n) = digits(s, &mut p, 1, 9)?;
                frac = v * 10i64.pow((9 - n) as u32);
            }
        }
        if s.get(p) == Some(&b' ') && matches!(s.get(p + 1), Some(b'+' | b'-')) {
            p += 1;
        }
        if p < s.len() {
            offset = zone(s, &mut p)?;
        }
    }
    if p != s.len()
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(frac)
}

/// The first year of the current century (two-digit years land in it),
/// computed once rather than per value.
fn current_century() -> i64 {
    static CENTURY: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *CENTURY.get_or_init(|| {
        use chrono::Datelike;
        i64::from(chrono::Utc::now().year()) / 100 * 100
    })
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Reads between `min` and `max` ASCII digits.
fn digits(s: &[u8], p: &mut usize, min: usize, max: usize) -> Option<(i64, usize)> {
    let mut v = 0i64;
    let mut n = 0;
    while n < max {
        match s.get(*p + n) {
            Some(c) if c.is_ascii_digit() => {
                v = v * 10 + i64::from(c - b'0');
                n += 1;
            }
            _ => break,
        }
    }
    if n < min {
        return None;
    }
    *p += n;
    Some((v, n))
}

/// A full or three-letter English name; returns its index.
fn name(s: &[u8], p: &mut usize, names: &[&str]) -> Option<usize> {
    let rest = &s[*p..];
    for (i, n) in names.iter().enumerate() {
        let n = n.as_bytes();
        if rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n) {
            *p += n.len();
            return Some(i);
        }
    }
    for (i, n) in names.iter().enumerate() {
        if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(&n.as_bytes()[..3]) {
            *p += 3;
            return Some(i);
        }
    }
    None
}

/// `Z`, `UTC`, `GMT`, `+hh`, `+hhmm`, `+hh:mm` (optionally after UTC/GMT).
fn zone(s: &[u8], p: &mut usize) -> Option<i64> {
    let rest = &s[*p..];
    if rest.first() == Some(&b'Z') {
        *p += 1;
        return Some(0);
    }
    if rest.len() >= 3
        && (rest[..3].eq_ignore_ascii_case(b"UTC") || rest[..3].eq_ignore_ascii_case(b"GMT"))
    {
        *p += 3;
        if !matches!(s.get(*p), Some(b'+') | Some(b'-')) {
            return Some(0);
        }
    }
    let sign = match s.get(*p) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    *p += 1;
    let (h, _) = digits(s, p, 2, 2)?;
    let mut m = 0;
    if s.get(*p) == Some(&b':') {
        *p += 1;
        m = digits(s, p, 2, 2)?.0;
    } else if let Some((v, _)) = digits(s, p, 2, 2) {
        m = v;
    }
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Converts UTC nanoseconds to the unit of a timestamp-like column
/// (floor division, so instants before 1970 stay in the right unit step).
pub fn nanos_to_unit(nanos: i64, ty: ColumnType) -> i64 {
    match ty {
        ColumnType::Date => nanos.div_euclid(1_000_000),
        ColumnType::TimestampNs => nanos,
        _ => nanos.div_euclid(1_000),
    }
}

/// [`nanos_to_unit`] that refuses to drop digits: a value with more
/// precision than the column holds (nanoseconds into TIMESTAMP,
/// microseconds into DATE) is an error, never silently truncated.
#[inline]
pub fn nanos_to_unit_exact(nanos: i64, ty: ColumnType) -> Result<i64, &'static str> {
    let step = match ty {
        ColumnType::Date => 1_000_000,
        ColumnType::TimestampNs => 1,
        _ => 1_000,
    };
    if nanos % step != 0 {
        return Err(match ty {
            ColumnType::Date => "sub-millisecond digits would be lost in a DATE column",
            _ => {
                "sub-microsecond digits would be lost in a TIMESTAMP column (TIMESTAMP_NS keeps them)"
            }
        });
    }
    Ok(nanos.div_euclid(step))
}

/// Microseconds of a value stored in the unit of `ty`.
#[inline]
pub fn unit_to_micros(v: i64, ty: ColumnType) -> i64 {
    match ty {
        ColumnType::Date => v.saturating_mul(1000),
        ColumnType::TimestampNs => v.div_euclid(1000),
        _ => v,
    }
}

/// The nanoseconds per unit of an `epoch_s|ms|us|ns` pattern.
fn epoch_scale(text: &str) -> Option<i64> {
    match text.to_ascii_lowercase().as_str() {
        "epoch_s" => Some(1_000_000_000),
        "epoch_ms" => Some(1_000_000),
        "epoch_us" => Some(1_000),
        "epoch_ns" => Some(1),
        _ => None,
    }
}

/// The unit a run of `n` letters `c` stands for (`plus`: a `+` follows),
/// `None` for literal text.
fn unit_of(c: u8, n: usize, plus: bool) -> Option<Unit> {
    // `H` takes one or two digits, `HH` exactly two (likewise m, s, …).
    let (min2, max2) = if n == 1 { (1, 2) } else { (2, 2) };
    Some(match (c, n) {
        (b'G', _) => Unit::Era,
        (b'y', 1) => Unit::Year {
            min: 1,
            max: 4,
            two_digit: true,
        },
        (b'y', 2) => Unit::Year {
            min: 2,
            max: 2,
            two_digit: true,
        },
        (b'y', k) | (b'Y', k) => Unit::Year {
            min: k.min(4),
            max: k.min(4),
            two_digit: false,
        },
        (b'M', 1..=2) => Unit::Month {
            min: min2,
            max: max2,
        },
        (b'M', _) => Unit::MonthName,
        (b'd', _) => Unit::Day {
            min: min2,
            max: max2,
        },
        (b'E', _) => Unit::DayName,
        (b'u', _) => Unit::DayOfWeek,
        (b'D', k) => Unit::DayOfYear {
            min: if k == 1 { 1 } else { k.min(3) },
            max: 3,
        },
        (b'w', _) => Unit::DayOfYear { min: 1, max: 2 },
        (b'a', _) => Unit::AmPm,
        (b'H', _) => Unit::Hour24 {
            min: min2,
            max: max2,
        },
        (b'k', _) => Unit::Hour1To24 {
            min: min2,
            max: max2,
        },
        (b'K', _) => Unit::Hour0To11 {
            min: min2,
            max: max2,
        },
        (b'h', _) => Unit::Hour1To12 {
            min: min2,
            max: max2,
        },
        (b'm', _) => Unit::Minute {
            min: min2,
            max: max2,
        },
        (b's', _) => Unit::Second {
            min: min2,
            max: max2,
        },
        (b'S', 1) => Unit::Millis { min: 1, max: 3 },
        (b'S', 2..=3) => Unit::Millis { min: 3, max: 3 },
        (b'S', k) => Unit::Fraction {
            min: k.min(9),
            max: k.min(9),
        },
        (b'U', 1) if plus => Unit::Fraction { min: 1, max: 6 },
        (b'U', 1) => Unit::Micros { min: 1, max: 3 },
        (b'U', _) => Unit::Micros { min: 3, max: 3 },
        (b'N', 1) if plus => Unit::Fraction { min: 1, max: 9 },
        (b'N', 1) => Unit::Nanos { min: 1, max: 3 },
        (b'N', _) => Unit::Nanos { min: 3, max: 3 },
        (b'z', _) | (b'Z', _) | (b'x', _) | (b'X', _) => Unit::Zone,
        _ => return None,
    })
}

/// A variable-width numeric unit directly followed by another numeric
/// unit takes the fewest digits, so `yyyyMMdd`-style packing works.
fn pack_numeric_runs(units: &mut [Unit]) {
    for k in 0..units.len().saturating_sub(1) {
        if numeric(&units[k + 1]) {
            match &mut units[k] {
                Unit::Month { min, max }
                | Unit::Day { min, max }
                | Unit::Hour24 { min, max }
                | Unit::Hour1To24 { min, max }
                | Unit::Hour0To11 { min, max }
                | Unit::Hour1To12 { min, max }
                | Unit::Minute { min, max }
                | Unit::Second { min, max }
                | Unit::Millis { min, max }
                | Unit::Micros { min, max }
                | Unit::Nanos { min, max } => *max = *min,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str, s: &str) -> Option<i64> {
        Pattern::compile(p).unwrap().parse(s.as_bytes())
    }

    #[test]
    fn iso_forms() {
        let p = "yyyy-MM-ddTHH:mm:ss.SSSUUUZ";
        assert_eq!(
            parse(p, "1970-01-02T00:00:00.000001Z"),
            Some(86_400_000_001_000)
        );
        assert_eq!(parse(p, "2022-05-10T11:52:00.000Z"), None);
        assert_eq!(
            parse("yyyy-MM-ddTHH:mm:ss.SSSz", "2022-05-10T11:52:00.000Z"),
            Some(1_652_183_520_000_000_000)
        );
        assert_eq!(
            parse(
                "yyyy-MM-ddTHH:mm:ss.SSSUUUNNNz",
                "2025-08-05T00:00:00.000000001Z"
            ),
            Some(1_754_352_000_000_000_001)
        );
        assert!(Pattern::compile("yyyy-MM-ddTHH:mm:ss.N+").unwrap().nanos);
        assert_eq!(
            parse("yyyy-MM-ddTHH:mm:ss.U+z", "1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        assert_eq!(parse("yyyy-MM-dd HH:mm:ss", "1970-01-01 01:00:00x"), None);
    }

    #[test]
    fn fixed_layouts_agree_with_the_general_parser() {
        let patterns = [
            "yyyy-MM-ddTHH:mm:ss.SSSUUUZ",
            "yyyy-MM-ddTHH:mm:ss.SSSz",
            "yyyy-MM-dd HH:mm:ss",
            "yyyy-MM-ddTHH:mm:ss.SSSUUUNNNz",
            "yyyyMMdd",
            "dd/MM/yyyy",
        ];
        let base = [
            "2010-03-19T09:29:40.259523Z",
            "2010-03-19T09:29:40.259Z",
            "2010-03-19 09:29:40",
            "2025-08-05T00:00:00.000000001Z",
            "20100319",
            "19/03/2010",
            "-2010-03-19T09:29:40.259523Z",
            "2010-03-19T09:29:40.259523+01:00",
            "2010-02-29T00:00:00.000000Z",
            "2012-02-29T23:59:59.999999Z",
        ];
        let alphabet = b"0123456789-:.TZ +a/";
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut texts: Vec<Vec<u8>> = base.iter().map(|t| t.as_bytes().to_vec()).collect();
        for t in base {
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut m = t.as_bytes().to_vec();
                let at = (x as usize >> 8) % m.len();
                m[at] = alphabet[(x as usize >> 32) % alphabet.len()];
                texts.push(m);
            }
        }
        for p in patterns {
            let pat = Pattern::compile(p).unwrap();
            assert!(pat.fixed.is_some(), "{p} has a fixed layout");
            for t in &texts {
                assert_eq!(
                    pat.parse(t),
                    pat.parse_general(t),
                    "{p} on {:?}",
                    String::from_utf8_lossy(t)
                );
            }
        }
        assert!(
            Pattern::compile("yyyy-MM-ddTHH:mm:ss.U+z")
                .unwrap()
                .fixed
                .is_none()
        );
    }

    #[test]
    fn dates_and_zones() {
        assert_eq!(parse("MM/dd/y", "01/02/1970"), Some(86_400_000_000_000));
        assert_eq!(parse("dd/MM/y", "02/01/1970"), Some(86_400_000_000_000));
        assert_eq!(
            parse("yyyy-MM-ddTHH:mm:ssx", "1970-01-01T01:00:00+01:00"),
            Some(0)
        );
        assert_eq!(parse("yyyyMMdd", "19700102"), Some(86_400_000_000_000));
        assert_eq!(
            parse("dd MMM yyyy hh:mm a", "02 Jan 1970 01:00 PM"),
            Some((86_400 + 13 * 3600) * 1_000_000_000)
        );
        assert_eq!(parse("yyyy-MM-dd", "2023-02-29"), None);
        assert_eq!(parse("yyyy-MM-dd", "1969-12-31"), Some(-86_400_000_000_000));
    }
}
