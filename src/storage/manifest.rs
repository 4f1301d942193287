//! One version of a table as the rest of the engine sees it: the table
//! definition (opaque to storage) and the live Parquet files with their
//! row counts and designated-timestamp ranges. The table's Delta log
//! (`delta`) is where versions are read from and committed to; the
//! `_manifest.json` of earlier releases is only read, to migrate it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Layout, TableLoc, delta};
use crate::error::{Error, Result};

pub const MANIFEST_FILE: &str = "_manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataFile {
    /// Partition directory name (`2010-07-05`, `default`, …).
    pub partition: String,
    /// Path relative to the table directory: `<partition>/<file>.parquet`.
    pub path: String,
    pub rows: u64,
    pub size: u64,
    /// Designated timestamp range (UTC microseconds), when the table has one.
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
}

#[cfg(test)]
impl DataFile {
    /// A file of `rows` rows from `min` to `max` µs, for tests.
    pub fn spanning(path: &str, rows: u64, min: i64, max: i64) -> DataFile {
        DataFile {
            partition: "p".into(),
            path: path.into(),
            rows,
            size: 1,
            min_ts: Some(min),
            max_ts: Some(max),
        }
    }
}

/// How many partitions `files` touch.
pub fn partition_count(files: &[DataFile]) -> usize {
    let mut parts: Vec<&str> = files.iter().map(|f| f.partition.as_str()).collect();
    parts.sort_unstable();
    parts.dedup();
    parts.len()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Bumped on every replacement; names new files uniquely.
    pub version: u64,
    /// The table definition, owned by the catalog.
    pub definition: serde_json::Value,
    pub files: Vec<DataFile>,
}

impl Manifest {
    pub fn new(definition: serde_json::Value) -> Self {
        Manifest {
            version: 0,
            definition,
            files: Vec::new(),
        }
    }

    pub fn row_count(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn partition_count(&self) -> usize {
        partition_count(&self.files)
    }

    /// The files of `self` that `from` does not have.
    pub fn added_since(&self, from: &Manifest) -> Vec<DataFile> {
        let before: std::collections::HashSet<&str> =
            from.files.iter().map(|f| f.path.as_str()).collect();
        self.files
            .iter()
            .filter(|f| !before.contains(f.path.as_str()))
            .cloned()
            .collect()
    }

    /// The paths of `from`'s files that `self` no longer has.
    pub fn removed_since<'a>(&self, from: &'a Manifest) -> std::collections::HashSet<&'a str> {
        let after: std::collections::HashSet<&str> =
            self.files.iter().map(|f| f.path.as_str()).collect();
        from.files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| !after.contains(p))
            .collect()
    }

    /// The table's latest version, from its Delta log.
    pub fn load(loc: &TableLoc) -> Result<Manifest> {
        delta::load(loc)
    }

    /// Creates the table's Delta log, at version 0 holding `files`.
    pub fn create(
        loc: &TableLoc,
        layout: &Layout,
        definition: serde_json::Value,
        files: Vec<DataFile>,
        loads: &[delta::Load],
    ) -> Result<Manifest> {
        delta::create(loc, layout, &definition, &files, loads)
    }

    /// Commits `self` as the version after `from` (the table's current
    /// one); sets `self.version` to the version committed.
    /// Log entries past `log_retention` go when a checkpoint is written.
    pub fn commit(
        &mut self,
        loc: &TableLoc,
        from: &Manifest,
        layout: &Layout,
        log_retention: std::time::Duration,
        loads: &[delta::Load],
    ) -> Result<()> {
        self.version = delta::commit(loc, from, self, layout, log_retention, loads)?;
        Ok(())
    }

    /// Reads the manifest file of a table written before tables were
    /// Delta tables (start-up migrates it).
    pub fn load_legacy(table_dir: &Path) -> Result<Manifest> {
        let path = table_dir.join(MANIFEST_FILE);
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
            table: table_dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            file: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}
