//! BACKUP TABLE / BACKUP DATABASE (QuestDB's statements): a copy of each
//! table at one Delta version, below `cairo.sql.backup.root`, that opens as
//! a data root of its own (`sluice serve --root <backup>`).
//!
//! Each table's write-ahead log is applied first, so the version holds
//! every acknowledged row; then the files that version names are hard
//! linked (copied across file systems; downloaded for a table on S3) and
//! its log entries copied. Holding
//! the version keeps its files from being vacuumed meanwhile, and no lock
//! is held while files are linked, so imports and queries go on. The copy
//! is built in `.<name>.partial` and renamed into place with its
//! `backup.json` last: a backup killed half-way never looks complete.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::rows::Rows;
use super::{Engine, Output};
use crate::catalog::Table;
use crate::error::{Error, Result};
use crate::sql::ast::Backup;
use crate::storage::backup::{BACKUP_MANIFEST, BackedUp, BackupManifest};
use crate::storage::location::LOG_DIR;

impl Engine {
    pub(super) async fn backup(&self, b: Backup) -> Result<Output> {
        let root = self
            .config
            .backup_root
            .clone()
            .ok_or_else(|| Error::invalid("backups are off: cairo.sql.backup.root is empty"))?;
        let tables: Vec<Arc<Table>> = match &b.tables {
            Some(list) => list.iter().map(|t| self.table(t)).collect::<Result<_>>()?,
            None => self.catalog.tables(),
        };
        let name = match &b.name {
            Some((n, position)) => {
                let plain = !n.is_empty()
                    && !n.starts_with('.')
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if !plain {
                    return Err(Error::Invalid {
                        message: format!(
                            "backup name must be letters, digits, '-', '_' or '.' [name={n}]"
                        ),
                        position: Some(*position),
                    });
                }
                n.clone()
            }
            None => dated_name(&root),
        };
        let target = root.join(&name);
        if target.exists() {
            return Err(Error::invalid(format!(
                "backup already exists [path={}]",
                target.display()
            )));
        }
        let started = chrono::Utc::now();
        for t in &tables {
            self.apply_wal(t).await?;
        }
        let conf = self.config.root.join("conf");
        let tables_done = tokio::task::spawn_blocking(move || -> Result<Vec<BackedUp>> {
            let partial = root.join(format!(".{name}.partial"));
            if partial.exists() {
                std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
            }
            let mut done = Vec::new();
            for t in &tables {
                done.push(copy_table(t, &partial)?);
            }
            if conf.is_dir() {
                copy_dir_files(&conf, &partial.join("conf"))?;
            }
            let manifest = BackupManifest {
                name: name.clone(),
                started: started.to_rfc3339(),
                finished: chrono::Utc::now().to_rfc3339(),
                tables: done,
            };
            let body = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| Error::Internal(e.to_string()))?;
            crate::storage::write_durable(&partial.join(BACKUP_MANIFEST), &body)?;
            crate::storage::sync_dir(&partial)?;
            std::fs::rename(&partial, &target).map_err(|e| Error::io(&target, e))?;
            crate::storage::sync_dir(&root)?;
            tracing::info!(backup = %target.display(), tables = manifest.tables.len(), "backup written");
            Ok(manifest.tables)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        crate::metrics::metrics()
            .backups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = backup_schema();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from_iter_values(
                    tables_done.iter().map(|t| t.table.clone()),
                )),
                Arc::new(Int64Array::from_iter_values(
                    tables_done.iter().map(|t| t.version as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    tables_done.iter().map(|t| t.rows as i64),
                )),
            ],
        )?;
        Ok(Output::Rows(Rows::from_batches(schema, vec![batch])))
    }
}

/// A BACKUP's answer: each table copied, at which version, with its rows.
pub(super) fn backup_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("rows", DataType::Int64, false),
    ]))
}

/// QuestDB's backup names: the date, then `.1`, `.2` … for more that day.
fn dated_name(root: &Path) -> String {
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let taken = |n: &str| root.join(n).exists() || root.join(format!(".{n}.partial")).exists();
    if !taken(&day) {
        return day;
    }
    (1..)
        .map(|i| format!("{day}.{i}"))
        .find(|n| !taken(n))
        .expect("a free name")
}

/// Copies `t` at its current version into `<backup>/db/<schema>/<table>/`:
/// local files linked, a bucket's objects downloaded (the backup of a
/// table on S3 is a local table).
fn copy_table(t: &Table, backup: &Path) -> Result<BackedUp> {
    // Held until the copy ends: the version's files are not vacuumed.
    let state = t.snapshot();
    let manifest = Arc::clone(&state.manifest);
    let dst = backup
        .join("db")
        .join(&t.schema_name)
        .join(table_dir_name(t));
    for f in &manifest.files {
        let to = dst.join(&f.path);
        match &t.loc.remote {
            None => link_or_copy(&t.loc.dir.join(&f.path), &to)?,
            Some(_) => write_new(&to, &t.loc.read(&f.path)?)?,
        }
    }
    // The log up to the version (a later entry would name files not
    // here; `_last_checkpoint` may name a later checkpoint, and readers
    // list the log without it).
    std::fs::create_dir_all(dst.join(LOG_DIR)).map_err(|e| Error::io(&dst, e))?;
    for e in t.loc.list(crate::storage::location::Files::Log)? {
        if crate::storage::vacuum::log_version(&e.rel).is_some_and(|v| v <= manifest.version) {
            write_new(&dst.join(&e.rel), &t.loc.read(&e.rel)?)?;
        }
    }
    crate::storage::sync_tree(&dst)?;
    Ok(BackedUp {
        table: t.display_name(),
        version: manifest.version,
        rows: manifest.row_count(),
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
    })
}

/// The name of `t`'s directory (or prefix) below its schema's.
fn table_dir_name(t: &Table) -> String {
    let rel = match &t.loc.remote {
        Some(r) => r.prefix.trim_end_matches('/').to_string(),
        None => t.loc.dir.display().to_string(),
    };
    rel.rsplit('/').next().unwrap_or_default().to_string()
}

fn write_new(to: &Path, bytes: &[u8]) -> Result<()> {
    let dir = to.parent().expect("a file has a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    std::fs::write(to, bytes).map_err(|e| Error::io(to, e))
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().expect("a file has a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).map_err(|e| Error::io(to, e))?;
    }
    Ok(())
}

fn copy_dir_files(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let e = e.map_err(|e| Error::io(from, e))?;
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))
                .map_err(|err| Error::io(e.path(), err))?;
        }
    }
    Ok(())
}
