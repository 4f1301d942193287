//! The Delta log of a table (`<table>/_delta_log/`, on local disk or in a
//! bucket), which is the table's manifest: every commit is one Delta version with `add` and
//! `remove` actions, so Spark, Trino, DuckDB, Polars and delta-rs read the
//! same committed files we do and never an import in flight.
//!
//! Log replay, the protocol and the commit rules are `delta_kernel`'s: a
//! version is written with put-if-absent (a hard link locally, the store's
//! conditional put in a bucket), so of two writers of one version exactly
//! one wins. The QuestDB definition Delta cannot express (SYMBOL,
//! designated timestamp, partition unit, WAL) is the table property
//! [`DEFINITION`]. Each `add` carries `numRecords` and the designated
//! timestamp's min/max, which is where the files' time ranges come back
//! from when a table is loaded.
//!
//! One commit the kernel has no API for: replacing the schema (RENAME
//! COLUMN rewrites every file under the new names). That version is built
//! here from the kernel's own schema serialisation and written with the
//! same put-if-absent rule.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, MapBuilder, MapFieldNames, RecordBatch, StringArray,
    StringBuilder, StructArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::object_store::local::LocalFileSystem;
use delta_kernel::schema::{DataType as DeltaType, StructField, StructType};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::{CommitResult, UpdateTableOperation};
use delta_kernel::{EngineData, FilteredEngineData, Snapshot, SnapshotRef};
use delta_kernel_default_engine::DefaultEngine;
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;

use super::location::LOG_DIR;
use super::manifest::Manifest;
use super::{DataFile, Layout, TableLoc};
use crate::error::{Error, Result};

/// The table property holding the QuestDB table definition (JSON).
pub const DEFINITION: &str = "sluice.definition";

/// The table property naming the designated timestamp column, whose
/// min/max every `add` carries.
const TIMESTAMP: &str = "sluice.timestamp";

/// The statistics key holding the designated timestamp's exact range in
/// microseconds (`{"min": …, "max": …}`): Delta's `minValues`/`maxValues`
/// keep milliseconds, and a file's range must come back exactly. Readers
/// ignore statistics they do not know.
const EXACT_RANGE: &str = "sluiceTimestampRange";

/// The writer named in each commit's `commitInfo`.
const ENGINE_INFO: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

/// A checkpoint is written every this many versions unless the table's
/// `delta.checkpointInterval` says otherwise (Delta's default).
const CHECKPOINT_INTERVAL: u64 = 10;

type Kernel = DefaultEngine<TokioMultiThreadExecutor>;

/// A kernel over `store`, its I/O on the storage runtime.
fn kernel_over(store: Arc<dyn delta_kernel::object_store::ObjectStore>) -> Kernel {
    delta_kernel_default_engine::DefaultEngineBuilder::new(store)
        .with_task_executor(Arc::new(TokioMultiThreadExecutor::new(
            super::object::RUNTIME.handle().clone(),
        )))
        .build()
}

/// The kernel for local tables, over the local file system.
static LOCAL: LazyLock<Arc<Kernel>> =
    LazyLock::new(|| Arc::new(kernel_over(Arc::new(LocalFileSystem::new()))));

/// One kernel per bucket client, made at its first use. The key is the
/// client's address: the kernel holds the client, so the address is not
/// reused while the entry lives.
static REMOTE: LazyLock<std::sync::Mutex<std::collections::HashMap<usize, Arc<Kernel>>>> =
    LazyLock::new(Default::default);

fn engine(loc: &TableLoc) -> Arc<Kernel> {
    match &loc.remote {
        Some(r) => {
            let key = Arc::as_ptr(&r.bucket.store) as *const () as usize;
            let mut kernels = REMOTE.lock().expect("kernels");
            Arc::clone(
                kernels
                    .entry(key)
                    .or_insert_with(|| Arc::new(kernel_over(Arc::clone(&r.bucket.store)))),
            )
        }
        None => Arc::clone(&LOCAL),
    }
}

fn timestamp_name(layout: &Layout) -> Option<&str> {
    layout
        .timestamp
        .map(|i| layout.schema.field(i).name().as_str())
}

/// Whether version `version` of the table has been committed.
pub fn has_version(loc: &TableLoc, version: u64) -> Result<bool> {
    loc.exists(&format!("{LOG_DIR}/{version:020}.json"))
}

/// One source file a commit records as loaded: a Delta `txn` action
/// (`appId`, `version`), Delta's own record of idempotent writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    pub app_id: String,
    pub version: i64,
}

/// The version recorded for `app_id` in the table's latest version.
pub fn app_version(loc: &TableLoc, app_id: &str) -> Result<Option<i64>> {
    snapshot(loc)?
        .get_app_id_version(app_id, &*engine(loc))
        .map_err(kernel_err(loc, "could not read the table's transactions"))
}

/// Whether the table holds a Delta log.
pub fn exists(loc: &TableLoc) -> Result<bool> {
    match &loc.remote {
        Some(_) => Ok(!loc.list(super::location::Files::Log)?.is_empty()),
        None => Ok(loc.dir.join(LOG_DIR).is_dir()),
    }
}

fn kernel_err(loc: &TableLoc, what: &str) -> impl Fn(delta_kernel::KernelError) -> Error {
    let table = loc.display();
    let what = what.to_string();
    move |e| Error::DeltaLog {
        table: table.clone(),
        reason: format!("{what}: {e}"),
    }
}

/// The Delta type of an Arrow column as our files store it.
fn delta_type(t: &DataType) -> Result<DeltaType> {
    Ok(match t {
        DataType::Boolean => DeltaType::BOOLEAN,
        DataType::Int8 => DeltaType::BYTE,
        DataType::Int16 => DeltaType::SHORT,
        DataType::Int32 => DeltaType::INTEGER,
        // IPv4 is stored as UInt32; a reader widens it to long exactly.
        DataType::Int64 | DataType::UInt32 => DeltaType::LONG,
        DataType::Float32 => DeltaType::FLOAT,
        DataType::Float64 => DeltaType::DOUBLE,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DeltaType::STRING,
        DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8) => DeltaType::STRING,
        // Delta has no nanosecond type; as `timestamp`, readers refuse
        // values with sub-microsecond digits. As `long` they read exact.
        DataType::Timestamp(TimeUnit::Nanosecond, _) => DeltaType::LONG,
        DataType::Timestamp(_, Some(_)) => DeltaType::TIMESTAMP,
        DataType::Timestamp(_, None) => DeltaType::TIMESTAMP_NTZ,
        DataType::FixedSizeBinary(_) | DataType::Binary => DeltaType::BINARY,
        other => {
            return Err(Error::Internal(format!(
                "no Delta type for the Arrow type {other}"
            )));
        }
    })
}

/// The Delta schema of a table whose files have the Arrow schema `schema`.
pub fn delta_schema(schema: &Schema) -> Result<StructType> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| Ok(StructField::new(f.name(), delta_type(f.data_type())?, true)))
        .collect::<Result<Vec<_>>>()?;
    StructType::try_new(fields).map_err(|e| Error::Internal(e.to_string()))
}

/// Creates the Delta table at `loc` (which must have no log yet) at
/// version 0, with `files` in it.
pub fn create(
    loc: &TableLoc,
    layout: &Layout,
    definition: &serde_json::Value,
    files: &[DataFile],
    loads: &[Load],
) -> Result<Manifest> {
    let err = kernel_err(loc, "could not create the Delta table");
    let (schema, timestamp) = (&layout.schema, timestamp_name(layout));
    let url = loc.url()?;
    let mut props = vec![(DEFINITION.to_string(), definition.to_string())];
    if let Some(ts) = timestamp {
        props.push((TIMESTAMP.to_string(), ts.to_string()));
    }
    let mut txn = create_table(
        url.as_str(),
        Arc::new(delta_schema(schema)?),
        ENGINE_INFO,
        true,
    )
    .with_table_properties(props)
    .build(&*engine(loc), Box::new(FileSystemCommitter::new()))
    .map_err(&err)?;
    if !files.is_empty() {
        txn.add_files(add_actions(files, timestamp)?);
    }
    for l in loads {
        txn = txn.with_transaction_id(l.app_id.clone(), l.version);
    }
    match txn.commit(&*engine(loc)).map_err(&err)? {
        CommitResult::Committed(_) => {}
        CommitResult::Conflicted(c) => return Err(conflict(loc, c.conflict_version())),
        CommitResult::Retryable(_) => return Err(err(retryable())),
    }
    Ok(Manifest {
        version: 0,
        definition: definition.clone(),
        files: files.to_vec(),
    })
}

fn retryable() -> delta_kernel::KernelError {
    delta_kernel::KernelError::generic("the commit failed with a retryable I/O error")
}

fn conflict(loc: &TableLoc, version: u64) -> Error {
    Error::CommitConflict {
        table: loc.display(),
        version,
        reason: "another writer committed this version first".into(),
    }
}

/// The latest version of the table at `loc`.
pub fn load(loc: &TableLoc) -> Result<Manifest> {
    let err = kernel_err(loc, "could not read the Delta log");
    let snapshot = snapshot(loc)?;
    let props = &snapshot.table_properties().unknown_properties;
    let definition = props.get(DEFINITION).ok_or_else(|| Error::Corrupt {
        table: table_name(loc),
        file: loc.file_display(LOG_DIR),
        reason: format!("the table has no {DEFINITION} property"),
    })?;
    let definition: serde_json::Value =
        serde_json::from_str(definition).map_err(|e| Error::Corrupt {
            table: table_name(loc),
            file: loc.file_display(LOG_DIR),
            reason: format!("{DEFINITION}: {e}"),
        })?;
    let timestamp = props.get(TIMESTAMP).cloned();
    let mut files = Vec::new();
    for_each_file(&snapshot, loc, |data, selected| {
        let batch = data.record_batch();
        let paths = string_column(batch, "path")?;
        let sizes = batch
            .column_by_name("size")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| Error::Internal("scan metadata without sizes".into()))?;
        let stats = string_column(batch, "stats")?;
        for row in 0..batch.num_rows() {
            if !selected(row) {
                continue;
            }
            let path = decode_path(paths.value(row));
            let stats = parse_stats(
                stats.is_valid(row).then(|| stats.value(row)),
                timestamp.as_deref(),
            )
            .map_err(|reason| Error::Corrupt {
                table: table_name(loc),
                file: path.clone(),
                reason,
            })?;
            files.push(DataFile {
                partition: path.split('/').next().unwrap_or_default().to_string(),
                path,
                rows: stats.rows,
                size: sizes.value(row) as u64,
                min_ts: stats.min_ts,
                max_ts: stats.max_ts,
            });
        }
        Ok(())
    })
    .map_err(|e| match e {
        Error::Internal(m) => err(delta_kernel::KernelError::generic(m)),
        e => e,
    })?;
    // Files in partition order, as the importer and compaction leave them.
    files.sort_by(|a, b| a.partition.cmp(&b.partition).then(a.path.cmp(&b.path)));
    Ok(Manifest {
        version: snapshot.version(),
        definition,
        files,
    })
}

fn table_name(loc: &TableLoc) -> String {
    let shown = loc.display();
    shown
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Keeps `snapshot` as the root's latest known, unless a newer one is kept.
fn remember(loc: &TableLoc, snapshot: &SnapshotRef) {
    let mut kept = loc.kept.0.lock().expect("kept snapshot");
    if kept
        .as_ref()
        .is_none_or(|s| s.version() <= snapshot.version())
    {
        *kept = Some(Arc::clone(snapshot));
    }
}

/// The table's snapshot at `version` (the latest when `None`), built
/// from the one kept for its location when that is not newer: rebuilding
/// one from the last checkpoint parses up to ten JSON commits, which was
/// most of a small commit's CPU time.
fn snapshot_at(loc: &TableLoc, version: Option<u64>) -> Result<SnapshotRef> {
    let err = kernel_err(loc, "could not read the Delta log");
    let url = loc.url()?;
    let url = url.as_str();
    let kept = loc.kept.0.lock().expect("kept snapshot").clone();
    let kernel = engine(loc);
    let built = match (kept, version) {
        (Some(s), Some(v)) if s.version() == v => return Ok(s),
        (Some(s), Some(v)) if s.version() < v => {
            Snapshot::builder_from(s).at_version(v).build(&*kernel)
        }
        (Some(s), None) => Snapshot::builder_from(s).build(&*kernel),
        (_, Some(v)) => Snapshot::builder_for(url).at_version(v).build(&*kernel),
        (_, None) => Snapshot::builder_for(url).build(&*kernel),
    }
    .map_err(err)?;
    remember(loc, &built);
    Ok(built)
}

fn snapshot(loc: &TableLoc) -> Result<SnapshotRef> {
    snapshot_at(loc, None)
}

/// Calls `f` with each batch of the snapshot's live files (in the kernel's
/// scan-row layout, owned, for `remove_files`) and which of its rows are
/// live.
fn for_each_file(
    snapshot: &SnapshotRef,
    loc: &TableLoc,
    mut f: impl FnMut(Box<ArrowEngineData>, &dyn Fn(usize) -> bool) -> Result<()>,
) -> Result<()> {
    let err = kernel_err(loc, "could not list the table's files");
    let scan = Arc::clone(snapshot).scan_builder().build().map_err(&err)?;
    for meta in scan.scan_metadata(&*engine(loc)).map_err(&err)? {
        let meta = meta.map_err(&err)?;
        let (data, selection) = meta.scan_files.into_parts();
        let data = ArrowEngineData::try_from_engine_data(data).map_err(&err)?;
        let selected = |row: usize| selection.get(row).copied().unwrap_or(true);
        f(data, &selected)?;
    }
    Ok(())
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| Error::Internal(format!("scan metadata without {name}")))
}

/// A log path as a path below the table directory (the log stores
/// relative, percent-encoded URIs).
pub(super) fn decode_path(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = p
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct FileStats {
    rows: u64,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
}

/// Reads `numRecords` and the designated timestamp's range from an
/// `add`'s statistics.
fn parse_stats(
    stats: Option<&str>,
    timestamp: Option<&str>,
) -> std::result::Result<FileStats, String> {
    let stats = stats.ok_or("the add action has no statistics")?;
    let v: serde_json::Value = serde_json::from_str(stats).map_err(|e| e.to_string())?;
    let rows = v
        .get("numRecords")
        .and_then(serde_json::Value::as_u64)
        .ok_or("the statistics have no numRecords")?;
    if let Some(range) = v.get(EXACT_RANGE) {
        return Ok(FileStats {
            rows,
            min_ts: range.get("min").and_then(serde_json::Value::as_i64),
            max_ts: range.get("max").and_then(serde_json::Value::as_i64),
        });
    }
    // A file another writer added: Delta's bounds are in milliseconds, so
    // the maximum covers the rest of its millisecond.
    let bound = |key: &str| -> std::result::Result<Option<i64>, String> {
        let Some(ts) = timestamp else { return Ok(None) };
        match v.get(key).and_then(|m| m.get(ts)).and_then(|t| t.as_str()) {
            None => Ok(None),
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| Some(t.timestamp_micros()))
                .map_err(|e| format!("{key}.{ts} = {text}: {e}")),
        }
    };
    let max_ts = bound("maxValues")?.map(|m| if m % 1000 == 0 { m + 999 } else { m });
    Ok(FileStats {
        rows,
        min_ts: bound("minValues")?,
        max_ts,
    })
}

/// The `add` actions of `files`, as the kernel takes them.
fn add_actions(files: &[DataFile], timestamp: Option<&str>) -> Result<Box<dyn EngineData>> {
    let n = files.len();
    let path: ArrayRef = Arc::new(StringArray::from_iter_values(
        files.iter().map(|f| encode_path(&f.path)),
    ));
    let mut parts = MapBuilder::new(
        Some(MapFieldNames {
            entry: "key_value".into(),
            key: "key".into(),
            value: "value".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    for _ in 0..n {
        parts
            .append(true)
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    let parts: ArrayRef = Arc::new(parts.finish());
    let size: ArrayRef = Arc::new(Int64Array::from_iter_values(
        files.iter().map(|f| f.size as i64),
    ));
    let now = chrono::Utc::now().timestamp_millis();
    let mtime: ArrayRef = Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(now, n)));
    let rows: ArrayRef = Arc::new(Int64Array::from_iter_values(
        files.iter().map(|f| f.rows as i64),
    ));
    let ts_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let bound = |get: fn(&DataFile) -> Option<i64>| -> ArrayRef {
        Arc::new(
            files
                .iter()
                .map(get)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let (min, max) = match timestamp {
        Some(ts) => {
            let fields = Fields::from(vec![Field::new(ts, ts_type.clone(), true)]);
            (
                StructArray::new(fields.clone(), vec![bound(|f| f.min_ts)], None),
                StructArray::new(fields, vec![bound(|f| f.max_ts)], None),
            )
        }
        None => (
            StructArray::new_empty_fields(n, None),
            StructArray::new_empty_fields(n, None),
        ),
    };
    let tight: ArrayRef = Arc::new(BooleanArray::from(vec![true; n]));
    let exact = |get: fn(&DataFile) -> Option<i64>| -> ArrayRef {
        Arc::new(files.iter().map(get).collect::<Int64Array>())
    };
    let range = StructArray::from(vec![
        (
            Arc::new(Field::new("min", DataType::Int64, true)),
            exact(|f| f.min_ts),
        ),
        (
            Arc::new(Field::new("max", DataType::Int64, true)),
            exact(|f| f.max_ts),
        ),
    ]);
    let stats = StructArray::from(vec![
        (
            Arc::new(Field::new("numRecords", DataType::Int64, true)),
            rows,
        ),
        (
            Arc::new(Field::new("minValues", min.data_type().clone(), true)),
            Arc::new(min) as ArrayRef,
        ),
        (
            Arc::new(Field::new("maxValues", max.data_type().clone(), true)),
            Arc::new(max) as ArrayRef,
        ),
        (
            Arc::new(Field::new("tightBounds", DataType::Boolean, true)),
            tight,
        ),
        (
            Arc::new(Field::new(EXACT_RANGE, range.data_type().clone(), true)),
            Arc::new(range) as ArrayRef,
        ),
    ]);
    let schema = Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("partitionValues", parts.data_type().clone(), false),
        Field::new("size", DataType::Int64, false),
        Field::new("modificationTime", DataType::Int64, false),
        Field::new("stats", stats.data_type().clone(), true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![path, parts, size, mtime, Arc::new(stats)],
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Box::new(ArrowEngineData::new(batch)))
}

/// A path below the table directory as a log path (a relative URI).
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Commits the change from `from` to `to` (files added, files removed) as
/// the version after `from`; a changed definition also replaces the
/// schema with `layout`'s. Returns the committed version.
pub fn commit(
    loc: &TableLoc,
    from: &Manifest,
    to: &Manifest,
    layout: &Layout,
    log_retention: std::time::Duration,
    loads: &[Load],
) -> Result<u64> {
    let err = kernel_err(loc, "could not commit to the Delta log");
    let (schema, timestamp) = (&layout.schema, timestamp_name(layout));
    let added = to.added_since(from);
    let removed = to.removed_since(from);
    if from.definition != to.definition {
        return replace_schema(loc, from, to, schema, timestamp, &added);
    }
    let snapshot = snapshot_at(loc, Some(from.version))?;
    let operation = if removed.is_empty() {
        UpdateTableOperation::Write
    } else if added.is_empty() {
        UpdateTableOperation::Delete
    } else {
        UpdateTableOperation::Optimize
    };
    let mut txn = Arc::clone(&snapshot)
        .update_table(operation, ENGINE_INFO, true)
        .build(&*engine(loc), Box::new(FileSystemCommitter::new()))
        .map_err(&err)?;
    if !added.is_empty() {
        txn.add_files(add_actions(&added, timestamp)?);
    }
    for l in loads {
        txn = txn.with_transaction_id(l.app_id.clone(), l.version);
    }
    if !removed.is_empty() {
        // The kernel removes files given as rows of the snapshot's own scan
        // metadata: select the rows of the files this commit drops.
        for_each_file(&snapshot, loc, |data, selected| {
            let paths = string_column(data.record_batch(), "path")?;
            let chosen: Vec<bool> = (0..paths.len())
                .map(|row| {
                    selected(row) && removed.contains(decode_path(paths.value(row)).as_str())
                })
                .collect();
            if chosen.iter().any(|c| *c) {
                txn.remove_files(FilteredEngineData::try_new(data, chosen).map_err(&err)?);
            }
            Ok(())
        })?;
    }
    let committed = match txn.commit(&*engine(loc)).map_err(&err)? {
        CommitResult::Committed(c) => c,
        CommitResult::Conflicted(c) => return Err(conflict(loc, c.conflict_version())),
        CommitResult::Retryable(_) => return Err(err(retryable())),
    };
    let version = committed.commit_version();
    if let Some(after) = committed.post_commit_snapshot() {
        remember(loc, after);
    }
    // The kernel's local store does not fsync what it writes.
    if loc.remote.is_none() {
        super::sync_tree(&loc.dir.join(LOG_DIR))?;
    }
    maybe_checkpoint(loc, &snapshot, &committed, log_retention);
    Ok(version)
}

/// Writes a checkpoint when the table's interval says one is due, then
/// removes the log entries before it that are past the log retention (the
/// table's `delta.logRetentionDuration`, else `log_retention`), unless the
/// table's `delta.enableExpiredLogCleanup` is false. A failed checkpoint
/// or cleanup costs only log replay time or space, so it is logged, not
/// returned.
fn maybe_checkpoint(
    loc: &TableLoc,
    before: &SnapshotRef,
    committed: &delta_kernel::transaction::CommittedTransaction,
    log_retention: std::time::Duration,
) {
    let props = before.table_properties();
    let interval = props
        .checkpoint_interval
        .map_or(CHECKPOINT_INTERVAL, |n| n.get());
    if committed.post_commit_stats().commits_since_checkpoint < interval {
        return;
    }
    let Some(snapshot) = committed.post_commit_snapshot() else {
        return;
    };
    let written = snapshot.checkpoint(&*engine(loc), None);
    // The kept snapshot's log segment starts at the old checkpoint: the
    // next one is built from the new checkpoint instead, or its count of
    // commits since a checkpoint (and its replay) would keep growing.
    *loc.kept.0.lock().expect("kept snapshot") = None;
    if let Err(e) = written {
        tracing::warn!(table = %loc.display(), "could not write a Delta checkpoint: {e}");
        return;
    }
    if props.enable_expired_log_cleanup == Some(false) {
        return;
    }
    let retention = props.log_retention_duration.unwrap_or(log_retention);
    if let Err(e) = super::vacuum::clean_log(loc, snapshot.version(), retention) {
        tracing::warn!(table = %loc.display(), "could not remove old Delta log entries: {e}");
    }
}

/// The version changing the definition (ALTER TABLE): the kernel builds
/// no such commit, so it is written here, under the same put-if-absent
/// rule: a new `metaData` (same table id), the files the change removes
/// removed, its new files added.
fn replace_schema(
    loc: &TableLoc,
    from: &Manifest,
    to: &Manifest,
    schema: &Schema,
    timestamp: Option<&str>,
    added: &[DataFile],
) -> Result<u64> {
    let snapshot = snapshot_at(loc, Some(from.version))?;
    let old = snapshot.table_configuration().metadata();
    let mut configuration: HashMap<String, String> = old.configuration().clone();
    configuration.insert(DEFINITION.into(), to.definition.to_string());
    if let Some(ts) = timestamp {
        configuration.insert(TIMESTAMP.into(), ts.into());
    }
    let schema_string = serde_json::to_string(&delta_schema(schema)?)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut lines = vec![
        serde_json::json!({"commitInfo": {
            "timestamp": now,
            "operation": "ALTER TABLE",
            "engineInfo": ENGINE_INFO,
            "isBlindAppend": false,
        }}),
        serde_json::json!({"metaData": {
            "id": old.id(),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema_string,
            "partitionColumns": [],
            "configuration": configuration,
            "createdTime": old.created_time(),
        }}),
    ];
    let removed = to.removed_since(from);
    for f in from
        .files
        .iter()
        .filter(|f| removed.contains(f.path.as_str()))
    {
        lines.push(serde_json::json!({"remove": {
            "path": encode_path(&f.path),
            "deletionTimestamp": now,
            "dataChange": true,
            "extendedFileMetadata": true,
            "partitionValues": {},
            "size": f.size,
        }}));
    }
    for f in added {
        let mut stats = serde_json::json!({"numRecords": f.rows, "tightBounds": true});
        if let Some(ts) = timestamp {
            let text = |v: Option<i64>| {
                v.and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            };
            stats["minValues"] = serde_json::json!({ ts: text(f.min_ts) });
            stats["maxValues"] = serde_json::json!({ ts: text(f.max_ts) });
            stats[EXACT_RANGE] = serde_json::json!({"min": f.min_ts, "max": f.max_ts});
        }
        lines.push(serde_json::json!({"add": {
            "path": encode_path(&f.path),
            "partitionValues": {},
            "size": f.size,
            "modificationTime": now,
            "dataChange": true,
            "stats": stats.to_string(),
        }}));
    }
    let mut body = Vec::new();
    for l in lines {
        body.extend_from_slice(l.to_string().as_bytes());
        body.push(b'\n');
    }
    let version = from.version + 1;
    let name = format!("{version:020}.json");
    if let Some(r) = &loc.remote {
        // The store's conditional put: of two writers exactly one wins.
        if !r
            .bucket
            .put(&r.key(&format!("{LOG_DIR}/{name}")), body.into(), true)?
        {
            return Err(conflict(loc, version));
        }
        return Ok(version);
    }
    let log = loc.dir.join(LOG_DIR);
    let target = log.join(&name);
    let tmp = log.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    super::write_durable(&tmp, &body)?;
    // A hard link fails if the version exists: put-if-absent.
    let linked = std::fs::hard_link(&tmp, &target);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => super::sync_dir(&log)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(conflict(loc, version));
        }
        Err(e) => return Err(Error::io(&target, e)),
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_round_trip() {
        for p in ["2024-01-01/00000001-ab-r0.parquet", "default/a b%c.parquet"] {
            assert_eq!(decode_path(&encode_path(p)), p);
        }
    }

    #[test]
    fn stats_give_rows_and_the_time_range() {
        let s = parse_stats(
            Some(r#"{"numRecords":3,"minValues":{"ts":"2024-01-01T00:00:00.000001Z"},"maxValues":{"ts":"2024-01-02T00:00:00Z"}}"#),
            Some("ts"),
        )
        .unwrap();
        assert_eq!(s.rows, 3);
        assert_eq!(s.min_ts, Some(1_704_067_200_000_001));
        // Another writer's millisecond bound covers its whole millisecond.
        assert_eq!(s.max_ts, Some(1_704_153_600_000_999));
        let exact = parse_stats(
            Some(r#"{"numRecords":1,"minValues":{"ts":"2024-01-01T00:00:00.000Z"},"sluiceTimestampRange":{"min":1704067200000001,"max":1704067200000002}}"#),
            Some("ts"),
        )
        .unwrap();
        assert_eq!(
            (exact.min_ts, exact.max_ts),
            (Some(1_704_067_200_000_001), Some(1_704_067_200_000_002))
        );
        assert!(parse_stats(None, None).is_err());
    }

    /// Commits start from the snapshot kept on the table's location; a
    /// checkpoint every ten versions still comes every ten versions (a
    /// kept snapshot that outlived its checkpoint counted every commit as
    /// due for one), and a fresh reader sees what the kept one saw.
    #[test]
    fn commits_from_a_kept_snapshot_checkpoint_every_ten_versions() {
        let dir = std::env::temp_dir().join(format!("sluice-kept-snapshot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let loc = TableLoc::local(dir.clone());
        let layout = Layout {
            schema: Arc::new(Schema::new(vec![
                Field::new(
                    "ts",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                ),
                Field::new("v", DataType::Int64, true),
            ])),
            timestamp: Some(0),
            partition_by: crate::time::partition::PartitionBy::Day,
            bloom: vec![],
        };
        let definition = serde_json::json!({"t": 1});
        let mut current = create(&loc, &layout, &definition, &[], &[]).unwrap();
        let retention = std::time::Duration::from_secs(3600);
        for i in 0..25i64 {
            let mut next = current.clone();
            next.files.push(DataFile {
                partition: "2024-01-01".into(),
                path: format!("2024-01-01/f{i}.parquet"),
                rows: 1,
                size: 100,
                min_ts: Some(i),
                max_ts: Some(i),
            });
            next.version = commit(&loc, &current, &next, &layout, retention, &[]).unwrap();
            assert_eq!(next.version, i as u64 + 1);
            current = next;
        }
        let checkpoints = std::fs::read_dir(dir.join(LOG_DIR))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().contains(".checkpoint.")
            })
            .count();
        assert_eq!(checkpoints, 2, "checkpoints at versions 10 and 20 only");
        let fresh = load(&TableLoc::local(dir.clone())).unwrap();
        assert_eq!(fresh.version, 25);
        assert_eq!(fresh.files.len(), 25);
        let kept = load(&loc).unwrap();
        assert_eq!((kept.version, kept.files.len()), (25, 25));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
