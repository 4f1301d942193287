//! Vacuum: when files no version names, and log entries of old versions,
//! are removed. Both wait a retention period, so that a reader of an older
//! version (another engine's query, a time-travel read) still finds its
//! files: a data file goes once it is older than the file retention and no
//! commit within that period removed it (Delta's VACUUM rule: the commit's
//! `remove`, or once the log entry is gone, the checkpoint's tombstone); a log entry
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
pub(crate) fn log_version(rel: &str) -> Option<u64> {
    let name = rel.rsplit('/').next()?;
    let (digits, rest) = name.split_at_checked(20)?;
    rest.starts_with('.').then(|| digits.parse().ok())?
}

/// The paths files were removed under since `since`: the `remove` actions
/// of the commits written after it, and the tombstones (removes with their
/// deletion time) the newest checkpoint keeps of the commits it replaced,
/// whose log entries may already be gone.
fn removed_since(loc: &TableLoc, since: SystemTime) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let entries = loc.list(Files::Log)?;
    for e in &entries {
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
    let newest = entries
        .iter()
        .filter(|e| e.rel.ends_with(".checkpoint.parquet"))
        .max_by_key(|e| log_version(&e.rel));
    if let Some(cp) = newest {
        let since_ms = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        tombstones(&loc.read(&cp.rel)?, since_ms, &mut out)?;
    }
    Ok(out)
}

/// The `remove` rows of a checkpoint deleted at or after `since_ms`.
fn tombstones(checkpoint: &bytes::Bytes, since_ms: i64, out: &mut HashSet<String>) -> Result<()> {
    use datafusion::arrow::array::{Array, Int64Array, StringArray, StructArray};
    use datafusion::parquet::arrow::ProjectionMask;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder = ParquetRecordBatchReaderBuilder::try_new(checkpoint.clone())?;
    let Some(at) = builder
        .schema()
        .fields()
        .iter()
        .position(|f| f.name() == "remove")
    else {
        return Ok(());
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), [at]);
    for batch in builder.with_projection(mask).build()? {
        let batch = batch?;
        let Some(removes) = batch.column(0).as_any().downcast_ref::<StructArray>() else {
            continue;
        };
        let paths = removes
            .column_by_name("path")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>());
        let times = removes
            .column_by_name("deletionTimestamp")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>());
        let (Some(paths), Some(times)) = (paths, times) else {
            continue;
        };
        for row in 0..removes.len() {
            // A tombstone without a time counts as recent.
            if removes.is_valid(row)
                && paths.is_valid(row)
                && (times.is_null(row) || times.value(row) >= since_ms)
            {
                out.insert(delta::decode_path(paths.value(row)));
            }
        }
    }
    Ok(())
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
