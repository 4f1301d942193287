//! The catalog: schemas and tables on disk under `<root>/db/<schema>/<table>/`,
//! their definitions, and the DataFusion table provider that reads them.
//!
//! Start-up loads every table from its Delta log (migrating a
//! `_manifest.json` of an earlier release), checks that each file the
//! latest version names is present and readable, and removes files no
//! version names. A table that
//! fails the check stays listed and answers every query with an error that
//! names the file; the other tables work.

pub mod compactor;
pub mod meta;
pub mod name;
pub mod provider;
mod reaper;
pub mod table;
pub mod types;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use meta::{ColumnMeta, TableMeta, quote_ident};
pub use name::NameKind;
pub use table::{AppendTxn, CompactionPolicy, Table};
pub use types::ColumnType;
pub use values::{parse_ipv4, parse_uuid};

use crate::error::{Error, Result};
use crate::storage::{self, DataFile, Manifest};

pub const DEFAULT_SCHEMA: &str = "public";
/// The one database clients connect to (DataFusion's catalog name).
pub const DATABASE: &str = "qdb";
/// The virtual, read-only schema of system tables.
pub const SYS_SCHEMA: &str = "sys";

#[derive(Debug)]
pub struct Catalog {
    db_root: PathBuf,
    schemas: RwLock<BTreeMap<String, BTreeMap<String, Arc<Table>>>>,
    /// The one remover of retired files and dropped tables.
    reaper: Arc<reaper::Reaper>,
}

impl Catalog {
    /// Opens (creating if needed) the catalog under `db_root`.
    pub fn open(db_root: &Path) -> Result<Catalog> {
        std::fs::create_dir_all(db_root.join(DEFAULT_SCHEMA)).map_err(|e| Error::io(db_root, e))?;
        let reaper = Arc::new(reaper::Reaper::start());
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
                match load_table(&schema, &name, &table_dir, &reaper) {
                    Ok(t) => {
                        tables.insert(name, Arc::new(t));
                    }
                    Err(e) => {
                        tracing::error!(table = %name, dir = %table_dir.display(), error = %e, "cannot load table")
                    }
                }
            }
            schemas.insert(schema, tables);
        }
        Ok(Catalog {
            db_root: db_root.to_path_buf(),
            schemas: RwLock::new(schemas),
            reaper,
        })
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
            .map(|t| t.keys().cloned().collect())
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
            .get(name)
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
        let dir = self.db_root.join(schema);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        storage::sync_dir(&self.db_root)?;
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
        let schema_dir = self.db_root.join(schema);
        let tmp = schema_dir.join(format!(
            ".{name}.creating-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let table = self.install(tables, schema, name, meta, &tmp, Vec::new())?;
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
            .db_root
            .join(schema)
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
    ) -> Result<Arc<Table>> {
        let mut schemas = self.schemas.write().expect("catalog lock");
        let tables = free_slot(&mut schemas, schema, name, &meta)?;
        self.install(tables, schema, name, meta, staging, files)
    }

    /// Writes the manifest into `tmp` and renames it to the table's name.
    fn install(
        &self,
        tables: &mut BTreeMap<String, Arc<Table>>,
        schema: &str,
        name: &str,
        meta: TableMeta,
        tmp: &Path,
        files: Vec<DataFile>,
    ) -> Result<Arc<Table>> {
        let schema_dir = self.db_root.join(schema);
        let definition = serde_json::to_value(&meta).map_err(|e| Error::Internal(e.to_string()))?;
        let manifest = Manifest::create(tmp, &meta.layout(), definition, files)?;
        storage::sync_tree(tmp)?;
        let dir = schema_dir.join(name);
        std::fs::rename(tmp, &dir).map_err(|e| Error::io(&dir, e))?;
        storage::sync_dir(&schema_dir)?;
        let table = Arc::new(Table::new(
            schema,
            name,
            dir,
            meta,
            manifest,
            None,
            Arc::clone(&self.reaper),
        ));
        tables.insert(name.to_string(), Arc::clone(&table));
        Ok(table)
    }

    /// Drops a table: its directory is first renamed away (atomic), then
    /// removed. Returns false when it did not exist.
    pub fn drop_table(&self, schema: &str, name: &str) -> Result<bool> {
        let mut schemas = self.schemas.write().expect("catalog lock");
        let Some(tables) = schemas.get_mut(schema) else {
            return Ok(false);
        };
        let Some(table) = tables.remove(name) else {
            return Ok(false);
        };
        let schema_dir = self.db_root.join(schema);
        let gone = schema_dir.join(format!(".{name}.dropped-{}", uuid::Uuid::new_v4().simple()));
        std::fs::rename(&table.dir, &gone).map_err(|e| Error::io(&table.dir, e))?;
        storage::sync_dir(&schema_dir)?;
        // Queries already running may still hold a snapshot of the table:
        // the reaper removes the directory once none does.
        self.reaper.retire_after(vec![gone], table.readers());
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
        if tables.contains_key(to) {
            return Err(Error::TableExists { table: to.into() });
        }
        let table = tables
            .get(from)
            .cloned()
            .ok_or_else(|| Error::TableNotFound {
                table: from.into(),
                position: None,
            })?;
        let dir = self.db_root.join(schema).join(to);
        std::fs::rename(&table.dir, &dir).map_err(|e| Error::io(&table.dir, e))?;
        storage::sync_dir(&self.db_root.join(schema))?;
        let state = table.snapshot();
        let renamed = Table::new(
            schema,
            to,
            dir,
            state.meta,
            (*state.manifest).clone(),
            state.broken,
            Arc::clone(&self.reaper),
        );
        tables.remove(from);
        tables.insert(to.to_string(), Arc::new(renamed));
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
    if tables.contains_key(name) {
        return Err(Error::TableExists { table: name.into() });
    }
    Ok(tables)
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

/// The table definition a version carries.
fn definition(name: &str, dir: &Path, manifest: &Manifest) -> Result<TableMeta> {
    TableMeta::from_definition(
        &manifest.definition,
        name,
        &dir.join(storage::delta::LOG_DIR),
    )
}

/// Turns a table of an earlier release (`_manifest.json`) into a Delta
/// table: the manifest's files become version 0, then the manifest goes.
/// Version 0 appears in one put-if-absent step, so a crash leaves the old
/// form (migrated again at the next start) or the new one (whose leftover
/// manifest the next start removes).
fn migrate(name: &str, dir: &Path) -> Result<Manifest> {
    let legacy = dir.join(storage::manifest::MANIFEST_FILE);
    let old = Manifest::load_legacy(dir)?;
    let meta = TableMeta::from_definition(&old.definition, name, &legacy)?;
    let files = old.files.clone();
    let count = files.len();
    let manifest = Manifest::create(dir, &meta.layout(), old.definition, files)?;
    storage::sync_tree(dir)?;
    std::fs::remove_file(&legacy).map_err(|e| Error::io(&legacy, e))?;
    storage::sync_dir(dir)?;
    tracing::info!(table = %name, files = count, "migrated the table's manifest to a Delta log (version 0)");
    Ok(manifest)
}

/// Loads one table directory. A missing or unreadable data file does not
/// fail the load: the table is kept, marked broken, and the file named.
fn load_table(schema: &str, name: &str, dir: &Path, reaper: &Arc<reaper::Reaper>) -> Result<Table> {
    let legacy = dir.join(storage::manifest::MANIFEST_FILE);
    let manifest = if storage::delta::exists(dir) {
        // A migration that committed version 0 and stopped before removing
        // the old manifest: the log is the table.
        if legacy.exists() {
            std::fs::remove_file(&legacy).map_err(|e| Error::io(&legacy, e))?;
        }
        Manifest::load(dir)?
    } else {
        migrate(name, dir)?
    };
    let meta = definition(name, dir, &manifest)?;
    storage::remove_orphans(dir, &manifest)?;
    let mut broken = None;
    for f in &manifest.files {
        let path = dir.join(&f.path);
        if let Err(reason) = storage::verify_file(&path) {
            tracing::error!(table = %name, file = %path.display(), %reason, "table file is unreadable; the table will report errors");
            broken = Some(table::Broken {
                file: path.display().to_string(),
                reason,
            });
            break;
        }
    }
    Ok(Table::new(
        schema,
        name,
        dir.to_path_buf(),
        meta,
        manifest,
        broken,
        Arc::clone(reaper),
    ))
}
