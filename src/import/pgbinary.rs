//! PostgreSQL's binary COPY format (`COPY t FROM STDIN (FORMAT binary)`,
//! what asyncpg's `copy_records_to_table` sends) rewritten as CSV while it
//! is received, so it goes through the importer's one lexer, conversions
//! and atomic commit like the text format. Each field arrives in the
//! binary form of the type we announce for its column in query results.

use super::csv::{Dialect, FieldWriter};
use crate::schema::ColumnType;

/// The file signature every binary COPY stream starts with.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The binary layout of one column's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// UTF-8 text (VARCHAR, SYMBOL, CHAR, IPv4, TIMESTAMP_NS).
    Text,
    /// Microseconds since 2000-01-01 (TIMESTAMP, DATE).
    Timestamp,
    Uuid,
}

impl Wire {
    /// The layout of the type a column of `ty` is announced as.
    pub fn of(ty: ColumnType) -> Wire {
        match ty {
            ColumnType::Boolean => Wire::Bool,
            ColumnType::Byte | ColumnType::Short => Wire::Int2,
            ColumnType::Int => Wire::Int4,
            ColumnType::Long => Wire::Int8,
            ColumnType::Float => Wire::Float4,
            ColumnType::Double => Wire::Float8,
            ColumnType::Date | ColumnType::Timestamp => Wire::Timestamp,
            ColumnType::Uuid => Wire::Uuid,
            ColumnType::Char
            | ColumnType::Varchar
            | ColumnType::String
            | ColumnType::Symbol
            | ColumnType::Ipv4
            | ColumnType::TimestampNs => Wire::Text,
        }
    }

    /// Writes the field as the text the importer reads: UTF-8 text as it
    /// is, other values formatted into `scratch` first.
    fn write(
        self,
        b: &[u8],
        csv: &FieldWriter,
        scratch: &mut String,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        if self == Wire::Text {
            std::str::from_utf8(b)
                .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
            csv.value(b, false, out);
            return Ok(());
        }
        scratch.clear();
        self.format_into(b, scratch)?;
        csv.value(scratch.as_bytes(), false, out);
        Ok(())
    }

    /// A non-text field's value as text, appended to `out`.
    fn format_into(self, b: &[u8], out: &mut String) -> Result<(), String> {
        use std::fmt::Write as _;
        let fixed = |n: usize| -> Result<&[u8], String> {
            (b.len() == n)
                .then_some(b)
                .ok_or_else(|| format!("{} bytes for a {self:?} field, expected {n}", b.len()))
        };
        let _ = match self {
            Wire::Bool => write!(out, "{}", fixed(1)?[0] != 0),
            Wire::Int2 => write!(
                out,
                "{}",
                i16::from_be_bytes(fixed(2)?.try_into().expect("2"))
            ),
            Wire::Int4 => write!(
                out,
                "{}",
                i32::from_be_bytes(fixed(4)?.try_into().expect("4"))
            ),
            Wire::Int8 => write!(
                out,
                "{}",
                i64::from_be_bytes(fixed(8)?.try_into().expect("8"))
            ),
            Wire::Float4 => write!(
                out,
                "{}",
                f32::from_be_bytes(fixed(4)?.try_into().expect("4"))
            ),
            Wire::Float8 => write!(
                out,
                "{}",
                f64::from_be_bytes(fixed(8)?.try_into().expect("8"))
            ),
            Wire::Text => unreachable!("text fields are written as they are"),
            Wire::Timestamp => {
                let pg = i64::from_be_bytes(fixed(8)?.try_into().expect("8"));
                let micros = pg
                    .checked_add(PG_EPOCH_MICROS)
                    .ok_or("timestamp out of range (infinity?)")?;
                let t = chrono::DateTime::from_timestamp_micros(micros)
                    .ok_or("timestamp out of range")?;
                write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
            }
            Wire::Uuid => {
                let u = uuid::Uuid::from_slice(fixed(16)?).map_err(|e| e.to_string())?;
                write!(out, "{}", u.hyphenated())
            }
        };
        Ok(())
    }
}

/// Converts a binary COPY stream to CSV records as bytes arrive.
#[derive(Debug)]
pub struct BinaryToCsv {
    columns: Vec<Wire>,
    pending: Vec<u8>,
    header_done: bool,
    ended: bool,
    rows: u64,
    csv: FieldWriter,
    /// Reused for each non-text value's text.
    scratch: String,
}

impl BinaryToCsv {
    pub fn new(columns: Vec<Wire>) -> BinaryToCsv {
        BinaryToCsv {
            columns,
            pending: Vec::new(),
            header_done: false,
            ended: false,
            rows: 0,
            // NULL is the unquoted empty field; the empty string is `""`.
            csv: FieldWriter::csv(Dialect::default(), Vec::new()),
            scratch: String::new(),
        }
    }

    /// Converts every complete tuple of `data` (with what was carried).
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.pending.extend_from_slice(data);
        let mut at = 0;
        if !self.header_done {
            if self.pending.len() < SIGNATURE.len() + 8 {
                return Ok(());
            }
            if &self.pending[..SIGNATURE.len()] != SIGNATURE {
                return Err("not a binary COPY stream (missing PGCOPY signature)".into());
            }
            let ext = u32::from_be_bytes(self.pending[15..19].try_into().expect("4")) as usize;
            if self.pending.len() < 19 + ext {
                return Ok(());
            }
            at = 19 + ext;
            self.header_done = true;
        }
        while !self.ended {
            match self.tuple(at, out)? {
                Some(next) => at = next,
                None => break,
            }
        }
        self.pending.drain(..at);
        Ok(())
    }

    /// Converts the tuple at `at` when all of it has arrived; where the
    /// next one starts, or `None` to wait for more bytes.
    fn tuple(&mut self, at: usize, out: &mut Vec<u8>) -> Result<Option<usize>, String> {
        let buf = &self.pending;
        let Some(count) = buf.get(at..at + 2) else {
            return Ok(None);
        };
        let count = i16::from_be_bytes(count.try_into().expect("2"));
        if count == -1 {
            self.ended = true;
            return Ok(Some(at + 2));
        }
        let row = self.rows + 1;
        if count as usize != self.columns.len() {
            return Err(format!(
                "row {row} has {count} fields, expected {}",
                self.columns.len()
            ));
        }
        // Find the fields first: nothing is written for a partial tuple.
        let mut fields = Vec::with_capacity(self.columns.len());
        let mut p = at + 2;
        for _ in 0..count {
            let Some(len) = buf.get(p..p + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes(len.try_into().expect("4"));
            p += 4;
            if len < 0 {
                fields.push(None);
                continue;
            }
            let end = p + len as usize;
            if end > buf.len() {
                return Ok(None);
            }
            fields.push(Some(p..end));
            p = end;
        }
        for (i, (field, wire)) in fields.into_iter().zip(&self.columns).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if let Some(range) = field {
                wire.write(&buf[range], &self.csv, &mut self.scratch, out)
                    .map_err(|e| format!("row {row}, field {}: {e}", i + 1))?;
            }
        }
        out.push(b'\n');
        self.rows = row;
        Ok(Some(p))
    }

    /// Checks that the stream ended with its trailer and nothing is left.
    pub fn finish(&self) -> Result<(), String> {
        if !self.ended || !self.pending.is_empty() {
            return Err(format!(
                "binary COPY data ended early (after {} rows, {} bytes of an incomplete tuple or no trailer)",
                self.rows,
                self.pending.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(tuples: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut s = SIGNATURE.to_vec();
        s.extend_from_slice(&[0; 8]);
        for t in tuples {
            s.extend_from_slice(&(t.len() as i16).to_be_bytes());
            for f in t {
                match f {
                    None => s.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(b) => {
                        s.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        s.extend_from_slice(b);
                    }
                }
            }
        }
        s.extend_from_slice(&(-1i16).to_be_bytes());
        s
    }

    #[test]
    fn binary_tuples_become_csv_in_any_split() {
        let ts = (1_704_067_200_000_000i64 - PG_EPOCH_MICROS)
            .to_be_bytes()
            .to_vec();
        let data = stream(&[
            vec![
                Some(ts.clone()),
                Some(b"a,\"b\"".to_vec()),
                Some(1.5f64.to_be_bytes().to_vec()),
                Some(7i32.to_be_bytes().to_vec()),
            ],
            vec![Some(ts), Some(Vec::new()), None, None],
        ]);
        let columns = vec![Wire::Timestamp, Wire::Text, Wire::Float8, Wire::Int4];
        for split in 1..data.len() {
            let mut c = BinaryToCsv::new(columns.clone());
            let mut out = Vec::new();
            c.feed(&data[..split], &mut out).unwrap();
            c.feed(&data[split..], &mut out).unwrap();
            c.finish().unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "2024-01-01T00:00:00.000000Z,\"a,\"\"b\"\"\",1.5,7\n2024-01-01T00:00:00.000000Z,\"\",,\n"
            );
        }
        let mut c = BinaryToCsv::new(columns);
        let mut out = Vec::new();
        c.feed(&data[..data.len() - 2], &mut out).unwrap();
        assert!(c.finish().unwrap_err().contains("ended early"));
        let mut c = BinaryToCsv::new(vec![Wire::Int4]);
        assert!(
            c.feed(b"PGCOPX\n\xff\r\n\0\0\0\0\0\0\0\0\0", &mut out)
                .is_err()
        );
    }
}
