//! One table: its definition and current version in memory, and the write
//! paths (append, truncate, rewrite, compaction) that each end in one
//! Delta commit.
//!
//! Readers take a snapshot (`Arc<Manifest>`) and are never blocked; writers
//! of one table are serialised by an async mutex so that every manifest
//! version extends the one before it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::RecordBatch;

use super::meta::TableMeta;
use super::reaper::Reaper;
use crate::error::{Error, Result};
use crate::storage::{self, DataFile, Manifest};

#[derive(Debug)]
pub struct Table {
    pub schema_name: String,
    pub name: String,
    pub dir: PathBuf,
    state: RwLock<TableState>,
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Removes the files a commit no longer names, after a grace period.
    reaper: Arc<Reaper>,
    /// Every manifest published that a reader may still hold.
    published: std::sync::Mutex<Vec<std::sync::Weak<Manifest>>>,
}

#[derive(Debug, Clone)]
pub struct TableState {
    pub meta: TableMeta,
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
        dir: PathBuf,
        meta: TableMeta,
        manifest: Manifest,
        broken: Option<Broken>,
        reaper: Arc<Reaper>,
    ) -> Table {
        let manifest = Arc::new(manifest);
        Table {
            published: std::sync::Mutex::new(vec![Arc::downgrade(&manifest)]),
            schema_name: schema_name.to_string(),
            name: name.to_string(),
            dir,
            state: RwLock::new(TableState {
                meta,
                manifest,
                broken,
            }),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            reaper,
        }
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
        self.reaper.retire_after(
            files.iter().map(|f| self.dir.join(&f.path)).collect(),
            readers,
        );
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

    pub fn meta(&self) -> TableMeta {
        self.snapshot().meta
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
        Ok(self.txn(guard))
    }

    /// [`Table::begin_append`] for threads outside the async runtime (the
    /// importer).
    pub fn begin_append_blocking(self: &Arc<Self>) -> Result<AppendTxn> {
        self.check_readable()?;
        let guard = Arc::clone(&self.write_lock).blocking_lock_owned();
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
        }
    }

    /// Replaces the table's content with nothing (TRUNCATE).
    pub async fn truncate(self: &Arc<Self>) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        let old = self.snapshot();
        let mut manifest = (*old.manifest).clone();
        manifest.version += 1;
        manifest.files.clear();
        self.publish(old.meta.clone(), manifest)?;
        self.retire(&old.manifest.files);
        Ok(())
    }

    /// Rewrites every file under a new definition with the same column
    /// positions and types (RENAME COLUMN), then swaps definition and files
    /// in one manifest.
    pub async fn rewrite(self: &Arc<Self>, new_meta: TableMeta) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        let old = self.snapshot();
        let this = Arc::clone(self);
        let meta = new_meta.clone();
        let files = tokio::task::spawn_blocking(move || -> Result<Vec<DataFile>> {
            let layout = meta.layout();
            let mut out = Vec::new();
            let version = old.manifest.version + 1;
            for (i, f) in old.manifest.files.iter().enumerate() {
                let batches =
                    storage::read_files(&this.dir, std::slice::from_ref(f), &layout.schema)?;
                out.extend(storage::write_rows(
                    &this.dir,
                    &layout,
                    &batches,
                    &file_tag(version, &format!("r{i}")),
                )?);
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let old = self.snapshot();
        let mut manifest = (*old.manifest).clone();
        manifest.version += 1;
        manifest.files = files;
        manifest.definition =
            serde_json::to_value(&new_meta).map_err(|e| Error::Internal(e.to_string()))?;
        self.publish(new_meta, manifest)?;
        self.retire(&old.manifest.files);
        Ok(())
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
        let old = self.snapshot();
        let Some(chosen) = policy.choose(&old.manifest.files) else {
            return Ok(0);
        };
        let layout = old.meta.layout();
        let batches = storage::read_files(&self.dir, &chosen, &layout.schema)?;
        let version = old.manifest.version + 1;
        let merged = storage::write_rows(&self.dir, &layout, &batches, &file_tag(version, "c"))?;
        drop(batches);
        let written: Vec<PathBuf> = merged.iter().map(|f| self.dir.join(&f.path)).collect();
        let mut manifest = (*old.manifest).clone();
        manifest.version = version;
        manifest
            .files
            .retain(|f| !chosen.iter().any(|c| c.path == f.path));
        manifest.files.extend(merged);
        // Files in partition order, as appends leave them.
        manifest.files.sort_by(|a, b| a.partition.cmp(&b.partition));
        if let Err(e) = self.publish(old.meta.clone(), manifest) {
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
    fn publish(&self, meta: TableMeta, mut manifest: Manifest) -> Result<()> {
        let current = self.snapshot().manifest;
        manifest.commit(&self.dir, &current, &meta.layout())?;
        let manifest = Arc::new(manifest);
        {
            let mut published = self.published.lock().expect("published manifests");
            published.retain(|w| w.strong_count() > 0);
            published.push(Arc::downgrade(&manifest));
        }
        let mut state = self.state.write().expect("table state lock");
        state.meta = meta;
        state.manifest = manifest;
        Ok(())
    }
}

/// When a partition's files are merged.
#[derive(Debug, Clone)]
pub struct CompactionPolicy {
    /// A partition with more files than this is compacted.
    pub max_files: usize,
    /// Files smaller than this are merged whenever a partition has two.
    pub small_file: u64,
    /// At most this many bytes of files are merged at once (memory).
    pub max_input: u64,
}

impl CompactionPolicy {
    /// The files to merge: the small files of the first partition with
    /// two or more of them, or with more than `max_files` files (then its
    /// smallest files); at most `max_input` bytes, at least two files.
    pub fn choose(&self, files: &[DataFile]) -> Option<Vec<DataFile>> {
        let mut by_partition: std::collections::BTreeMap<&str, Vec<&DataFile>> =
            std::collections::BTreeMap::new();
        for f in files {
            by_partition.entry(&f.partition).or_default().push(f);
        }
        for (_, mut fs) in by_partition {
            let small = fs.iter().filter(|f| f.size < self.small_file).count();
            if small < 2 && fs.len() <= self.max_files {
                continue;
            }
            fs.sort_by_key(|f| f.size);
            if small >= 2 {
                fs.truncate(small);
            }
            let mut chosen = Vec::new();
            let mut bytes = 0;
            for f in fs {
                if chosen.len() >= 2 && bytes + f.size > self.max_input {
                    break;
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
        let files = storage::write_rows(&self.table.dir, &layout, batches, &tag)?;
        self.written.extend(files);
        Ok(())
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
        let mut manifest = (*old.manifest).clone();
        manifest.version = self.version;
        manifest.files.extend(self.written.iter().cloned());
        self.table.publish(old.meta, manifest)?;
        self.committed = true;
        Ok(rows)
    }
}

impl Drop for AppendTxn {
    fn drop(&mut self) {
        if !self.committed {
            for f in &self.written {
                let _ = std::fs::remove_file(self.table.dir.join(&f.path));
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
