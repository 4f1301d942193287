//! What a table's files hold of one text column, read from their
//! dictionary pages: LATEST ON uses it to read only the newest files that
//! hold every key.

use super::Table;
use crate::error::Result;
use crate::storage::dictionary::{Distinct, distinct_text};

/// One live file: its designated timestamp range and the distinct values
/// of the column asked for.
#[derive(Debug, Clone)]
pub struct FileKeys {
    pub min_ts: i64,
    pub max_ts: i64,
    pub keys: Distinct,
}

impl Table {
    /// The live files newest first (by their newest row) with the distinct
    /// values of `column`, or None when a scan is the only way to know: the
    /// table is on object storage, a file has no timestamp range, the
    /// column of a file is not wholly dictionary encoded or has more than
    /// `cap` values, the files hold more than `max_held` values between
    /// them (the memory this takes), or the table has more than
    /// `max_files` files (each is opened). Reads a dictionary page per row
    /// group.
    pub fn file_keys(
        &self,
        column: &str,
        cap: usize,
        max_held: usize,
        max_files: usize,
    ) -> Result<Option<Vec<FileKeys>>> {
        if self.loc.remote.is_some() {
            return Ok(None);
        }
        self.refresh()?;
        let snapshot = self.snapshot();
        if snapshot.manifest.files.len() > max_files {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(snapshot.manifest.files.len());
        let mut held = 0;
        for f in &snapshot.manifest.files {
            let (Some(min_ts), Some(max_ts)) = (f.min_ts, f.max_ts) else {
                return Ok(None);
            };
            let Some(keys) = distinct_text(&self.loc.dir.join(&f.path), column, cap)? else {
                return Ok(None);
            };
            held += keys.len();
            if held > max_held {
                return Ok(None);
            }
            out.push(FileKeys {
                min_ts,
                max_ts,
                keys,
            });
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.max_ts));
        Ok(Some(out))
    }
}
