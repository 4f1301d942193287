//! QuestDB's interval literals on a timestamp: `ts IN '2024'`, `'2024-01'`,
//! `'2024-01-02'`, `'2024-01-02T10'`, `'…T10:30'`, `'…:45'`, `'…:45.123'`
//! (the whole year, month, day, hour, minute, second or fraction written),
//! `'2024-01-02T09:30;1h30m'` (a window of that length from the start) and
//! `'2024-01-02..2024-01-05'` (from the first's start to the second's end).
//! The parser rewrites `x IN '…'` into `(x >= 'lo' AND x < 'hi')`, so
//! DataFusion's pruning of partitions and files by their time range applies.

use super::{Stride, add_months, date_micros};

/// `[lo, hi)` in UTC microseconds.
pub type Interval = (i64, i64);

/// Parses an interval literal; `None` when the text is not one.
pub fn parse(text: &str) -> Option<Result<Interval, String>> {
    let text = text.trim();
    // Only text that starts like a date is an interval: `IN 'abc'` stays
    // what it was (and fails as it did).
    let b = text.as_bytes();
    if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(parse_interval(text))
}

fn parse_interval(text: &str) -> Result<Interval, String> {
    let bad = |why: &str| format!("invalid interval '{text}': {why}");
    if text.contains(['[', ']', '$', '@', '#', ',']) {
        return Err(bad(
            "lists, brackets, date variables, time zones and day filters are not supported",
        ));
    }
    let (spec, duration) = match text.split_once(';') {
        Some((s, d)) => (s, Some(d)),
        None => (text, None),
    };
    let (lo, hi) = match spec.split_once("..") {
        Some((a, b)) => {
            let (a, _) = point(a).ok_or_else(|| bad("the start is not a date"))?;
            let (_, b) = point(b).ok_or_else(|| bad("the end is not a date"))?;
            (a, b)
        }
        None => point(spec).ok_or_else(|| bad("expected yyyy[-MM[-dd[THH[:mm[:ss[.fff]]]]]]"))?,
    };
    let hi = match duration {
        None => hi,
        Some(d) => lo + duration_micros(d).ok_or_else(|| bad("invalid duration after ';'"))?,
    };
    if hi <= lo {
        return Err(bad("the interval ends before it starts"));
    }
    Ok((lo, hi))
}

/// A duration such as `1h30m` or `2d` (months and years: calendar).
fn duration_micros(d: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut digits = String::new();
    for c in d.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let s = Stride::parse(&format!("{digits}{c}"))?;
        total += s.add(0, 1);
        digits.clear();
    }
    (digits.is_empty() && total > 0).then_some(total)
}

/// A date or time prefix as the interval it names: its start, and its
/// start plus one unit of its last field.
fn point(s: &str) -> Option<Interval> {
    let s = s.trim().trim_end_matches('Z');
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let sep = |i: usize, c: &[u8]| s.as_bytes().get(i).is_some_and(|b| c.contains(b));
    let year = num(0..4)? as i32;
    if s.len() == 4 {
        let lo = date_micros(year, 1, 1)?;
        return Some((lo, add_months(lo, 12)));
    }
    if !sep(4, b"-") {
        return None;
    }
    let month = num(5..7)?;
    if s.len() == 7 {
        let lo = date_micros(year, month, 1)?;
        return Some((lo, add_months(lo, 1)));
    }
    if !sep(7, b"-") {
        return None;
    }
    let day = num(8..10)?;
    let midnight = date_micros(year, month, day)?;
    if s.len() == 10 {
        return Some((midnight, midnight + 86_400_000_000));
    }
    if !sep(10, b"T ") {
        return None;
    }
    let hour = num(11..13)? as i64;
    let at = midnight + hour * 3_600_000_000;
    if hour > 23 {
        return None;
    }
    if s.len() == 13 {
        return Some((at, at + 3_600_000_000));
    }
    if !sep(13, b":") {
        return None;
    }
    let minute = num(14..16)? as i64;
    if minute > 59 {
        return None;
    }
    let at = at + minute * 60_000_000;
    if s.len() == 16 {
        return Some((at, at + 60_000_000));
    }
    if !sep(16, b":") {
        return None;
    }
    let second = num(17..19)? as i64;
    if second > 59 {
        return None;
    }
    let at = at + second * 1_000_000;
    if s.len() == 19 {
        return Some((at, at + 1_000_000));
    }
    if !sep(19, b".") {
        return None;
    }
    let frac = s.get(20..)?;
    if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unit = 10i64.pow(6 - frac.len() as u32);
    let at = at + frac.parse::<i64>().ok()? * unit;
    Some((at, at + unit))
}

/// `micros` as the literal the rewrite compares with (RFC 3339, UTC).
pub fn literal(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(s: &str) -> (String, String) {
        let (lo, hi) = parse(s).unwrap().unwrap();
        (literal(lo), literal(hi))
    }

    #[test]
    fn interval_literals() {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            iv("2024"),
            pair("2024-01-01T00:00:00.000000Z", "2025-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            iv("2024-02"),
            pair("2024-02-01T00:00:00.000000Z", "2024-03-01T00:00:00.000000Z")
        );
        assert_eq!(
            iv("2024-01-02"),
            pair("2024-01-02T00:00:00.000000Z", "2024-01-03T00:00:00.000000Z")
        );
        assert_eq!(
            iv("2024-01-02T10"),
            pair("2024-01-02T10:00:00.000000Z", "2024-01-02T11:00:00.000000Z")
        );
        assert_eq!(
            iv("2024-01-02 10:30"),
            pair("2024-01-02T10:30:00.000000Z", "2024-01-02T10:31:00.000000Z")
        );
        assert_eq!(
            iv("2024-01-02T10:30:05.12"),
            pair("2024-01-02T10:30:05.120000Z", "2024-01-02T10:30:05.130000Z")
        );
        assert_eq!(
            iv("2024-01-02T09:30;1h30m"),
            pair("2024-01-02T09:30:00.000000Z", "2024-01-02T11:00:00.000000Z")
        );
        assert_eq!(
            iv("2024-01-02..2024-01-05"),
            pair("2024-01-02T00:00:00.000000Z", "2024-01-06T00:00:00.000000Z")
        );
        assert!(parse("abc").is_none());
        assert!(parse("2024-13").unwrap().is_err());
        assert!(parse("2024-01-[01,02]").unwrap().is_err());
    }
}
