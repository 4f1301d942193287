//! One table: its definition and current version in memory, and the write
//! paths (append, truncate, rewrite, compaction) that each end in one
//! Delta commit.
//!
//! Readers take a snapshot (`Arc<Manifest>`) and are never blocked; writers
//! of one table in this process are serialised by an async mutex, so each
//! commit extends the version before it. A version another server committed
//! first is caught up with (`refresh`) or rebased onto (`publish`).

use std::sync::{Arc, RwLock};

use datafusion::arrow::array::RecordBatch;

use super::meta::TableMeta;
use super::reaper::{Doomed, Reaper};
use super::wal::Wal;
use crate::error::{Error, Result};
use crate::storage::delta::Load;
use crate::storage::{self, DataFile, Layout, Manifest, Retention, TableLoc};

/// The catalog's remover of retired files and the retention it keeps.
#[derive(Debug, Clone)]
pub struct Vacuum {
    pub reaper: Arc<Reaper>,
    pub retention: Retention,
}

#[derive(Debug)]
pub struct Table {
    pub schema_name: String,
    pub name: String,
    /// Where the files are; `loc.dir` is where new files are written.
    pub loc: TableLoc,
    state: RwLock<TableState>,
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Removes the files a commit no longer names, after their retention.
    vacuum: Vacuum,
    /// Every manifest published that a reader may still hold.
    published: std::sync::Mutex<Vec<std::sync::Weak<Manifest>>>,
    /// The write-ahead log small writes go to, when the catalog keeps one.
    wal: std::sync::OnceLock<Arc<Wal>>,
    /// When rows were last added: compaction merges in tiers while they
    /// keep coming and whole partitions once they stop.
    appended: std::sync::Mutex<std::time::Instant>,
}

#[derive(Debug, Clone)]
pub struct TableState {
    /// Shared, not copied: a statement reads it without allocating.
    pub meta: Arc<TableMeta>,
    /// The definition's file layout (its Arrow schema built once per
    /// definition, not per statement).
    pub layout: Arc<Layout>,
    pub manifest: Arc<Manifest>,
    /// Why the table cannot be read, when its files failed the start-up check.
    pub broken: Option<Broken>,
}

/// Why a table is unreadable (a clonable copy of the start-up error).
#[derive(Debug, Clone)]
pub struct Broken {
    pub file: String,
    pub reason: String,
}

impl Table {
    pub fn new(
        schema_name: &str,
        name: &str,
        loc: TableLoc,
        meta: TableMeta,
        manifest: Manifest,
        broken: Option<Broken>,
        vacuum: Vacuum,
    ) -> Table {
        let manifest = Arc::new(manifest);
        Table {
            published: std::sync::Mutex::new(vec![Arc::downgrade(&manifest)]),
            schema_name: schema_name.to_string(),
            name: name.to_string(),
            loc,
            state: RwLock::new(TableState {
                layout: Arc::new(meta.layout()),
                meta: Arc::new(meta),
                manifest,
                broken,
            }),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            vacuum,
            wal: std::sync::OnceLock::new(),
            appended: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// Gives the table its write-ahead log (once, when it is opened).
    pub fn attach_wal(&self, wal: Arc<Wal>) {
        let _ = self.wal.set(wal);
    }

    pub fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.get()
    }

    /// The table's current version and the rows of its write-ahead log
    /// not yet applied to it, taken together: an apply swaps both at once.
    pub fn read_view(&self) -> Result<(TableState, Vec<RecordBatch>)> {
        let Some(wal) = self.wal() else {
            return Ok((self.snapshot(), Vec::new()));
        };
        let (state, rows) = wal.visible(|| self.snapshot());
        // Records written before an ALTER TABLE carry the old columns.
        let schema = state.meta.arrow_schema();
        let rows = rows
            .iter()
            .map(|b| storage::conform_logged(b, &schema))
            .collect::<Result<Vec<_>>>()?;
        Ok((state, rows))
    }

    /// Applies the write-ahead log's records: their rows become sorted
    /// Parquet files in one Delta version that records the last sequence
    /// number applied. Returns the rows applied. Blocking.
    pub fn apply_wal_blocking(self: &Arc<Self>) -> Result<u64> {
        let Some(wal) = self.wal() else {
            return Ok(0);
        };
        let mut txn = self.begin_append_blocking()?;
        let Some(batch) = wal.take()? else {
            return Ok(0);
        };
        // Records written before an ALTER TABLE carry the old columns.
        let schema = self.meta().arrow_schema();
        let rows = batch
            .batches
            .iter()
            .map(|b| storage::conform_logged(b, &schema))
            .collect::<Result<Vec<_>>>()?;
        txn.write(&rows)?;
        txn.wal_applied = Some((wal.app_id().to_string(), batch.last_seq));
        wal.applied(&batch, || txn.commit())
    }

    /// Hands the files a new manifest no longer names to the reaper: they
    /// go once no reader holds an older manifest (one that may name them).
    fn retire(&self, files: &[DataFile]) {
        let current = self.snapshot().manifest;
        let readers: Vec<_> = self
            .readers()
            .into_iter()
            .filter(|w| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&current)))
            .collect();
        let doomed = match &self.loc.remote {
            Some(r) => vec![Doomed::Objects(
                Arc::clone(&r.bucket),
                files.iter().map(|f| r.key(&f.path)).collect(),
            )],
            None => files
                .iter()
                .map(|f| Doomed::Path(self.loc.dir.join(&f.path)))
                .collect(),
        };
        self.vacuum
            .reaper
            .retire_after(doomed, readers, self.vacuum.retention.files);
    }

    /// Every published manifest a reader may still hold (DROP TABLE waits
    /// for them all before the directory goes).
    pub fn readers(&self) -> Vec<std::sync::Weak<Manifest>> {
        self.published.lock().expect("published manifests").clone()
    }

    /// The fully qualified name as users see it (`weather`, `other.t`).
    pub fn display_name(&self) -> String {
        if self.schema_name == "public" {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema_name, self.name)
        }
    }

    pub fn snapshot(&self) -> TableState {
        self.state.read().expect("table state lock").clone()
    }

    /// Catches up with versions another writer (a second server on the
    /// same table) committed: one `stat` (or HEAD) when there are none.
    /// Skipped while a writer of this process holds the table: its commit
    /// catches up itself.
    pub fn refresh(&self) -> Result<()> {
        let Ok(_guard) = self.write_lock.try_lock() else {
            return Ok(());
        };
        self.catch_up()
    }

    /// [`Table::refresh`] for a caller that holds the write lock.
    fn catch_up(&self) -> Result<()> {
        let current = self.snapshot();
        if current.broken.is_some()
            || !storage::delta::has_version(&self.loc, current.manifest.version + 1)?
        {
            return Ok(());
        }
        let latest = Manifest::load(&self.loc)?;
        let meta = self.definition_of(&latest)?;
        self.show(meta, latest);
        Ok(())
    }

    fn definition_of(&self, manifest: &Manifest) -> Result<TableMeta> {
        let log = self.loc.file_display(storage::location::LOG_DIR);
        TableMeta::from_definition(&manifest.definition, &self.display_name(), &log)
    }

    /// A copy of the current definition, to change.
    pub fn meta(&self) -> TableMeta {
        (*self.shared_meta()).clone()
    }

    /// The current definition, shared.
    pub fn shared_meta(&self) -> Arc<TableMeta> {
        Arc::clone(&self.state.read().expect("table state lock").meta)
    }

    /// The current definition and its file layout, taken together.
    pub fn definition(&self) -> (Arc<TableMeta>, Arc<Layout>) {
        let state = self.state.read().expect("table state lock");
        (Arc::clone(&state.meta), Arc::clone(&state.layout))
    }

    /// Whether the table's definition is `meta` (compared in place, not
    /// copied: a kept plan asks this on every run).
    pub fn has_meta(&self, meta: &TableMeta) -> bool {
        let state = self.state.read().expect("table state lock");
        // The same shared definition is the common case: no field compared.
        std::ptr::eq(&*state.meta, meta) || *state.meta == *meta
    }

    /// Whether the table's latest version records `app_id` as loaded
    /// since the last TRUNCATE (the load ledger: a TRUNCATE starts a new
    /// epoch, so files loaded before it may be loaded again).
    pub fn loaded(&self, app_id: &str) -> Result<bool> {
        let epoch = self.ledger_epoch()?;
        Ok(storage::delta::app_version(&self.loc, app_id)?.is_some_and(|v| v >= epoch))
    }

    /// The number of TRUNCATEs the ledger has seen.
    fn ledger_epoch(&self) -> Result<i64> {
        Ok(storage::delta::app_version(&self.loc, LEDGER_EPOCH)?.unwrap_or(0))
    }

    /// Fails when the table's files could not be read at start-up.
    pub fn check_readable(&self) -> Result<()> {
        match &self.snapshot().broken {
            Some(b) => Err(Error::Corrupt {
                table: self.display_name(),
                file: b.file.clone(),
                reason: b.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Starts an append. The returned transaction holds the table's write
    /// lock until it commits or is dropped.
    pub async fn begin_append(self: &Arc<Self>) -> Result<AppendTxn> {
        self.check_readable()?;
        let guard = Arc::clone(&self.write_lock).lock_owned().await;
        self.catch_up()?;
        Ok(self.txn(guard))
    }

    /// [`Table::begin_append`] for threads outside the async runtime (the
    /// importer).
    pub fn begin_append_blocking(self: &Arc<Self>) -> Result<AppendTxn> {
        self.check_readable()?;
        let guard = Arc::clone(&self.write_lock).blocking_lock_owned();
        self.catch_up()?;
        Ok(self.txn(guard))
    }

    /// A transaction holding the write lock `guard`.
    fn txn(self: &Arc<Self>, guard: tokio::sync::OwnedMutexGuard<()>) -> AppendTxn {
        AppendTxn {
            table: Arc::clone(self),
            _guard: guard,
            version: self.snapshot().manifest.version + 1,
            written: Vec::new(),
            flushes: 0,
            committed: false,
            label: String::new(),
            loads: Vec::new(),
            wal_applied: None,
        }
    }

    /// Replaces the table's content with nothing (TRUNCATE), and starts a
    /// new epoch of the load ledger.
    pub async fn truncate(self: &Arc<Self>) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        self.catch_up()?;
        // Rows of the write-ahead log are discarded with the files, in the
        // same version, which records them as applied.
        let discarded = match self.wal() {
            Some(wal) => wal.take()?.map(|b| (Arc::clone(wal), b)),
            None => None,
        };
        let old = self.snapshot();
        let mut manifest = (*old.manifest).clone();
        manifest.version += 1;
        manifest.files.clear();
        let mut loads = vec![Load {
            app_id: LEDGER_EPOCH.into(),
            version: self.ledger_epoch()? + 1,
        }];
        match &discarded {
            Some((wal, batch)) => {
                loads.push(Load {
                    app_id: wal.app_id().to_string(),
                    version: batch.last_seq as i64,
                });
                wal.applied(batch, || {
                    self.publish((*old.meta).clone(), manifest, &loads)
                })?;
            }
            None => self.publish((*old.meta).clone(), manifest, &loads)?,
        }
        self.retire(&old.manifest.files);
        Ok(())
    }

    /// Changes the table in one version (ALTER TABLE, UPDATE, DELETE,
    /// DROP PARTITION): `meta` becomes its definition; of the current
    /// files, `select` names those removed whole and those whose rows go
    /// through `rows`. A file whose rows `rows` changes none of (it
    /// reports 0 affected) is kept as it is; the others are written anew
    /// under `meta`, and every new file is durable before the version that
    /// names it, so a crash leaves the version before or the one after.
    /// Returns the rows affected (those of dropped files included).
    pub async fn change(
        self: &Arc<Self>,
        meta: TableMeta,
        select: impl FnOnce(&[DataFile]) -> Result<Selection> + Send + 'static,
        rows: RowMap,
    ) -> Result<u64> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.change_blocking(meta, select, rows))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// [`Table::change`] for threads outside the async runtime.
    pub fn change_blocking(
        self: &Arc<Self>,
        meta: TableMeta,
        select: impl FnOnce(&[DataFile]) -> Result<Selection>,
        rows: RowMap,
    ) -> Result<u64> {
        let _guard = Arc::clone(&self.write_lock).blocking_lock_owned();
        self.check_readable()?;
        self.catch_up()?;
        let old = self.snapshot();
        let selection = select(&old.manifest.files)?;
        let read = old.meta.layout();
        let layout = meta.layout();
        let version = old.manifest.version + 1;
        let mut affected: u64 = selection.dropped.iter().map(|f| f.rows).sum();
        let (mut written, mut replaced) = (Vec::new(), Vec::new());
        // A file is read batch by batch, twice when it changes: once to
        // learn whether the map changes a row of it (most files of a
        // DELETE … WHERE are left as they are), then to write the rows it
        // keeps as they stream. The map keeps rows in order and in their
        // partition, so the new file is sorted as the old one was.
        let result = (|| {
            for (i, f) in selection.rewritten.iter().enumerate() {
                let mut n = 0;
                storage::files::each_batch(&self.loc, f, &read.schema, |b| {
                    n += rows(b)?.1;
                    Ok(())
                })?;
                if n == 0 {
                    continue;
                }
                affected += n;
                let tag = file_tag(version, &format!("w{i}"));
                let mut out =
                    storage::files::StreamedFile::new(&self.loc.dir, &f.partition, &tag, &layout);
                storage::files::each_batch(&self.loc, f, &read.schema, |b| out.write(&rows(b)?.0))?;
                written.extend(out.finish()?);
                replaced.push(f.clone());
            }
            if !written.is_empty() {
                storage::sync_tree(&self.loc.dir)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.remove_unnamed(&written);
            return Err(e);
        }
        let gone: Vec<DataFile> = selection.dropped.into_iter().chain(replaced).collect();
        if gone.is_empty() && written.is_empty() && meta == *old.meta {
            return Ok(affected);
        }
        let mut manifest = (*old.manifest).clone();
        manifest.version += 1;
        manifest
            .files
            .retain(|f| !gone.iter().any(|g| g.path == f.path));
        manifest.files.extend(written.iter().cloned());
        manifest.files.sort_by(|a, b| a.partition.cmp(&b.partition));
        manifest.definition =
            serde_json::to_value(&meta).map_err(|e| Error::Internal(e.to_string()))?;
        if let Err(e) = self.publish(meta, manifest, &[]) {
            self.remove_unnamed(&written);
            return Err(e);
        }
        self.retire(&gone);
        Ok(affected)
    }

    /// Drops the partitions the table's TTL has aged out (their whole
    /// time range older than the newest row by more than the TTL), in one
    /// version; returns how many files went. Blocking.
    pub fn expire_blocking(self: &Arc<Self>) -> Result<usize> {
        let state = self.snapshot();
        let Some(ttl) = state.meta.ttl else {
            return Ok(0);
        };
        if state.broken.is_some() {
            return Ok(0);
        }
        let unit = state.meta.partition_by;
        let expired = |files: &[DataFile]| -> Vec<DataFile> {
            let Some(newest) = files.iter().filter_map(|f| f.max_ts).max() else {
                return Vec::new();
            };
            let cutoff = ttl.cutoff(newest);
            // A partition ends where the next one starts.
            files
                .iter()
                .filter(|f| f.min_ts.is_some_and(|t| unit.next(unit.floor(t)) <= cutoff))
                .cloned()
                .collect()
        };
        if expired(&state.manifest.files).is_empty() {
            return Ok(0);
        }
        let dropped = std::sync::atomic::AtomicUsize::new(0);
        self.change_blocking(
            (*state.meta).clone(),
            |files| {
                let gone = expired(files);
                dropped.store(gone.len(), std::sync::atomic::Ordering::Relaxed);
                Ok(Selection {
                    dropped: gone,
                    rewritten: Vec::new(),
                })
            },
            Box::new(|b| Ok((b, 0))),
        )?;
        Ok(dropped.into_inner())
    }

    /// Removes files this process wrote that no version names.
    fn remove_unnamed(&self, files: &[DataFile]) {
        for f in files {
            let _ = std::fs::remove_file(self.loc.dir.join(&f.path));
        }
    }

    /// Merges small files of one partition into one sorted file, if a
    /// partition needs it (see [`CompactionPolicy`]); returns how many
    /// files were merged (0: nothing to do, or a writer holds the table,
    /// in which case the next round tries again). Blocking.
    ///
    /// The merged file is written durably before the manifest that names
    /// it replaces the old one in one atomic swap, so readers see either
    /// the old files or the new one, never both or neither; a crash before
    /// the swap leaves an orphan that start-up removes, after it leaves
    /// retired files that start-up removes too.
    pub fn compact_blocking(self: &Arc<Self>, policy: &CompactionPolicy) -> Result<usize> {
        if self.check_readable().is_err() {
            return Ok(0);
        }
        let Ok(_guard) = Arc::clone(&self.write_lock).try_lock_owned() else {
            return Ok(0);
        };
        self.catch_up()?;
        let old = self.snapshot();
        let settled = self.appended.lock().expect("append time").elapsed() >= policy.settle;
        let Some(chosen) = policy.choose(&old.manifest.files, settled) else {
            return Ok(0);
        };
        let layout = old.meta.layout();
        let batches = storage::read_files(&self.loc, &chosen, &layout.schema)?;
        let version = old.manifest.version + 1;
        let merged =
            storage::write_rows(&self.loc.dir, &layout, &batches, &file_tag(version, "c"))?;
        drop(batches);
        let written: Vec<std::path::PathBuf> =
            merged.iter().map(|f| self.loc.dir.join(&f.path)).collect();
        let mut manifest = (*old.manifest).clone();
        manifest.version = version;
        manifest
            .files
            .retain(|f| !chosen.iter().any(|c| c.path == f.path));
        manifest.files.extend(merged);
        // Files in partition order, as appends leave them.
        manifest.files.sort_by(|a, b| a.partition.cmp(&b.partition));
        if let Err(e) = self.publish((*old.meta).clone(), manifest, &[]) {
            // Not committed: the merged file is named by nothing.
            for p in written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        self.retire(&chosen);
        Ok(chosen.len())
    }

    /// Commits `manifest` as the next Delta version, then makes it the one
    /// readers see. The caller holds the write lock, so the current
    /// version is the one it extends.
    ///
    /// When another writer committed that version first, Delta's rule
    /// decides: a change that only adds files (INSERT, COPY, a bulk job)
    /// does not conflict and is committed again after the other writer's
    /// versions; one that removes files or changes the definition
    /// (TRUNCATE, compaction, RENAME COLUMN) read a version that is no
    /// longer the latest and fails.
    fn publish(&self, meta: TableMeta, manifest: Manifest, loads: &[Load]) -> Result<()> {
        let current = self.snapshot().manifest;
        // What this change is, against the version it read.
        let added = manifest.added_since(&current);
        let append_only = manifest.removed_since(&current).is_empty()
            && manifest.definition == current.definition;
        // On object storage the new files go up before any version names
        // them; if no version ever does, they are removed again.
        let uploaded: Vec<&str> = added.iter().map(|f| f.path.as_str()).collect();
        self.loc.upload(&uploaded)?;
        let result = self.commit_rebasing(meta, manifest, &current, &added, append_only, loads);
        if result.is_ok() && append_only && !added.is_empty() {
            *self.appended.lock().expect("append time") = std::time::Instant::now();
        }
        match (&result, &self.loc.remote) {
            (Ok(()), _) => self.loc.drop_local_copies(&uploaded),
            (Err(_), Some(r)) => {
                let _ = r
                    .bucket
                    .delete(uploaded.iter().map(|rel| r.key(rel)).collect());
            }
            (Err(_), None) => {}
        }
        result
    }

    /// [`Table::publish`]'s commit, rebased onto other writers' versions
    /// while the change only adds files.
    fn commit_rebasing(
        &self,
        meta: TableMeta,
        mut manifest: Manifest,
        current: &Arc<Manifest>,
        added: &[DataFile],
        append_only: bool,
        loads: &[Load],
    ) -> Result<()> {
        let mut from = Arc::clone(current);
        let started = std::time::Instant::now();
        let mut attempt = 0;
        while attempt == 0 || started.elapsed() < REBASE_PATIENCE {
            attempt += 1;
            match manifest.commit(
                &self.loc,
                &from,
                &meta.layout(),
                self.vacuum.retention.log,
                loads,
            ) {
                Ok(()) => {
                    self.show(meta, manifest);
                    return Ok(());
                }
                Err(Error::CommitConflict { version, .. }) => {
                    if !append_only {
                        return Err(Error::CommitConflict {
                            table: self.display_name(),
                            version,
                            reason: "this change read an earlier version and conflicts with it; run it again".into(),
                        });
                    }
                    backoff(attempt - 1);
                    let latest = Manifest::load(&self.loc)?;
                    if latest.definition != current.definition {
                        // Our files follow the definition we read.
                        return Err(Error::CommitConflict {
                            table: self.display_name(),
                            version,
                            reason: "another writer changed the table's definition".into(),
                        });
                    }
                    let mut next = latest.clone();
                    next.files.extend(added.iter().cloned());
                    manifest = next;
                    from = Arc::new(latest);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::CommitConflict {
            table: self.display_name(),
            version: from.version + 1,
            reason: format!(
                "other writers committed first for {} s ({attempt} tries)",
                REBASE_PATIENCE.as_secs()
            ),
        })
    }

    /// Makes `manifest` (committed) the version readers see.
    fn show(&self, meta: TableMeta, manifest: Manifest) {
        let manifest = Arc::new(manifest);
        {
            let mut published = self.published.lock().expect("published manifests");
            published.retain(|w| w.strong_count() > 0);
            published.push(Arc::downgrade(&manifest));
        }
        let layout = Arc::new(meta.layout());
        let mut state = self.state.write().expect("table state lock");
        state.meta = Arc::new(meta);
        state.layout = layout;
        state.manifest = manifest;
    }
}

/// What a [`Table::change`] does to the current files.
#[derive(Debug, Default)]
pub struct Selection {
    /// Removed whole (DROP PARTITION).
    pub dropped: Vec<DataFile>,
    /// Read and written again through the change's row map.
    pub rewritten: Vec<DataFile>,
}

impl Selection {
    /// Every file goes through the row map (DROP COLUMN, UPDATE, …).
    pub fn rewrite_all(files: &[DataFile]) -> Result<Selection> {
        Ok(Selection {
            dropped: Vec::new(),
            rewritten: files.to_vec(),
        })
    }
}

/// A change's map of one batch of a file's rows (in the old definition's
/// schema) to the rows it keeps (in the new one's), with the count of rows
/// it changed or removed.
pub type RowMap = Box<dyn Fn(RecordBatch) -> Result<(RecordBatch, u64)> + Send + Sync>;

/// The `txn` application id whose version counts the TRUNCATEs (the
/// load ledger's epoch).
const LEDGER_EPOCH: &str = "sluice-ledger-epoch";

/// How long an append keeps committing again after other writers'
/// versions before it gives up. A bound on time, not on tries: a writer
/// that reloads the log loses races to one committing back to back, and
/// under load a fixed count of 40 tries was lost in CI.
const REBASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits a random 0 to 2^attempt ms (at most 64) before the next try: a
/// writer that reloads the log while another commits back to back would
/// otherwise lose every race.
fn backoff(attempt: u32) {
    let cap = 1u64 << attempt.min(6);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (cap + 1);
    std::thread::sleep(std::time::Duration::from_millis(jitter));
}

/// When a partition's files are merged.
///
/// While rows keep arriving (a stream of small writes applied from the
/// write-ahead log every half second), merging every small file of a
/// partition each time would rewrite the partition's growing file once
/// per compaction: quadratic work. So until the table has had no new rows
/// for `settle`, files are merged in tiers: the smallest ones, each at
/// most twice the size of those before it together, so a byte is rewritten
/// about log2(n) times and a partition keeps a few files of growing sizes.
/// Once the table settles, a partition's small files are merged whole.
#[derive(Debug, Clone)]
pub struct CompactionPolicy {
    /// A partition with more files than this is compacted.
    pub max_files: usize,
    /// Files smaller than this are merged whenever a partition has two.
    pub small_file: u64,
    /// At most this many bytes of files are merged at once (memory).
    pub max_input: u64,
    /// How long after its last new rows a table counts as settled.
    pub settle: std::time::Duration,
}

impl CompactionPolicy {
    /// The files to merge: in the first partition that needs it, its small
    /// files (all of them once `settled`, else the smallest tier), or, with
    /// more than `max_files` files, its smallest files; at most `max_input`
    /// bytes, at least two files.
    pub fn choose(&self, files: &[DataFile], settled: bool) -> Option<Vec<DataFile>> {
        let mut by_partition: std::collections::BTreeMap<&str, Vec<&DataFile>> =
            std::collections::BTreeMap::new();
        for f in files {
            by_partition.entry(&f.partition).or_default().push(f);
        }
        for (_, mut fs) in by_partition {
            fs.sort_by_key(|f| f.size);
            let crowded = fs.len() > self.max_files;
            let mut chosen: Vec<DataFile> = Vec::new();
            let mut bytes = 0;
            for f in fs {
                let small = f.size < self.small_file;
                if !small && !crowded {
                    break;
                }
                if !chosen.is_empty() {
                    let tier = settled || crowded || f.size <= 2 * bytes;
                    if !tier || (chosen.len() >= 2 && bytes + f.size > self.max_input) {
                        break;
                    }
                }
                bytes += f.size;
                chosen.push(f.clone());
            }
            if chosen.len() >= 2 {
                return Some(chosen);
            }
        }
        None
    }
}

/// An append in progress: files written so far are invisible until
/// [`AppendTxn::commit`]; dropping the transaction removes them.
pub struct AppendTxn {
    table: Arc<Table>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    version: u64,
    written: Vec<DataFile>,
    flushes: u32,
    committed: bool,
    /// Put in every file name, so a committed writer can be recognised.
    label: String,
    /// The source files this commit records as loaded (the load ledger).
    loads: Vec<Load>,
    /// The write-ahead log (its Delta app id) and the last sequence number
    /// this commit applies from it.
    pub wal_applied: Option<(String, u64)>,
}

impl AppendTxn {
    /// Names this transaction's files with `label` (letters and digits).
    pub fn set_label(&mut self, label: &str) {
        self.label = label.chars().filter(char::is_ascii_alphanumeric).collect();
    }

    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.written.iter().map(|f| f.rows).sum()
    }

    /// Writes `batches` (in the table's schema) as new files. Blocking: call
    /// from a blocking context.
    pub fn write(&mut self, batches: &[RecordBatch]) -> Result<()> {
        let layout = self.table.meta().layout();
        let tag = file_tag(self.version, &format!("{}{}", self.label, self.flushes));
        self.flushes += 1;
        let files = storage::write_rows(&self.table.loc.dir, &layout, batches, &tag)?;
        self.written.extend(files);
        Ok(())
    }

    /// Records source files as loaded by this commit.
    pub fn record_loads(&mut self, loads: Vec<Load>) {
        self.loads = loads;
    }

    /// Adopts files written elsewhere below the table directory (the
    /// importer's); like written ones, they are removed unless committed.
    pub fn add_files(&mut self, files: Vec<DataFile>) {
        self.written.extend(files);
    }

    /// Makes every written row visible at once. Returns the row count.
    pub fn commit(mut self) -> Result<u64> {
        let rows = self.rows();
        let old = self.table.snapshot();
        let replaced = if old.meta.dedup_keys.is_empty() {
            Vec::new()
        } else {
            self.deduplicate(&old)?
        };
        let mut manifest = (*old.manifest).clone();
        manifest.version = self.version;
        manifest
            .files
            .retain(|f| !replaced.iter().any(|r| r.path == f.path));
        manifest.files.extend(self.written.iter().cloned());
        // Each file is recorded with the ledger's current epoch.
        let epoch = if self.loads.is_empty() {
            0
        } else {
            self.table.ledger_epoch()?
        };
        let mut loads: Vec<Load> = self
            .loads
            .iter()
            .map(|l| Load {
                app_id: l.app_id.clone(),
                version: epoch,
            })
            .collect();
        if let Some((app_id, seq)) = &self.wal_applied {
            loads.push(Load {
                app_id: app_id.clone(),
                version: *seq as i64,
            });
        }
        self.table.publish((*old.meta).clone(), manifest, &loads)?;
        self.committed = true;
        self.table.retire(&replaced);
        Ok(rows)
    }

    /// Merges each partition this transaction wrote to with the rows the
    /// table holds there, keeping the last row of each dedup key; the
    /// merged files replace the written ones. Returns the table's files
    /// the merge replaces. A partition is read whole (its size bounds the
    /// memory this takes).
    fn deduplicate(&mut self, old: &TableState) -> Result<Vec<DataFile>> {
        let layout = old.meta.layout();
        let keys: Vec<usize> = old
            .meta
            .dedup_keys
            .iter()
            .filter_map(|k| old.meta.column_index(k))
            .collect();
        let mut partitions: Vec<String> =
            self.written.iter().map(|f| f.partition.clone()).collect();
        partitions.sort();
        partitions.dedup();
        // New files are local until committed, on object storage too.
        let local = TableLoc::local(self.table.loc.dir.clone());
        let (mut merged, mut replaced) = (Vec::new(), Vec::new());
        let result = (|| {
            for (i, p) in partitions.iter().enumerate() {
                let stored: Vec<DataFile> = old
                    .manifest
                    .files
                    .iter()
                    .filter(|f| &f.partition == p)
                    .cloned()
                    .collect();
                let new: Vec<DataFile> = self
                    .written
                    .iter()
                    .filter(|f| &f.partition == p)
                    .cloned()
                    .collect();
                let mut batches = storage::read_files(&self.table.loc, &stored, &layout.schema)?;
                batches.extend(storage::read_files(&local, &new, &layout.schema)?);
                let rows = super::dedup::last_per_key(&layout.schema, &batches, &keys)?;
                drop(batches);
                let tag = file_tag(self.version, &format!("d{i}"));
                merged.extend(storage::write_rows(
                    &self.table.loc.dir,
                    &layout,
                    &[rows],
                    &tag,
                )?);
                replaced.extend(stored);
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.table.remove_unnamed(&merged);
            return Err(e);
        }
        let written = std::mem::replace(&mut self.written, merged);
        self.table.remove_unnamed(&written);
        Ok(replaced)
    }
}

impl Drop for AppendTxn {
    fn drop(&mut self) {
        if !self.committed {
            for f in &self.written {
                let _ = std::fs::remove_file(self.table.loc.dir.join(&f.path));
            }
        }
    }
}

/// A file name stem that is never reused, not even by a table dropped and
/// created again under the same name while old files await removal.
fn file_tag(version: u64, part: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{version:08}-{}-{part}", &random[..8])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};

    use super::*;
    use crate::catalog::{Catalog, ColumnMeta};
    use crate::schema::ColumnType;
    use crate::time::PartitionBy;

    fn meta() -> TableMeta {
        TableMeta {
            columns: vec![
                ColumnMeta::new("ts", ColumnType::Timestamp),
                ColumnMeta::new("v", ColumnType::Long),
            ],
            timestamp: Some("ts".into()),
            partition_by: PartitionBy::Day,
            wal: false,
            params: Default::default(),
            ttl: None,
            dedup_keys: vec![],
        }
    }

    fn rows(t: &Table, values: &[i64]) -> RecordBatch {
        let ts: TimestampMicrosecondArray = values
            .iter()
            .map(|v| Some(1_704_067_200_000_000 + v))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC");
        RecordBatch::try_new(
            t.meta().arrow_schema(),
            vec![Arc::new(ts), Arc::new(Int64Array::from(values.to_vec()))],
        )
        .unwrap()
    }

    /// Two catalogs on one directory stand for two servers on one table.
    fn two_writers(name: &str) -> (Arc<Table>, Arc<Table>, std::path::PathBuf) {
        let root = std::env::temp_dir().join(format!("sluice-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let a = Catalog::open(&root).unwrap();
        a.create_table("public", "t", meta(), false).unwrap();
        let b = Catalog::open(&root).unwrap();
        (
            a.get("public", "t").unwrap(),
            b.get("public", "t").unwrap(),
            root,
        )
    }

    #[test]
    fn an_append_that_lost_the_race_is_committed_after_the_winner() {
        let (a, b, root) = two_writers("rebase");
        let mut slow = a.begin_append_blocking().unwrap();
        slow.write(&[rows(&a, &[1, 2])]).unwrap();
        let mut fast = b.begin_append_blocking().unwrap();
        fast.write(&[rows(&b, &[3])]).unwrap();
        fast.commit().unwrap();
        // `slow` was begun at version 0; version 1 is b's.
        slow.commit().unwrap();
        assert_eq!(a.snapshot().manifest.version, 2);
        assert_eq!(a.snapshot().manifest.row_count(), 3);
        // b catches up before its next write, and readers refresh.
        b.refresh().unwrap();
        assert_eq!(b.snapshot().manifest.row_count(), 3);
        assert_eq!(Manifest::load(&a.loc).unwrap().files.len(), 2);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_removal_that_read_an_old_version_fails() {
        let (a, b, root) = two_writers("conflict");
        let mut t = a.begin_append_blocking().unwrap();
        t.write(&[rows(&a, &[1])]).unwrap();
        t.commit().unwrap();
        b.refresh().unwrap();
        // a appends again; b, still at version 1, empties the table.
        let mut t = a.begin_append_blocking().unwrap();
        t.write(&[rows(&a, &[2])]).unwrap();
        t.commit().unwrap();
        let stale = b.snapshot();
        let mut empty = (*stale.manifest).clone();
        empty.files.clear();
        let err = b.publish((*stale.meta).clone(), empty, &[]).unwrap_err();
        assert!(
            matches!(err, Error::CommitConflict { version: 2, .. }),
            "{err}"
        );
        assert_eq!(err.sqlstate(), "40001");
        // Nothing was lost: both appends are in the latest version.
        assert_eq!(Manifest::load(&a.loc).unwrap().row_count(), 2);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn streaming_partitions_merge_in_tiers_and_settled_ones_whole() {
        let policy = CompactionPolicy {
            max_files: 8,
            small_file: 1 << 20,
            max_input: 64 << 20,
            settle: std::time::Duration::from_secs(5),
        };
        let files = |sizes: &[u64]| -> Vec<DataFile> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| DataFile {
                    size,
                    ..DataFile::spanning(&format!("p/{i}.parquet"), 1, 0, 0)
                })
                .collect()
        };
        let sizes = |chosen: Option<Vec<DataFile>>| -> Vec<u64> {
            chosen.unwrap_or_default().iter().map(|f| f.size).collect()
        };
        // A grown file and two new small ones: while rows arrive, the new
        // ones merge and the grown file is left as it is.
        let grown = files(&[800_000, 10_000, 12_000]);
        assert_eq!(sizes(policy.choose(&grown, false)), vec![10_000, 12_000]);
        assert_eq!(
            sizes(policy.choose(&grown, true)),
            vec![10_000, 12_000, 800_000]
        );
        // Tiers of doubling sizes are left alone until the table settles.
        let tiers = files(&[400_000, 100_000, 25_000]);
        assert!(policy.choose(&tiers, false).is_none());
        assert_eq!(sizes(policy.choose(&tiers, true)).len(), 3);
        // More than `max_files` files merge, smallest first, settled or not.
        let crowded = files(&[
            2 << 20,
            2 << 20,
            1,
            10,
            100,
            1_000,
            10_000,
            100_000,
            500_000,
        ]);
        assert!(sizes(policy.choose(&crowded, false)).starts_with(&[1, 10]));
        // Large files alone are never merged.
        assert!(policy.choose(&files(&[2 << 20, 3 << 20]), true).is_none());
    }
}
