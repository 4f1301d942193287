//! The parse floor of a CSV import: what reading a file once, in order,
//! costs when every field is tokenised and converted to a typed column
//! and the rows are sorted by timestamp, writing nothing. The importer's
//! CPU time is compared with it (`benches/import.py`).
//!
//! `parse_floor FILE TIMESTAMP_COLUMN [THREADS]`: the file is memory-mapped
//! and cut into one chunk per thread at line ends (quoted fields hold no
//! line breaks in the bench files); each thread splits fields at commas
//! outside quotes, infers each column's type from the first data line
//! (integer, float, ISO timestamp with `Z`, else text) and converts every
//! value into a typed vector (text into one byte buffer with offsets, as
//! Arrow holds it; an empty field is NULL). Then one (timestamp, row)
//! permutation is sorted. Prints wall seconds, CPU seconds and rows.

use std::time::Instant;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Int,
    Float,
    Timestamp,
    Text,
}

enum Column {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Timestamp(Vec<Option<i64>>),
    Text { bytes: Vec<u8>, ends: Vec<u32> },
}

fn unquote(f: &[u8]) -> &[u8] {
    if f.len() >= 2 && f[0] == b'"' && f[f.len() - 1] == b'"' {
        &f[1..f.len() - 1]
    } else {
        f
    }
}

fn int(f: &[u8]) -> Option<i64> {
    let (neg, digits) = match f.first() {
        Some(b'-') => (true, &f[1..]),
        _ => (false, f),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

fn float(f: &[u8]) -> Option<f64> {
    std::str::from_utf8(f).ok()?.parse().ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` as microseconds since 1970.
fn timestamp(f: &[u8]) -> Option<i64> {
    if f.len() < 20 || f[4] != b'-' || f[10] != b'T' || *f.last()? != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> { int(&f[r]) };
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let mut micros = 0i64;
    if f[19] == b'.' {
        let frac = &f[20..f.len() - 1];
        for i in 0..6 {
            micros = micros * 10 + frac.get(i).map_or(0, |b| i64::from(b - b'0'));
        }
    }
    let days = sluice::import::format::days_from_civil(y, m, d);
    Some(((days * 24 + hh) * 60 + mm) * 60_000_000 + ss * 1_000_000 + micros)
}

fn kind_of(f: &[u8]) -> Kind {
    let f = unquote(f);
    if int(f).is_some() {
        Kind::Int
    } else if timestamp(f).is_some() {
        Kind::Timestamp
    } else if float(f).is_some() {
        Kind::Float
    } else {
        Kind::Text
    }
}

/// Calls `each(i, field)` for every field of `line`.
fn fields(line: &[u8], mut each: impl FnMut(usize, &[u8])) {
    let (mut start, mut quoted, mut i) = (0, false, 0);
    for (at, &b) in line.iter().enumerate() {
        if b == b'"' {
            quoted = !quoted;
        } else if b == b',' && !quoted {
            each(i, &line[start..at]);
            i += 1;
            start = at + 1;
        }
    }
    each(i, &line[start..]);
}

fn parse_chunk(chunk: &[u8], kinds: &[Kind]) -> (Vec<Column>, usize) {
    let mut cols: Vec<Column> = kinds
        .iter()
        .map(|k| match k {
            Kind::Int => Column::Int(Vec::new()),
            Kind::Float => Column::Float(Vec::new()),
            Kind::Timestamp => Column::Timestamp(Vec::new()),
            Kind::Text => Column::Text {
                bytes: Vec::new(),
                ends: Vec::new(),
            },
        })
        .collect();
    let mut rows = 0;
    for line in memchr::memchr_iter(b'\n', chunk).scan(0, |start, end| {
        let line = &chunk[*start..end];
        *start = end + 1;
        Some(line)
    }) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        rows += 1;
        fields(line, |i, f| {
            let f = unquote(f);
            match cols.get_mut(i) {
                Some(Column::Int(v)) => v.push(int(f)),
                Some(Column::Float(v)) => v.push(float(f)),
                Some(Column::Timestamp(v)) => v.push(timestamp(f)),
                Some(Column::Text { bytes, ends }) => {
                    bytes.extend_from_slice(f);
                    ends.push(bytes.len() as u32);
                }
                None => {}
            }
        });
    }
    (cols, rows)
}

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: parse_floor FILE TIMESTAMP_COLUMN [THREADS]");
        std::process::exit(2);
    }
    let threads: usize = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(2);
    let started = Instant::now();
    let file = std::fs::File::open(&args[1]).expect("open the file");
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map the file");
    let data: &[u8] = &map;
    let header_end = memchr::memchr(b'\n', data).expect("a header line");
    let mut names = Vec::new();
    fields(&data[..header_end], |_, f| {
        names.push(String::from_utf8_lossy(unquote(f)).to_string())
    });
    let ts_col = names
        .iter()
        .position(|n| n == &args[2])
        .expect("the timestamp column");
    let body = &data[header_end + 1..];
    let first_end = memchr::memchr(b'\n', body).unwrap_or(body.len());
    let mut kinds = vec![Kind::Text; names.len()];
    fields(&body[..first_end], |i, f| {
        if i < kinds.len() {
            kinds[i] = kind_of(f);
        }
    });
    // Chunks cut at line ends.
    let mut bounds = vec![0];
    for t in 1..threads {
        let at = body.len() * t / threads;
        let end = memchr::memchr(b'\n', &body[at..]).map_or(body.len(), |e| at + e + 1);
        bounds.push(end.max(*bounds.last().unwrap()));
    }
    bounds.push(body.len());
    let parsed: Vec<(Vec<Column>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let chunk = &body[w[0]..w[1]];
                let kinds = &kinds;
                s.spawn(move || parse_chunk(chunk, kinds))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parser"))
            .collect()
    });
    let rows: usize = parsed.iter().map(|p| p.1).sum();
    // One (timestamp, row) permutation over all rows, sorted.
    let mut order: Vec<(i64, u32)> = Vec::with_capacity(rows);
    for (cols, _) in &parsed {
        if let Column::Timestamp(ts) = &cols[ts_col] {
            let base = order.len();
            order.extend(
                ts.iter()
                    .enumerate()
                    .map(|(i, t)| (t.unwrap_or(i64::MIN), (base + i) as u32)),
            );
        }
    }
    order.sort_unstable();
    let wall = started.elapsed().as_secs_f64();
    // Keep the work observable so none of it is optimised away.
    let checksum = order.first().map_or(0, |o| o.0) ^ order.len() as i64;
    println!(
        "{{\"wall\": {wall:.3}, \"cpu\": {:.3}, \"rows\": {rows}, \"kinds\": \"{:?}\", \"check\": {checksum}}}",
        cpu_seconds(),
        kinds
    );
}
