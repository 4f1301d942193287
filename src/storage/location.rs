//! Where one table's files live: a local directory, or a prefix in a
//! bucket. New files are always written to a local directory first (the
//! table's own, or for a table on object storage its scratch directory
//! under the work root); a commit uploads them before the Delta version
//! that names them, so a version never names a file that is not there.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::object::Bucket;
use crate::error::{Error, Result};

/// The Delta log directory inside a table directory.
pub const LOG_DIR: &str = "_delta_log";

/// A table on object storage: `s3://<bucket>/<prefix>/`.
#[derive(Debug, Clone)]
pub struct Remote {
    pub bucket: Arc<Bucket>,
    /// The table's key prefix, without a trailing `/`.
    pub prefix: String,
}

impl Remote {
    /// The key of `rel` (a path below the table).
    pub fn key(&self, rel: &str) -> String {
        format!("{}/{rel}", self.prefix)
    }
}

/// The suffixes of QuestDB's detached partition directories: a DETACH
/// leaves `<partition>.detached`; ATTACH takes `<partition>.attachable`.
pub const DETACHED: &str = ".detached";
pub const ATTACHABLE: &str = ".attachable";

#[derive(Debug, Clone)]
pub struct TableLoc {
    /// Local files: the table itself, or (remote) files not yet uploaded.
    pub dir: PathBuf,
    pub remote: Option<Remote>,
    /// The last Delta snapshot read or committed at this root, shared by
    /// the copies of this location (`storage::delta` starts from it).
    pub kept: Arc<KeptSnapshot>,
}

/// A Delta snapshot kept between commits so that the next one reads only
/// the log versions after it. It belongs to one `TableLoc` made for one
/// table: a table dropped, renamed or made again at a root gets a new
/// location, so a snapshot of another table's log is never reused.
#[derive(Debug, Default)]
pub struct KeptSnapshot(pub std::sync::Mutex<Option<delta_kernel::SnapshotRef>>);

impl TableLoc {
    pub fn local(dir: PathBuf) -> TableLoc {
        TableLoc::new(dir, None)
    }

    pub fn new(dir: PathBuf, remote: Option<Remote>) -> TableLoc {
        TableLoc {
            dir,
            remote,
            kept: Default::default(),
        }
    }

    /// The table's URL, as Delta readers are pointed at it (with `/`).
    pub fn url(&self) -> Result<url::Url> {
        match &self.remote {
            Some(r) => url::Url::parse(&format!(
                "{}/{}/",
                r.bucket.url.as_str().trim_end_matches('/'),
                r.prefix
            ))
            .map_err(|e| Error::Internal(e.to_string())),
            None => {
                let abs = std::path::absolute(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
                url::Url::from_directory_path(&abs)
                    .map_err(|()| Error::Internal(format!("not a table path: {}", abs.display())))
            }
        }
    }

    /// The location for messages: a path or an `s3://` URL.
    pub fn display(&self) -> String {
        match &self.remote {
            Some(r) => format!(
                "{}/{}",
                r.bucket.url.as_str().trim_end_matches('/'),
                r.prefix
            ),
            None => self.dir.display().to_string(),
        }
    }

    /// A file of the table as a reader names it: a local path or a URL.
    pub fn file_display(&self, rel: &str) -> String {
        match &self.remote {
            Some(_) => format!("{}/{rel}", self.display()),
            None => self.dir.join(rel).display().to_string(),
        }
    }

    /// Whether the object or file `rel` exists.
    pub fn exists(&self, rel: &str) -> Result<bool> {
        match &self.remote {
            Some(r) => r.bucket.exists(&r.key(rel)),
            None => Ok(self.dir.join(rel).exists()),
        }
    }

    /// The whole file `rel`.
    pub fn read(&self, rel: &str) -> Result<Bytes> {
        match &self.remote {
            Some(r) => r.bucket.get(&r.key(rel)),
            None => {
                let path = self.dir.join(rel);
                std::fs::read(&path)
                    .map(Bytes::from)
                    .map_err(|e| Error::io(&path, e))
            }
        }
    }

    /// Uploads the local files `rels` (remote tables; nothing to do for a
    /// local one).
    pub fn upload(&self, rels: &[&str]) -> Result<()> {
        let Some(r) = &self.remote else { return Ok(()) };
        let files = rels
            .iter()
            .map(|rel| (self.dir.join(rel), r.key(rel)))
            .collect();
        r.bucket.upload(files)
    }

    /// Removes the local copies of `rels` once uploaded (remote tables).
    pub fn drop_local_copies(&self, rels: &[&str]) {
        if self.remote.is_some() {
            for rel in rels {
                let _ = std::fs::remove_file(self.dir.join(rel));
            }
        }
    }

    /// The files of the table (`Files::Data`: below the partition
    /// directories; `Files::Log`: the Delta log), paths relative to the
    /// table.
    pub fn list(&self, which: Files) -> Result<Vec<Entry>> {
        let log = |rel: &str| rel.starts_with(&format!("{}/", LOG_DIR));
        let keep = |rel: &str| match which {
            Files::Log => log(rel),
            // Markers (`_sluice_…`), hidden names and detached partitions
            // (`<partition>.detached`, `.attachable`) are not data files.
            Files::Data => {
                let top = rel.split('/').next().unwrap_or_default();
                !log(rel)
                    && !rel.starts_with('_')
                    && !rel.starts_with('.')
                    && !top.ends_with(DETACHED)
                    && !top.ends_with(ATTACHABLE)
            }
        };
        match &self.remote {
            Some(r) => Ok(r
                .bucket
                .list(&match which {
                    Files::Log => r.key(LOG_DIR),
                    Files::Data => r.prefix.clone(),
                })?
                .into_iter()
                .filter_map(|o| {
                    let rel = o
                        .key
                        .strip_prefix(&r.prefix)?
                        .trim_start_matches('/')
                        .to_string();
                    keep(&rel).then_some(Entry {
                        rel,
                        size: o.size,
                        modified: o.modified,
                    })
                })
                .collect()),
            None => {
                let mut out = Vec::new();
                let dirs = match which {
                    Files::Log => vec![(self.dir.join(LOG_DIR), LOG_DIR.to_string())],
                    Files::Data => vec![(self.dir.clone(), String::new())],
                };
                for (dir, base) in dirs {
                    walk(&dir, &base, 2, &mut out)?;
                }
                out.retain(|e| keep(&e.rel));
                Ok(out)
            }
        }
    }

    /// Removes the files `rels` (a missing one is no error); a local
    /// partition directory left empty goes too.
    pub fn remove(&self, rels: &[String]) -> Result<()> {
        match &self.remote {
            Some(r) => r.bucket.delete(rels.iter().map(|rel| r.key(rel)).collect()),
            None => {
                let mut dirs = std::collections::BTreeSet::new();
                for rel in rels {
                    let path = self.dir.join(rel);
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(&path, e)),
                    }
                    if let Some((dir, _)) = rel.rsplit_once('/') {
                        dirs.insert(dir.to_string());
                    }
                }
                for dir in dirs {
                    // Fails (and is left) while the directory has files.
                    let _ = std::fs::remove_dir(self.dir.join(dir));
                }
                Ok(())
            }
        }
    }
}

/// Which files of a table to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    Data,
    Log,
}

/// One listed file of a table.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The path relative to the table.
    pub rel: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// Files below `dir` down to `depth` levels, named `base/…`.
fn walk(dir: &std::path::Path, base: &str, depth: u32, out: &mut Vec<Entry>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let rel = if base.is_empty() {
            name
        } else {
            format!("{base}/{name}")
        };
        let meta = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
        if meta.is_dir() {
            if depth > 1 {
                walk(&entry.path(), &rel, depth - 1, out)?;
            }
        } else {
            out.push(Entry {
                rel,
                size: meta.len(),
                modified: meta.modified().map_err(|e| Error::io(entry.path(), e))?,
            });
        }
    }
    Ok(())
}
