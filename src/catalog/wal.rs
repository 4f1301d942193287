//! A table's write-ahead log in use: small writes append a record and wait
//! for it to be durable, sharing one fsync with every writer waiting at
//! the same moment (group commit); readers see the durable records not yet
//! applied next to the Delta snapshot; the applier turns them into Parquet
//! files in one Delta version that carries the last sequence number it
//! applied, so a crash between that commit and the trim applies nothing
//! twice. The files are `storage::wal`'s.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;

use crate::error::Result;
use crate::storage::wal::{self, Segment};

/// One record not yet applied.
#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    /// The log's byte count once this record was written: it is durable
    /// when the synced count reaches this.
    end: u64,
    batch: RecordBatch,
    bytes: usize,
    at: Instant,
}

#[derive(Debug)]
struct Inner {
    segment: Segment,
    next_seq: u64,
    /// Bytes written since the log was opened.
    written: u64,
    pending: VecDeque<Pending>,
}

/// How far behind the table the log is (`sys.wal_tables`).
#[derive(Debug, Clone, Default)]
pub struct Lag {
    pub records: usize,
    pub rows: usize,
    pub bytes: usize,
    /// Age of the oldest record not yet applied.
    pub age_sec: f64,
    pub last_seq: u64,
}

#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    /// The Delta transaction id its applied sequence numbers go under
    /// (one per server, so two servers on one table keep their own).
    app_id: String,
    /// The table's name, for messages.
    table: String,
    /// No more appends: the table was dropped or renamed.
    closed: std::sync::atomic::AtomicBool,
    inner: Mutex<Inner>,
    /// Held by the one writer syncing; the others wait on it and usually
    /// find their record already durable.
    sync: Mutex<()>,
    synced: AtomicU64,
}

/// Records taken for one apply.
pub struct Batch {
    pub last_seq: u64,
    pub batches: Vec<RecordBatch>,
}

impl Wal {
    /// Opens the log in `dir`, keeping the records after `applied` (what
    /// the table's latest Delta version says was applied); a torn tail
    /// is cut off and logged.
    pub fn open(dir: &Path, app_id: &str, applied: u64, table: &str) -> Result<Wal> {
        let recovered = wal::recover(dir, applied)?;
        for torn in &recovered.torn {
            tracing::warn!(table, "write-ahead log: {torn}");
        }
        let now = Instant::now();
        let pending: VecDeque<Pending> = recovered
            .records
            .into_iter()
            .map(|(seq, batch, bytes)| Pending {
                seq,
                end: 0,
                batch,
                bytes,
                at: now,
            })
            .collect();
        if !pending.is_empty() {
            tracing::info!(
                table,
                records = pending.len(),
                "write-ahead log: records to apply after a restart"
            );
        }
        let next_seq = recovered.last_seq + 1;
        let segment = Segment::create(dir, next_seq, 0)?;
        wal::trim(dir, if pending.is_empty() { next_seq } else { 0 })?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            app_id: app_id.to_string(),
            table: table.to_string(),
            closed: Default::default(),
            inner: Mutex::new(Inner {
                segment,
                next_seq,
                written: 0,
                pending,
            }),
            sync: Mutex::new(()),
            synced: AtomicU64::new(0),
        })
    }

    /// Appends `batch` (rows in the table's schema) and returns once it is
    /// durable. Blocking.
    pub fn append(&self, batch: RecordBatch) -> Result<u64> {
        let (seq, end) = {
            let mut inner = self.inner.lock().expect("wal");
            if self.closed.load(Ordering::Acquire) {
                return Err(crate::error::Error::CommitConflict {
                    table: self.table.clone(),
                    version: 0,
                    reason: "the table was dropped or renamed while the row was written; retry"
                        .into(),
                });
            }
            let seq = inner.next_seq;
            let record = wal::encode(seq, &batch)?;
            if !inner.segment.fits(record.len()) {
                // The full segment is made durable whole before the next
                // one takes records, so durability stays one byte count.
                inner.segment.sync()?;
                self.synced.fetch_max(inner.written, Ordering::AcqRel);
                inner.segment = Segment::create(&self.dir, seq, record.len() as u64)?;
            }
            inner.segment.append(&record)?;
            inner.next_seq += 1;
            inner.written += record.len() as u64;
            let end = inner.written;
            inner.pending.push_back(Pending {
                seq,
                end,
                batch,
                bytes: record.len(),
                at: Instant::now(),
            });
            (seq, end)
        };
        if let Err(e) = self.sync_to(end) {
            // Not durable, so never acknowledged: it must not be applied
            // or seen either. The segment may hold it; a restart that finds
            // it whole applies it, as a database may keep a write whose
            // acknowledgement was lost.
            self.inner
                .lock()
                .expect("wal")
                .pending
                .retain(|p| p.seq != seq);
            return Err(e);
        }
        Ok(seq)
    }

    /// Waits until the log's first `end` bytes are durable: one writer
    /// syncs everything written so far, the others find their bytes in it.
    fn sync_to(&self, end: u64) -> Result<()> {
        if self.synced.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        let _turn = self.sync.lock().expect("wal sync");
        if self.synced.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        let (file, target) = {
            let inner = self.inner.lock().expect("wal");
            (inner.segment.handle()?, inner.written)
        };
        file.sync_data()
            .map_err(|e| crate::error::Error::io(&self.dir, e))?;
        self.synced.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// The durable records not yet applied, in order. `f` runs with the
    /// log locked, so that an apply cannot swap the table's version
    /// between what `f` reads and what this returns.
    pub fn visible<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<RecordBatch>) {
        let inner = self.inner.lock().expect("wal");
        let synced = self.synced.load(Ordering::Acquire);
        let out = f();
        let rows = inner
            .pending
            .iter()
            .filter(|p| p.end <= synced)
            .map(|p| p.batch.clone())
            .collect();
        (out, rows)
    }

    pub fn lag(&self) -> Lag {
        let inner = self.inner.lock().expect("wal");
        Lag {
            records: inner.pending.len(),
            rows: inner.pending.iter().map(|p| p.batch.num_rows()).sum(),
            bytes: inner.pending.iter().map(|p| p.bytes).sum(),
            age_sec: inner
                .pending
                .front()
                .map_or(0.0, |p| p.at.elapsed().as_secs_f64()),
            last_seq: inner.next_seq - 1,
        }
    }

    /// Rows waiting to be applied.
    pub fn pending_rows(&self) -> usize {
        let inner = self.inner.lock().expect("wal");
        inner.pending.iter().map(|p| p.batch.num_rows()).sum()
    }

    /// Takes every record for an apply, all made durable first.
    pub fn take(&self) -> Result<Option<Batch>> {
        let _turn = self.sync.lock().expect("wal sync");
        let inner = self.inner.lock().expect("wal");
        let Some(last) = inner.pending.back() else {
            return Ok(None);
        };
        let last_seq = last.seq;
        inner.segment.sync()?;
        self.synced.fetch_max(inner.written, Ordering::AcqRel);
        Ok(Some(Batch {
            last_seq,
            batches: inner.pending.iter().map(|p| p.batch.clone()).collect(),
        }))
    }

    /// Publishes an applied batch: `commit` makes the table's new version
    /// (the batch's rows in Parquet) current; it runs with the log locked,
    /// so readers see the records or the files, never both or neither.
    /// Then the applied records leave memory and their segments the disk.
    pub fn applied<T>(&self, batch: &Batch, commit: impl FnOnce() -> Result<T>) -> Result<T> {
        let out = {
            let mut inner = self.inner.lock().expect("wal");
            let out = commit()?;
            inner.pending.retain(|p| p.seq > batch.last_seq);
            out
        };
        // Segments whose records are all applied go; the one being
        // written stays (a restart skips its applied records).
        wal::trim(&self.dir, batch.last_seq + 1)?;
        Ok(out)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Refuses appends from now on (the table is being dropped or
    /// renamed); a statement that finds it closed fails and may retry.
    pub fn close(&self) {
        let _inner = self.inner.lock().expect("wal");
        self.closed.store(true, Ordering::Release);
    }

    /// Takes appends again (a rename that failed).
    pub fn reopen(&self) {
        self.closed.store(false, Ordering::Release);
    }
}
