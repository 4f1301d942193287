//! BACKUP TABLE / BACKUP DATABASE (QuestDB's statements): a copy of each
//! table at one Delta version, below `cairo.sql.backup.root`, that opens as
//! a data root of its own (`sluice serve --root <backup>`).
//!
//! Each table's write-ahead log is applied first, so the version holds
//! every acknowledged row; then the files that version names are hard
//! linked (copied across file systems) and its log entries copied. Holding
//! the version keeps its files from being vacuumed meanwhile, and no lock
//! is held while files are linked, so imports and queries go on. The copy
//! is built in `.<name>.partial` and renamed into place with its
//! `backup.json` last: a backup killed half-way never looks complete.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::rows::Rows;
use super::{Engine, Output};
use crate::catalog::Table;
use crate::error::{Error, Result};
use crate::sql::ast::Backup;
use crate::storage::backup::{BACKUP_MANIFEST, BackedUp, BackupManifest};
use crate::storage::delta::LOG_DIR;

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
        if let Some(t) = tables.iter().find(|t| t.loc.remote.is_some()) {
            return Err(Error::unsupported(format!(
                "BACKUP of tables on object storage is not supported [table={}]",
                t.display_name()
            )));
        }
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

/// Copies `t` at its current version into `<backup>/db/<schema>/<table>/`.
fn copy_table(t: &Table, backup: &Path) -> Result<BackedUp> {
    // Held until the copy ends: the version's files are not vacuumed.
    let state = t.snapshot();
    let manifest = Arc::clone(&state.manifest);
    let src = &t.loc.dir;
    let rel: PathBuf = src
        .iter()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let dst = backup.join("db").join(rel);
    for f in &manifest.files {
        link_or_copy(&src.join(&f.path), &dst.join(&f.path))?;
    }
    // The log up to the version (a later entry would name files not here).
    let log = src.join(LOG_DIR);
    let dst_log = dst.join(LOG_DIR);
    std::fs::create_dir_all(&dst_log).map_err(|e| Error::io(&dst_log, e))?;
    for e in std::fs::read_dir(&log).map_err(|e| Error::io(&log, e))? {
        let e = e.map_err(|e| Error::io(&log, e))?;
        let file = e.file_name().to_string_lossy().to_string();
        let keep = match crate::storage::vacuum::log_version(&format!("{LOG_DIR}/{file}")) {
            Some(v) => v <= manifest.version,
            // `_last_checkpoint` may name a later checkpoint: readers list
            // the log without it.
            None => false,
        };
        if keep {
            std::fs::copy(e.path(), dst_log.join(&file)).map_err(|err| Error::io(e.path(), err))?;
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
