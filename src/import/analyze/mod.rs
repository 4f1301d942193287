//! Phase `analyze_file_structure`: samples the start of the file, settles
//! its dialect and preamble, infers a type per column, decides how many
//! records are the header, normalises names, then maps the file onto the
//! target table. One file per job: [`dialect`] (delimiter, quote, escape,
//! preamble), `sniff` (binary files, names, epoch units), `infer` (the
//! type probes and the majority rule), [`plan`] (the file onto a new or
//! existing table); this file samples and drives them, and finds the
//! header (its lines, or a header line whose quote never closes).

pub mod dialect;
mod infer;
mod plan;
mod sniff;

use super::ImportError;
use super::csv::{Dialect, Field, Nulls, read_record};
use super::format::Pattern;
use crate::catalog::TableMeta;
use crate::config::TextLoaderFormats;
use crate::schema::ColumnType;
use crate::schema::values::parse_int;
pub use dialect::{Given, Sniffed};

pub use infer::{Detected, INFER_MAJORITY_PERCENT};
use infer::{Probes, is_text};
pub use plan::{Plan, PlanOptions, plan};
pub use sniff::{epoch_unit_of, normalise_name};
use sniff::{header_names, looks_binary};

/// What the sample says about the file.
#[derive(Debug, Clone)]
pub struct Structure {
    /// Offset of the first data record (after a BOM and the header).
    pub data_start: usize,
    /// Where parsing starts (after a BOM, SKIP and any preamble): the
    /// header's offset when there is one.
    pub text_start: usize,
    pub header: bool,
    /// The bytes that split the file, and how they were chosen.
    pub dialect: dialect::Sniffed,
    pub names: Vec<String>,
    /// Per file column; `None` when every sampled value was empty.
    pub detected: Vec<Option<Detected>>,
}

/// A sampled record: each field's value, `None` when it is NULL.
type Record = Vec<Option<Vec<u8>>>;

/// Options that shape the analysis.
pub struct AnalyzeOptions<'a> {
    /// The dialect's parts the caller gave; the rest is sniffed.
    pub given: Given,
    pub header: Option<bool>,
    /// Lines of a given header (HEADER n).
    pub header_lines: usize,
    pub timestamp: Option<&'a str>,
    pub format: Option<&'a Pattern>,
    pub max_lines: usize,
    pub sample_bytes: usize,
    pub formats: &'a TextLoaderFormats,
    /// Lines before the table (SKIP): not part of it, not sniffed.
    pub skip_lines: usize,
    /// Which fields are NULL.
    pub nulls: &'a Nulls,
    /// File columns renamed (from, to) before anything refers to them.
    pub rename: &'a [(String, String)],
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

/// Analyses the start of `buf` (the whole file).
pub fn analyze(buf: &[u8], opts: &AnalyzeOptions<'_>) -> Result<Structure, ImportError> {
    let bom = if buf.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut text_start = skip_lines(buf, bom, opts.skip_lines);
    let sample_end = buf.len().min(text_start + opts.sample_bytes.max(1));
    let sample = &buf[..sample_end];
    if let Some(why) = looks_binary(&sample[text_start..]) {
        return Err(ImportError::setup(format!(
            "[-1] cannot determine text structure: the file looks binary ({why})"
        )));
    }
    let whole = sample_end == buf.len();
    let mut sniffed = dialect::sniff(&sample[text_start..], whole, &opts.given);
    let mut fields: Vec<Field> = Vec::new();
    for _ in 0..sniffed.preamble {
        if let Some(r) = read_record(sample, text_start, sniffed.dialect, &mut fields) {
            text_start = r.next;
        }
    }
    let mut records: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
    let mut offsets = Vec::new();
    let mut pos = text_start;
    if opts.header != Some(false)
        && opts.names.is_none()
        && let Some((names, next, rest)) =
            broken_header(sample, text_start, whole, &sniffed, &opts.given)
    {
        sniffed = rest;
        records.push(names);
        offsets.push((text_start, next));
        pos = next;
    }
    let open_at = sample_records(
        sample,
        pos,
        whole,
        sniffed.dialect,
        opts,
        &mut records,
        &mut offsets,
    );
    let Some(first) = records.first() else {
        if let Some(at) = open_at {
            let line = super::csv::line_numbers(buf, &[at as u64])[0];
            return Err(ImportError::setup(format!(
                "[-1] cannot determine text structure: a quote opened in the first record (line {line}, offset {at}) never closes"
            )));
        }
        if sample_end < buf.len() {
            // Not one whole record in the sample: not an empty file.
            return Err(ImportError::setup("[-1] cannot determine text structure"));
        }
        return Err(ImportError::Empty);
    };
    let width = if opts.header == Some(true) || opts.names.is_some() {
        first.len()
    } else {
        sniffed.width.max(1)
    };
    let probes = Probes::new(opts.formats);
    let header_lines = match opts.header {
        Some(true) => opts.header_lines.max(1),
        Some(false) => 0,
        None => detect_header(&probes, &records, width),
    };
    let header = header_lines > 0;
    let header_lines = header_lines.min(records.len());
    let (names, data_records, data_start) = if header {
        let data_start = offsets[header_lines - 1].1;
        (
            header_or_given(&records[0], width, opts)?,
            &records[header_lines..],
            data_start,
        )
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
    for (from, to) in opts.rename {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(from)) {
            names[i] = to.clone();
        }
    }
    // Given names may be fewer than the fields: the rest are extra values.
    let mut detected = probes.detect(data_records, names.len(), INFER_MAJORITY_PERCENT);
    given_types(&mut detected, &names, data_records, opts)?;
    Ok(Structure {
        data_start,
        text_start,
        header,
        names,
        detected,
        dialect: sniffed,
    })
}

/// Reads the sample's records from `pos` into `records` (values, NULLs
/// as `None`) and their byte ranges into `offsets`: complete records only,
/// unless the sample is the whole file. Returns where a quote opened that
/// never closes, when the sample is the whole file.
fn sample_records(
    sample: &[u8],
    mut pos: usize,
    whole: bool,
    d: Dialect,
    opts: &AnalyzeOptions<'_>,
    records: &mut Vec<Vec<Option<Vec<u8>>>>,
    offsets: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    let mut fields: Vec<Field> = Vec::new();
    let mut open_at = None;
    while records.len() < opts.max_lines.max(1) {
        let Some(r) = read_record(sample, pos, d, &mut fields) else {
            break;
        };
        let complete = r.next < sample.len() || whole;
        if r.open_quote && whole {
            open_at = Some(r.start);
        }
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
    open_at
}

/// The column names of a file with a header: the caller's, else the
/// header record's (trailing empty names past the table's width, as in
/// `a,b,c,,`, name nothing).
fn header_or_given(
    header: &[Option<Vec<u8>>],
    width: usize,
    opts: &AnalyzeOptions<'_>,
) -> Result<Vec<String>, ImportError> {
    if let Some(given) = opts.names {
        return Ok(given.to_vec());
    }
    let mut raw = header.to_vec();
    while raw.len() > width && raw.last().is_some_and(|v| v.is_none()) {
        raw.pop();
    }
    header_names(&raw)
}

/// The types the caller gave win over the sample's: an integer designated
/// timestamp read by the size of its values (`guess_epoch`), the column
/// types and patterns of the schema given, the FORMAT of the TIMESTAMP.
fn given_types(
    detected: &mut [Option<Detected>],
    names: &[String],
    data_records: &[Vec<Option<Vec<u8>>>],
    opts: &AnalyzeOptions<'_>,
) -> Result<(), ImportError> {
    let position = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
    if opts.guess_epoch
        && opts.format.is_none()
        && let Some(ts) = opts.timestamp
        && let Some(i) = position(ts)
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
        let Some(i) = position(&o.name) else {
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
        && let Some(i) = position(ts)
    {
        detected[i] = Some(Detected::given(fmt.column_type(), Some(fmt.clone())));
    }
    Ok(())
}

/// A header line whose quote never closes on it (`ts,"name,value`), which
/// would swallow the rows below: the line split at the delimiter (the
/// quotes around a name dropped), where the next record starts, and the dialect sniffed
/// from there. Only when the line has an odd number of quotes, the
/// dialect's first record is broken there (open or of another width), and
/// the line splits into exactly as many names as the rows below have fields.
fn broken_header(
    sample: &[u8],
    start: usize,
    whole: bool,
    sniffed: &Sniffed,
    given: &Given,
) -> Option<(Record, usize, Sniffed)> {
    let end = start
        + sample[start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')?;
    let line = &sample[start..end];
    let q = sniffed.dialect.quote;
    if line.iter().filter(|&&b| b == q).count() % 2 == 0 {
        return None;
    }
    let next = skip_lines(sample, start, 1);
    let rest = dialect::sniff(&sample[next..], whole, given);
    let mut fields = Vec::new();
    let first = read_record(sample, start, sniffed.dialect, &mut fields)?;
    if !first.open_quote && fields.len() == rest.width {
        return None;
    }
    // The stray quote is not part of the name.
    let names: Record = line
        .split(|&b| b == rest.dialect.delimiter)
        .map(|n| {
            let n = n.strip_prefix(&[q]).unwrap_or(n);
            let n = n.strip_suffix(&[q]).unwrap_or(n);
            (!n.is_empty()).then(|| n.to_vec())
        })
        .collect();
    (rest.width >= 2 && names.len() == rest.width).then_some((names, next, rest))
}

/// Skips `n` lines from `pos` (`\n`, `\r\n` or a lone `\r` ends one),
/// quotes or not: SKIP counts the lines of a preamble, which need not be
/// CSV.
fn skip_lines(buf: &[u8], mut pos: usize, n: usize) -> usize {
    for _ in 0..n {
        match buf[pos..].iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                pos += i + 1;
                if buf[pos - 1] == b'\r' && buf.get(pos) == Some(&b'\n') {
                    pos += 1;
                }
            }
            None => return buf.len(),
        }
    }
    pos
}

/// How many records at the start are header lines (0: none). The header
/// is text no type takes; its lines are the fewest text records (up to
/// four: names, then units or descriptions) below which a column takes a
/// type in every value, else one record when a column below takes a type
/// by the majority rule (a repeated header or a bad row further down does
/// not hide it). A lone record of non-empty texts is a header; so is the
/// first record of a file of text only when its values are distinct and
/// none recurs in its column.
fn detect_header(probes: &Probes, records: &[Vec<Option<Vec<u8>>>], width: usize) -> usize {
    let text_line = |r: &[Vec<Option<Vec<u8>>>]| probes.detect(r, width, 100).iter().all(is_text);
    if !text_line(&records[..1]) {
        return 0;
    }
    if records.len() == 1 {
        let named = records[0]
            .iter()
            .all(|v| v.as_ref().is_some_and(|v| !v.is_empty()));
        return usize::from(named);
    }
    // Typed below `from` by `majority`, in a column where the records
    // above are text.
    let typed_below = |from: usize, majority: usize| -> bool {
        let above = probes.detect(&records[..from], width, 100);
        let rest = probes.detect(&records[from..], width, majority);
        (0..width).any(|c| !is_text(&rest[c]) && is_text(&above[c]))
    };
    // The header's lines: the fewest text lines (up to four) below which
    // a column is typed throughout; else one line when the majority rule
    // types a column below it (a repeated header or a bad row further
    // down does not hide the header).
    let mut lines = 1;
    while lines < 4 && lines < records.len() {
        if !text_line(&records[lines - 1..lines]) {
            break;
        }
        if typed_below(lines, 100) {
            return lines;
        }
        lines += 1;
    }
    if typed_below(1, INFER_MAJORITY_PERCENT) {
        return 1;
    }
    // Text throughout: the first record names the columns when its
    // values are distinct, none empty, and none comes back in its column
    // below (a repeated value is data).
    let first = &records[0];
    let named = first.len() == width
        && first
            .iter()
            .all(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
        && (0..width).all(|c| first[..c].iter().all(|v| v != &first[c]))
        && (0..width).all(|c| records[1..].iter().all(|r| r.get(c) != Some(&first[c])));
    let all_text = probes
        .detect(&records[1..], width, INFER_MAJORITY_PERCENT)
        .iter()
        .all(is_text);
    usize::from(all_text && named)
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
            given: req.dialect,
            header: req.header,
            header_lines: req.options.header_lines,
            timestamp: req.timestamp.as_deref(),
            format: format.as_ref(),
            max_lines: job.settings.analysis_lines,
            sample_bytes: job.settings.buffer_size,
            formats: &job.settings.formats,
            skip_lines: req.options.skip_lines,
            nulls: &req.options.nulls,
            rename: &req.options.rename,
            overrides: &req.options.columns,
            guess_epoch: req.options.guess_epoch,
            names: req.options.column_names.as_deref(),
        },
    )?;
    let _ = job.dialect.set(structure.dialect.dialect);
    job.note(structure.dialect.evidence.clone());
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

/// [`analyze`] of a text with COPY's defaults (a comma, QuestDB's NULL
/// rule, the built-in formats), for tests.
#[cfg(test)]
pub(crate) fn analyze_text(text: &str, header: Option<bool>) -> Result<Structure, ImportError> {
    analyze_bytes(text.as_bytes(), header)
}

/// [`analyze_text`] of bytes.
#[cfg(test)]
pub(crate) fn analyze_bytes(buf: &[u8], header: Option<bool>) -> Result<Structure, ImportError> {
    let formats = TextLoaderFormats::builtin();
    analyze(
        buf,
        &AnalyzeOptions {
            given: Given::default(),
            header,
            header_lines: 1,
            timestamp: None,
            format: None,
            max_lines: 1000,
            sample_bytes: 1 << 20,
            formats: &formats,
            skip_lines: 0,
            nulls: &Nulls::default(),
            rename: &[],
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
    fn a_broken_header_is_one_line() {
        let text = "ts,\"name,value\n1,a,2\n3,b,4\n";
        let s = analyze_str(text, None).unwrap();
        assert!(s.header);
        assert_eq!(s.names, ["ts", "name", "value"]);
        assert_eq!(&text[s.data_start..], "1,a,2\n3,b,4\n");
        // A quote that swallows the whole file is an error, not an empty file.
        let e = analyze_str("\"x\n1,2\n3,4\n", None).unwrap_err();
        assert!(e.to_string().contains("never closes"), "{e}");
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
