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

#[derive(Debug, Clone)]
pub struct TableLoc {
    /// Local files: the table itself, or (remote) files not yet uploaded.
    pub dir: PathBuf,
    pub remote: Option<Remote>,
}

impl TableLoc {
    pub fn local(dir: PathBuf) -> TableLoc {
        TableLoc { dir, remote: None }
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

    /// Every data file of the table with its size (not the Delta log).
    pub fn list_files(&self) -> Result<Vec<(String, u64)>> {
        match &self.remote {
            Some(r) => Ok(r
                .bucket
                .list(&r.prefix)?
                .into_iter()
                .filter_map(|(key, size)| {
                    let rel = key
                        .strip_prefix(&r.prefix)?
                        .trim_start_matches('/')
                        .to_string();
                    (!rel.starts_with(super::delta::LOG_DIR) && !rel.starts_with('_'))
                        .then_some((rel, size))
                })
                .collect()),
            None => Err(Error::Internal("list_files is for remote tables".into())),
        }
    }
}
