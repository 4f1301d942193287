//! Text to values: the one set of rules for reading a number, boolean,
//! UUID or IPv4 address from text, shared by the importer's decoders and
//! by INSERT's conversion of text into a column, and the round-trip rule
//! that keeps inference from changing a value. (Timestamps have their own
//! pattern language in `import::format`.)

use super::ColumnType;

/// `true` or `false` in any case, nothing else (QuestDB's rule: no `t`,
/// `yes` or `1`, and no surrounding spaces).
#[inline]
pub fn parse_bool(s: &[u8]) -> Option<bool> {
    if s.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if s.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

/// Parses a canonical (hyphenated) or plain 32-hex-digit UUID.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    uuid::Uuid::parse_str(s.trim()).ok().map(|u| *u.as_bytes())
}

pub fn parse_ipv4(s: &str) -> Option<u32> {
    s.trim().parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

/// Why a number's text would not survive as the number: a leading zero
/// (`08123`, `-007`, `00.5`; a lone `0` and `0.x` are fine) is lost, as are
/// decimal digits beyond what a DOUBLE holds. Inference never picks a
/// numeric type for such text, and a column it inferred rejects it: the
/// one round-trip rule for both.
#[inline]
pub fn leading_zero(s: &[u8]) -> bool {
    let digits = match s.first() {
        Some(b'-' | b'+') => &s[1..],
        _ => s,
    };
    digits.len() >= 2 && digits[0] == b'0' && digits[1].is_ascii_digit()
}

/// Whether `v`, parsed from `text`, is the same decimal number: the
/// significant digits and exponent of the text equal those of the
/// shortest representation of `v`. Text of at most 15 significant digits
/// always is (an f64 holds 15 decimal digits); only longer text, such as a
/// 20-digit id, is checked digit by digit. `NaN` and infinities written
/// as words are themselves; a finite number that overflows is not.
#[inline]
pub fn float_round_trips(text: &[u8], v: f64) -> bool {
    if !v.is_finite() {
        return !text.iter().any(u8::is_ascii_digit);
    }
    // At most 15 digits in all (exponent included) always fit: counted
    // without allocating, as this runs for every value of an inferred
    // DOUBLE column.
    if text.iter().filter(|b| b.is_ascii_digit()).count() <= 15 {
        return true;
    }
    let Some((digits, exp)) = decimal_digits(text) else {
        return false;
    };
    if digits.len() <= 15 {
        return true;
    }
    let shortest = format!("{:e}", v.abs());
    decimal_digits(shortest.as_bytes()).is_some_and(|(d, e)| d == digits && e == exp)
}

/// Whether text keeps its meaning in a column of inferred type `ty`: no
/// leading zeros in numbers, no surrounding spaces in UUID and IPv4 text
/// (both would be dropped). Inference's probes and the decoder of an
/// inferred column both ask this (the DOUBLE digit check is
/// [`float_round_trips`], after parsing).
#[inline]
pub fn inferred_text_fits(ty: ColumnType, raw: &[u8]) -> Result<(), String> {
    match ty {
        ColumnType::Byte
        | ColumnType::Short
        | ColumnType::Int
        | ColumnType::Long
        | ColumnType::Float
        | ColumnType::Double
            if leading_zero(raw) =>
        {
            Err(format!(
                "the leading zero would be lost in {} (the column's type was inferred; declare it VARCHAR to keep it)",
                ty.name()
            ))
        }
        ColumnType::Uuid | ColumnType::Ipv4
            if raw.first().is_some_and(u8::is_ascii_whitespace)
                || raw.last().is_some_and(u8::is_ascii_whitespace) =>
        {
            Err(format!("surrounding spaces would be lost in {}", ty.name()))
        }
        _ => Ok(()),
    }
}

/// Significant digits (no leading or trailing zeros) and the decimal
/// exponent of the first one, of a decimal number's text (`-1.20e3` is
/// `("12", 3)`); zero is `("", 0)`.
fn decimal_digits(text: &[u8]) -> Option<(Vec<u8>, i64)> {
    let body = match text.first() {
        Some(b'-' | b'+') => &text[1..],
        _ => text,
    };
    let (mantissa, exp) = match body.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (
            &body[..i],
            std::str::from_utf8(&body[i + 1..])
                .ok()?
                .parse::<i64>()
                .ok()?,
        ),
        None => (body, 0),
    };
    let point = mantissa.iter().position(|&c| c == b'.');
    let int_len = point.unwrap_or(mantissa.len()) as i64;
    let all: Vec<u8> = mantissa.iter().copied().filter(|c| *c != b'.').collect();
    if !all.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let Some(first) = all.iter().position(|&c| c != b'0') else {
        return Some((Vec::new(), 0));
    };
    let last = all
        .iter()
        .rposition(|&c| c != b'0')
        .expect("a non-zero digit");
    Some((all[first..=last].to_vec(), exp + int_len - first as i64 - 1))
}

/// Parses a decimal integer (optional sign), without overflow.
#[inline]
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if neg { Some(v) } else { v.checked_neg() }
}

/// An optional sign and digits only (an integer too big for any type).
fn is_integer_text(s: &[u8]) -> bool {
    let digits = s
        .strip_prefix(b"-")
        .or_else(|| s.strip_prefix(b"+"))
        .unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Exact powers of ten an f64 holds.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Plain decimals (`-12.345`) whose digits fit 53 bits and whose fraction
/// has at most 22 digits: the digits and the power of ten are both exact
/// in an f64, so one IEEE division is correctly rounded (Clinger's fast
/// path) and gives the same value as the full parser, several times faster.
#[inline]
fn parse_float_fast(s: &[u8]) -> Option<f64> {
    let (neg, body) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.len() > 24 {
        return None;
    }
    let mut mant: u64 = 0;
    let mut digits = 0usize;
    let mut i = 0;
    let digit_run = |i: &mut usize, mant: &mut u64, digits: &mut usize| -> Option<()> {
        // Eight digits at a time while they last, then one at a time.
        while *i + 8 <= body.len() && *digits + 8 <= 19 {
            let Some(v) = eight_digits(&body[*i..*i + 8]) else {
                break;
            };
            *mant = *mant * 100_000_000 + v;
            *digits += 8;
            *i += 8;
        }
        while *i < body.len() && body[*i].is_ascii_digit() {
            if *digits == 19 {
                return None;
            }
            *mant = *mant * 10 + u64::from(body[*i] - b'0');
            *digits += 1;
            *i += 1;
        }
        Some(())
    };
    digit_run(&mut i, &mut mant, &mut digits)?;
    let mut scale = 0;
    if i < body.len() && body[i] == b'.' {
        i += 1;
        let before = i;
        digit_run(&mut i, &mut mant, &mut digits)?;
        scale = i - before;
    }
    if i != body.len() || digits == 0 || mant > 1 << 53 || scale > 22 {
        return None;
    }
    let v = mant as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// The value of eight ASCII digits, or `None` if any byte is not a digit
/// (SWAR: all eight checked and combined in a few 64-bit operations).
#[inline]
fn eight_digits(b: &[u8]) -> Option<u64> {
    let v = u64::from_le_bytes(b.try_into().ok()?);
    // Every byte is 0x30..=0x39: high nibble 3, and adding 6 keeps it 3.
    let ok = (v & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030
        && (v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030;
    if !ok {
        return None;
    }
    let v = v - 0x3030_3030_3030_3030;
    // Pairs, then quads, then the eight (the first byte is most significant).
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10_000 + (v >> 32)) & 0xFFFF_FFFF)
}

/// Parses a floating point number (`1.5`, `-2e3`, `NaN`, `Infinity`).
#[inline]
pub fn parse_float(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_float_fast(s) {
        return Some(v);
    }
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    t.parse::<f64>().ok()
}

/// An integer of `raw` within `lo..=hi`, or why not (`name` is the type).
#[inline]
pub fn int_in(raw: &[u8], lo: i64, hi: i64, name: &str) -> Result<i64, String> {
    match parse_int(raw) {
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        Some(_) => Err(format!("out of range for {name}")),
        None if is_integer_text(raw) => Err(format!("out of range for {name}")),
        None => Err(format!("not a valid {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_float_path_matches_the_full_parser() {
        let cases = [
            "0",
            "-0",
            "1.",
            ".5",
            "99.177845842208",
            "-65.618046051403",
            "0.1",
            "0.3",
            "123456789012345678",
            "9007199254740993",
            "1.7976931348623157",
            "4.9e-324",
            "1e22",
            "+3.25",
            "00012.5000",
            "12345678901234567890.5",
            "0.0000000000000000000001",
            "1.2.3",
            "-",
            ".",
            "1a",
            "",
            " 1",
        ];
        for c in cases {
            let full = std::str::from_utf8(c.as_bytes())
                .ok()
                .filter(|t| !t.starts_with(' '))
                .and_then(|t| t.parse::<f64>().ok());
            let got = parse_float(c.as_bytes());
            assert_eq!(
                got.map(f64::to_bits),
                full.map(f64::to_bits),
                "{c:?}: {got:?} vs {full:?}"
            );
        }
        assert_eq!(eight_digits(b"12345678"), Some(12_345_678));
        assert_eq!(eight_digits(b"00000009"), Some(9));
        assert_eq!(eight_digits(b"99999999"), Some(99_999_999));
        assert_eq!(eight_digits(b"1234:678"), None);
        assert_eq!(eight_digits(b"1234/678"), None);
        // Random decimals of the generator's shape round-trip bit for bit.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let text = format!("{}.{:012}", x % 1000, (x >> 20) % 1_000_000_000_000);
            let want: f64 = text.parse().unwrap();
            assert_eq!(
                parse_float(text.as_bytes()).unwrap().to_bits(),
                want.to_bits()
            );
        }
    }
}
