//! Vacuum: when files no version names, and log entries of old versions,
//! are removed. Both wait a retention period, so that a reader of an older
//! version (another engine's query, a time-travel read) still finds its
//! files: a data file goes once it is older than the file retention and no
//! commit within that period removed it (Delta's VACUUM rule); a log entry
//! goes when a checkpoint is written, if it is older than the log
//! retention and its version is before that checkpoint, so the table can
//! always be read from the checkpoint on.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::location::{Entry, Files};
use super::{Manifest, TableLoc, delta};
use crate::error::Result;

/// The retention periods (`cairo.vacuum.file.retention.sec`,
/// `cairo.vacuum.log.retention.days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub files: Duration,
    pub log: Duration,
}

impl Retention {
    /// Nothing kept beyond what readers of this process hold.
    pub const NONE: Retention = Retention {
        files: Duration::ZERO,
        log: Duration::ZERO,
    };
}

fn older_than(e: &Entry, now: SystemTime, period: Duration) -> bool {
    now.duration_since(e.modified).unwrap_or_default() >= period
}

/// Removes the data files `manifest` (the latest version) does not name
/// that are older than `retention` and were not removed by a commit within
/// it: what crashed writes left and what commits retired. Returns how many.
pub fn sweep(loc: &TableLoc, manifest: &Manifest, retention: Duration) -> Result<usize> {
    let live: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let now = SystemTime::now();
    let recent = if retention.is_zero() {
        HashSet::new()
    } else {
        removed_since(loc, now - retention)?
    };
    let doomed: Vec<String> = loc
        .list(Files::Data)?
        .into_iter()
        .filter(|e| {
            !live.contains(e.rel.as_str())
                && !recent.contains(&e.rel)
                && older_than(e, now, retention)
        })
        .map(|e| {
            tracing::info!(file = %loc.file_display(&e.rel), "removing file no version names");
            e.rel
        })
        .collect();
    loc.remove(&doomed)?;
    Ok(doomed.len())
}

/// The version a log entry belongs to (`00000000000000000012.json`,
/// `….checkpoint.parquet`, `….crc`).
fn log_version(rel: &str) -> Option<u64> {
    let name = rel.rsplit('/').next()?;
    let (digits, rest) = name.split_at_checked(20)?;
    rest.starts_with('.').then(|| digits.parse().ok())?
}

/// The paths the `remove` actions of commits written after `since` name.
fn removed_since(loc: &TableLoc, since: SystemTime) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for e in loc.list(Files::Log)? {
        if !e.rel.ends_with(".json") || log_version(&e.rel).is_none() || e.modified < since {
            continue;
        }
        let text = loc.read(&e.rel)?;
        for line in text.split(|b| *b == b'\n') {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(p) = action["remove"]["path"].as_str() {
                out.insert(delta::decode_path(p));
            }
        }
    }
    Ok(out)
}

/// Removes the log entries of versions before `checkpoint` (a version
/// with a checkpoint) that are older than `retention`. Returns how many.
pub fn clean_log(loc: &TableLoc, checkpoint: u64, retention: Duration) -> Result<usize> {
    let now = SystemTime::now();
    let doomed: Vec<String> = loc
        .list(Files::Log)?
        .into_iter()
        .filter(|e| {
            log_version(&e.rel).is_some_and(|v| v < checkpoint) && older_than(e, now, retention)
        })
        .map(|e| e.rel)
        .collect();
    if !doomed.is_empty() {
        tracing::info!(table = %loc.display(), entries = doomed.len(), checkpoint, "removing Delta log entries past their retention");
    }
    loc.remove(&doomed)?;
    Ok(doomed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_versions() {
        assert_eq!(
            log_version("_delta_log/00000000000000000012.json"),
            Some(12)
        );
        assert_eq!(
            log_version("_delta_log/00000000000000000010.checkpoint.parquet"),
            Some(10)
        );
        assert_eq!(log_version("_delta_log/_last_checkpoint"), None);
        assert_eq!(
            log_version("_delta_log/.00000000000000000001.json.x.tmp"),
            None
        );
    }
}
