//! The export journal behind `sys.copy_export_log`: one row per export
//! start and end and per phase start and end, kept across restarts in
//! `<root>/sys/copy_export_log.jsonl` and trimmed like the import log
//! (`cairo.sql.copy.log.retention.days` days that have rows).

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::import::log::{Status, now_micros};
use crate::storage::journal::{Journal, day_of, newest_days};

/// A phase of an export (QuestDB's words, shown only in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportPhase {
    /// The export as a whole: its first and last rows.
    None,
    /// Rows are read and written as Parquet files in scratch space.
    ConvertingPartitions,
    /// The finished directory is renamed into place.
    MoveFiles,
    /// The export's final row when it succeeded.
    Success,
}

impl ExportPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportPhase::None => "none",
            ExportPhase::ConvertingPartitions => "converting_partitions",
            ExportPhase::MoveFiles => "move_files",
            ExportPhase::Success => "success",
        }
    }
}

/// One row of `sys.copy_export_log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRow {
    pub ts: i64,
    pub id: String,
    /// The source table, or `query` for `COPY (SELECT …) TO`.
    pub table_name: String,
    /// The destination directory as the statement wrote it.
    pub export_path: String,
    pub num_exported_files: i64,
    pub num_exported_rows: i64,
    pub phase: ExportPhase,
    pub status: Status,
    pub message: Option<String>,
    pub errors: i64,
}

#[derive(Debug)]
pub struct ExportLog {
    rows: Mutex<Journal<ExportRow>>,
    retention_days: u32,
}

impl ExportLog {
    pub fn open(dir: &Path, retention_days: u32) -> Result<ExportLog> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let log = ExportLog {
            rows: Mutex::new(Journal::open(dir.join("copy_export_log.jsonl"))?),
            retention_days,
        };
        log.close_interrupted()?;
        log.trim()?;
        Ok(log)
    }

    /// Exports without a final row were running when the process died:
    /// they get a `failed` row (their scratch is removed at start-up; the
    /// destination was never created).
    fn close_interrupted(&self) -> Result<()> {
        let mut log = self.rows.lock().expect("export log lock");
        let mut open: Vec<ExportRow> = Vec::new();
        for r in &log.rows {
            if r.phase == ExportPhase::None || r.phase == ExportPhase::Success {
                open.retain(|o| o.id != r.id);
                if r.status == Status::Started {
                    open.push(r.clone());
                }
            }
        }
        let ts = now_micros();
        let closing: Vec<ExportRow> = open
            .into_iter()
            .map(|r| ExportRow {
                ts,
                status: Status::Failed,
                message: Some("export interrupted: the server stopped before it finished".into()),
                errors: 1,
                ..r
            })
            .collect();
        if closing.is_empty() {
            return Ok(());
        }
        log.append(closing)
    }

    pub fn append(&self, row: ExportRow) -> Result<()> {
        self.rows.lock().expect("export log lock").append(vec![row])
    }

    pub fn rows(&self) -> Vec<ExportRow> {
        self.rows.lock().expect("export log lock").rows.clone()
    }

    /// The status of the newest row of export `id`.
    pub fn latest_status(&self, id: &str) -> Option<Status> {
        let log = self.rows.lock().expect("export log lock");
        log.rows.iter().rev().find(|r| r.id == id).map(|r| r.status)
    }

    fn trim(&self) -> Result<()> {
        let mut log = self.rows.lock().expect("export log lock");
        let keep = newest_days(log.rows.iter().map(|r| r.ts), self.retention_days);
        log.retain(|r| keep.contains(&day_of(r.ts)))
    }
}
