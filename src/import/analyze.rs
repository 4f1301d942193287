//! Phase `analyze_file_structure`: samples the start of the file, infers a
//! type per column (QuestDB's probe order), decides whether the first record
//! is a header, normalises names, then maps the file onto the target table
//! (existing: by name, else by position; new: the inferred definition).

use super::ImportError;
use super::csv::{Dialect, Field, Nulls, read_record};
use super::decode::TimestampParser;
use super::format::{Pattern, parse_iso};
use crate::catalog::values::{self, parse_float, parse_int, parse_ipv4, parse_uuid};
use crate::catalog::{ColumnMeta, ColumnType, TableMeta};
use crate::config::TextLoaderFormats;
use crate::storage::PartitionBy;

/// A column type inferred from the sample; timestamp-like types keep the
/// pattern that matched.
#[derive(Debug, Clone)]
pub struct Detected {
    pub ty: ColumnType,
    pub pattern: Option<Pattern>,
    /// The type came from inference (not from the caller or FORMAT): its
    /// decoder then rejects values inference would not have kept.
    pub inferred: bool,
}

impl Detected {
    fn given(ty: ColumnType, pattern: Option<Pattern>) -> Detected {
        Detected {
            ty,
            pattern,
            inferred: false,
        }
    }
}

/// What the sample says about the file.
#[derive(Debug, Clone)]
pub struct Structure {
    /// Offset of the first data record (after a BOM and the header).
    pub data_start: usize,
    /// Where parsing starts (after a BOM): the header's offset when there is one.
    pub text_start: usize,
    pub header: bool,
    pub names: Vec<String>,
    /// Per file column; `None` when every sampled value was empty.
    pub detected: Vec<Option<Detected>>,
}

/// Share of a column's sampled non-null values, in percent, that must
/// parse as a type for the column to get it; the rest become row errors.
/// Below it the column is VARCHAR, which keeps every value.
pub const INFER_MAJORITY_PERCENT: usize = 95;

/// One type probe, in QuestDB's priority order: the first of the probes
/// accepting the most values wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Char,
    Int,
    Long,
    Double,
    Boolean,
    Uuid,
    Ipv4,
    /// `text_loader.json`'s date patterns, by index.
    Date(usize),
    /// `text_loader.json`'s timestamp patterns, by index.
    Timestamp(usize),
    /// ISO-8601 text of any precision, `T` or space ([`parse_iso`]),
    /// kept in microseconds; then in nanoseconds when it has more digits.
    Iso,
    IsoNs,
}

/// How one value fares under one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    /// Does not parse: under the majority rule, a row error.
    Reject,
    /// Parses, but the value would change (`08123` as a number): the
    /// column never gets this type.
    Veto,
}

/// The probes, in QuestDB's priority order.
struct Probes {
    dates: Vec<Pattern>,
    timestamps: Vec<Pattern>,
    order: Vec<Probe>,
}

impl Probes {
    fn new(formats: &TextLoaderFormats) -> Probes {
        let compile = |list: &[crate::config::TimestampFormat]| {
            list.iter()
                .filter_map(|f| Pattern::compile(&f.format).ok())
                .collect::<Vec<_>>()
        };
        let dates = compile(&formats.date);
        let timestamps = compile(&formats.timestamp);
        let mut order = vec![
            Probe::Char,
            Probe::Int,
            Probe::Long,
            Probe::Double,
            Probe::Boolean,
            Probe::Uuid,
            Probe::Ipv4,
        ];
        order.extend((0..dates.len()).map(Probe::Date));
        order.extend((0..timestamps.len()).map(Probe::Timestamp));
        order.extend([Probe::Iso, Probe::IsoNs]);
        Probes {
            dates,
            timestamps,
            order,
        }
    }

    fn judge(&self, probe: Probe, v: &[u8]) -> Verdict {
        use Verdict::{Accept, Reject, Veto};
        let ok = |b: bool| if b { Accept } else { Reject };
        // Text that parses but would not keep its meaning in `ty`.
        let fits = |ty: ColumnType| values::inferred_text_fits(ty, v).is_ok();
        match probe {
            Probe::Char => ok(v.len() == 1 && v[0].is_ascii_alphabetic()),
            Probe::Int | Probe::Long => {
                let Some(x) = parse_int(v) else {
                    return Reject;
                };
                if probe == Probe::Int && i32::try_from(x).is_err() {
                    return Reject;
                }
                if fits(ColumnType::Long) { Accept } else { Veto }
            }
            Probe::Double => match parse_float(v) {
                None => Reject,
                Some(x) if x.is_infinite() && v.iter().any(u8::is_ascii_digit) => Veto,
                Some(x) if !fits(ColumnType::Double) || !values::float_round_trips(v, x) => Veto,
                Some(_) => Accept,
            },
            Probe::Boolean => {
                ok(v.eq_ignore_ascii_case(b"true") || v.eq_ignore_ascii_case(b"false"))
            }
            Probe::Uuid => match std::str::from_utf8(v).ok().and_then(parse_uuid) {
                // Only the canonical 8-4-4-4-12 form reads back as written.
                Some(_) if v.len() == 36 && v[8] == b'-' => Accept,
                Some(_) => Veto,
                None => Reject,
            },
            Probe::Ipv4 => match std::str::from_utf8(v).ok().and_then(parse_ipv4) {
                Some(_) if v.contains(&b'.') && fits(ColumnType::Ipv4) => Accept,
                Some(_) if v.contains(&b'.') => Veto,
                _ => Reject,
            },
            Probe::Date(i) => match self.dates[i].parse(v) {
                Some(n) if n % 1_000_000 == 0 => Accept,
                Some(_) => Veto,
                None => Reject,
            },
            Probe::Timestamp(i) => {
                let p = &self.timestamps[i];
                match p.parse(v) {
                    Some(n) if p.nanos || n % 1_000 == 0 => Accept,
                    Some(_) => Veto,
                    None => Reject,
                }
            }
            Probe::Iso => match parse_iso(v) {
                Some(n) if n % 1_000 == 0 => Accept,
                Some(_) => Veto,
                None => Reject,
            },
            Probe::IsoNs => ok(parse_iso(v).is_some()),
        }
    }

    fn detected(&self, probe: Probe) -> Detected {
        let (ty, pattern) = match probe {
            Probe::Char => (ColumnType::Char, None),
            Probe::Int => (ColumnType::Int, None),
            Probe::Long => (ColumnType::Long, None),
            Probe::Double => (ColumnType::Double, None),
            Probe::Boolean => (ColumnType::Boolean, None),
            Probe::Uuid => (ColumnType::Uuid, None),
            Probe::Ipv4 => (ColumnType::Ipv4, None),
            Probe::Date(i) => (ColumnType::Date, Some(self.dates[i].clone())),
            Probe::Timestamp(i) => {
                let pat = self.timestamps[i].clone();
                (pat.column_type(), Some(pat))
            }
            Probe::Iso => (ColumnType::Timestamp, None),
            Probe::IsoNs => (ColumnType::TimestampNs, None),
        };
        Detected {
            ty,
            pattern,
            inferred: true,
        }
    }

    /// Types of every column over `records` (field values, `None` = null).
    /// A probe that any value vetoes is out; of the rest, the one accepting
    /// the most values wins (the first in priority order on a tie) when it
    /// accepts at least `majority` percent of the non-null values. CHAR
    /// must accept all of them: a text column never rejects a row.
    fn detect(
        &self,
        records: &[Vec<Option<Vec<u8>>>],
        width: usize,
        majority: usize,
    ) -> Vec<Option<Detected>> {
        (0..width)
            .map(|c| {
                let mut accepted = vec![0usize; self.order.len()];
                let mut vetoed = vec![false; self.order.len()];
                let mut seen = 0usize;
                for r in records {
                    let Some(Some(v)) = r.get(c) else { continue };
                    seen += 1;
                    for (k, &probe) in self.order.iter().enumerate() {
                        if vetoed[k] {
                            continue;
                        }
                        match self.judge(probe, v) {
                            Verdict::Accept => accepted[k] += 1,
                            Verdict::Reject => {}
                            Verdict::Veto => vetoed[k] = true,
                        }
                    }
                }
                if seen == 0 {
                    return None;
                }
                let mut best: Option<(usize, usize)> = None;
                for (k, &probe) in self.order.iter().enumerate() {
                    let need = if probe == Probe::Char { 100 } else { majority };
                    if vetoed[k] || accepted[k] * 100 < seen * need {
                        continue;
                    }
                    if best.is_none_or(|(_, n)| accepted[k] > n) {
                        best = Some((k, accepted[k]));
                    }
                }
                Some(match best {
                    Some((k, _)) => self.detected(self.order[k]),
                    None => Detected {
                        ty: ColumnType::Varchar,
                        pattern: None,
                        inferred: true,
                    },
                })
            })
            .collect()
    }
}

fn is_text(d: &Option<Detected>) -> bool {
    match d {
        None => true,
        Some(d) => matches!(d.ty, ColumnType::Varchar | ColumnType::Char),
    }
}

/// Options that shape the analysis.
pub struct AnalyzeOptions<'a> {
    pub dialect: Dialect,
    pub header: Option<bool>,
    pub timestamp: Option<&'a str>,
    pub format: Option<&'a Pattern>,
    pub max_lines: usize,
    pub sample_bytes: usize,
    pub formats: &'a TextLoaderFormats,
    /// Records before the header that are not part of the table.
    pub skip_records: usize,
    /// Which fields are NULL.
    pub nulls: &'a Nulls,
    /// A file column renamed (from, to) before anything refers to it.
    pub rename: Option<(&'a str, &'a str)>,
    /// Types given by the caller, by column name.
    pub overrides: &'a [super::ColumnOverride],
    /// Names of the file's columns given by the caller (COPY FROM STDIN's
    /// column list); a header record is then skipped, not read.
    pub names: Option<&'a [String]>,
    /// An integer timestamp column is read as epoch seconds, milliseconds,
    /// microseconds or nanoseconds by the size of its values (Arc's
    /// automatic time format) instead of as microseconds.
    pub guess_epoch: bool,
}

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

/// Guesses the delimiter of a text sample (`/imp` without `delimiter`):
/// each of `,` tab `;` `|` splits the sample with the importer's lexer;
/// the one giving every record the same number of fields, most fields
/// first, wins; otherwise the one giving the most fields; `,` when none
/// splits anything.
pub fn detect_delimiter(sample: &[u8]) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b'\t', b';', b'|'];
    let mut best: Option<((bool, usize, usize), u8)> = None;
    let mut fields = Vec::new();
    for d in CANDIDATES {
        let mut counts = Vec::new();
        let mut pos = 0;
        while counts.len() < 100 {
            let Some(r) = read_record(sample, pos, Dialect::new(d), &mut fields) else {
                break;
            };
            // A record cut by the end of the sample says nothing.
            if r.open_quote || (r.next >= sample.len() && !counts.is_empty()) {
                break;
            }
            counts.push(fields.len());
            pos = r.next;
        }
        let first = counts.first().copied().unwrap_or(0);
        let total: usize = counts.iter().sum::<usize>() - counts.len();
        if first < 2 && total == 0 {
            continue;
        }
        let key = (counts.iter().all(|&c| c == first), first, total);
        if best.is_none_or(|(k, _)| key > k) {
            best = Some((key, d));
        }
    }
    best.map_or(b',', |(_, d)| d)
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
fn looks_binary(sample: &[u8]) -> Option<String> {
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

/// Analyses the start of `buf` (the whole file).
pub fn analyze(buf: &[u8], opts: &AnalyzeOptions<'_>) -> Result<Structure, ImportError> {
    let text_start = if buf.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut text_start = text_start;
    if opts.skip_records > 0 {
        let mut fields = Vec::new();
        for _ in 0..opts.skip_records {
            match read_record(buf, text_start, opts.dialect, &mut fields) {
                Some(r) => text_start = r.next,
                None => break,
            }
        }
    }
    let sample_end = buf.len().min(text_start + opts.sample_bytes.max(1));
    let sample = &buf[..sample_end];
    if let Some(why) = looks_binary(&sample[text_start..]) {
        return Err(ImportError::setup(format!(
            "[-1] cannot determine text structure: the file looks binary ({why})"
        )));
    }
    // Sample records: complete ones only, unless the sample is the whole file.
    let mut fields: Vec<Field> = Vec::new();
    let mut records: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
    let mut offsets = Vec::new();
    let mut pos = text_start;
    while records.len() < opts.max_lines.max(1) {
        let Some(r) = read_record(sample, pos, opts.dialect, &mut fields) else {
            break;
        };
        let complete = r.next < sample.len() || sample_end == buf.len();
        if !complete || r.open_quote {
            break;
        }
        offsets.push((r.start, r.next));
        records.push(
            fields
                .iter()
                .map(|f| (!f.is_null(sample, opts.nulls)).then(|| f.value(sample).into_owned()))
                .collect(),
        );
        pos = r.next;
    }
    let Some(first) = records.first() else {
        return Err(ImportError::setup("[-1] cannot determine text structure"));
    };
    let width = first.len();
    let probes = Probes::new(opts.formats);
    let header = match opts.header {
        Some(h) => h,
        None => {
            records.len() >= 2 && {
                // Strictly (every value): a header is the one record whose
                // text no type takes, which the majority rule would excuse.
                let first_types = probes.detect(&records[..1], width, 100);
                let all = probes.detect(&records, width, 100);
                let rest = probes.detect(&records[1..], width, 100);
                first_types.iter().all(is_text)
                    && (0..width).any(|c| {
                        !is_text(&rest[c])
                            && all[c].as_ref().map(|d| d.ty) != rest[c].as_ref().map(|d| d.ty)
                    })
            }
        }
    };
    let (names, data_records, data_start) = if header {
        let names = match opts.names {
            Some(given) => given.to_vec(),
            None => header_names(&records[0])?,
        };
        (names, &records[1..], offsets[0].1)
    } else if let Some(given) = opts.names {
        (given.to_vec(), &records[..], text_start)
    } else {
        (
            (0..width).map(|i| format!("f{i}")).collect(),
            &records[..],
            text_start,
        )
    };
    let mut names = names;
    if let Some((from, to)) = opts.rename
        && let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(from))
    {
        names[i] = to.to_string();
    }
    // Given names may be fewer than the fields: the rest are extra values.
    let mut detected = probes.detect(data_records, names.len(), INFER_MAJORITY_PERCENT);
    if opts.guess_epoch
        && opts.format.is_none()
        && let Some(ts) = opts.timestamp
        && let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(ts))
        && detected[i]
            .as_ref()
            .is_some_and(|d| matches!(d.ty, ColumnType::Int | ColumnType::Long))
    {
        let max_abs = data_records
            .iter()
            .filter_map(|r| r.get(i).cloned().flatten())
            .filter_map(|v| parse_int(&v))
            .map(i64::unsigned_abs)
            .max()
            .unwrap_or(0);
        let pattern = Pattern::compile(epoch_unit_of(max_abs)).map_err(ImportError::setup)?;
        detected[i] = Some(Detected::given(pattern.column_type(), Some(pattern)));
    }
    for o in opts.overrides {
        let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(&o.name)) else {
            return Err(ImportError::setup(format!(
                "schema names a column that is not in the file [column={}]",
                o.name
            )));
        };
        let pattern = match &o.pattern {
            Some(p) => Some(Pattern::compile(p).map_err(|e| {
                ImportError::setup(format!(
                    "invalid pattern [column={}, pattern={p}]: {e}",
                    o.name
                ))
            })?),
            None => detected[i].as_ref().and_then(|d| d.pattern.clone()),
        };
        detected[i] = Some(Detected::given(o.ty, pattern));
    }
    if let (Some(ts), Some(fmt)) = (opts.timestamp, opts.format)
        && let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(ts))
    {
        detected[i] = Some(Detected::given(fmt.column_type(), Some(fmt.clone())));
    }
    Ok(Structure {
        data_start,
        text_start,
        header,
        names,
        detected,
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
fn header_names(raw: &[Option<Vec<u8>>]) -> Result<Vec<String>, ImportError> {
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

/// How the file maps onto the table.
#[derive(Debug, Clone)]
pub struct Plan {
    pub meta: TableMeta,
    pub new_table: bool,
    /// Per table column: the file column feeding it.
    pub sources: Vec<Option<usize>>,
    /// Per table column: how timestamp-like text is parsed.
    pub parsers: Vec<Option<TimestampParser>>,
    /// Per table column: its type was inferred (a new table), so text it
    /// would not keep is a row error ([`values::inferred_text_fits`]).
    pub inferred: Vec<bool>,
    /// The designated timestamp: table column and file column.
    pub timestamp: Option<(usize, usize)>,
    pub file_columns: usize,
    /// Which fields are NULL.
    pub nulls: Nulls,
    /// Values past the file's columns are ignored instead of rejected.
    pub skip_extra_values: bool,
}

/// What the COPY statement asked for, as far as the plan cares.
pub struct PlanOptions<'a> {
    pub table: &'a str,
    pub timestamp: Option<&'a str>,
    pub format: Option<&'a Pattern>,
    pub partition_by: Option<PartitionBy>,
    pub formats: &'a TextLoaderFormats,
}

fn all_patterns(formats: &TextLoaderFormats, first: Option<&Pattern>) -> Vec<Pattern> {
    let mut v: Vec<Pattern> = first.into_iter().cloned().collect();
    for f in formats.date.iter().chain(&formats.timestamp) {
        if let Ok(p) = Pattern::compile(&f.format)
            && !v.contains(&p)
        {
            v.push(p);
        }
    }
    v
}

/// Builds the plan for a new table (`existing` = None) or an existing one.
pub fn plan(
    s: &Structure,
    existing: Option<&TableMeta>,
    o: &PlanOptions<'_>,
) -> Result<Plan, ImportError> {
    let width = s.names.len();
    match existing {
        None => {
            let mut columns = Vec::with_capacity(width);
            let mut parsers = Vec::with_capacity(width);
            let mut inferred = Vec::with_capacity(width);
            for (i, name) in s.names.iter().enumerate() {
                let d = &s.detected[i];
                let ty = d.as_ref().map(|d| d.ty).unwrap_or(ColumnType::Varchar);
                // FORMAT is the only pattern of the TIMESTAMP column; other
                // columns try their detected pattern first, then the rest.
                let given = o
                    .format
                    .filter(|_| o.timestamp.is_some_and(|t| t.eq_ignore_ascii_case(name)));
                parsers.push(ty.is_timestamp().then(|| TimestampParser {
                    patterns: match given {
                        Some(f) => vec![f.clone()],
                        None => {
                            all_patterns(o.formats, d.as_ref().and_then(|d| d.pattern.as_ref()))
                        }
                    },
                    iso: given.is_none(),
                    epoch_integers: false,
                }));
                inferred.push(d.as_ref().is_some_and(|d| d.inferred));
                // Stored folded to lower case, like an unquoted SQL name, so
                // `tempF` in a query (folded by the SQL front end) finds it.
                columns.push(ColumnMeta::new(name.to_lowercase(), ty));
            }
            let partitioned = o.partition_by.is_some_and(|p| p != PartitionBy::None);
            let timestamp = match o.timestamp {
                None => None,
                Some(ts) => {
                    let Some(i) = s.names.iter().position(|n| n.eq_ignore_ascii_case(ts)) else {
                        return Err(ImportError::setup(if partitioned {
                            format!("timestamp column '{ts}' not found in file header")
                        } else {
                            format!("invalid timestamp column '{ts}'")
                        }));
                    };
                    if s.detected[i].is_none() {
                        // No values were sampled (a header-only file, say):
                        // nothing contradicts a timestamp.
                        columns[i].ty = o.format.map_or(ColumnType::Timestamp, |f| f.column_type());
                        parsers[i] = Some(TimestampParser {
                            patterns: match o.format {
                                Some(f) => vec![f.clone()],
                                None => all_patterns(o.formats, None),
                            },
                            iso: o.format.is_none(),
                            epoch_integers: false,
                        });
                    }
                    match columns[i].ty {
                        ColumnType::Timestamp | ColumnType::TimestampNs => {}
                        ColumnType::Long => {
                            // Raw integers: epoch microseconds.
                            columns[i].ty = ColumnType::Timestamp;
                            parsers[i] = Some(TimestampParser {
                                patterns: Vec::new(),
                                iso: false,
                                epoch_integers: true,
                            });
                            inferred[i] = false;
                        }
                        _ => {
                            return Err(ImportError::setup(if partitioned {
                                format!("column is not a timestamp [no={i}, name='{ts}']")
                            } else {
                                format!("not a timestamp '{ts}'")
                            }));
                        }
                    }
                    Some((i, i))
                }
            };
            let meta = TableMeta {
                timestamp: timestamp.map(|(i, _)| columns[i].name.clone()),
                columns,
                partition_by: if partitioned {
                    o.partition_by.unwrap_or(PartitionBy::None)
                } else {
                    PartitionBy::None
                },
                wal: true,
            };
            meta.validate()
                .map_err(|e| ImportError::setup(e.to_string()))?;
            Ok(Plan {
                meta,
                new_table: true,
                sources: (0..width).map(Some).collect(),
                parsers,
                inferred,
                timestamp,
                file_columns: width,
                nulls: Nulls::default(),
                skip_extra_values: false,
            })
        }
        Some(meta) => {
            let tcols = meta.columns.len();
            if width > tcols {
                return Err(ImportError::setup(format!(
                    "column count mismatch [textColumnCount={width}, tableColumnCount={tcols}, table={}]",
                    o.table
                )));
            }
            if let Some(p) = o.partition_by
                && meta.partition_by != PartitionBy::None
                && p != meta.partition_by
            {
                return Err(ImportError::setup(
                    "declared partition by unit doesn't match table's",
                ));
            }
            let designated = meta.timestamp_index();
            if let Some(ts) = o.timestamp {
                let named = meta
                    .columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(ts));
                if named.is_none() || named != designated && designated.is_some() {
                    return Err(ImportError::setup(format!(
                        "invalid timestamp column [name='{ts}']"
                    )));
                }
            }
            let mut sources: Vec<Option<usize>> = vec![None; tcols];
            for (i, name) in s.names.iter().enumerate() {
                let target = meta
                    .columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name))
                    .unwrap_or(i);
                if sources[target].is_some() {
                    return Err(ImportError::setup(format!(
                        "file columns {} and {i} both map to table column '{}'",
                        sources[target].unwrap_or_default(),
                        meta.columns[target].name
                    )));
                }
                sources[target] = Some(i);
            }
            let mut parsers = Vec::with_capacity(tcols);
            for (c, col) in meta.columns.iter().enumerate() {
                if !col.ty.is_timestamp() {
                    parsers.push(None);
                    continue;
                }
                let detected = sources[c].and_then(|f| s.detected[f].as_ref());
                let format_applies = o.format.is_some()
                    && match o.timestamp {
                        Some(ts) => col.name.eq_ignore_ascii_case(ts),
                        None => Some(c) == designated,
                    };
                let patterns = if format_applies {
                    vec![o.format.cloned().expect("format")]
                } else {
                    all_patterns(o.formats, detected.and_then(|d| d.pattern.as_ref()))
                };
                parsers.push(Some(TimestampParser {
                    patterns,
                    iso: !format_applies,
                    epoch_integers: true,
                }));
            }
            // The table's types win: the sample only ordered the patterns
            // above, and a value that matches none is a row error.
            let timestamp = match designated {
                None => None,
                Some(c) => {
                    let Some(f) = sources[c] else {
                        return Err(ImportError::setup(format!(
                            "the file has no column for the designated timestamp [column={}, table={}]",
                            meta.columns[c].name, o.table
                        )));
                    };
                    Some((c, f))
                }
            };
            Ok(Plan {
                meta: meta.clone(),
                new_table: false,
                sources,
                parsers,
                inferred: vec![false; tcols],
                timestamp,
                file_columns: width,
                nulls: Nulls::default(),
                skip_extra_values: false,
            })
        }
    }
}

/// [`analyze`] of a text with COPY's defaults (a comma, QuestDB's NULL
/// rule, the built-in formats), for tests.
#[cfg(test)]
pub(crate) fn analyze_text(text: &str, header: Option<bool>) -> Result<Structure, ImportError> {
    let formats = TextLoaderFormats::builtin();
    analyze(
        text.as_bytes(),
        &AnalyzeOptions {
            dialect: Dialect::default(),
            header,
            timestamp: None,
            format: None,
            max_lines: 1000,
            sample_bytes: 1 << 20,
            formats: &formats,
            skip_records: 0,
            nulls: &Nulls::default(),
            rename: None,
            overrides: &[],
            guess_epoch: false,
            names: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze_str(text: &str, header: Option<bool>) -> Result<Structure, ImportError> {
        analyze_text(text, header)
    }

    #[test]
    fn header_and_types() {
        let s = analyze_str("ts,100i,i0,x\n1972-09-29T00:00:00.000000Z,100.0,i1,1\n1972-09-30T00:00:00.000000Z,25.47,j1,2\n", None).unwrap();
        assert!(s.header);
        assert_eq!(s.names, ["ts", "_100i", "i0", "x"]);
        let types: Vec<_> = s.detected.iter().map(|d| d.as_ref().unwrap().ty).collect();
        assert_eq!(
            types,
            [
                ColumnType::Timestamp,
                ColumnType::Double,
                ColumnType::Varchar,
                ColumnType::Int
            ]
        );
        let s = analyze_str("a,b\n1,2\n", Some(false)).unwrap();
        assert_eq!(s.names, ["f0", "f1"]);
    }

    #[test]
    fn names_normalised_and_duplicates() {
        let s = analyze_str("Int Sym,1,,\"x.y\"\n1,2,3,4\n", Some(true)).unwrap();
        assert_eq!(s.names, ["IntSym", "_1", "f2", "xY"]);
        let e = analyze_str("a,b,A\n1,2,3\n", Some(true)).unwrap_err();
        assert_eq!(e.to_string(), "duplicate column name found [no=2,name=A]");
    }

    #[test]
    fn epoch_units_by_size() {
        assert_eq!(epoch_unit_of(1_736_899_200), "epoch_s");
        assert_eq!(epoch_unit_of(1_736_899_200_000), "epoch_ms");
        assert_eq!(epoch_unit_of(1_736_899_200_000_000), "epoch_us");
        assert_eq!(epoch_unit_of(1_736_899_200_000_000_000), "epoch_ns");
    }

    #[test]
    fn delimiters() {
        assert_eq!(detect_delimiter(b"a,b,c\n1,2,3\n"), b',');
        assert_eq!(detect_delimiter(b"a\tb\tc\n1\t2,5\t3\n"), b'\t');
        assert_eq!(detect_delimiter(b"a;b\n\"1;2\";3\n"), b';');
        assert_eq!(detect_delimiter(b"x|y\r\n1|2\r\n"), b'|');
        assert_eq!(detect_delimiter(b"single\nline\n"), b',');
    }

    fn types_of(text: &str) -> Vec<ColumnType> {
        analyze_str(text, Some(true))
            .unwrap()
            .detected
            .iter()
            .map(|d| d.as_ref().unwrap().ty)
            .collect()
    }

    #[test]
    fn inference_never_changes_a_value() {
        use ColumnType::*;
        // Leading zeros, 20 digits, braces around a UUID, a zero-padded
        // IPv4 octet: each stays text.
        assert_eq!(
            types_of(
                "zip,id,u,ip\n08123,12345678901234567890,{a0eebc999c0b4ef8bb6d6bb9bd380a11},10.0.0.01\n02139,12345678901234567891,{a0eebc999c0b4ef8bb6d6bb9bd380a12},10.0.0.2\n"
            ),
            [Varchar, Varchar, Varchar, Varchar]
        );
        // A lone 0 and 0.x are numbers.
        assert_eq!(types_of("a,b\n0,0.5\n1,-0.25\n"), [Int, Double]);
        // Mixed precision and separators: one TIMESTAMP column.
        assert_eq!(
            types_of(
                "ts\n2024-01-01 00:00:00\n2024-01-02T00:00:00.123456Z\n2024-01-03 00:00:00.5\n"
            ),
            [Timestamp]
        );
        assert_eq!(
            types_of("ts\n2024-01-01 00:00:00\n2024-01-02 00:00:00.123456789\n"),
            [TimestampNs]
        );
    }

    #[test]
    fn the_majority_decides_and_outliers_are_row_errors() {
        use ColumnType::*;
        let mut text = std::string::String::from("n\n");
        for i in 0..19 {
            text.push_str(&format!("{i}\n"));
        }
        text.push_str("n/a\n");
        // 19 of 20 (95 %) are integers.
        assert_eq!(types_of(&text), [Int]);
        text.push_str("bad\n");
        // 19 of 21 are not enough.
        assert_eq!(types_of(&text), [Varchar]);
        // One leading-zero value vetoes a number type outright.
        assert_eq!(
            types_of("n\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n011\n"),
            [Varchar]
        );
        // A header is still told apart from data by every value.
        assert!(analyze_str("n\n1\n2\n", None).unwrap().header);
    }

    #[test]
    fn binary_and_empty() {
        assert!(analyze_str("\0\0\0", None).is_err());
        assert!(
            analyze_str("PAR1\0\0", None)
                .unwrap_err()
                .to_string()
                .contains("Parquet magic number")
        );
        // A stray NUL in one field is not a binary file.
        assert!(analyze_str("a,b\n1,x\0y\n2,z\n", None).is_ok());
        assert!(analyze_str("\n\n", None).is_err());
    }
}

/// The outcome of the phase: what the file looks like and how it maps.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub structure: Structure,
    pub plan: Plan,
}

/// Phase `analyze_file_structure` for `job` over the mapped file `buf`;
/// `existing` is the target's definition when the table exists.
pub fn run(
    job: &super::Job<'_>,
    buf: &[u8],
    existing: Option<&TableMeta>,
) -> Result<Analysis, ImportError> {
    let req = job.req;
    let format = match &req.format {
        Some(f) => Some(Pattern::compile(f).map_err(ImportError::setup)?),
        None => None,
    };
    let structure = analyze(
        buf,
        &AnalyzeOptions {
            dialect: req.dialect,
            header: req.header,
            timestamp: req.timestamp.as_deref(),
            format: format.as_ref(),
            max_lines: job.settings.analysis_lines,
            sample_bytes: job.settings.buffer_size,
            formats: &job.settings.formats,
            skip_records: req.options.skip_records,
            nulls: &req.options.nulls,
            rename: req
                .options
                .rename
                .as_ref()
                .map(|(a, b)| (a.as_str(), b.as_str())),
            overrides: &req.options.columns,
            guess_epoch: req.options.guess_epoch,
            names: req.options.column_names.as_deref(),
        },
    )?;
    let mut plan = plan(
        &structure,
        existing,
        &PlanOptions {
            table: &req.table,
            timestamp: req.timestamp.as_deref(),
            format: format.as_ref(),
            partition_by: req.partition_by,
            formats: &job.settings.formats,
        },
    )?;
    plan.nulls = req.options.nulls.clone();
    plan.skip_extra_values = req.options.skip_extra_values;
    Ok(Analysis { structure, plan })
}
