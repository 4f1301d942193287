//! Which bytes shape the file when the caller did not say: the delimiter,
//! the quote, and the preamble (title or note lines before the table).
//!
//! Every candidate dialect splits the sample with the importer's own
//! lexer. The table is the longest run of records with one field count;
//! the candidate whose run covers the most records wins, then the one with
//! more fields, then the one that quotes more fields, then the earlier
//! candidate (`", "` and `"; "` before `,` `;` tab and `|`; `"` before
//! `'`). Records before
//! the run are the preamble. An option the caller gave is never changed.

use super::super::csv::{Dialect, Field, Tail, read_record};

/// Delimiters tried when none is given, in order of preference: `", "`
/// before `,` so a file whose every comma has a space after it keeps the
/// space out of its values (a file where some do not splits unevenly on
/// `", "`, and `,` wins).
const DELIMITERS: [&[u8]; 6] = [b", ", b"; ", b",", b";", b"\t", b"|"];
/// Quotes tried when none is given.
const QUOTES: [u8; 2] = [b'"', b'\''];
/// The escape tried besides the doubled quote when none is given.
const BACKSLASH: u8 = b'\\';
/// A preamble longer than this many records is not a preamble: the file
/// is ragged, and its rows are left to the ON ERROR rule.
const MAX_PREAMBLE: usize = 20;
/// Records read per candidate.
const MAX_RECORDS: usize = 1000;

/// The parts of the dialect the caller gave (the rest is sniffed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Given {
    pub delimiter: Option<u8>,
    /// The rest of a given delimiter of several bytes.
    pub tail: Tail,
    pub quote: Option<u8>,
    pub escape: Option<u8>,
    /// Whether the caller said how many lines precede the table (then
    /// there is no preamble to find).
    pub skip: bool,
}

impl Given {
    /// Every part given: COPY FROM STDIN and PostgreSQL's defaults.
    pub fn all(d: Dialect) -> Given {
        Given {
            delimiter: Some(d.delimiter),
            tail: d.tail,
            quote: Some(d.quote),
            escape: Some(d.escape),
            skip: true,
        }
    }

    /// The dialect with COPY's defaults for the parts not given.
    pub fn or_defaults(&self) -> Dialect {
        let quote = self.quote.unwrap_or(b'"');
        Dialect {
            delimiter: self.delimiter.unwrap_or(b','),
            quote,
            escape: self.escape.unwrap_or(quote),
            tail: self.tail,
        }
    }

    /// Why the given bytes cannot describe a file, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        self.or_defaults().check()
    }
}

/// What sniffing decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub dialect: Dialect,
    /// Records before the table (not counting a SKIP the caller gave).
    pub preamble: usize,
    /// The field count of most records: the table's width.
    pub width: usize,
    /// How the choice was made, for the import log and DRY RUN.
    pub evidence: String,
}

/// How one candidate splits the sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    /// More than one field per record (a one-column file splits on nothing).
    splits: bool,
    /// Records in the run of equal field counts.
    consistent: usize,
    width: usize,
    /// Quoted fields read cleanly: closed by their last byte, every quote
    /// inside escaped (a wrong escape leaves text after a quote).
    quoted: usize,
}

/// Sniffs `sample` (the text after any BOM and SKIP); `complete` says the
/// sample is the whole file, so its last record is not cut.
pub fn sniff(sample: &[u8], complete: bool, given: &Given) -> Sniffed {
    let delimiters: Vec<(u8, Tail)> = match given.delimiter {
        Some(d) => vec![(d, given.tail)],
        None => DELIMITERS.iter().filter_map(|d| Tail::split(d)).collect(),
    };
    let quotes: Vec<u8> = match given.quote {
        Some(q) => vec![q],
        None => QUOTES.to_vec(),
    };
    let mut best: Option<(Score, Dialect, usize)> = None;
    let mut fields = Vec::new();
    for &(delimiter, tail) in &delimiters {
        for &quote in &quotes {
            let escapes: Vec<u8> = match given.escape {
                Some(e) => vec![e],
                None => vec![quote, BACKSLASH],
            };
            for escape in escapes {
                let d = Dialect {
                    delimiter,
                    quote,
                    escape,
                    tail,
                };
                if d.check().is_err() {
                    continue;
                }
                let (score, preamble) = score(sample, complete, d, given.skip, &mut fields);
                // A quote or escape other than COPY's own must show itself
                // in a field it reads cleanly; else it wins only by
                // reading a broken quote as data.
                let odd_quote = d.quote != b'"' && given.quote.is_none();
                let odd_escape = d.escape != d.quote && given.escape.is_none();
                if (odd_quote || odd_escape) && score.quoted == 0 {
                    continue;
                }
                if best.as_ref().is_none_or(|(s, ..)| score > *s) {
                    best = Some((score, d, preamble));
                }
            }
        }
    }
    let (score, dialect, preamble) = best.unwrap_or((Score::default(), given.or_defaults(), 0));
    let detected = |what: &str, given: bool, value: &[u8]| {
        let how = if given { "given" } else { "detected" };
        format!("{what} {} ({how})", quoted(value))
    };
    let mut evidence = format!(
        "{}, {}, {}; {} of the first records have {} fields",
        detected(
            "delimiter",
            given.delimiter.is_some(),
            &dialect.delimiter_bytes()
        ),
        detected("quote", given.quote.is_some(), &[dialect.quote]),
        detected("escape", given.escape.is_some(), &[dialect.escape]),
        score.consistent,
        score.width,
    );
    if preamble > 0 {
        evidence.push_str(&format!("; {preamble} preamble lines skipped"));
    }
    Sniffed {
        dialect,
        preamble,
        width: score.width,
        evidence,
    }
}

/// Dialect bytes as the log and DRY RUN show them: printable ASCII as
/// itself, a tab as `\t`, any other byte as `\xNN`.
pub fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\t' => out.push_str("\\t"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// [`shown`] in quotes (double ones around a `'`), for the log's sentence.
fn quoted(bytes: &[u8]) -> String {
    let text = shown(bytes);
    if text.contains('\'') {
        format!("\"{text}\"")
    } else {
        format!("'{text}'")
    }
}

/// Splits the sample with `d`: the score and the preamble's length.
fn score(
    sample: &[u8],
    complete: bool,
    d: Dialect,
    skip_given: bool,
    fields: &mut Vec<Field>,
) -> (Score, usize) {
    let mut counts = Vec::new();
    let mut quoted = 0;
    let mut pos = 0;
    while counts.len() < MAX_RECORDS {
        let Some(r) = read_record(sample, pos, d, fields) else {
            break;
        };
        // A record cut by the end of the sample says nothing.
        if r.open_quote || (r.next >= sample.len() && !complete && !counts.is_empty()) {
            break;
        }
        quoted += fields
            .iter()
            .filter(|f| f.quoted && clean(f.raw(sample), d))
            .count();
        counts.push(fields.len());
        pos = r.next;
    }
    if counts.is_empty() {
        return (Score::default(), 0);
    }
    // The run: the most frequent count among the records after any
    // preamble (more fields on a tie), starting at its first record.
    let mut tally: Vec<(usize, usize)> = Vec::new();
    for &c in &counts {
        match tally.iter_mut().find(|(w, _)| *w == c) {
            Some((_, n)) => *n += 1,
            None => tally.push((c, 1)),
        }
    }
    let (width, _) = tally
        .iter()
        .copied()
        .max_by_key(|&(w, n)| (n, w))
        .unwrap_or((0, 0));
    let first = counts.iter().position(|&c| c == width).unwrap_or(0);
    // Lines before the table are a preamble only when the table is most
    // of what was read and each of them has fewer fields than it (a title,
    // a note): a ragged file keeps its lines for the ON ERROR rule.
    let matching = counts.iter().filter(|&&c| c == width).count();
    let preamble = if skip_given
        || first > MAX_PREAMBLE
        || width < 2
        || matching * 2 <= counts.len()
        || counts[..first].iter().any(|&c| c > width)
    {
        0
    } else {
        first
    };
    let consistent = counts[preamble..].iter().filter(|&&c| c == width).count();
    (
        Score {
            splits: width > 1,
            consistent,
            width,
            quoted,
        },
        preamble,
    )
}

/// Whether a quoted field's bytes read cleanly under `d`: the closing
/// quote is the last byte and every quote inside is escaped.
fn clean(raw: &[u8], d: Dialect) -> bool {
    if raw.len() < 2 || raw[raw.len() - 1] != d.quote {
        return false;
    }
    let inner = &raw[1..raw.len() - 1];
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        let next = inner.get(i + 1).copied();
        if b == d.escape && d.escape != d.quote && (next == Some(d.quote) || next == Some(d.escape))
        {
            i += 2;
        } else if b == d.quote {
            if next != Some(d.quote) {
                return false;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff_text(text: &str) -> Sniffed {
        sniff(text.as_bytes(), true, &Given::default())
    }

    #[test]
    fn delimiters() {
        assert_eq!(sniff_text("a,b,c\n1,2,3\n").dialect.delimiter, b',');
        assert_eq!(sniff_text("a\tb\tc\n1\t2,5\t3\n").dialect.delimiter, b'\t');
        assert_eq!(sniff_text("a;b\n\"1;2\";3\n").dialect.delimiter, b';');
        assert_eq!(sniff_text("x|y\r\n1|2\r\n").dialect.delimiter, b'|');
        assert_eq!(sniff_text("single\nline\n").dialect.delimiter, b',');
        // Every comma has a space after it: the space is not data.
        let s = sniff_text("a, b, c\n1, 2, 3\n4, 5, 6\n");
        assert_eq!(s.dialect.delimiter_bytes(), b", ");
        let s = sniff_text("a, b,c\n1, 2,3\n");
        assert_eq!(s.dialect.delimiter_bytes(), b",");
        // Decimal commas: the semicolon splits every line the same way.
        let s = sniff_text("a;b;c\n1,5;2,25;x\n3,5;4,75;y\n");
        assert_eq!((s.dialect.delimiter, s.preamble, s.width), (b';', 0, 3));
    }

    #[test]
    fn quotes() {
        let s = sniff_text("a,b\n'x, y',1\n'z, w',2\n");
        assert_eq!(s.dialect.quote, b'\'');
        assert_eq!(s.dialect.escape, b'\'');
        // An apostrophe inside a value is not a quote, nor is one that
        // opens a field and never closes.
        let s = sniff_text("name,n\nO'Brien,1\n\"Smith, J\",2\n");
        assert_eq!(s.dialect.quote, b'"');
        let s = sniff_text("a,b,c\n1,'x,2\n3,\"never closed,4\n");
        assert_eq!(s.dialect.quote, b'"');
        // Given parts stay.
        let g = Given {
            quote: Some(b'"'),
            ..Given::default()
        };
        assert_eq!(
            sniff(b"a,b\n'x, y',1\n", true, &g).dialect.quote,
            b'"',
            "an explicit QUOTE wins"
        );
    }

    #[test]
    fn escapes() {
        let s = sniff_text("a,b\n\"say \\\"hi\\\"\",1\n\"x\",2\n");
        assert_eq!(s.dialect.escape, b'\\', "{}", s.evidence);
        let s = sniff_text("a,b\n\"say \"\"hi\"\"\",1\n\"C:\\dir\\\",2\n");
        assert_eq!(s.dialect.escape, b'"', "{}", s.evidence);
    }

    #[test]
    fn preambles() {
        let s = sniff_text("Weather export\nstation 7, generated today\n\nts,t,h\n1,2,3\n4,5,6\n");
        assert_eq!((s.dialect.delimiter, s.preamble, s.width), (b',', 2, 3));
        assert!(s.evidence.contains("2 preamble lines"), "{}", s.evidence);
        let given = Given {
            skip: true,
            ..Given::default()
        };
        let s = sniff(b"title\nts,t\n1,2\n", true, &given);
        assert_eq!(s.preamble, 0, "SKIP given: no preamble is looked for");
        // A ragged row further down is not a preamble, nor are rows before
        // a run that is not most of the file.
        let s = sniff_text("a,b,c\n1,2\n3,4,5\n6,7,8\n");
        assert_eq!((s.preamble, s.width), (0, 3));
        let s = sniff_text("ts,name,value\n1,a,1\n2,b\n3,c,3,x\n4,d,4,\n");
        assert_eq!(s.preamble, 0);
    }
}
