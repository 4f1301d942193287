//! A table's write-ahead log on local disk: numbered records of rows in
//! segment files (`<first sequence number>.wal`), each record framed with
//! its length, sequence number and a CRC-32 so that a record torn by a
//! crash is recognised and dropped. The rows are in the table's schema,
//! in the compact layout of `wal_rows` (or, for a type it does not write,
//! as an Arrow IPC stream). Group commit, visibility and applying are the
//! catalog's (`catalog::wal`); this module only writes, reads and trims
//! the files.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::{
    DictionaryTracker, IpcDataGenerator, IpcWriteOptions, StreamWriter, write_message,
};

use crate::error::{Error, Result};

/// `SWL1`: a record starts here.
const MAGIC: [u8; 4] = *b"SWL1";
/// magic, payload length (u32), sequence number (u64), CRC-32 (u32).
const HEADER: usize = 4 + 4 + 8 + 4;
/// Slicing by 16 bytes: the checksum is taken with the log locked, and the
/// byte-at-a-time table took 2 % of a single-row INSERT's server time.
const CRC: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);
const SUFFIX: &str = ".wal";
/// A segment's size, written as zeros when it is made: appends then
/// change no file size or block map, so the fsync of an append writes the
/// data alone, not the inode too. A record that does not fit starts a new
/// segment (one larger than this holds that record alone).
pub const SEGMENT_BYTES: u64 = 16 << 20;

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut digest = CRC.digest();
    digest.update(&seq.to_le_bytes());
    digest.update(payload);
    digest.finalize()
}

/// Encodes records: each carries the schema's Arrow IPC message and its
/// rows (compact, or a whole IPC stream), so a record reads back alone; the
/// schema's message, the same for every record of a table's definition,
/// is encoded once and copied after.
#[derive(Debug, Default)]
pub struct Encoder {
    schema: std::sync::Mutex<Option<std::sync::Arc<SchemaMessage>>>,
}

/// A schema's IPC message, framed, and how many dictionary columns it has.
#[derive(Debug)]
struct SchemaMessage {
    schema: SchemaRef,
    framed: Vec<u8>,
    dictionaries: usize,
}

impl Encoder {
    /// A record before its sequence number is known: room for the frame,
    /// then `batch` as an Arrow IPC stream. Made before the log is locked,
    /// so that writers encode their rows at the same time; [`seal`]
    /// finishes it.
    pub fn unsealed(&self, batch: &RecordBatch) -> Result<Vec<u8>> {
        // The payload is written after room for the header, which is
        // filled in once its length and checksum are known: one buffer, no
        // copy. Sized for the rows and the schema message up front: growing
        // from the header by doubling copied the record several times.
        let mut out = Vec::with_capacity(HEADER + 1024 + batch.get_array_memory_size());
        out.resize(HEADER, 0);
        let schema = batch.schema();
        // Nested columns number their dictionaries in a walk this does not
        // repeat: those streams are written whole (no table has one today).
        if schema.fields().iter().any(|f| f.data_type().is_nested()) {
            let mut writer = StreamWriter::try_new(&mut out, &schema)?;
            writer.write(batch)?;
            writer.finish()?;
            return Ok(out);
        }
        let message = self.schema_message(&schema)?;
        if super::wal_rows::encode(batch, &message.framed, &mut out) {
            return Ok(out);
        }
        out.extend_from_slice(&message.framed);
        let options = IpcWriteOptions::default();
        // Dictionary ids are given in schema order, as the schema message
        // numbered them.
        let mut tracker = DictionaryTracker::new(false);
        for _ in 0..message.dictionaries {
            tracker.next_dict_id();
        }
        let (dictionaries, rows) = IpcDataGenerator::default().encode(
            batch,
            &mut tracker,
            &options,
            &mut Default::default(),
        )?;
        for d in dictionaries {
            write_message(&mut out, d, &options)?;
        }
        write_message(&mut out, rows, &options)?;
        // End of stream: the continuation marker and a zero length.
        out.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        Ok(out)
    }

    fn schema_message(&self, schema: &SchemaRef) -> Result<std::sync::Arc<SchemaMessage>> {
        let mut cached = self.schema.lock().expect("wal encoder");
        if let Some(m) = cached.as_ref()
            && (std::sync::Arc::ptr_eq(&m.schema, schema) || m.schema == *schema)
        {
            return Ok(std::sync::Arc::clone(m));
        }
        let options = IpcWriteOptions::default();
        let mut tracker = DictionaryTracker::new(false);
        let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
            schema,
            &mut tracker,
            &options,
        );
        let mut framed = Vec::new();
        write_message(&mut framed, encoded, &options)?;
        let m = std::sync::Arc::new(SchemaMessage {
            schema: std::sync::Arc::clone(schema),
            framed,
            dictionaries: tracker.dict_id().len(),
        });
        *cached = Some(std::sync::Arc::clone(&m));
        Ok(m)
    }
}

/// Fills in the frame of a record from [`unsealed`] as sequence number
/// `seq`: magic, length, sequence number and the checksum of both.
pub fn seal(seq: u64, record: &mut [u8]) -> Result<()> {
    let len = u32::try_from(record.len() - HEADER)
        .map_err(|_| Error::invalid("a write-ahead log record is limited to 4 GiB"))?;
    let crc = checksum(seq, &record[HEADER..]);
    record[..4].copy_from_slice(&MAGIC);
    record[4..8].copy_from_slice(&len.to_le_bytes());
    record[8..16].copy_from_slice(&seq.to_le_bytes());
    record[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The segment files of `dir`, by first sequence number.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The unit of a direct write: its offset and length are multiples of it
/// (the largest logical block size of common disks).
const BLOCK: usize = 4096;

/// How a segment's bytes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Writes {
    /// `O_DIRECT | O_DSYNC`: a write of whole blocks is durable when it
    /// returns: one system call, no page cache to write back, and a device
    /// asked to persist that write rather than flush its whole cache
    /// (pwrite then fdatasync spent a third of a single-row INSERT's server
    /// CPU in the page cache's writeback and the flush).
    Direct,
    /// Through the page cache, then `fdatasync`: file systems that refuse
    /// `O_DIRECT` (tmpfs).
    Buffered,
}

/// The segment being appended to. Appends gather in memory; a [`Flush`]
/// taken from the segment writes them, durably, while appends go on.
#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    pub first_seq: u64,
    file: std::sync::Arc<File>,
    writes: Writes,
    /// Bytes appended (the offset of the next record).
    len: u64,
    /// Bytes handed to a flush.
    flushed: u64,
    /// The bytes from the block boundary at or before `flushed` up to
    /// `len`: a direct write rewrites the partly filled block whole.
    tail: Vec<u8>,
    /// The zeros written when the segment was made (whole blocks).
    capacity: u64,
}

/// Appended bytes on their way to the disk: written and made durable by
/// [`Flush::write`], without the log's lock.
pub struct Flush {
    file: std::sync::Arc<File>,
    path: PathBuf,
    writes: Writes,
    /// File offset of `data[start]`.
    offset: u64,
    data: Vec<u8>,
    start: usize,
    len: usize,
}

impl Segment {
    /// A new segment of `SEGMENT_BYTES` zeros (or `at_least`, rounded up to
    /// whole blocks) whose first record will be `first_seq`, durable with
    /// its directory entry before a record goes in.
    pub fn create(dir: &Path, first_seq: u64, at_least: u64) -> Result<Segment> {
        Segment::create_as(dir, first_seq, at_least, Writes::Direct)
    }

    /// [`Segment::create`] with `writes` wanted (direct ones when the file
    /// system takes them).
    fn create_as(dir: &Path, first_seq: u64, at_least: u64, writes: Writes) -> Result<Segment> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("{first_seq:020}{SUFFIX}"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let capacity = SEGMENT_BYTES.max(at_least).div_ceil(BLOCK as u64) * BLOCK as u64;
        let zeros = vec![0u8; 1 << 20];
        let mut left = capacity;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])
                .map_err(|e| Error::io(&path, e))?;
            left -= n as u64;
        }
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        super::sync_dir(dir)?;
        let direct = match writes {
            Writes::Direct => open_direct(&path),
            Writes::Buffered => None,
        };
        let (file, writes) = match direct {
            Some(direct) => (direct, Writes::Direct),
            None => (file, Writes::Buffered),
        };
        Ok(Segment {
            path,
            first_seq,
            file: std::sync::Arc::new(file),
            writes,
            len: 0,
            flushed: 0,
            tail: Vec::new(),
            capacity,
        })
    }

    /// Whether `bytes` more fit.
    pub fn fits(&self, bytes: usize) -> bool {
        self.len + bytes as u64 <= self.capacity
    }

    /// Adds one encoded record after the last (in memory until a flush).
    pub fn append(&mut self, record: &[u8]) {
        self.tail.extend_from_slice(record);
        self.len += record.len() as u64;
    }

    /// The bytes appended since the last flush, to be written; none when
    /// there are none. The segment counts them as flushed: a flush that
    /// fails leaves the log failed (the caller stops taking records).
    pub fn take_flush(&mut self) -> Option<Flush> {
        if self.len == self.flushed {
            return None;
        }
        let tail_start = self.flushed - self.flushed % BLOCK as u64;
        let flush = match self.writes {
            Writes::Direct => {
                // Whole blocks from aligned memory: the block before the
                // new bytes is written again with them, and the rest of
                // the last block with the zeros the file had there.
                let len = self.tail.len().div_ceil(BLOCK) * BLOCK;
                // Room to start at a block boundary; only the bytes before
                // it and after the tail are zeroed (a zeroed, aligned
                // allocation per flush cost 3 % of an INSERT's time).
                let mut data: Vec<u8> = Vec::with_capacity(len + BLOCK);
                let start = data.as_ptr().align_offset(BLOCK);
                data.resize(start, 0);
                data.extend_from_slice(&self.tail);
                data.resize(start + len, 0);
                Flush {
                    file: std::sync::Arc::clone(&self.file),
                    path: self.path.clone(),
                    writes: self.writes,
                    offset: tail_start,
                    data,
                    start,
                    len,
                }
            }
            Writes::Buffered => {
                let from = (self.flushed - tail_start) as usize;
                let data = self.tail[from..].to_vec();
                Flush {
                    file: std::sync::Arc::clone(&self.file),
                    path: self.path.clone(),
                    writes: self.writes,
                    offset: self.flushed,
                    len: data.len(),
                    data,
                    start: 0,
                }
            }
        };
        let keep_from = (self.len - self.len % BLOCK as u64 - tail_start) as usize;
        self.tail.drain(..keep_from);
        self.flushed = self.len;
        Some(flush)
    }
}

/// The segment file opened for direct, synchronous writes, where the file
/// system allows it.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

impl Flush {
    /// Writes the bytes and returns once they are durable.
    pub fn write(self) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let data = &self.data[self.start..self.start + self.len];
        self.file
            .write_all_at(data, self.offset)
            .map_err(|e| Error::io(&self.path, e))?;
        if self.writes == Writes::Buffered {
            self.file
                .sync_data()
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

/// What a WAL directory holds after a restart.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Records after `applied`, in order: sequence number, rows, bytes.
    pub records: Vec<(u64, RecordBatch, usize)>,
    /// The highest sequence number found (applied or not).
    pub last_seq: u64,
    /// What was cut from the end of the log (a record a crash tore).
    pub torn: Vec<String>,
}

/// Reads every segment of `dir`, keeping the records after `applied`.
/// A record that does not check out ends its segment: the rest of that
/// file is cut off and reported (a crash mid-write tears only the last
/// record; an earlier torn record means the disk lost data, and the
/// records after it cannot be trusted to follow it).
pub fn recover(dir: &Path, applied: u64) -> Result<Recovered> {
    let mut out = Recovered {
        last_seq: applied,
        ..Recovered::default()
    };
    for (_, path) in segments(dir)? {
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::io(&path, e))?;
        let mut at = 0usize;
        while at < bytes.len() {
            // The zeros a segment was made of: its records end here.
            if bytes[at..(at + HEADER).min(bytes.len())]
                .iter()
                .all(|&b| b == 0)
            {
                break;
            }
            match read_record(&bytes[at..]) {
                Ok((seq, payload, used)) => {
                    if seq > applied {
                        let batch = decode(payload).map_err(|e| Error::Corrupt {
                            table: dir.display().to_string(),
                            file: path.display().to_string(),
                            reason: format!("write-ahead log record {seq}: {e}"),
                        })?;
                        out.records.push((seq, batch, used));
                    }
                    out.last_seq = out.last_seq.max(seq);
                    at += used;
                }
                Err(why) => {
                    out.torn.push(format!(
                        "{}: {} bytes at offset {at} dropped ({why})",
                        path.display(),
                        bytes.len() - at
                    ));
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| Error::io(&path, e))?;
                    f.set_len(at as u64).map_err(|e| Error::io(&path, e))?;
                    f.sync_all().map_err(|e| Error::io(&path, e))?;
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// One framed record at the start of `bytes`: (seq, payload, bytes used).
fn read_record(bytes: &[u8]) -> std::result::Result<(u64, &[u8], usize), String> {
    if bytes.len() < HEADER {
        return Err("a partial record header".into());
    }
    if bytes[..4] != MAGIC {
        return Err("no record marker".into());
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let seq = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let Some(payload) = bytes.get(HEADER..HEADER + len) else {
        return Err(format!("record {seq} is cut short"));
    };
    if checksum(seq, payload) != crc {
        return Err(format!("record {seq} fails its checksum"));
    }
    Ok((seq, payload, HEADER + len))
}

fn decode(payload: &[u8]) -> Result<RecordBatch> {
    if payload.starts_with(&super::wal_rows::MARKER) {
        return super::wal_rows::decode(payload);
    }
    let mut reader = StreamReader::try_new(payload, None)?;
    match reader.next() {
        Some(batch) => Ok(batch?),
        None => Err(Error::Internal("an empty write-ahead log record".into())),
    }
}

/// Removes the segments whose records all precede `next_first` (the first
/// sequence number of a segment still needed, or of the next one).
pub fn trim(dir: &Path, next_first: u64) -> Result<usize> {
    let all = segments(dir)?;
    let mut removed = 0;
    for (i, (_, path)) in all.iter().enumerate() {
        let next = all.get(i + 1).map(|(f, _)| *f);
        if next.is_some_and(|n| n <= next_first) {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// One whole record, as the log writes it.
    fn encode(seq: u64, batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut record = Encoder::default().unsealed(batch)?;
        seal(seq, &mut record)?;
        Ok(record)
    }

    #[test]
    fn records_with_a_kept_schema_message_read_back() {
        use datafusion::arrow::array::{DictionaryArray, StringArray};
        use datafusion::arrow::datatypes::Int32Type;
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "s",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("v", DataType::Int64, true),
        ]));
        let encoder = Encoder::default();
        for (words, values) in [(vec!["a", "b", "a"], vec![1, 2, 3]), (vec!["c"], vec![4])] {
            let keys: DictionaryArray<Int32Type> = words.iter().copied().collect();
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(keys), Arc::new(Int64Array::from(values))],
            )
            .unwrap();
            let record = encoder.unsealed(&batch).unwrap();
            let back = decode(&record[HEADER..]).unwrap();
            assert_eq!(back, batch);
            let text = datafusion::arrow::compute::cast(back.column(0), &DataType::Utf8).unwrap();
            let text = text.as_any().downcast_ref::<StringArray>().unwrap();
            let got: Vec<&str> = text.iter().map(Option::unwrap).collect();
            assert_eq!(got, words);
        }
    }

    /// A type the compact layout does not write goes as an IPC stream
    /// (as every record did before it), and reads back the same.
    #[test]
    fn other_types_go_as_ipc_streams() {
        use datafusion::arrow::array::Date32Array;
        let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Date32Array::from(vec![Some(1), None]))],
        )
        .unwrap();
        let record = Encoder::default().unsealed(&batch).unwrap();
        assert_eq!(record[HEADER..HEADER + 4], [0xff; 4]);
        assert_eq!(decode(&record[HEADER..]).unwrap(), batch);
    }

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-wal-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn records_come_back_and_a_torn_tail_is_cut() {
        let d = dir("torn");
        let mut s = Segment::create(&d, 1, 0).unwrap();
        assert_eq!(s.writes, Writes::Direct, "{}", d.display());
        // Records flushed one, then two at once: the second flush writes
        // the first's partly filled block again.
        s.append(&encode(1, &batch(&[1, 10])).unwrap());
        s.take_flush().unwrap().write().unwrap();
        for seq in 2..=3 {
            s.append(&encode(seq, &batch(&[seq as i64, 10])).unwrap());
        }
        s.take_flush().unwrap().write().unwrap();
        assert!(s.take_flush().is_none());
        let whole = s.len;
        // Half of a fourth record, as a crash mid-write leaves it.
        let fourth = encode(4, &batch(&[4])).unwrap();
        s.append(&fourth[..fourth.len() / 2]);
        s.take_flush().unwrap().write().unwrap();
        let r = recover(&d, 1).unwrap();
        let seqs: Vec<u64> = r.records.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(r.records[0].1, batch(&[2, 10]));
        assert_eq!(r.records[1].1, batch(&[3, 10]));
        assert_eq!(r.last_seq, 3);
        assert_eq!(r.torn.len(), 1, "{:?}", r.torn);
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), whole);
        // A flipped byte fails the checksum.
        let mut bytes = std::fs::read(&s.path).unwrap();
        let last = whole as usize - 3;
        bytes[last] ^= 0xff;
        std::fs::write(&s.path, bytes).unwrap();
        let r = recover(&d, 0).unwrap();
        assert_eq!(r.records.len(), 2);
        assert!(r.torn[0].contains("checksum"), "{:?}", r.torn);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_full_disk_fails_the_flush() {
        // /dev/full answers every write with ENOSPC.
        let file = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut s = Segment {
            path: "/dev/full".into(),
            first_seq: 1,
            file: std::sync::Arc::new(file),
            writes: Writes::Buffered,
            len: 0,
            flushed: 0,
            tail: Vec::new(),
            capacity: SEGMENT_BYTES,
        };
        s.append(&encode(1, &batch(&[1])).unwrap());
        let err = s.take_flush().unwrap().write().unwrap_err();
        assert_eq!(err.sqlstate(), "53100", "{err}");
    }

    /// Where O_DIRECT is refused, writes go through the page cache and
    /// read back the same.
    #[test]
    fn buffered_segments_read_back() {
        let d = dir("buffered");
        let mut s = Segment::create_as(&d, 1, 0, Writes::Buffered).unwrap();
        assert_eq!(s.writes, Writes::Buffered);
        for seq in 1..=2 {
            s.append(&encode(seq, &batch(&[seq as i64])).unwrap());
            s.take_flush().unwrap().write().unwrap();
        }
        let r = recover(&d, 0).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[1].1, batch(&[2]));
        assert!(r.torn.is_empty(), "{:?}", r.torn);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn trim_keeps_the_segments_still_needed() {
        let d = dir("trim");
        for first in [1, 5, 9] {
            let mut s = Segment::create(&d, first, 0).unwrap();
            s.append(&encode(first, &batch(&[1])).unwrap());
            s.take_flush().unwrap().write().unwrap();
        }
        assert_eq!(trim(&d, 5).unwrap(), 1);
        assert_eq!(
            segments(&d)
                .unwrap()
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            [5, 9]
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
