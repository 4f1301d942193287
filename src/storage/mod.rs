//! Storage of tables, on local disk or in an S3 bucket: time partitions of
//! sorted Parquet files and one Delta log per table that names the live
//! files (docs/storage.md, "Tables are Delta tables").
//!
//! Storage knows Arrow schemas, partition units and files; it knows nothing
//! of SQL, column type names or protocols. Every change of a table goes the
//! same way: new Parquet files are written under new names, then one Delta
//! version that adds and removes files is committed (put-if-absent). A
//! crash at any moment therefore leaves the version before or the version
//! after, and files that no version names are vacuumed after the retention
//! period.

pub mod backup;
pub mod delta;
pub mod dictionary;
pub mod files;
pub mod journal;
pub mod location;
pub mod manifest;
pub mod object;
pub mod vacuum;
pub mod wal;
pub mod wal_rows;

pub use files::{FileWriter, Layout, conform, conform_logged, read_files, verify_file, write_rows};
pub use location::{Remote, TableLoc};
pub use manifest::{DataFile, Manifest};
pub use object::{Bucket, S3Url};
pub use vacuum::Retention;

use std::path::Path;

use crate::error::{Error, Result};

/// Makes every file and directory below `dir` durable. On Linux one
/// `syncfs` flushes the whole file system in one journal commit, which for
/// an import of thousands of partition files is seconds faster than an
/// fsync per file and per directory; elsewhere each is fsynced.
pub fn sync_tree(dir: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
        // SAFETY: syncfs takes an open descriptor, which `f` owns until the
        // end of this block; it does not touch memory.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(Error::io(dir, std::io::Error::last_os_error()));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.is_dir() {
                sync_tree(&path)?;
            } else {
                let f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                f.sync_all().map_err(|e| Error::io(&path, e))?;
            }
        }
        sync_dir(dir)
    }
}

/// The one atomic, durable file replacement: `bytes` go to a temporary
/// file of this call's own (`.<name>.<uuid>.tmp`), which is fsynced, renamed over `path`, and the directory fsynced. A
/// crash at any moment leaves the old file or the new one, never a mix.
/// (The bulk-job list and the import journal's retention use it.)
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    // A name of its own per call: two writers of one file must not share
    // (and truncate, or rename away) each other's temporary file.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let tmp = dir.join(tmp_name);
    if let Err(e) = write_durable(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    sync_dir(dir)
}

/// Writes `bytes` to a new file `path` and fsyncs it.
pub fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// fsyncs a directory so that a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_atomic_writes_of_one_file_all_land_whole() {
        let dir = std::env::temp_dir().join(format!("sluice-write-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jobs.json");
        let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for p in &payloads {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, p).unwrap();
                    }
                });
            }
        });
        let last = std::fs::read(&path).unwrap();
        assert!(payloads.contains(&last), "a mix of writers' bytes landed");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("jobs.json")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
