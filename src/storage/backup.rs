//! The record a finished backup leaves in its directory (`backup.json`):
//! written last, so a directory without it is no backup.

use serde::{Deserialize, Serialize};

/// What a finished backup holds: written last, as `backup.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackupManifest {
    pub name: String,
    /// UTC, RFC 3339.
    pub started: String,
    pub finished: String,
    pub tables: Vec<BackedUp>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BackedUp {
    pub table: String,
    pub version: u64,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
}

/// The file a finished backup's directory holds.
pub const BACKUP_MANIFEST: &str = "backup.json";
