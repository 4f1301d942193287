//! Why an import stops ([`ImportError`]) and why one record or field is
//! refused ([`RowError`], collected by the [`ErrorSink`] for
//! `sys.text_import_errors`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::csv;
use super::log::Phase;

/// Why an import stopped. The text is what the log's `message` shows.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Raised by the coordinator (open, structure, validation).
    #[error("{message}")]
    Setup { message: String },
    /// A phase task failed.
    #[error("import failed [phase={phase}, msg=`{message}`]")]
    Phase { phase: Phase, message: String },
    #[error("import cancelled [phase={phase}, msg=`Cancelled`]")]
    Cancelled { phase: Phase },
    #[error("import was cancelled")]
    SerialCancelled,
    /// The file holds no record at all (only line breaks, a BOM or lines
    /// SKIP skipped): an import of nothing, which finishes.
    #[error("empty file: nothing to import")]
    Empty,
}

impl ImportError {
    pub fn setup(message: impl Into<String>) -> Self {
        ImportError::Setup {
            message: message.into(),
        }
    }

    pub fn is_cancel(&self) -> bool {
        matches!(
            self,
            ImportError::Cancelled { .. } | ImportError::SerialCancelled
        )
    }
}

/// A rejected row or field, before its line number is known.
#[derive(Debug, Clone)]
pub struct RowError {
    pub offset: u64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl RowError {
    /// The text an ABORT fails with: where the record is and why.
    pub fn abort_text(&self, file: &str, buf: &[u8]) -> String {
        let line = csv::line_numbers(buf, &[self.offset])[0];
        format!(
            "bad syntax [file={file}, line={line}, offset={}, column={}, value='{}']: {}",
            self.offset,
            self.column.as_deref().unwrap_or(""),
            self.value.as_deref().unwrap_or(""),
            self.message
        )
    }
}

/// Error rows of one import: every one is counted, the first
/// `max_recorded_errors` are kept for `sys.text_import_errors`.
#[derive(Debug)]
pub struct ErrorSink {
    pub(super) kept: Mutex<Vec<RowError>>,
    count: AtomicU64,
    max: usize,
    /// Exact error count per column name (rows with no column are not here).
    per_column: Mutex<std::collections::HashMap<String, u64>>,
}

impl ErrorSink {
    pub(super) fn new(max: usize) -> Self {
        ErrorSink {
            kept: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
            max,
            per_column: Mutex::new(Default::default()),
        }
    }

    pub fn push(&self, e: RowError) {
        if let Some(c) = &e.column {
            *self
                .per_column
                .lock()
                .expect("error sink")
                .entry(c.clone())
                .or_default() += 1;
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if (n as usize) < self.max {
            self.kept.lock().expect("error sink").push(e);
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Errors per column name.
    pub fn per_column(&self) -> std::collections::HashMap<String, u64> {
        self.per_column.lock().expect("error sink").clone()
    }

    /// Counts another sink's errors as this one's (the files of a COPY of
    /// several each have their own).
    pub fn absorb(&self, other: &ErrorSink) {
        self.count.fetch_add(other.count(), Ordering::Relaxed);
        let mut mine = self.per_column.lock().expect("error sink");
        for (c, n) in other.per_column() {
            *mine.entry(c).or_default() += n;
        }
    }

    /// How many more rows may be kept.
    pub fn room(&self) -> usize {
        self.max.saturating_sub(self.count() as usize)
    }

    /// Forgets the errors after the first `n` (a phase that starts over).
    pub fn rewind(&self, n: u64) {
        if n == 0 {
            self.per_column.lock().expect("error sink").clear();
        }
        self.count.store(n, Ordering::Relaxed);
        self.kept
            .lock()
            .expect("error sink")
            .truncate((n as usize).min(self.max));
    }
}

/// Shortens a bad value for messages and the errors table.
pub fn shown_value(raw: &[u8]) -> String {
    const MAX: usize = 256;
    let s = String::from_utf8_lossy(&raw[..raw.len().min(MAX)]).into_owned();
    if raw.len() > MAX {
        format!("{s}…")
    } else {
        s
    }
}
