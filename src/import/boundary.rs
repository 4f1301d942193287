//! Phase `boundary_check`: splits the data into one chunk per worker, each
//! starting at a record start even when quoted fields hold line breaks.
//!
//! Every chunk is scanned in parallel for its quote count and, for each
//! parity of quotes seen so far inside the chunk, the first line break of
//! that parity. The quote parity before a chunk is known once the chunks
//! before it are summed, which picks the line break that lies outside any
//! quoted field. A chunk with no such line break joins the one before.

use rayon::prelude::*;

use super::log::Phase;
use super::{ImportError, Job};

/// A byte range of the file holding whole records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    quotes: u64,
    /// Offset just after the first line break seen at even / odd parity.
    first_break: [Option<usize>; 2],
}

/// How far a chunk is searched for its first line break of each parity
/// before the rest is only counted. A file without line breaks inside
/// quotes never has a break at odd parity, and looking for one stopped at
/// every quote and line break of the chunk.
const BREAK_SEARCH: usize = 1 << 20;

/// The chunk's quote count, and its first breaks within `limit` bytes.
fn scan(buf: &[u8], start: usize, end: usize, limit: usize, quote: u8) -> Scan {
    let mut s = Scan::default();
    let stop = end.min(start.saturating_add(limit));
    let mut pos = start;
    while let Some(k) = memchr::memchr3(quote, b'\n', b'\r', &buf[pos..stop]) {
        let at = pos + k;
        match buf[at] {
            b if b == quote => s.quotes += 1,
            _ => {
                let parity = (s.quotes & 1) as usize;
                if s.first_break[parity].is_none() {
                    // `\r\n` is one break: start after the `\n`.
                    let next = if buf[at] == b'\r' && buf.get(at + 1) == Some(&b'\n') {
                        at + 2
                    } else {
                        at + 1
                    };
                    s.first_break[parity] = Some(next);
                }
                if s.first_break[0].is_some() && s.first_break[1].is_some() {
                    // Both parities found; only the quote count is still needed.
                    s.quotes += memchr::memchr_iter(quote, &buf[at + 1..end]).count() as u64;
                    return s;
                }
            }
        }
        pos = at + 1;
    }
    s.quotes += memchr::memchr_iter(quote, &buf[stop..end]).count() as u64;
    s
}

/// Chunk boundaries of `buf[data_start..]` for `workers` tasks of at least
/// `min_chunk` bytes, for files quoted with `quote`. (An escaped quote, or
/// a literal one inside an unquoted field, can mislead the parity rule;
/// indexing checks that chunks meet at record starts and falls back to one
/// task when they do not.)
pub fn chunks(
    buf: &[u8],
    data_start: usize,
    workers: usize,
    min_chunk: usize,
    quote: u8,
) -> Vec<Chunk> {
    let len = buf.len().saturating_sub(data_start);
    if workers <= 1 || len <= min_chunk {
        return vec![Chunk {
            start: data_start,
            end: buf.len(),
        }];
    }
    let size = min_chunk.max(len.div_ceil(workers)).max(1);
    let bounds: Vec<(usize, usize)> = (0..len.div_ceil(size))
        .map(|i| {
            (
                data_start + i * size,
                (data_start + (i + 1) * size).min(buf.len()),
            )
        })
        .collect();
    let scans: Vec<Scan> = bounds
        .par_iter()
        .map(|&(s, e)| scan(buf, s, e, BREAK_SEARCH, quote))
        .collect();
    let mut starts = vec![data_start];
    let mut quotes = scans[0].quotes;
    for (i, sc) in scans.iter().enumerate().skip(1) {
        let parity = (quotes & 1) as usize;
        // Rare: a quoted field longer than the search; look further.
        let first = sc.first_break[parity]
            .or_else(|| scan(buf, bounds[i].0, bounds[i].1, usize::MAX, quote).first_break[parity]);
        if let Some(at) = first
            && at < buf.len()
            && at > *starts.last().expect("first start")
        {
            starts.push(at);
        }
        quotes += sc.quotes;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(buf.len());
        out.push(Chunk { start: s, end });
    }
    out
}

/// The phase: chunks for the job's workers.
pub fn run(job: &Job<'_>, buf: &[u8], data_start: usize) -> Result<Vec<Chunk>, ImportError> {
    job.check(Phase::BoundaryCheck)?;
    let out = job.pool.install(|| {
        chunks(
            buf,
            data_start,
            job.settings.workers,
            job.settings.min_chunk_size,
            job.dialect().quote,
        )
    });
    job.check(Phase::BoundaryCheck)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_breaks_never_split_a_record() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/questdb-csv/test-quotes-small.csv"
        );
        let Ok(buf) = std::fs::read(path) else { return };
        let starts: Vec<usize> = chunks(&buf, 0, 3, 1, b'"')
            .iter()
            .map(|c| c.start)
            .collect();
        assert_eq!(starts, [0, 90, 185]);
        assert_eq!(chunks(&buf, 0, 1, 1, b'"').len(), 1);
    }

    #[test]
    fn long_quoted_fields_are_searched_past_the_limit() {
        let buf = b"a,\"x\ny\nz\",b\nc,d\n";
        let short = scan(buf, 0, buf.len(), 4, b'"');
        assert_eq!(short.quotes, 2);
        assert_eq!(short.first_break, [None, None]);
        let full = scan(buf, 0, buf.len(), usize::MAX, b'"');
        assert_eq!(full.quotes, 2);
        assert_eq!(full.first_break, [Some(12), Some(5)]);
    }

    #[test]
    fn chunks_cover_the_data() {
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!("{i},\"a\nb,{i}\"\r\n"));
        }
        let buf = text.as_bytes();
        let cs = chunks(buf, 0, 7, 10, b'"');
        assert!(cs.len() > 1);
        assert_eq!(cs.last().unwrap().end, buf.len());
        for w in cs.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            // Every chunk starts a record: the byte before is a line break
            // outside quotes, i.e. the record before ends with `"`.
            assert_eq!(&buf[w[1].start - 3..w[1].start], b"\"\r\n");
        }
    }
}
