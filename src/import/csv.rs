//! The CSV lexer every phase shares: finds records and field spans in a
//! byte buffer without copying. Rules (QuestDB's): records end at `\n` or
//! `\r`, empty lines are skipped, a field is quoted only when the quote
//! byte is its first byte, a doubled quote inside quotes is one quote,
//! delimiters and line breaks inside quotes are data. The delimiter, quote
//! and escape bytes are the [`Dialect`] (PostgreSQL's DELIMITER, QUOTE and
//! ESCAPE); which fields are NULL is the [`Nulls`] rule.

use std::borrow::Cow;

/// The bytes that shape a CSV file. The default is QuestDB's: `,` and `"`
/// with quotes escaped by doubling. A different `escape` (PostgreSQL's
/// `ESCAPE '\\'`) also makes escape+quote and escape+escape inside quotes
/// the literal second byte; elsewhere the escape byte is data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The delimiter's (first) byte.
    pub delimiter: u8,
    pub quote: u8,
    pub escape: u8,
    /// The rest of a delimiter of two to four bytes (`", "`, `"||"`).
    pub tail: Tail,
}

/// The bytes of a delimiter after its first (none for one byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tail {
    bytes: [u8; 3],
    len: u8,
}

impl Tail {
    pub const NONE: Tail = Tail {
        bytes: [0; 3],
        len: 0,
    };

    /// A delimiter of one to four bytes as its first byte and the rest.
    pub fn split(delimiter: &[u8]) -> Option<(u8, Tail)> {
        let (&first, rest) = delimiter.split_first()?;
        if rest.len() > 3 {
            return None;
        }
        let mut bytes = [0; 3];
        bytes[..rest.len()].copy_from_slice(rest);
        Some((
            first,
            Tail {
                bytes,
                len: rest.len() as u8,
            },
        ))
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect::new(b',')
    }
}

impl Dialect {
    /// `delimiter` with `"` quotes escaped by doubling.
    pub const fn new(delimiter: u8) -> Dialect {
        Dialect {
            delimiter,
            quote: b'"',
            escape: b'"',
            tail: Tail::NONE,
        }
    }

    /// The whole delimiter's bytes.
    pub fn delimiter_bytes(&self) -> Vec<u8> {
        let mut d = vec![self.delimiter];
        d.extend_from_slice(self.tail.as_slice());
        d
    }

    /// Whether the delimiter starts at `at` (its first byte is there).
    #[inline(always)]
    fn delimiter_at(&self, buf: &[u8], at: usize) -> bool {
        buf[at] == self.delimiter
            && (self.tail.len == 0 || buf[at + 1..].starts_with(self.tail.as_slice()))
    }

    /// The delimiter's length in bytes.
    #[inline(always)]
    fn delimiter_len(&self) -> usize {
        1 + self.tail.len as usize
    }

    /// Why these bytes cannot describe a file, if they cannot: none may be
    /// a line break, and the delimiter must differ from the other two.
    pub fn check(&self) -> Result<(), String> {
        let line_break = |b: u8| b == b'\n' || b == b'\r';
        if line_break(self.delimiter) || line_break(self.quote) || line_break(self.escape) {
            return Err("the delimiter, quote and escape cannot be a line break".into());
        }
        if self.tail.as_slice().iter().any(|&b| line_break(b)) {
            return Err("the delimiter cannot hold a line break".into());
        }
        if self.delimiter == self.quote || self.delimiter == self.escape {
            return Err("the delimiter must differ from the quote and escape characters".into());
        }
        Ok(())
    }
}

/// One field of a record: a byte range of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub start: usize,
    pub end: usize,
    /// The raw range starts with a quote; its value is inside the quotes.
    pub quoted: bool,
    /// The value needs rewriting (escapes or text after the closing quote).
    pub escaped: bool,
    /// The dialect's quote and escape bytes, so the value can be read
    /// without it (they fit in the struct's padding).
    quote: u8,
    escape: u8,
}

impl Field {
    /// The field's value: borrowed unless escapes must be resolved.
    #[inline]
    pub fn value<'a>(&self, buf: &'a [u8]) -> Cow<'a, [u8]> {
        let raw = &buf[self.start..self.end];
        if !self.quoted {
            return Cow::Borrowed(raw);
        }
        let (q, e) = (self.quote, self.escape);
        if !self.escaped {
            // `"abc"`: strip the two quotes (an unterminated one has no closer).
            let inner = &raw[1..];
            return Cow::Borrowed(inner.strip_suffix(&[q]).unwrap_or(inner));
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut in_quotes = true;
        let mut i = 1;
        while i < raw.len() {
            let b = raw[i];
            if in_quotes {
                let next = raw.get(i + 1).copied();
                if b == e && e != q && (next == Some(q) || next == Some(e)) {
                    out.push(next.unwrap_or(b));
                    i += 2;
                    continue;
                }
                if b == q {
                    if next == Some(q) {
                        out.push(q);
                        i += 2;
                        continue;
                    }
                    in_quotes = false;
                    i += 1;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        }
        Cow::Owned(out)
    }

    /// The field's bytes as written, quotes included.
    #[inline]
    pub fn raw<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.end]
    }

    /// Whether the field is NULL under `nulls`.
    #[inline]
    pub fn is_null(&self, buf: &[u8], nulls: &Nulls) -> bool {
        let raw = self.raw(buf);
        match nulls {
            Nulls::QuestDb(text) => {
                raw.is_empty()
                    || (self.quoted && raw.len() == 2 && raw[1] == self.quote)
                    || (!self.quoted
                        && (raw.eq_ignore_ascii_case(b"null")
                            || text.as_deref().is_some_and(|t| raw == t)))
            }
            Nulls::Postgres(text) => !self.quoted && raw == text.as_slice(),
        }
    }
}

/// Which fields are NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nulls {
    /// QuestDB's COPY: an empty field, a quoted empty field
    /// and an unquoted `NULL` in any case, and also an unquoted field equal
    /// to the given text.
    QuestDb(Option<Vec<u8>>),
    /// PostgreSQL's COPY: only an unquoted field equal to the NULL text (in
    /// CSV the empty string by default); a quoted field is never NULL, so
    /// `""` is the empty string.
    Postgres(Vec<u8>),
}

impl Default for Nulls {
    fn default() -> Self {
        Nulls::QuestDb(None)
    }
}

/// The one writer of CSV and PostgreSQL text-format fields: COPY TO
/// STDOUT, `/exp` and the text-format reader's CSV rewrite all write
/// through it. How values become text before it (QuestDB's ISO timestamps
/// for `/exp`, PostgreSQL's for COPY) is the caller's presentation.
#[derive(Debug, Clone)]
pub struct FieldWriter {
    dialect: Dialect,
    null: Vec<u8>,
    /// PostgreSQL's text format: backslash escapes instead of quotes.
    pg_text: bool,
}

impl FieldWriter {
    /// CSV in `dialect`; NULL is written as `null` unquoted, so a value
    /// equal to it (and the empty string) is quoted.
    pub fn csv(dialect: Dialect, null: impl Into<Vec<u8>>) -> FieldWriter {
        FieldWriter {
            dialect,
            null: null.into(),
            pg_text: false,
        }
    }

    /// PostgreSQL's text format with `delimiter` and NULL text `null`.
    pub fn pg_text(delimiter: u8, null: impl Into<Vec<u8>>) -> FieldWriter {
        FieldWriter {
            dialect: Dialect::new(delimiter),
            null: null.into(),
            pg_text: true,
        }
    }

    pub fn delimiter(&self) -> u8 {
        self.dialect.delimiter
    }

    pub fn null(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.null);
    }

    /// Writes one value; in CSV, `quote` quotes it even when nothing in it
    /// needs quotes (QuestDB's `/exp` quotes every text value).
    pub fn value(&self, v: &[u8], quote: bool, out: &mut Vec<u8>) {
        let d = self.dialect;
        if self.pg_text {
            for &b in v {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b if b == d.delimiter => {
                        out.push(b'\\');
                        out.push(b);
                    }
                    b => out.push(b),
                }
            }
            return;
        }
        let needs = quote
            || v.is_empty()
            || v == self.null.as_slice()
            || v.iter().any(|&b| {
                b == d.delimiter || b == d.quote || b == d.escape || b == b'\n' || b == b'\r'
            });
        if !needs {
            out.extend_from_slice(v);
            return;
        }
        out.push(d.quote);
        for &b in v {
            if b == d.quote || (b == d.escape && d.escape != d.quote) {
                out.push(d.escape);
            }
            out.push(b);
        }
        out.push(d.quote);
    }
}

/// The first position at or after `pos` holding `a`, `b` or `c`.
///
/// Fields are short (a number, a timestamp), so the search is inlined and
/// looks at 16 bytes per step with SSE2 (part of every x86_64 CPU): for
/// most fields one step. A library memchr pays a call and its set-up per
/// field, which at 14 fields per record was a quarter of the import.
#[inline(always)]
fn find3(buf: &[u8], mut pos: usize, a: u8, b: u8, c: u8) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        // SAFETY: SSE2 is always available on x86_64, and every load reads
        // the 16 bytes at `pos`, which the loop condition keeps inside `buf`.
        unsafe {
            let (va, vb, vc) = (
                _mm_set1_epi8(a as i8),
                _mm_set1_epi8(b as i8),
                _mm_set1_epi8(c as i8),
            );
            while pos + 16 <= buf.len() {
                let v = _mm_loadu_si128(buf.as_ptr().add(pos) as *const __m128i);
                let hits = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)),
                    _mm_cmpeq_epi8(v, vc),
                );
                let mask = _mm_movemask_epi8(hits) as u32;
                if mask != 0 {
                    return Some(pos + mask.trailing_zeros() as usize);
                }
                pos += 16;
            }
        }
    }
    while pos < buf.len() {
        let x = buf[pos];
        if x == a || x == b || x == c {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// Where a record lies in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Offset of the record's first byte.
    pub start: usize,
    /// Offset just past the record's terminator (the next record's search start).
    pub next: usize,
    /// The buffer ended inside a quoted field.
    pub open_quote: bool,
}

/// Reads the record at or after `pos` into `fields` (cleared first). Empty
/// lines before it are skipped. `None` when only line breaks remain.
#[inline]
pub fn read_record(buf: &[u8], pos: usize, d: Dialect, fields: &mut Vec<Field>) -> Option<Record> {
    read_record_prefix(buf, pos, d, usize::MAX, fields)
}

/// [`read_record`] that splits only the first `limit` fields and then
/// jumps to the end of the record, stopping only at quotes and line
/// breaks. Indexing needs one field of each record, not all of them.
pub fn read_record_prefix(
    buf: &[u8],
    mut pos: usize,
    d: Dialect,
    limit: usize,
    fields: &mut Vec<Field>,
) -> Option<Record> {
    fields.clear();
    while pos < buf.len() && (buf[pos] == b'\n' || buf[pos] == b'\r') {
        pos += 1;
    }
    if pos >= buf.len() {
        return None;
    }
    let (delim, quote, escape) = (d.delimiter, d.quote, d.escape);
    let field = |start, end, quoted, escaped| Field {
        start,
        end,
        quoted,
        escaped,
        quote,
        escape,
    };
    let start = pos;
    loop {
        // One field starting at `pos`.
        if pos < buf.len() && buf[pos] == quote {
            let fstart = pos;
            let Some((close, mut escaped)) = closing_quote(buf, pos + 1, d) else {
                fields.push(field(fstart, buf.len(), true, true));
                return Some(Record {
                    start,
                    next: buf.len(),
                    open_quote: true,
                });
            };
            // Text after the closing quote up to the delimiter is kept.
            let after = close + 1;
            let stop = field_end(buf, after, d).unwrap_or(buf.len());
            if stop > after {
                escaped = true;
            }
            fields.push(field(fstart, stop, true, escaped));
            pos = stop;
        } else {
            let stop = field_end(buf, pos, d).unwrap_or(buf.len());
            fields.push(field(pos, stop, false, false));
            pos = stop;
        }
        if pos >= buf.len() {
            return Some(Record {
                start,
                next: buf.len(),
                open_quote: false,
            });
        }
        if buf[pos] == delim {
            pos += d.delimiter_len();
            if fields.len() >= limit {
                return Some(skip_record(buf, start, pos, d));
            }
            continue;
        }
        // A line break ends the record.
        return Some(Record {
            start,
            next: pos + 1,
            open_quote: false,
        });
    }
}

/// Where the field from `pos` ends: the next delimiter or line break.
#[inline(always)]
fn field_end(buf: &[u8], mut pos: usize, d: Dialect) -> Option<usize> {
    loop {
        let at = find3(buf, pos, d.delimiter, b'\n', b'\r')?;
        // The first byte of a longer delimiter alone is data.
        if d.tail.len == 0 || buf[at] != d.delimiter || d.delimiter_at(buf, at) {
            return Some(at);
        }
        pos = at + 1;
    }
}

/// The closing quote of a quoted field whose text starts at `i`, and
/// whether the text holds escapes; `None` when the buffer ends first.
#[inline]
fn closing_quote(buf: &[u8], mut i: usize, d: Dialect) -> Option<(usize, bool)> {
    let (q, e) = (d.quote, d.escape);
    let mut escaped = false;
    loop {
        let at = find3(buf, i, q, e, e)?;
        let next = buf.get(at + 1).copied();
        if buf[at] == e && e != q {
            if next == Some(q) || next == Some(e) {
                escaped = true;
                i = at + 2;
            } else {
                i = at + 1;
            }
            continue;
        }
        if next == Some(q) {
            escaped = true;
            i = at + 2;
            continue;
        }
        return Some((at, escaped));
    }
}

/// The rest of the record that starts at `start`, from `pos` (a field
/// start), by the lexer's rules: a quote opens a quoted field only as the
/// first byte of a field, so a quote after a delimiter skips to its closing
/// quote and any other quote is a literal byte.
fn skip_record(buf: &[u8], start: usize, mut pos: usize, d: Dialect) -> Record {
    loop {
        let Some(at) = find3(buf, pos, d.quote, b'\n', b'\r') else {
            return Record {
                start,
                next: buf.len(),
                open_quote: false,
            };
        };
        if buf[at] != d.quote {
            return Record {
                start,
                next: at + 1,
                open_quote: false,
            };
        }
        let n = d.delimiter_len();
        if at < start + n || !d.delimiter_at(buf, at - n) {
            pos = at + 1;
            continue;
        }
        match closing_quote(buf, at + 1, d) {
            None => {
                return Record {
                    start,
                    next: buf.len(),
                    open_quote: true,
                };
            }
            Some((close, _)) => pos = close + 1,
        }
    }
}

/// Line breaks in `bytes`: `\n`, `\r\n` and a bare `\r` each count once.
/// `next` is the byte after `bytes`, to see whether a final `\r` is
/// followed by `\n`.
pub fn count_lines(bytes: &[u8], next: Option<u8>) -> u64 {
    let mut n = memchr::memchr_iter(b'\n', bytes).count() as u64;
    for i in memchr::memchr_iter(b'\r', bytes) {
        let following = bytes.get(i + 1).copied().or(next);
        if following != Some(b'\n') {
            n += 1;
        }
    }
    n
}

/// 1-based line numbers of the given byte offsets (sorted ascending) in `buf`.
pub fn line_numbers(buf: &[u8], offsets: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut line = 1u64;
    let mut at = 0usize;
    for &o in offsets {
        let o = (o as usize).min(buf.len());
        if o > at {
            line += count_lines(&buf[at..o], buf.get(o).copied());
            at = o;
        }
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_of_several_bytes() {
        let (first, tail) = Tail::split(b"||").unwrap();
        let d = Dialect {
            delimiter: first,
            tail,
            ..Dialect::default()
        };
        let buf = b"a||b||\"c||d\"\nx|y||z\n";
        let mut fields = Vec::new();
        let r = read_record(buf, 0, d, &mut fields).unwrap();
        let got: Vec<_> = fields.iter().map(|f| f.value(buf).into_owned()).collect();
        assert_eq!(got, [&b"a"[..], b"b", b"c||d"]);
        let r = read_record(buf, r.next, d, &mut fields).unwrap();
        let got: Vec<_> = fields.iter().map(|f| f.value(buf).into_owned()).collect();
        assert_eq!(got, [&b"x|y"[..], b"z"]);
        assert_eq!(r.next, buf.len());
        // The prefix reader jumps over a quoted field after a delimiter.
        let r = read_record_prefix(buf, 0, d, 1, &mut fields).unwrap();
        assert_eq!((fields.len(), r.next), (1, 13));
        assert!(Tail::split(b"12345").is_none());
    }

    fn values(buf: &[u8]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut fields = Vec::new();
        let mut pos = 0;
        while let Some(r) = read_record(buf, pos, Dialect::new(b','), &mut fields) {
            out.push(
                fields
                    .iter()
                    .map(|f| String::from_utf8(f.value(buf).into_owned()).unwrap())
                    .collect(),
            );
            pos = r.next;
        }
        out
    }

    #[test]
    fn quotes_line_breaks_and_empty_lines() {
        let buf = b"a,b\r\n\"x,\r\ny\",\"q\"\"q\"\r\n\r\n\rlast,\"\"";
        assert_eq!(
            values(buf),
            vec![vec!["a", "b"], vec!["x,\r\ny", "q\"q"], vec!["last", ""],]
        );
    }

    #[test]
    fn mid_field_quote_is_literal_and_trailing_text_kept() {
        assert_eq!(values(b"foobar\",x\n"), vec![vec!["foobar\"", "x"]]);
        assert_eq!(values(b"\"ab\"cd,x\n"), vec![vec!["abcd", "x"]]);
    }

    #[test]
    fn prefix_reader_ends_records_where_the_full_reader_does() {
        let buf: &[u8] = b"a,b\r\n1,\"x,\r\ny\",\"q\"\"q\"\r\n\r\n\rlast,\"\"\n\
            2,ab\"c,\"d\"e\"f,\"\"\"\"\n3,\"\"\"\n\",z\n4,\"unterminated\nrest";
        for limit in 0..4 {
            let (mut full, mut prefix) = (Vec::new(), Vec::new());
            let mut pos = 0;
            while let Some(r) = read_record(buf, pos, Dialect::new(b','), &mut full) {
                let p =
                    read_record_prefix(buf, pos, Dialect::new(b','), limit, &mut prefix).unwrap();
                assert_eq!(p, r, "limit {limit} at {pos}");
                let n = limit.max(1).min(full.len());
                assert_eq!(prefix[..], full[..n]);
                pos = r.next;
            }
        }
    }

    #[test]
    fn open_quote_at_end() {
        let mut fields = Vec::new();
        let r = read_record(b"a,\"open\nmore", 0, Dialect::new(b','), &mut fields).unwrap();
        assert!(r.open_quote);
    }

    #[test]
    fn lines() {
        let buf = b"h\r\na\rb\nc\r\nd";
        let starts = [0u64, 3, 5, 7, 10];
        assert_eq!(line_numbers(buf, &starts), vec![1, 2, 3, 4, 5]);
    }
}
