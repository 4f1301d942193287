//! The table manifest `_manifest.json`: the table definition (opaque to
//! storage) and the list of live Parquet files with their row counts and
//! designated-timestamp ranges. It is the single source of truth for what a
//! table holds, and it is only ever replaced whole and atomically.

use std::path::Path;

use serde::{Deserialize, Serialize};

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
        let mut parts: Vec<&str> = self.files.iter().map(|f| f.partition.as_str()).collect();
        parts.sort_unstable();
        parts.dedup();
        parts.len()
    }

    pub fn load(table_dir: &Path) -> Result<Manifest> {
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

    /// Replaces the manifest of `table_dir` atomically and durably.
    pub fn store(&self, table_dir: &Path) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        super::write_atomic(&table_dir.join(MANIFEST_FILE), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_then_load_round_trips() {
        let dir = std::env::temp_dir().join(format!("sluice-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut m = Manifest::new(serde_json::json!({"k": 1}));
        m.files.push(DataFile {
            partition: "2020-01-01".into(),
            path: "2020-01-01/1.parquet".into(),
            rows: 3,
            size: 10,
            min_ts: Some(1),
            max_ts: Some(2),
        });
        m.store(&dir).unwrap();
        let back = Manifest::load(&dir).unwrap();
        assert_eq!(back.files, m.files);
        assert!(!dir.join("_manifest.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
