//! The catalog: schemas and tables under `<root>/db/<schema>/<table>/` on
//! local disk or `s3://bucket/prefix/<schema>/<table>/` in a bucket, their
//! definitions, and the DataFusion table provider that reads them.
//!
//! Start-up loads every table from its Delta log (migrating a
//! `_manifest.json` of an earlier release), checks that each file the
//! latest version names is present and readable, and removes files no
//! version names. A table that
//! fails the check stays listed and answers every query with an error that
//! names the file; the other tables work.

pub mod applier;
mod cached_scan;
pub mod column_cache;
pub mod compactor;
mod dedup;
pub mod file_keys;
pub mod meta;
mod parquet_reader;
pub mod provider;
mod reaper;
mod scan_filter;
pub mod table;
mod ts_range;
pub mod wal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use meta::{ColumnMeta, TableMeta, TableParam, TableParams, Ttl, TtlUnit, quote_ident};
pub use table::{AppendTxn, CompactionPolicy, Table};

use crate::error::{Error, Result};
use crate::schema::{NameKind, name};
use crate::storage::{self, Bucket, DataFile, Manifest, Remote, Retention, TableLoc};
use reaper::Doomed;

pub const DEFAULT_SCHEMA: &str = "public";
/// The one database clients connect to (DataFusion's catalog name).
pub const DATABASE: &str = "qdb";
/// The virtual, read-only schema of system tables.
pub const SYS_SCHEMA: &str = "sys";

/// Where the tables are.
#[derive(Debug, Clone)]
pub enum Root {
    /// `<dir>/<schema>/<table>/`.
    Local(PathBuf),
    /// `s3://<bucket>/<prefix>/<schema>/<table>/`; new files are written
    /// below `scratch` (local) and uploaded when committed.
    Remote {
        bucket: Arc<Bucket>,
        prefix: String,
        scratch: PathBuf,
    },
}

/// The object that makes an empty schema on object storage exist (a
/// bucket has no directories).
const SCHEMA_MARKER: &str = "_sluice_schema";
/// The object that marks a table on object storage as dropped: its other
/// objects are being removed (and a start-up finishes the removal).
const DROPPED_MARKER: &str = "_sluice_dropped";

impl Root {
    /// The key prefix of `rel` below the root (remote roots).
    fn key(prefix: &str, rel: &str) -> String {
        if prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{prefix}/{rel}")
        }
    }

    /// Where a table's files are, and where its new files are written.
    fn table(&self, schema: &str, name: &str) -> TableLoc {
        match self {
            Root::Local(dir) => TableLoc::local(dir.join(schema).join(name)),
            Root::Remote {
                bucket,
                prefix,
                scratch,
            } => TableLoc::new(
                scratch.join(schema).join(name),
                Some(Remote {
                    bucket: Arc::clone(bucket),
                    prefix: Root::key(prefix, &format!("{schema}/{name}")),
                }),
            ),
        }
    }

    /// The local directory where a schema's new tables are staged.
    fn staging(&self, schema: &str) -> PathBuf {
        match self {
            Root::Local(dir) => dir.join(schema),
            Root::Remote { scratch, .. } => scratch.join(schema),
        }
    }
}

#[derive(Debug)]
pub struct Catalog {
    root: Root,
    schemas: RwLock<BTreeMap<String, BTreeMap<String, Arc<Table>>>>,
    /// The one remover of retired files and dropped tables.
    reaper: Arc<reaper::Reaper>,
    retention: Retention,
    /// Where tables' write-ahead logs are, once enabled.
    wal: std::sync::OnceLock<WalRoot>,
    /// Decoded columns of table files scans read again (none until set).
    columns: std::sync::OnceLock<Arc<column_cache::ColumnCache>>,
}

/// The local directory of every table's write-ahead log and this server's
/// name in the tables' Delta transactions.
#[derive(Debug)]
struct WalRoot {
    dir: PathBuf,
    app_id: String,
}

impl Catalog {
    /// Opens (creating if needed) the catalog under `db_root`.
    pub fn open(db_root: &Path) -> Result<Catalog> {
        Catalog::open_at(Root::Local(db_root.to_path_buf()), Retention::NONE)
    }

    /// Opens the catalog at `root`, loading every table; files no version
    /// names are kept for `retention`.
    pub fn open_at(root: Root, retention: Retention) -> Result<Catalog> {
        let reaper = Arc::new(reaper::Reaper::start());
        let schemas = match &root {
            Root::Local(dir) => load_local(dir, &root, &reaper, retention)?,
            Root::Remote {
                bucket,
                prefix,
                scratch,
            } => {
                // Files not uploaded when the last process stopped belong
                // to no version.
                let _ = std::fs::remove_dir_all(scratch);
                std::fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
                load_remote(bucket, prefix, &root, &reaper, retention)?
            }
        };
        Ok(Catalog {
            root,
            schemas: RwLock::new(schemas),
            reaper,
            retention,
            wal: std::sync::OnceLock::new(),
            columns: std::sync::OnceLock::new(),
        })
    }

    /// Gives every table a write-ahead log under `dir` (local disk, also
    /// for tables on object storage), replaying what a stopped server left
    /// in them. This server's id is kept in `dir/server_id`.
    pub fn enable_wal(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let id_file = dir.join("server_id");
        let id = match std::fs::read_to_string(&id_file) {
            Ok(id) => id.trim().to_string(),
            Err(_) => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                storage::write_atomic(&id_file, id.as_bytes())?;
                id
            }
        };
        let _ = self.wal.set(WalRoot {
            dir: dir.to_path_buf(),
            app_id: format!("sluice-wal-{id}"),
        });
        for table in self.tables() {
            self.open_wal(&table)?;
        }
        Ok(())
    }

    /// Keeps up to `limit` bytes of decoded columns for table scans (set
    /// once, before the first query).
    pub fn cache_columns(&self, limit: usize) {
        let _ = self
            .columns
            .set(Arc::new(column_cache::ColumnCache::new(limit)));
    }

    /// The column cache table scans read through.
    pub fn column_cache(&self) -> Arc<column_cache::ColumnCache> {
        Arc::clone(
            self.columns
                .get_or_init(|| Arc::new(column_cache::ColumnCache::new(0))),
        )
    }

    fn wal_dir(&self, schema: &str, name: &str) -> Option<PathBuf> {
        self.wal.get().map(|w| w.dir.join(schema).join(key(name)))
    }

    /// Opens `table`'s write-ahead log, when logs are enabled.
    fn open_wal(&self, table: &Arc<Table>) -> Result<()> {
        let (Some(root), Some(dir)) = (
            self.wal.get(),
            self.wal_dir(&table.schema_name, &table.name),
        ) else {
            return Ok(());
        };
        if table.check_readable().is_err() {
            return Ok(());
        }
        let applied = storage::delta::app_version(&table.loc, &root.app_id)?.unwrap_or(0);
        let wal = wal::Wal::open(
            &dir,
            &root.app_id,
            applied.max(0) as u64,
            &table.display_name(),
        )?;
        table.attach_wal(Arc::new(wal));
        Ok(())
    }

    fn vacuum(&self) -> table::Vacuum {
        table::Vacuum {
            reaper: Arc::clone(&self.reaper),
            retention: self.retention,
        }
    }

    /// Whether tables live on object storage.
    pub fn is_remote(&self) -> bool {
        matches!(self.root, Root::Remote { .. })
    }

    pub fn schema_names(&self) -> Vec<String> {
        self.schemas
            .read()
            .expect("catalog lock")
            .keys()
            .cloned()
            .collect()
    }

    pub fn schema_exists(&self, schema: &str) -> bool {
        self.schemas
            .read()
            .expect("catalog lock")
            .contains_key(schema)
    }

    pub fn table_names(&self, schema: &str) -> Vec<String> {
        self.schemas
            .read()
            .expect("catalog lock")
            .get(schema)
            .map(|t| t.values().map(|t| t.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Every table, in schema then name order.
    pub fn tables(&self) -> Vec<Arc<Table>> {
        self.schemas
            .read()
            .expect("catalog lock")
            .values()
            .flat_map(|t| t.values().cloned())
            .collect()
    }

    pub fn get(&self, schema: &str, name: &str) -> Option<Arc<Table>> {
        self.schemas
            .read()
            .expect("catalog lock")
            .get(schema)?
            .get(&key(name))
            .cloned()
    }

    pub fn create_schema(&self, schema: &str, if_not_exists: bool) -> Result<()> {
        name::check(NameKind::Schema, schema)?;
        let mut schemas = self.schemas.write().expect("catalog lock");
        if schemas.contains_key(schema) || schema == SYS_SCHEMA {
            return if if_not_exists {
                Ok(())
            } else {
                Err(Error::SchemaExists {
                    schema: schema.into(),
                })
            };
        }
        match &self.root {
            Root::Local(root) => {
                let dir = root.join(schema);
                std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                storage::sync_dir(root)?;
            }
            Root::Remote { bucket, prefix, .. } => {
                let marker = Root::key(prefix, &format!("{schema}/{SCHEMA_MARKER}"));
                bucket.put(&marker, bytes::Bytes::new(), false)?;
            }
        }
        schemas.insert(schema.to_string(), BTreeMap::new());
        Ok(())
    }

    /// Creates an empty table. The directory appears under its name only once
    /// its manifest is durable, so a crash never leaves a half-made table.
    /// Returns `None` when the table existed and `if_not_exists` was given.
    pub fn create_table(
        &self,
        schema: &str,
        name: &str,
        meta: TableMeta,
        if_not_exists: bool,
    ) -> Result<Option<Arc<Table>>> {
        let mut schemas = self.schemas.write().expect("catalog lock");
        let tables = match free_slot(&mut schemas, schema, name, &meta) {
            Err(Error::TableExists { .. }) if if_not_exists => return Ok(None),
            other => other?,
        };
        let tmp = self.root.staging(schema).join(format!(
            ".{name}.creating-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let table = self.install(tables, schema, name, meta, &tmp, (Vec::new(), &[]))?;
        Ok(Some(table))
    }

    /// A hidden directory where an import builds a new table; start-up
    /// removes it if the import never finished.
    pub fn staging_dir(&self, schema: &str, name: &str, import_id: &str) -> Result<PathBuf> {
        validate_table_name(name)?;
        if !self.schema_exists(schema) {
            return Err(Error::SchemaNotFound {
                schema: schema.into(),
            });
        }
        Ok(self
            .root
            .staging(schema)
            .join(format!(".{name}.importing-{import_id}")))
    }

    /// Creates a table from a staging directory that already holds its
    /// files: the manifest lists them, and one rename publishes the table.
    pub fn create_table_with_files(
        &self,
        schema: &str,
        name: &str,
        meta: TableMeta,
        staging: &Path,
        files: Vec<DataFile>,
        loads: &[storage::delta::Load],
    ) -> Result<Arc<Table>> {
        let mut schemas = self.schemas.write().expect("catalog lock");
        let tables = free_slot(&mut schemas, schema, name, &meta)?;
        self.install(tables, schema, name, meta, staging, (files, loads))
    }

    /// Writes version 0 (the files, and the source files it records as
    /// loaded) into `tmp` and renames it to the table's name;
    /// on object storage, uploads the files from `tmp` and commits version
    /// 0 in place (put-if-absent: a table another server created first is
    /// not overwritten).
    fn install(
        &self,
        tables: &mut BTreeMap<String, Arc<Table>>,
        schema: &str,
        name: &str,
        meta: TableMeta,
        tmp: &Path,
        (files, loads): (Vec<DataFile>, &[storage::delta::Load]),
    ) -> Result<Arc<Table>> {
        let definition = serde_json::to_value(&meta).map_err(|e| Error::Internal(e.to_string()))?;
        let loc = self.root.table(schema, name);
        let manifest = match &loc.remote {
            None => {
                let staged = TableLoc::local(tmp.to_path_buf());
                let manifest = Manifest::create(&staged, &meta.layout(), definition, files, loads)?;
                storage::sync_tree(tmp)?;
                std::fs::rename(tmp, &loc.dir).map_err(|e| Error::io(&loc.dir, e))?;
                storage::sync_dir(&self.root.staging(schema))?;
                manifest
            }
            Some(r) => {
                if r.bucket.exists(&r.key(DROPPED_MARKER))? {
                    let _ = std::fs::remove_dir_all(tmp);
                    return Err(Error::Invalid {
                        message: format!(
                            "table {name} is still being dropped; create it again in a moment"
                        ),
                        position: None,
                    });
                }
                let staged = TableLoc::new(tmp.to_path_buf(), loc.remote.clone());
                let rels: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
                let made = staged.upload(&rels).and_then(|()| {
                    Manifest::create(&loc, &meta.layout(), definition, files.clone(), loads)
                });
                let _ = std::fs::remove_dir_all(tmp);
                match made {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = r.bucket.delete(rels.iter().map(|rel| r.key(rel)).collect());
                        return Err(match e {
                            Error::CommitConflict { .. } => {
                                Error::TableExists { table: name.into() }
                            }
                            e => e,
                        });
                    }
                }
            }
        };
        if loc.remote.is_some() {
            std::fs::create_dir_all(&loc.dir).map_err(|e| Error::io(&loc.dir, e))?;
        }
        let table = Arc::new(Table::new(
            schema,
            name,
            loc,
            meta,
            manifest,
            None,
            self.vacuum(),
        ));
        if let Some(dir) = self.wal_dir(schema, name) {
            // A log left by a table of the same name dropped earlier.
            let _ = std::fs::remove_dir_all(&dir);
        }
        self.open_wal(&table)?;
        tables.insert(key(name), Arc::clone(&table));
        Ok(table)
    }

    /// Drops a table: its directory is first renamed away (atomic), then
    /// removed. Returns false when it did not exist.
    pub fn drop_table(&self, schema: &str, name: &str) -> Result<bool> {
        let mut schemas = self.schemas.write().expect("catalog lock");
        let Some(tables) = schemas.get_mut(schema) else {
            return Ok(false);
        };
        let Some(table) = tables.remove(&key(name)) else {
            return Ok(false);
        };
        // Rows still in its log go with the table.
        if let Some(wal) = table.wal() {
            wal.close();
            let _ = std::fs::remove_dir_all(wal.dir());
        }
        let doomed = match &table.loc.remote {
            None => {
                let schema_dir = self.root.staging(schema);
                let gone =
                    schema_dir.join(format!(".{name}.dropped-{}", uuid::Uuid::new_v4().simple()));
                std::fs::rename(&table.loc.dir, &gone).map_err(|e| Error::io(&table.loc.dir, e))?;
                storage::sync_dir(&schema_dir)?;
                vec![Doomed::Path(gone)]
            }
            Some(r) => {
                // No rename on object storage: a marker object says the
                // table is gone (a start-up finishes what is left), the
                // table's objects follow, the marker last.
                let marker = r.key(DROPPED_MARKER);
                r.bucket.put(&marker, bytes::Bytes::new(), false)?;
                let _ = std::fs::remove_dir_all(&table.loc.dir);
                let keys = r
                    .bucket
                    .list(&r.prefix)?
                    .into_iter()
                    .map(|o| o.key)
                    .filter(|k| *k != marker)
                    .collect();
                vec![
                    Doomed::Objects(Arc::clone(&r.bucket), keys),
                    Doomed::Objects(Arc::clone(&r.bucket), vec![marker]),
                ]
            }
        };
        // Queries already running may still hold a snapshot of the table:
        // the reaper removes the files once none does.
        // A dropped table is gone for every reader: no retention.
        self.reaper
            .retire_after(doomed, table.readers(), std::time::Duration::ZERO);
        Ok(true)
    }

    /// Renames a table within its schema (one directory rename).
    pub fn rename_table(&self, schema: &str, from: &str, to: &str) -> Result<()> {
        validate_table_name(to)?;
        let mut schemas = self.schemas.write().expect("catalog lock");
        let tables = schemas
            .get_mut(schema)
            .ok_or_else(|| Error::SchemaNotFound {
                schema: schema.into(),
            })?;
        // A table may be renamed to another spelling of its own name.
        if key(to) != key(from) && tables.contains_key(&key(to)) {
            return Err(Error::TableExists { table: to.into() });
        }
        let table = tables
            .get(&key(from))
            .cloned()
            .ok_or_else(|| Error::TableNotFound {
                table: from.into(),
                position: None,
            })?;
        if table.loc.remote.is_some() {
            return Err(Error::Unsupported {
                message: "RENAME TABLE is not supported for tables on object storage (a bucket has no atomic rename)".into(),
            });
        }
        let loc = self.root.table(schema, to);
        std::fs::rename(&table.loc.dir, &loc.dir).map_err(|e| Error::io(&table.loc.dir, e))?;
        storage::sync_dir(&self.root.staging(schema))?;
        let state = table.snapshot();
        let renamed = Arc::new(Table::new(
            schema,
            to,
            loc,
            (*state.meta).clone(),
            (*state.manifest).clone(),
            state.broken,
            self.vacuum(),
        ));
        // The log was applied and closed before (the engine's
        // `rename_table`); the renamed table starts a new one.
        if let Some(wal) = table.wal() {
            let _ = std::fs::remove_dir_all(wal.dir());
        }
        self.open_wal(&renamed)?;
        tables.remove(&key(from));
        tables.insert(key(to), renamed);
        Ok(())
    }
}

/// The tables of `schema`, checked to have no table `name` yet, for a
/// valid definition `meta`.
fn free_slot<'a>(
    schemas: &'a mut BTreeMap<String, BTreeMap<String, Arc<Table>>>,
    schema: &str,
    name: &str,
    meta: &TableMeta,
) -> Result<&'a mut BTreeMap<String, Arc<Table>>> {
    meta.validate()?;
    validate_table_name(name)?;
    let tables = schemas
        .get_mut(schema)
        .ok_or_else(|| Error::SchemaNotFound {
            schema: schema.into(),
        })?;
    if tables.contains_key(&key(name)) {
        return Err(Error::TableExists { table: name.into() });
    }
    Ok(tables)
}

/// Where a table is in its schema's map: its name ignoring case, so the
/// name keeps its spelling (`Weather`) and any spelling finds it, and two
/// names that differ only in case are one name.
fn key(name: &str) -> String {
    name.to_lowercase()
}

fn validate_table_name(table: &str) -> Result<()> {
    name::check(NameKind::Table, table)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        out.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Every schema and table below a local root.
fn load_local(
    db_root: &Path,
    root: &Root,
    reaper: &Arc<reaper::Reaper>,
    retention: Retention,
) -> Result<BTreeMap<String, BTreeMap<String, Arc<Table>>>> {
    std::fs::create_dir_all(db_root.join(DEFAULT_SCHEMA)).map_err(|e| Error::io(db_root, e))?;
    let mut schemas = BTreeMap::new();
    for entry in read_dir(db_root)? {
        if !entry.is_dir() {
            continue;
        }
        let schema = file_name(&entry);
        if schema.starts_with('.') {
            continue;
        }
        let mut tables = BTreeMap::new();
        for table_dir in read_dir(&entry)? {
            let name = file_name(&table_dir);
            if !table_dir.is_dir() {
                continue;
            }
            if name.starts_with('.') {
                // A CREATE or DROP interrupted by a crash.
                tracing::info!(dir = %table_dir.display(), "removing unfinished table directory");
                let _ = std::fs::remove_dir_all(&table_dir);
                continue;
            }
            load_into(
                &mut tables,
                &schema,
                &name,
                root.table(&schema, &name),
                reaper,
                retention,
            );
        }
        schemas.insert(schema, tables);
    }
    Ok(schemas)
}

/// Every schema and table below `s3://bucket/prefix/`. A prefix without a
/// Delta log is not a table (or one another server is creating) and is
/// left alone; one marked dropped is removed.
fn load_remote(
    bucket: &Arc<Bucket>,
    prefix: &str,
    root: &Root,
    reaper: &Arc<reaper::Reaper>,
    retention: Retention,
) -> Result<BTreeMap<String, BTreeMap<String, Arc<Table>>>> {
    let mut schemas = BTreeMap::new();
    schemas.insert(DEFAULT_SCHEMA.to_string(), BTreeMap::new());
    for schema in bucket.list_dirs(prefix)? {
        if schema.starts_with('.') || name::check(NameKind::Schema, &schema).is_err() {
            continue;
        }
        let mut tables = BTreeMap::new();
        for name in bucket.list_dirs(&Root::key(prefix, &schema))? {
            let loc = root.table(&schema, &name);
            let r = loc.remote.as_ref().expect("a remote root");
            if bucket.exists(&r.key(DROPPED_MARKER))? {
                tracing::info!(table = %loc.display(), "finishing an interrupted DROP TABLE");
                let marker = r.key(DROPPED_MARKER);
                let keys = bucket
                    .list(&r.prefix)?
                    .into_iter()
                    .map(|o| o.key)
                    .filter(|k| *k != marker)
                    .collect();
                bucket.delete(keys)?;
                bucket.delete(vec![marker])?;
                continue;
            }
            if !storage::delta::exists(&loc)? {
                tracing::warn!(prefix = %loc.display(), "no Delta log below this prefix: not loaded as a table");
                continue;
            }
            std::fs::create_dir_all(&loc.dir).map_err(|e| Error::io(&loc.dir, e))?;
            load_into(&mut tables, &schema, &name, loc, reaper, retention);
        }
        schemas.insert(schema, tables);
    }
    Ok(schemas)
}

/// Loads one table into `tables`, logging (not failing) when it cannot.
fn load_into(
    tables: &mut BTreeMap<String, Arc<Table>>,
    schema: &str,
    name: &str,
    loc: TableLoc,
    reaper: &Arc<reaper::Reaper>,
    retention: Retention,
) {
    let shown = loc.display();
    match load_table(schema, name, loc, reaper, retention) {
        Ok(t) => {
            tables.insert(key(name), Arc::new(t));
        }
        Err(e) => {
            tracing::error!(table = %name, location = %shown, error = %e, "cannot load table")
        }
    }
}

/// The table definition a version carries.
fn definition(name: &str, loc: &TableLoc, manifest: &Manifest) -> Result<TableMeta> {
    TableMeta::from_definition(
        &manifest.definition,
        name,
        &loc.file_display(storage::location::LOG_DIR),
    )
}

/// Turns a table of an earlier release (`_manifest.json`) into a Delta
/// table: the manifest's files become version 0, then the manifest goes.
/// Version 0 appears in one put-if-absent step, so a crash leaves the old
/// form (migrated again at the next start) or the new one (whose leftover
/// manifest the next start removes).
fn migrate(name: &str, loc: &TableLoc) -> Result<Manifest> {
    let dir = &loc.dir;
    let legacy = dir.join(storage::manifest::MANIFEST_FILE);
    let old = Manifest::load_legacy(dir)?;
    let meta = TableMeta::from_definition(&old.definition, name, &legacy.display().to_string())?;
    let files = old.files.clone();
    let count = files.len();
    let manifest = Manifest::create(loc, &meta.layout(), old.definition, files, &[])?;
    storage::sync_tree(dir)?;
    std::fs::remove_file(&legacy).map_err(|e| Error::io(&legacy, e))?;
    storage::sync_dir(dir)?;
    tracing::info!(table = %name, files = count, "migrated the table's manifest to a Delta log (version 0)");
    Ok(manifest)
}

/// Loads one table. A missing or unreadable data file does not fail the
/// load: the table is kept, marked broken, and the file named. (On object
/// storage a file is checked by its listed size: reading every footer
/// would cost a request per file at each start.)
fn load_table(
    schema: &str,
    name: &str,
    loc: TableLoc,
    reaper: &Arc<reaper::Reaper>,
    retention: Retention,
) -> Result<Table> {
    let manifest = match &loc.remote {
        Some(_) => Manifest::load(&loc)?,
        None => {
            let legacy = loc.dir.join(storage::manifest::MANIFEST_FILE);
            if storage::delta::exists(&loc)? {
                // A migration that committed version 0 and stopped before
                // removing the old manifest: the log is the table.
                if legacy.exists() {
                    std::fs::remove_file(&legacy).map_err(|e| Error::io(&legacy, e))?;
                }
                Manifest::load(&loc)?
            } else {
                migrate(name, &loc)?
            }
        }
    };
    let meta = definition(name, &loc, &manifest)?;
    storage::vacuum::sweep(&loc, &manifest, retention.files)?;
    let broken = check_files(name, &loc, &manifest)?;
    Ok(Table::new(
        schema,
        name,
        loc,
        meta,
        manifest,
        broken,
        table::Vacuum {
            reaper: Arc::clone(reaper),
            retention,
        },
    ))
}

/// The first file of `manifest` that is missing or unreadable.
fn check_files(name: &str, loc: &TableLoc, manifest: &Manifest) -> Result<Option<table::Broken>> {
    let listed: BTreeMap<String, u64> = match &loc.remote {
        Some(_) => loc
            .list(storage::location::Files::Data)?
            .into_iter()
            .map(|e| (e.rel, e.size))
            .collect(),
        None => BTreeMap::new(),
    };
    for f in &manifest.files {
        let reason = match &loc.remote {
            Some(_) => match listed.get(&f.path) {
                None => Some("the object does not exist".to_string()),
                Some(&size) if size != f.size => Some(format!(
                    "the object has {size} bytes, the Delta log says {}",
                    f.size
                )),
                Some(_) => None,
            },
            None => storage::verify_file(&loc.dir.join(&f.path)).err(),
        };
        if let Some(reason) = reason {
            let file = loc.file_display(&f.path);
            tracing::error!(table = %name, %file, %reason, "table file is unreadable; the table will report errors");
            return Ok(Some(table::Broken { file, reason }));
        }
    }
    Ok(None)
}
