//! `sys.backup_log`: the finished backups below `cairo.sql.backup.root`,
//! one row per table copied, read from each backup's `backup.json` (a
//! backup killed before it finished has none and is not listed).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SysTable;
use crate::error::Result;
use crate::storage::backup::{BACKUP_MANIFEST, BackupManifest};

#[derive(Debug)]
pub struct BackupLog {
    root: Option<PathBuf>,
    schema: SchemaRef,
}

impl BackupLog {
    pub fn new(root: Option<PathBuf>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("backup", DataType::Utf8, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("started", DataType::Utf8, false),
            Field::new("finished", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("version", DataType::Int64, false),
            Field::new("rows", DataType::Int64, false),
            Field::new("files", DataType::Int64, false),
            Field::new("bytes", DataType::Int64, false),
        ]));
        BackupLog { root, schema }
    }
}

impl SysTable for BackupLog {
    fn name(&self) -> &'static str {
        "backup_log"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let mut backups: Vec<(PathBuf, BackupManifest)> = Vec::new();
        if let Some(root) = &self.root
            && let Ok(dir) = std::fs::read_dir(root)
        {
            for e in dir.flatten() {
                let file = e.path().join(BACKUP_MANIFEST);
                let Ok(text) = std::fs::read(&file) else {
                    continue;
                };
                match serde_json::from_slice::<BackupManifest>(&text) {
                    Ok(m) => backups.push((e.path(), m)),
                    Err(err) => {
                        tracing::warn!(file = %file.display(), "unreadable backup record: {err}")
                    }
                }
            }
        }
        backups.sort_by(|a, b| a.1.started.cmp(&b.1.started));
        let rows: Vec<_> = backups
            .iter()
            .flat_map(|(p, m)| m.tables.iter().map(move |t| (p, m, t)))
            .collect();
        let text = |f: &dyn Fn(
            &(&PathBuf, &BackupManifest, &crate::storage::backup::BackedUp),
        ) -> String| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
        };
        let int = |f: &dyn Fn(&crate::storage::backup::BackedUp) -> i64| {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| f(r.2))))
        };
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                text(&|r| r.1.name.clone()),
                text(&|r| r.0.display().to_string()),
                text(&|r| r.1.started.clone()),
                text(&|r| r.1.finished.clone()),
                text(&|r| r.2.table.clone()),
                int(&|t| t.version as i64),
                int(&|t| t.rows as i64),
                int(&|t| t.files as i64),
                int(&|t| t.bytes as i64),
            ],
        )?)
    }
}
