//! PostgreSQL's COPY `text` format (tab-separated, `\N` for NULL,
//! backslash escapes, no quoting) rewritten as CSV while it is spooled,
//! so that COPY FROM STDIN in text format goes through the importer's one
//! CSV lexer. Also the `\.` end-of-data line psql may send in either format.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use super::csv::{Dialect, FieldWriter};

/// Converts text-format lines to CSV records as bytes arrive.
#[derive(Debug)]
pub struct TextToCsv {
    delimiter: u8,
    null: Vec<u8>,
    /// The CSV side: QuestDB's dialect, NULL as the empty field.
    csv: FieldWriter,
    /// An incomplete line carried to the next piece.
    partial: Vec<u8>,
    /// The `\.` line was seen: everything after it is ignored.
    ended: bool,
}

impl TextToCsv {
    pub fn new(delimiter: u8, null: Vec<u8>) -> TextToCsv {
        TextToCsv {
            delimiter,
            null,
            csv: FieldWriter::csv(Dialect::default(), Vec::new()),
            partial: Vec::new(),
            ended: false,
        }
    }

    /// Converts the complete lines of `data` (with what was carried) into `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &data[start..]) {
            let end = start + nl;
            if self.partial.is_empty() {
                self.line(&data[start..end], out);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&data[start..end]);
                self.line(&line, out);
            }
            start = end + 1;
        }
        self.partial.extend_from_slice(&data[start..]);
    }

    /// Converts a last line without a line break.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, out);
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.ended {
            return;
        }
        if line == b"\\." {
            self.ended = true;
            return;
        }
        let mut first = true;
        let mut field_start = 0;
        let mut i = 0;
        while i <= line.len() {
            if i == line.len() || line[i] == self.delimiter {
                if !first {
                    out.push(b',');
                }
                first = false;
                self.field(&line[field_start..i], out);
                field_start = i + 1;
                i += 1;
            } else if line[i] == b'\\' {
                i += 2;
            } else {
                i += 1;
            }
        }
        out.push(b'\n');
    }

    fn field(&self, raw: &[u8], out: &mut Vec<u8>) {
        if raw == self.null.as_slice() {
            return; // an empty unquoted CSV field is NULL
        }
        // The empty string and text needing quotes are quoted: the CSV is
        // read with PostgreSQL's rule, where only unquoted empty is NULL.
        self.csv.value(&unescape(raw), false, out);
    }
}

/// Resolves the text format's backslash sequences (borrowed when none).
fn unescape(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// Cuts a final `\.` line (psql's end-of-data marker) off a spooled file.
pub fn trim_end_marker(path: &Path) -> std::io::Result<()> {
    let len = std::fs::metadata(path)?.len();
    let tail_len = len.min(5);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let body = tail
        .strip_suffix(b"\n")
        .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
        .unwrap_or(&tail);
    if let Some(before) = body.strip_suffix(b"\\.")
        && (before.ends_with(b"\n") || (before.is_empty() && len - tail_len == 0))
    {
        let cut = len - (tail.len() - before.len()) as u64;
        f.set_len(cut)?;
    }
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(pieces: &[&[u8]]) -> String {
        let mut t = TextToCsv::new(b'\t', b"\\N".to_vec());
        let mut out = Vec::new();
        for p in pieces {
            t.feed(p, &mut out);
        }
        t.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_format_to_csv() {
        assert_eq!(convert(&[b"1\ta\n2\t\\N\n"]), "1,a\n2,\n");
        // Escapes, a delimiter inside a value, quotes, an empty string; the
        // word null stays text (the CSV is read with PostgreSQL's NULL rule).
        assert_eq!(
            convert(&[b"x\\ty\ta,b\t\"q\"\t\tnull\r\n"]),
            "x\ty,\"a,b\",\"\"\"q\"\"\",\"\",null\n"
        );
        assert_eq!(convert(&[b"l1\\nl2\t\\101\\x42\n"]), "\"l1\nl2\",AB\n");
        // Split anywhere; the end marker stops the data.
        assert_eq!(
            convert(&[b"1\t", b"a\n2", b"\tb\n\\.\n3\tc\n"]),
            "1,a\n2,b\n"
        );
        assert_eq!(convert(&[b"1\ta"]), "1,a\n");
    }

    #[test]
    fn end_marker_is_cut() {
        let p = std::env::temp_dir().join(format!("sluice-marker-{}", uuid::Uuid::new_v4()));
        for (input, want) in [
            ("a,b\n1,2\n\\.\n", "a,b\n1,2\n"),
            ("a,b\n1,2\n\\.\r\n", "a,b\n1,2\n"),
            ("a,b\n1,2\n\\.", "a,b\n1,2\n"),
            ("\\.\n", ""),
            ("a,b\n1,2\n", "a,b\n1,2\n"),
            ("a,b\nx\\.\n", "a,b\nx\\.\n"),
        ] {
            std::fs::write(&p, input).unwrap();
            trim_end_marker(&p).unwrap();
            assert_eq!(std::fs::read_to_string(&p).unwrap(), want, "{input:?}");
        }
        let _ = std::fs::remove_file(&p);
    }
}
