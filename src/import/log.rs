//! The import journal behind `sys.text_import_log`,
//! `sys.text_import_errors` and `sys.copy_history`: rows kept in memory and appended to JSON-lines
//! files under `<root>/sys/`, so they survive restarts. Retention keeps the
//! newest `cairo.sql.copy.log.retention.days` days that have log rows (as
//! QuestDB counts them: days with rows, not calendar days); error and
//! history rows go with their import.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::journal::{Journal, newest_days};

/// A phase of the parallel import, in order. Its text (QuestDB's word) is
/// shown only in `sys.text_import_log`, messages and the journal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    AnalyzeFileStructure,
    BoundaryCheck,
    Indexing,
    PartitionImport,
    AttachPartitions,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::AnalyzeFileStructure => "analyze_file_structure",
            Phase::BoundaryCheck => "boundary_check",
            Phase::Indexing => "indexing",
            Phase::PartitionImport => "partition_import",
            Phase::AttachPartitions => "attach_partitions",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of an import or one of its phases (QuestDB's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Started,
    Finished,
    Failed,
    Cancelled,
    /// A file of the import the table had loaded before (not loaded again).
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }
}

/// One row of `sys.text_import_log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub ts: i64,
    pub id: String,
    pub table_name: String,
    pub file: String,
    pub phase: Option<Phase>,
    pub status: Status,
    pub message: Option<String>,
    pub rows_handled: Option<i64>,
    pub rows_imported: Option<i64>,
    pub errors: i64,
}

/// One row of `sys.text_import_errors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRow {
    pub ts: i64,
    pub id: String,
    /// The file the line is in (a COPY of several names each).
    #[serde(default)]
    pub file: String,
    pub line: i64,
    pub byte_offset: i64,
    pub column_name: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

/// The journal of every import.
/// One row of `sys.copy_history`: a file an import committed (or skipped
/// because the table had loaded it before).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub ts: i64,
    pub id: String,
    pub table_name: String,
    pub file: String,
    pub size: i64,
    /// The file's modification time, UTC microseconds.
    pub modified: i64,
    /// The load ledger's entry for the file (its Delta `txn` appId).
    pub fingerprint: String,
    pub rows_imported: i64,
    /// `finished` (loaded) or `skipped`.
    pub status: Status,
}

#[derive(Debug)]
pub struct ImportLog {
    log: Mutex<Journal<LogRow>>,
    errors: Mutex<Journal<ErrorRow>>,
    history: Mutex<Journal<HistoryRow>>,
    retention_days: u32,
}

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl ImportLog {
    pub fn open(dir: &Path, retention_days: u32) -> Result<ImportLog> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let log = ImportLog {
            log: Mutex::new(Journal::open(dir.join("text_import_log.jsonl"))?),
            errors: Mutex::new(Journal::open(dir.join("text_import_errors.jsonl"))?),
            history: Mutex::new(Journal::open(dir.join("copy_history.jsonl"))?),
            retention_days,
        };
        log.close_interrupted()?;
        log.trim()?;
        Ok(log)
    }

    /// Imports that have no final row were running when the process died:
    /// they get a `failed` row (their table was left as it was).
    fn close_interrupted(&self) -> Result<()> {
        let mut log = self.log.lock().expect("import log lock");
        let mut open: Vec<LogRow> = Vec::new();
        for r in &log.rows {
            if r.phase.is_none() {
                open.retain(|o| o.id != r.id);
                if r.status == Status::Started {
                    open.push(r.clone());
                }
            }
        }
        let ts = now_micros();
        let closing = open
            .into_iter()
            .map(|r| LogRow {
                ts,
                phase: None,
                status: Status::Failed,
                message: Some("import interrupted: the server stopped before it finished".into()),
                rows_handled: Some(0),
                rows_imported: Some(0),
                ..r
            })
            .collect::<Vec<_>>();
        if closing.is_empty() {
            return Ok(());
        }
        log.append(closing)
    }

    pub fn append(&self, row: LogRow) -> Result<()> {
        self.log.lock().expect("import log lock").append(vec![row])
    }

    pub fn append_errors(&self, rows: Vec<ErrorRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.errors.lock().expect("import log lock").append(rows)
    }

    pub fn append_history(&self, rows: Vec<HistoryRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.history.lock().expect("import log lock").append(rows)
    }

    pub fn history_rows(&self) -> Vec<HistoryRow> {
        self.history.lock().expect("import log lock").rows.clone()
    }

    pub fn rows(&self) -> Vec<LogRow> {
        self.log.lock().expect("import log lock").rows.clone()
    }

    pub fn error_rows(&self) -> Vec<ErrorRow> {
        self.errors.lock().expect("import log lock").rows.clone()
    }

    /// The status of the newest row of import `id`.
    pub fn latest_status(&self, id: &str) -> Option<Status> {
        let log = self.log.lock().expect("import log lock");
        log.rows.iter().rev().find(|r| r.id == id).map(|r| r.status)
    }

    /// Applies retention: rows of the newest `retention_days` days that have
    /// rows stay; errors of imports with no log row left go too.
    pub fn trim(&self) -> Result<()> {
        let mut log = self.log.lock().expect("import log lock");
        let keep = newest_days(log.rows.iter().map(|r| r.ts), self.retention_days);
        log.retain(|r| keep.contains(&crate::storage::journal::day_of(r.ts)))?;
        let ids: BTreeSet<String> = log.rows.iter().map(|r| r.id.clone()).collect();
        drop(log);
        self.history
            .lock()
            .expect("import log lock")
            .retain(|h| ids.contains(&h.id))?;
        self.errors
            .lock()
            .expect("import log lock")
            .retain(|e| ids.contains(&e.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, id: &str) -> LogRow {
        LogRow {
            ts,
            id: id.into(),
            table_name: "t".into(),
            file: "f.csv".into(),
            phase: None,
            status: Status::Finished,
            message: None,
            rows_handled: Some(1),
            rows_imported: Some(1),
            errors: 0,
        }
    }

    #[test]
    fn interrupted_imports_are_closed_at_open() {
        let dir = std::env::temp_dir().join(format!("sluice-log-{}", uuid::Uuid::new_v4()));
        {
            let log = ImportLog::open(&dir, 3).unwrap();
            log.append(LogRow {
                status: Status::Started,
                ..row(now_micros(), "a")
            })
            .unwrap();
        }
        let log = ImportLog::open(&dir, 3).unwrap();
        assert_eq!(log.latest_status("a"), Some(Status::Failed));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retention_counts_days_with_rows() {
        let dir = std::env::temp_dir().join(format!("sluice-log-{}", uuid::Uuid::new_v4()));
        for keep in 0..=5u32 {
            let _ = std::fs::remove_dir_all(&dir);
            {
                let log = ImportLog::open(&dir, 100).unwrap();
                for d in 0..5 {
                    log.append(row(d * 28 * 3_600_000_000, &format!("{d}")))
                        .unwrap();
                }
            }
            let log = ImportLog::open(&dir, keep).unwrap();
            assert_eq!(log.rows().len(), keep as usize);
            // And the trimmed file is what a restart reads.
            let again = ImportLog::open(&dir, 100).unwrap();
            assert_eq!(again.rows().len(), keep as usize);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
