//! Randomized tests of the importer's rules on hostile and generated input:
//! the lexer against the `csv` crate, no panic or hang in the lexer, the
//! decoders, the pattern compiler and parser, `parse_iso`, boundary_check
//! and the text-format reader; and the inference round trip: a value that
//! would not keep its meaning never gets the narrower type; and the
//! dialect round trip: a table written in a random dialect (delimiter,
//! quote, escape, encoding, preamble, header lines, line endings) comes
//! back from sniffing and analysis as it was.
//!
//! The case count is proptest's (`PROPTEST_CASES`, 256 by default): the
//! test suite runs that; `benches/fuzz.py` runs a longer budget.

use proptest::prelude::*;

use super::analyze::{analyze_bytes, analyze_text};
use super::boundary;
use super::csv::{Dialect, Tail, read_record, read_record_prefix};
use super::decode::{ColumnBuilder, TimestampParser};
use super::format::{Pattern, parse_iso};
use super::pgtext::TextToCsv;
use crate::config::TextLoaderFormats;
use crate::schema::ColumnType;

/// Every record of `buf` as field values, by our lexer.
fn ours(buf: &[u8], d: Dialect) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut pos = 0;
    while let Some(r) = read_record(buf, pos, d, &mut fields) {
        assert!(r.next > pos, "the lexer made no progress at {pos}");
        out.push(fields.iter().map(|f| f.value(buf).into_owned()).collect());
        pos = r.next;
    }
    out
}

/// Every record of `buf` by the `csv` crate.
fn reference(buf: &[u8], d: Dialect) -> Vec<Vec<Vec<u8>>> {
    let mut b = ::csv::ReaderBuilder::new();
    b.has_headers(false)
        .flexible(true)
        .delimiter(d.delimiter)
        .quote(d.quote);
    if d.escape != d.quote {
        b.escape(Some(d.escape));
    }
    b.from_reader(buf)
        .byte_records()
        .map(|r| r.expect("valid CSV").iter().map(<[u8]>::to_vec).collect())
        .collect()
}

/// A field's text: letters, digits, the dialect's bytes and line breaks.
fn field_text() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range('a', 'e').prop_map(|c| c as u8),
            1 => Just(b','),
            1 => Just(b';'),
            1 => Just(b'"'),
            1 => Just(b'\''),
            1 => Just(b'\\'),
            1 => Just(b'\n'),
            1 => Just(b'\r'),
            1 => Just(b' '),
        ],
        0..8,
    )
}

/// Generated records: fields (text, quote it even when not needed) and
/// the line end (0 `\n`, 1 `\r\n`, 2 `\r`).
type Records = Vec<(Vec<(Vec<u8>, bool)>, u8)>;

/// Writes `records` in dialect `d`: fields holding a special byte (or at
/// random) are quoted; quotes inside are doubled, or escaped when the
/// dialect has its own escape byte. Line ends are `\n`, `\r\n` or `\r`.
fn write_csv(records: &Records, d: Dialect) -> Vec<u8> {
    let mut out = Vec::new();
    for (fields, end) in records {
        for (i, (text, force)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(d.delimiter);
            }
            let special = text.iter().any(|&b| {
                b == d.delimiter || b == d.quote || b == d.escape || b == b'\n' || b == b'\r'
            });
            // An empty only field would be an empty line, which both
            // readers skip differently: quote it.
            let lone_empty = fields.len() == 1 && text.is_empty();
            if special || *force || lone_empty {
                out.push(d.quote);
                for &b in text {
                    if b == d.quote {
                        out.push(if d.escape != d.quote {
                            d.escape
                        } else {
                            d.quote
                        });
                    } else if b == d.escape && d.escape != d.quote {
                        out.push(d.escape);
                    }
                    out.push(b);
                }
                out.push(d.quote);
            } else {
                out.extend_from_slice(text);
            }
        }
        match end {
            0 => out.push(b'\n'),
            1 => out.extend_from_slice(b"\r\n"),
            _ => out.push(b'\r'),
        }
    }
    out
}

fn dialects() -> impl Strategy<Value = Dialect> {
    prop_oneof![
        Just(Dialect::new(b',')),
        Just(Dialect::new(b';')),
        Just(Dialect {
            delimiter: b';',
            quote: b'\'',
            escape: b'\'',
            tail: Tail::NONE,
        }),
        Just(Dialect {
            delimiter: b',',
            quote: b'"',
            escape: b'\\',
            tail: Tail::NONE,
        }),
    ]
}

fn records() -> impl Strategy<Value = Records> {
    proptest::collection::vec(
        (
            proptest::collection::vec((field_text(), any::<bool>()), 1..6),
            0u8..3,
        ),
        0..12,
    )
}

/// Analyses a one-column file whose values are `values` (header `v`).
fn inferred(values: &[String]) -> ColumnType {
    let mut text = String::from("v\n");
    for v in values {
        text.push_str(v);
        text.push('\n');
    }
    let s = analyze_text(&text, Some(true)).expect("analysable");
    s.detected[0].as_ref().expect("a value").ty
}

/// A number's text as sign, significant digits and exponent of the first
/// digit, written independently of the decoder's own rule.
fn decimal(text: &str) -> (bool, String, i64) {
    let neg = text.starts_with('-');
    let body = text.trim_start_matches(['-', '+']);
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().unwrap()),
        None => (body, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{int}{frac}");
    let lead = digits.len() - digits.trim_start_matches('0').len();
    let sig = digits.trim_matches('0').to_string();
    if sig.is_empty() {
        return (false, String::new(), 0);
    }
    (neg, sig, exp + int.len() as i64 - lead as i64 - 1)
}

/// Numbers as people write them: leading zeros, signs, long digit runs,
/// fractions and exponents.
fn number_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(""), Just("-"), Just("+")],
        "[0-9]{1,24}",
        proptest::option::of("[0-9]{0,20}"),
        proptest::option::of(-30i32..30),
    )
        .prop_map(|(sign, int, frac, exp)| {
            let mut s = format!("{sign}{int}");
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some(e) = exp {
                s.push_str(&format!("e{e}"));
            }
            s
        })
}

/// Timestamps from their parts, some impossible (day 31 of a 30-day
/// month, hour 24), with `T` or space and 0 to 9 fractional digits.
fn timestamp_parts() -> impl Strategy<Value = (String, Option<chrono::NaiveDateTime>)> {
    (
        1900i32..2100,
        1u32..13,
        1u32..32,
        0u32..25,
        0u32..60,
        0u32..60,
        "[0-9]{0,9}",
        prop_oneof![Just('T'), Just(' ')],
        prop_oneof![Just(""), Just("Z"), Just("+00:00")],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, sep, zone)| {
            let mut text = format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}");
            if !frac.is_empty() {
                text.push('.');
                text.push_str(&frac);
            }
            text.push_str(zone);
            let nanos = if frac.is_empty() {
                0
            } else {
                format!("{frac:0<9}").parse::<u32>().unwrap()
            };
            let want = chrono::NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|date| date.and_hms_nano_opt(h, mi, s, nanos));
            (text, want)
        })
}

proptest! {
    /// The lexer reads what the `csv` crate reads, field for field, for
    /// quotes, doubled quotes, escapes, CR/LF/CRLF, empty fields and
    /// embedded line breaks; the prefix reader ends records where the full
    /// one does; boundary_check cuts only at record starts.
    #[test]
    fn lexer_agrees_with_the_csv_crate(recs in records(), d in dialects(), workers in 1usize..5) {
        let buf = write_csv(&recs, d);
        prop_assert_eq!(ours(&buf, d), reference(&buf, d));
        let mut starts = Vec::new();
        let (mut full, mut prefix) = (Vec::new(), Vec::new());
        let mut pos = 0;
        while let Some(r) = read_record(&buf, pos, d, &mut full) {
            for limit in 1..3 {
                let p = read_record_prefix(&buf, pos, d, limit, &mut prefix).unwrap();
                prop_assert_eq!(p, r);
            }
            starts.push(r.start);
            pos = r.next;
        }
        let chunks = boundary::chunks(&buf, 0, workers, 1, d.quote);
        prop_assert_eq!(chunks.last().map_or(buf.len(), |c| c.end), buf.len());
        for w in chunks.windows(2) {
            prop_assert_eq!(w[0].end, w[1].start);
        }
        // With doubled quotes every cut is a record start (skipping empty
        // lines); an escape byte may mislead the parity rule, which
        // indexing detects and undoes.
        if d.escape == d.quote {
            for c in chunks.iter().skip(1) {
                let mut at = c.start;
                while at < buf.len() && (buf[at] == b'\n' || buf[at] == b'\r') {
                    at += 1;
                }
                prop_assert!(at == buf.len() || starts.contains(&at), "cut at {} is not a record start", c.start);
            }
        }
    }

    /// No input makes the lexer, boundary_check or the text-format reader
    /// panic or stop making progress.
    #[test]
    fn hostile_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300), d in dialects()) {
        let _ = ours(&buf, d);
        let mut fields = Vec::new();
        let mut pos = 0;
        while let Some(r) = read_record_prefix(&buf, pos, d, 1, &mut fields) {
            prop_assert!(r.next > pos);
            pos = r.next;
        }
        let chunks = boundary::chunks(&buf, 0, 3, 1, d.quote);
        prop_assert_eq!(chunks.last().map_or(buf.len(), |c| c.end), buf.len());
        let mut t = TextToCsv::new(b'\t', b"\\N".to_vec());
        let mut out = Vec::new();
        for piece in buf.chunks(7) {
            t.feed(piece, &mut out);
        }
        t.finish(&mut out);
    }

    /// Every decoder takes any bytes: a value or a reason, never a panic,
    /// and a refused value leaves nothing behind.
    #[test]
    fn decoders_take_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..40)) {
        let formats = TextLoaderFormats::builtin();
        let parser = TimestampParser {
            patterns: formats.timestamp.iter().filter_map(|f| Pattern::compile(&f.format).ok()).collect(),
            iso: true,
            epoch_integers: true,
        };
        for ty in [
            ColumnType::Boolean, ColumnType::Byte, ColumnType::Short, ColumnType::Char,
            ColumnType::Int, ColumnType::Long, ColumnType::Float, ColumnType::Double,
            ColumnType::Date, ColumnType::Timestamp, ColumnType::TimestampNs,
            ColumnType::Varchar, ColumnType::Symbol, ColumnType::Uuid, ColumnType::Ipv4,
        ] {
            for inferred in [false, true] {
                let mut b = ColumnBuilder::new(ty, 1).inferred(inferred);
                let ok = b.push_text(&raw, ty.is_timestamp().then_some(&parser)).is_ok();
                prop_assert_eq!(b.len(), usize::from(ok));
            }
        }
        let _ = parse_iso(&raw);
    }

    /// The pattern compiler takes any text, and a compiled pattern any
    /// value, without panicking.
    #[test]
    fn patterns_take_any_text(pattern in "[yMdHhmsSUNaEZz:./ T+-]{0,24}|.{0,16}", value in proptest::collection::vec(any::<u8>(), 0..32)) {
        if let Ok(p) = Pattern::compile(&pattern) {
            let _ = p.parse(&value);
            let _ = p.parse(pattern.as_bytes());
        }
    }

    /// Inference never narrows a number that would change: INT and LONG
    /// only for text that is the integer written canonically (a sign
    /// aside), DOUBLE only when its digits survive.
    #[test]
    fn numbers_keep_their_meaning(v in number_text()) {
        let ty = inferred(std::slice::from_ref(&v));
        let mut b = ColumnBuilder::new(ty, 1).inferred(true);
        match ty {
            ColumnType::Int | ColumnType::Long => {
                b.push_text(v.as_bytes(), None).unwrap();
                let shown = datafusion::arrow::util::display::array_value_to_string(&b.finish(), 0).unwrap();
                let canonical = v.trim_start_matches('+');
                prop_assert!(shown == canonical || (canonical == "-0" && shown == "0"), "{} became {}", v, shown);
            }
            ColumnType::Double => {
                b.push_text(v.as_bytes(), None).unwrap();
                let x: f64 = v.parse().unwrap();
                prop_assert!(x.is_finite());
                let (neg, sig, exp) = decimal(&v);
                let (xneg, xsig, xexp) = decimal(&format!("{:e}", x));
                prop_assert_eq!((sig.is_empty() || neg == xneg, &sig, exp), (true, &xsig, xexp), "{} became {:e}", v, x);
            }
            ColumnType::Varchar => {}
            other => prop_assert!(false, "{} inferred as {:?}", v, other),
        }
    }

    /// Timestamps: inferred as a timestamp type only when the text is a
    /// real instant, and then decoded to exactly that instant (checked
    /// with chrono).
    #[test]
    fn timestamps_keep_their_meaning(parts in proptest::collection::vec(timestamp_parts(), 1..4)) {
        let texts: Vec<String> = parts.iter().map(|(t, _)| t.clone()).collect();
        let ty = inferred(&texts);
        if !matches!(ty, ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampNs) {
            return Ok(());
        }
        let parser = TimestampParser {
            patterns: TextLoaderFormats::builtin().date.iter().chain(&TextLoaderFormats::builtin().timestamp)
                .filter_map(|f| Pattern::compile(&f.format).ok()).collect(),
            iso: true,
            epoch_integers: false,
        };
        for (text, want) in &parts {
            let mut b = ColumnBuilder::new(ty, 1).inferred(true);
            match (b.push_text(text.as_bytes(), Some(&parser)), want) {
                (Ok(()), Some(want)) => {
                    let a = b.finish();
                    let got = crate::import::format::unit_to_micros(
                        datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(
                            &datafusion::arrow::compute::cast(&a, &datafusion::arrow::datatypes::DataType::Int64).unwrap()
                        ).value(0),
                        ty,
                    );
                    let want_micros = want.and_utc().timestamp_micros();
                    prop_assert_eq!(got, want_micros, "{}", text);
                    // No digit below the column's unit was dropped.
                    let sub = want.and_utc().timestamp_subsec_nanos();
                    match ty {
                        ColumnType::Date => prop_assert_eq!(sub % 1_000_000, 0, "{}", text),
                        ColumnType::Timestamp => prop_assert_eq!(sub % 1_000, 0, "{}", text),
                        _ => {}
                    }
                }
                (Ok(()), None) => prop_assert!(false, "impossible {} accepted", text),
                // A row error (an impossible date or more digits than the
                // column keeps): refused, never changed.
                (Err(_), _) => {}
            }
        }
    }

    /// Booleans, UUIDs and IPv4 addresses get their type only when the
    /// stored value shows as the text did.
    #[test]
    fn other_probes_keep_their_meaning(v in prop_oneof![
        "(?i:true|false|yes|no|t|f)",
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "\\{?[0-9a-f]{32}\\}?",
        " ?(0|00|1|01|10|255|256|019)\\.(0|7|07|255)\\.(1|001|200)\\.(9|09|254) ?",
    ]) {
        let ty = inferred(std::slice::from_ref(&v));
        let mut b = ColumnBuilder::new(ty, 1).inferred(true);
        if ty == ColumnType::Varchar {
            return Ok(());
        }
        b.push_text(v.as_bytes(), None).unwrap();
        let a = b.finish();
        let shown = match ty {
            ColumnType::Uuid => uuid::Uuid::from_slice(a.as_any().downcast_ref::<datafusion::arrow::array::FixedSizeBinaryArray>().unwrap().value(0)).unwrap().to_string(),
            ColumnType::Ipv4 => std::net::Ipv4Addr::from(a.as_any().downcast_ref::<datafusion::arrow::array::UInt32Array>().unwrap().value(0)).to_string(),
            _ => datafusion::arrow::util::display::array_value_to_string(&a, 0).unwrap(),
        };
        let want = match ty {
            ColumnType::Boolean | ColumnType::Uuid => v.to_lowercase(),
            _ => v.clone(),
        };
        prop_assert_eq!(shown, want, "{:?} as {:?}", v, ty);
    }
}

/// A table in a random dialect: its names, rows and the file's bytes.
#[derive(Debug, Clone)]
struct Written {
    names: Vec<String>,
    rows: Vec<Vec<String>>,
    bytes: Vec<u8>,
}

/// Text values: letters (some accented), spaces, and the dialect's own
/// delimiter and quote, which force quoting. Never another candidate
/// delimiter unquoted (a file that is consistent under two delimiters has
/// no single answer).
fn cell_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            6 => proptest::char::range('a', 'z'),
            1 => Just('é'),
            1 => Just(' '),
            1 => Just('\u{1}'), // the dialect's delimiter
            1 => Just('\u{2}'), // the dialect's quote
        ],
        1..8,
    )
    .prop_map(|cs| cs.into_iter().collect::<String>())
    .prop_filter("not blank", |s| !s.trim().is_empty())
}

fn written() -> impl Strategy<Value = Written> {
    (
        2usize..6,
        2usize..25,
        (0usize..4, 0usize..2, 0usize..2),
        (0usize..3, 0usize..3, any::<bool>()),
        proptest::collection::vec(cell_text(), 150),
    )
        .prop_map(
            |(width, nrows, (delim, quote, escape), (encoding, preamble, two_headers), cells)| {
                let delimiter = [b',', b';', b'\t', b'|'][delim];
                let quote = [b'"', b'\''][quote];
                let escape = [quote, b'\\'][escape];
                let crlf = nrows % 2 == 0;
                let names: Vec<String> = (0..width).map(|i| format!("col{i}")).collect();
                // Column 0 holds numbers, so the header is told apart.
                let rows: Vec<Vec<String>> = (0..nrows)
                    .map(|r| {
                        (0..width)
                            .map(|c| match c {
                                0 => (r * 7 + 1).to_string(),
                                _ => cells[(r * width + c) % cells.len()]
                                    .replace('\u{1}', &(delimiter as char).to_string())
                                    .replace('\u{2}', &(quote as char).to_string()),
                            })
                            .collect()
                    })
                    .collect();
                let d = Dialect {
                    delimiter,
                    quote,
                    escape,
                    tail: Tail::NONE,
                };
                let end = if crlf { "\r\n" } else { "\n" };
                let mut text = String::new();
                for p in 0..preamble {
                    text.push_str(&format!("exported by tool number {p}{end}"));
                }
                let mut records: Vec<Vec<String>> = vec![names.clone()];
                if two_headers {
                    records.push((0..width).map(|i| format!("unit{i}")).collect());
                }
                records.extend(rows.iter().cloned());
                for r in &records {
                    let fields: Vec<(Vec<u8>, bool)> =
                        r.iter().map(|v| (v.as_bytes().to_vec(), false)).collect();
                    let line = write_csv(&vec![(fields, 0)], d);
                    text.push_str(std::str::from_utf8(&line[..line.len() - 1]).unwrap());
                    text.push_str(end);
                }
                let bytes = match encoding {
                    0 => text.into_bytes(),
                    1 => text.chars().map(|c| c as u32 as u8).collect(), // latin-1
                    _ => {
                        let mut b = vec![0xFF, 0xFE];
                        for u in text.encode_utf16() {
                            b.extend_from_slice(&u.to_le_bytes());
                        }
                        b
                    }
                };
                Written { names, rows, bytes }
            },
        )
}

proptest! {
    /// Sniffing and analysis give the table back from any dialect: the
    /// encoding (UTF-8, Latin-1, UTF-16 with its mark), the delimiter,
    /// quote and escape, a preamble, one or two header lines, LF or CRLF.
    #[test]
    fn sniffing_gives_the_table_back(w in written()) {
        let dir = std::env::temp_dir().join(format!("sluice-sniff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (src, dst) = (dir.join("in.csv"), dir.join("out.csv"));
        std::fs::write(&src, &w.bytes).unwrap();
        let (encoding, _) = super::encoding::detect(&w.bytes, None);
        super::encoding::transcode(&src, &dst, encoding).unwrap();
        let buf = std::fs::read(&dst).unwrap();
        let s = analyze_bytes(&buf, None).unwrap();
        prop_assert_eq!(&s.names, &w.names, "{}", s.dialect.evidence);
        let d = s.dialect.dialect;
        let got = ours(&buf[s.data_start..], d);
        let got: Vec<Vec<String>> = got
            .into_iter()
            .map(|r| r.into_iter().map(|v| String::from_utf8(v).unwrap()).collect())
            .collect();
        prop_assert_eq!(got, w.rows, "{}", s.dialect.evidence);
    }
}
