//! A table's write-ahead log in use: small writes append a record and wait
//! for it to be durable, sharing one durable write with every writer
//! waiting at the same moment (group commit); readers see the durable records not yet
//! applied next to the Delta snapshot; the applier turns them into Parquet
//! files in one Delta version that carries the last sequence number it
//! applied, so a crash between that commit and the trim applies nothing
//! twice. The files are `storage::wal`'s.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;

use crate::error::{Error, Result};
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
    /// Full segments whose last records the next flush still writes.
    retired: Vec<Segment>,
    next_seq: u64,
    /// Bytes written since the log was opened.
    written: u64,
    pending: VecDeque<Pending>,
    /// Rows of `pending`, kept as records come and go (every INSERT asks).
    pending_rows: usize,
}

impl Inner {
    /// Keeps the pending records `keep` says to.
    fn retain(&mut self, keep: impl Fn(&Pending) -> bool) {
        self.pending.retain(|p| keep(p));
        self.pending_rows = self.pending.iter().map(|p| p.batch.num_rows()).sum();
    }
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
    encoder: wal::Encoder,
    inner: Mutex<Inner>,
    /// Held by the one writer syncing; the others wait on it and usually
    /// find their record already durable.
    sync: Mutex<()>,
    synced: AtomicU64,
    /// What is durable, for statements waiting on it.
    durable: tokio::sync::watch::Sender<Durable>,
}

/// Why no more of the log will be made durable; its changes also wake
/// statements waiting for the sync turn (the durable count is `synced`).
#[derive(Debug, Clone, Default)]
struct Durable {
    failed: Option<Arc<String>>,
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
            encoder: wal::Encoder::default(),
            inner: Mutex::new(Inner {
                segment,
                retired: Vec::new(),
                next_seq,
                written: 0,
                pending_rows: pending.iter().map(|p| p.batch.num_rows()).sum(),
                pending,
            }),
            sync: Mutex::new(()),
            synced: AtomicU64::new(0),
            durable: tokio::sync::watch::Sender::new(Durable::default()),
        })
    }

    /// Appends `batch` (rows in the table's schema) and returns once it is
    /// durable. The record is appended in memory at once; then the
    /// statement either finds it durable, or takes the log's sync turn (one
    /// durable write of every record appended so far: group commit), or
    /// waits for the write in progress to end and looks again.
    pub async fn append(&self, batch: RecordBatch) -> Result<u64> {
        let (seq, end) = self.write(batch)?;
        let mut durable = self.durable.subscribe();
        loop {
            // Seen before looking, so a notification after this wakes us.
            let failed = durable.borrow_and_update().failed.clone();
            if self.synced.load(Ordering::Acquire) >= end {
                return Ok(seq);
            }
            if let Some(why) = failed {
                return Err(self.unacknowledged(seq, &why));
            }
            if let Ok(turn) = self.sync.try_lock() {
                // This statement's thread writes for everyone waiting: the
                // write is short and one at a time, so it runs in place.
                let synced = self.sync_written();
                drop(turn);
                match synced {
                    Ok(upto) => self.mark_synced(upto),
                    Err(e) => return Err(self.unacknowledged(seq, &e.to_string())),
                }
                continue;
            }
            // The turn is taken: its holder notifies after it lets go, so
            // this wakes when that write has ended.
            if durable.changed().await.is_err() {
                return Err(self.unacknowledged(seq, "the log was closed"));
            }
        }
    }

    /// A record that was not made durable: it must not be applied or seen
    /// either. The segment may hold it; a restart that finds it whole
    /// applies it, as a database may keep a write whose acknowledgement was
    /// lost.
    fn unacknowledged(&self, seq: u64, why: &str) -> Error {
        self.inner.lock().expect("wal").retain(|p| p.seq != seq);
        Error::Io {
            path: self.dir.display().to_string(),
            source: std::io::Error::other(why.to_string()),
        }
    }

    /// Writes one record (not yet durable); its sequence number and the
    /// byte count that makes it durable.
    fn write(&self, batch: RecordBatch) -> Result<(u64, u64)> {
        // Encoded before the lock: writers at the same moment encode side
        // by side and hold the log only to number and append.
        let mut record = self.encoder.unsealed(&batch)?;
        let mut inner = self.inner.lock().expect("wal");
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::CommitConflict {
                table: self.table.clone(),
                version: 0,
                reason: "the table was dropped or renamed while the row was written; retry".into(),
            });
        }
        if let Some(why) = &self.durable.borrow().failed {
            return Err(Error::Io {
                path: self.dir.display().to_string(),
                source: std::io::Error::other(format!("the write-ahead log failed earlier: {why}")),
            });
        }
        let seq = inner.next_seq;
        wal::seal(seq, &mut record)?;
        if !inner.segment.fits(record.len()) {
            // The next flush writes the full segment's last records before
            // the new one's, so durability stays one byte count.
            let next = Segment::create(&self.dir, seq, record.len() as u64)?;
            let full = std::mem::replace(&mut inner.segment, next);
            inner.retired.push(full);
        }
        inner.segment.append(&record);
        inner.next_seq += 1;
        inner.written += record.len() as u64;
        let end = inner.written;
        inner.pending_rows += batch.num_rows();
        inner.pending.push_back(Pending {
            seq,
            end,
            batch,
            bytes: record.len(),
            at: Instant::now(),
        });
        Ok((seq, end))
    }

    /// Records that `upto` bytes are durable and wakes every waiter (also
    /// when nothing moved: a waiter may be waiting for the turn).
    fn mark_synced(&self, upto: u64) {
        self.synced.fetch_max(upto, Ordering::AcqRel);
        self.durable.send_modify(|_| {});
    }

    /// Writes every record appended so far and makes it durable; the
    /// caller holds the sync turn, so flushes reach the disk in order.
    /// Returns the byte count now durable. A failure is the log's for good:
    /// the bytes it was writing are no longer in memory to write again.
    fn sync_written(&self) -> Result<u64> {
        let (flushes, target) = {
            let mut inner = self.inner.lock().expect("wal");
            let mut flushes: Vec<_> = std::mem::take(&mut inner.retired)
                .iter_mut()
                .filter_map(Segment::take_flush)
                .collect();
            flushes.extend(inner.segment.take_flush());
            (flushes, inner.written)
        };
        for flush in flushes {
            if let Err(e) = flush.write() {
                let why = Arc::new(e.to_string());
                self.durable
                    .send_modify(|s| s.failed = Some(Arc::clone(&why)));
                return Err(e);
            }
        }
        self.synced.fetch_max(target, Ordering::AcqRel);
        Ok(target)
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
            rows: inner.pending_rows,
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
        inner.pending_rows
    }

    /// Takes the records for an apply: every one written so far, made
    /// durable first.
    pub fn take(&self) -> Result<Option<Batch>> {
        let taken = {
            let _turn = self.sync.lock().expect("wal sync");
            self.sync_written().map(|synced| {
                let inner = self.inner.lock().expect("wal");
                let durable: Vec<&Pending> = inner
                    .pending
                    .iter()
                    .take_while(|p| p.end <= synced)
                    .collect();
                durable.last().map(|last| Batch {
                    last_seq: last.seq,
                    batches: durable.iter().map(|p| p.batch.clone()).collect(),
                })
            })
        };
        // After the turn is let go: statements waiting for it look again.
        self.mark_synced(0);
        taken
    }

    /// Publishes an applied batch: `commit` makes the table's new version
    /// (the batch's rows in Parquet) current; it runs with the log locked,
    /// so readers see the records or the files, never both or neither.
    /// Then the applied records leave memory and their segments the disk.
    pub fn applied<T>(&self, batch: &Batch, commit: impl FnOnce() -> Result<T>) -> Result<T> {
        let out = {
            let mut inner = self.inner.lock().expect("wal");
            let out = commit()?;
            inner.retain(|p| p.seq > batch.last_seq);
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
