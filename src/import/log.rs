//! The import journal behind `sys.text_import_log` and
//! `sys.text_import_errors`: rows kept in memory and appended to JSON-lines
//! files under `<root>/sys/`, so they survive restarts. Retention keeps the
//! newest `cairo.sql.copy.log.retention.days` days that have log rows (as
//! QuestDB counts them: days with rows, not calendar days); error rows go
//! with their import.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MICROS_PER_DAY: i64 = 86_400_000_000;

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

#[derive(Debug)]
struct Store<T> {
    path: PathBuf,
    rows: Vec<T>,
    file: File,
}

impl<T: Serialize + for<'de> Deserialize<'de>> Store<T> {
    /// Loads the rows; a torn last line (crash while appending) is dropped.
    fn open(path: PathBuf) -> Result<Self> {
        let mut rows = Vec::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| Error::io(&path, e))?;
                if let Ok(row) = serde_json::from_str(&line) {
                    rows.push(row);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Store { path, rows, file })
    }

    fn append(&mut self, new: Vec<T>) -> Result<()> {
        let mut text = String::new();
        for r in &new {
            text.push_str(&serde_json::to_string(r).map_err(|e| Error::Internal(e.to_string()))?);
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(&self.path, e))?;
        self.rows.extend(new);
        Ok(())
    }

    /// Rewrites the file with the rows `keep` accepts (atomic rename).
    fn retain(&mut self, keep: impl Fn(&T) -> bool) -> Result<()> {
        let before = self.rows.len();
        self.rows.retain(|r| keep(r));
        if self.rows.len() == before {
            return Ok(());
        }
        let mut text = String::new();
        for r in &self.rows {
            text.push_str(&serde_json::to_string(r).map_err(|e| Error::Internal(e.to_string()))?);
            text.push('\n');
        }
        crate::storage::write_atomic(&self.path, text.as_bytes())?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(())
    }
}

/// The journal of every import.
#[derive(Debug)]
pub struct ImportLog {
    log: Mutex<Store<LogRow>>,
    errors: Mutex<Store<ErrorRow>>,
    retention_days: u32,
}

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl ImportLog {
    pub fn open(dir: &Path, retention_days: u32) -> Result<ImportLog> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let log = ImportLog {
            log: Mutex::new(Store::open(dir.join("text_import_log.jsonl"))?),
            errors: Mutex::new(Store::open(dir.join("text_import_errors.jsonl"))?),
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
        let days: BTreeSet<i64> = log
            .rows
            .iter()
            .map(|r| r.ts.div_euclid(MICROS_PER_DAY))
            .collect();
        let keep: BTreeSet<i64> = days
            .iter()
            .rev()
            .take(self.retention_days as usize)
            .copied()
            .collect();
        log.retain(|r| keep.contains(&r.ts.div_euclid(MICROS_PER_DAY)))?;
        let ids: BTreeSet<String> = log.rows.iter().map(|r| r.id.clone()).collect();
        drop(log);
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
