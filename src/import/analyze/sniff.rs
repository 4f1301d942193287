//! What the bytes say before any type: binary files by magic number or
//! share of odd bytes, QuestDB's name rule for header and file names, the
//! epoch unit of integer timestamps. The dialect is [`super::dialect`]'s.

use super::super::ImportError;

/// The epoch unit integers of this size most likely count: seconds up to
/// the year 5138, then milliseconds, microseconds, nanoseconds.
pub fn epoch_unit_of(max_abs: u64) -> &'static str {
    match max_abs {
        0..100_000_000_000 => "epoch_s",
        100_000_000_000..100_000_000_000_000 => "epoch_ms",
        100_000_000_000_000..100_000_000_000_000_000 => "epoch_us",
        _ => "epoch_ns",
    }
}

/// Magic numbers of binary formats a user may point COPY at by mistake.
const BINARY_MAGIC: [(&[u8], &str); 11] = [
    (b"PAR1", "Parquet"),
    (b"PK\x03\x04", "ZIP"),
    (b"\x89PNG", "PNG image"),
    (b"\xFF\xD8\xFF", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"%PDF", "PDF"),
    (b"\x7FELF", "ELF executable"),
    (b"BZh", "bzip2"),
    (b"\xFD7zXZ\0", "xz"),
    (b"7z\xBC\xAF", "7-Zip"),
    (b"SQLite format 3\0", "SQLite database"),
];

/// Share of the sample, in percent, of NUL and other control bytes and
/// bytes of invalid UTF-8 above which a file is binary, not text with a
/// few bad fields (those are row errors).
const BINARY_PERCENT: usize = 10;

/// Why `sample` (the start of the file) is not text, if it is not: a
/// known binary magic number, or a large share of bytes no text has.
pub(super) fn looks_binary(sample: &[u8]) -> Option<String> {
    if let Some((_, what)) = BINARY_MAGIC.iter().find(|(m, _)| sample.starts_with(m)) {
        return Some(format!("{what} magic number at offset 0"));
    }
    let control = sample
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
        .count();
    let mut invalid = 0;
    let mut rest = sample;
    while let Err(e) = std::str::from_utf8(rest) {
        let bad = e.error_len().unwrap_or(rest.len() - e.valid_up_to());
        invalid += bad;
        rest = &rest[e.valid_up_to() + bad..];
    }
    let odd = control + invalid;
    (odd * 100 > sample.len() * BINARY_PERCENT).then(|| {
        format!(
            "{odd} of the first {} bytes are NUL, control characters or invalid UTF-8",
            sample.len()
        )
    })
}

/// QuestDB's name rule for one name: punctuation and control characters
/// are dropped and the next kept character upper-cased; a leading digit
/// gets `_`. Used for header names and for tables named after a file.
pub fn normalise_name(text: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in text.chars() {
        let drop = matches!(
            c,
            ' ' | '?'
                | '.'
                | ','
                | '\''
                | '"'
                | '\\'
                | '/'
                | ':'
                | ')'
                | '('
                | '+'
                | '-'
                | '*'
                | '%'
                | '~'
        ) || (c as u32) < 0x20
            || c == '\u{7f}';
        if c == '\u{feff}' {
            continue;
        }
        if drop {
            upper = true;
            continue;
        }
        if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// QuestDB's name rules ([`normalise_name`]); empty names become `f<i>`
/// made unique with `_`; duplicates are an error.
pub(super) fn header_names(raw: &[Option<Vec<u8>>]) -> Result<Vec<String>, ImportError> {
    let mut names: Vec<String> = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        let text = String::from_utf8_lossy(v.as_deref().unwrap_or_default());
        let mut out = normalise_name(&text);
        if out.is_empty() {
            let mut candidate = format!("f{i}");
            let mut tries = 0;
            while names
                .iter()
                .chain(raw_names(raw).iter())
                .any(|n| n.eq_ignore_ascii_case(&candidate))
            {
                candidate.push('_');
                tries += 1;
                if tries > 20 {
                    return Err(ImportError::setup(format!(
                        "Failed to generate unique name for column [no={i}]"
                    )));
                }
            }
            out = candidate;
        }
        if names.iter().any(|n| n.eq_ignore_ascii_case(&out)) {
            return Err(ImportError::setup(format!(
                "duplicate column name found [no={i},name={out}]"
            )));
        }
        names.push(out);
    }
    Ok(names)
}

fn raw_names(raw: &[Option<Vec<u8>>]) -> Vec<String> {
    raw.iter()
        .map(|v| String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned())
        .collect()
}
