//! Object storage: one S3-compatible bucket, reached through the
//! `object_store` crate DataFusion reads with, configured the way the AWS
//! tools are (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …).
//!
//! The rest of storage is synchronous (importer threads, the compactor,
//! commits under a table's lock), so each operation here blocks on the
//! storage runtime shared with the Delta kernel. Writes that must not
//! overwrite (a Delta version) use the store's conditional put.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

use crate::error::{Error, Result};

/// Storage I/O runs on its own small runtime: callers block on it from any
/// thread, a server worker included, and a Delta checkpoint (which waits
/// on I/O from inside the kernel's tasks) needs more than one thread.
pub(super) static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("storage-io")
        .enable_all()
        .build()
        .expect("the storage I/O runtime")
});

/// Runs `f` on the storage runtime and waits for it.
pub fn block_on<F>(f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = RUNTIME.spawn(f);
    futures::executor::block_on(task).expect("a storage task panicked")
}

/// Uploads of one commit run this many files at a time; a file over
/// [`PART`] goes up in parts of that size, [`PART_CONCURRENCY`] at once.
/// Memory held: at most `UPLOADS x PART_CONCURRENCY x PART` (128 MiB).
const UPLOADS: usize = 4;
const PART: usize = 16 << 20;
const PART_CONCURRENCY: usize = 2;

/// One listed object.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// One bucket (`s3://bucket`) and its client.
pub struct Bucket {
    /// `s3://bucket`: what DataFusion registers the store under.
    pub url: url::Url,
    pub store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("url", &self.url.as_str())
            .finish()
    }
}

/// A parsed `s3://bucket/prefix` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl S3Url {
    /// Parses `s3://bucket[/prefix]` (also `s3a://`); `None` for anything
    /// else. A prefix may not contain `.` or `..` segments.
    pub fn parse(text: &str) -> Option<std::result::Result<S3Url, String>> {
        let rest = text
            .strip_prefix("s3://")
            .or_else(|| text.strip_prefix("s3a://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(format!("no bucket name in {text}")));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|s| s == "." || s == ".." || (s.is_empty() && !prefix.is_empty()))
        {
            return Some(Err(format!(
                "'.', '..' and empty segments are not allowed [url={text}]"
            )));
        }
        Some(Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }

    /// Whether `other` lies at or below this location.
    pub fn contains(&self, other: &S3Url) -> bool {
        self.bucket == other.bucket
            && (self.prefix.is_empty()
                || other.prefix == self.prefix
                || other.prefix.starts_with(&format!("{}/", self.prefix)))
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

fn store_err(bucket: &Bucket, key: &str) -> impl Fn(object_store::Error) -> Error {
    let url = format!("{}/{key}", bucket.url.as_str().trim_end_matches('/'));
    move |e| Error::ObjectStore {
        url: url.clone(),
        reason: e.to_string(),
    }
}

impl Bucket {
    /// The client of `bucket`, configured from the environment.
    pub fn open(bucket: &str) -> Result<Arc<Bucket>> {
        let url = url::Url::parse(&format!("s3://{bucket}")).map_err(|e| Error::Config {
            key: "cairo.root".into(),
            value: bucket.into(),
            message: e.to_string(),
        })?;
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| Error::ObjectStore {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let store: Arc<dyn ObjectStore> = Arc::new(store);
        Ok(Arc::new(Bucket { url, store }))
    }

    /// Every object below `prefix/` (recursively).
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let store = Arc::clone(&self.store);
        let p = Key::from(prefix);
        let got = block_on(async move {
            store
                .list(Some(&p))
                .map_ok(|m| Listed {
                    key: m.location.to_string(),
                    size: m.size,
                    modified: m.last_modified.into(),
                })
                .try_collect::<Vec<_>>()
                .await
        });
        got.map_err(store_err(self, prefix))
    }

    /// The names directly below `prefix/` that have objects under them.
    pub fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let store = Arc::clone(&self.store);
        let p = (!prefix.is_empty()).then(|| Key::from(prefix));
        let got = block_on(async move { store.list_with_delimiter(p.as_ref()).await })
            .map_err(store_err(self, prefix))?;
        let mut names: Vec<String> = got
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> Result<bool> {
        let store = Arc::clone(&self.store);
        let k = Key::from(key);
        match block_on(async move { store.head(&k).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_err(self, key)(e)),
        }
    }

    /// The whole object `key`.
    pub fn get(&self, key: &str) -> Result<Bytes> {
        let store = Arc::clone(&self.store);
        let k = Key::from(key);
        block_on(async move { store.get(&k).await?.bytes().await }).map_err(store_err(self, key))
    }

    /// Writes `bytes` to `key`; with `if_absent`, fails with `Ok(false)`
    /// when the key exists (the store's conditional put).
    pub fn put(&self, key: &str, bytes: Bytes, if_absent: bool) -> Result<bool> {
        let store = Arc::clone(&self.store);
        let k = Key::from(key);
        let opts = PutOptions {
            mode: if if_absent {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..Default::default()
        };
        match block_on(async move { store.put_opts(&k, PutPayload::from(bytes), opts).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) if if_absent => Ok(false),
            Err(e) => Err(store_err(self, key)(e)),
        }
    }

    /// Removes `keys` (a missing one is no error).
    pub fn delete(&self, keys: Vec<String>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        let first = keys[0].clone();
        let got = block_on(async move {
            let locations =
                futures::stream::iter(keys.into_iter().map(|k| Ok(Key::from(k)))).boxed();
            let mut out = store.delete_stream(locations);
            while let Some(r) = out.next().await {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        got.map_err(store_err(self, &first))
    }

    /// Uploads local files (`local`, `key`) at [`UPLOADS`] at a time.
    pub fn upload(&self, files: Vec<(std::path::PathBuf, String)>) -> Result<()> {
        let store = Arc::clone(&self.store);
        let url = self.url.to_string();
        block_on(async move {
            futures::stream::iter(files)
                .map(|(local, key)| {
                    let store = Arc::clone(&store);
                    let url = url.clone();
                    async move { upload_one(store, &local, &key, &url).await }
                })
                .buffer_unordered(UPLOADS)
                .try_collect::<Vec<()>>()
                .await
        })?;
        Ok(())
    }
}

/// One file: a single put when it is small, parts otherwise.
async fn upload_one(store: Arc<dyn ObjectStore>, local: &Path, key: &str, url: &str) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let err = |e: object_store::Error| Error::ObjectStore {
        url: format!("{}/{key}", url.trim_end_matches('/')),
        reason: e.to_string(),
    };
    let mut file = tokio::fs::File::open(local)
        .await
        .map_err(|e| Error::io(local, e))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| Error::io(local, e))?
        .len();
    let k = Key::from(key);
    if len <= PART as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf)
            .await
            .map_err(|e| Error::io(local, e))?;
        store.put(&k, PutPayload::from(buf)).await.map_err(err)?;
        return Ok(());
    }
    let upload = store.put_multipart(&k).await.map_err(err)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut buf = vec![0u8; PART];
    loop {
        let n = read_full(&mut file, &mut buf)
            .await
            .map_err(|e| Error::io(local, e))?;
        if n == 0 {
            break;
        }
        writer
            .wait_for_capacity(PART_CONCURRENCY)
            .await
            .map_err(err)?;
        writer.write(&buf[..n]);
    }
    writer.finish().await.map_err(err)?;
    Ok(())
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Downloads `key` into the new local file `to` in ranges of [`PART`]
/// bytes, [`UPLOADS`] at a time, asking `stop` between them (a cancelled
/// import).
pub fn download(bucket: &Bucket, key: &str, to: &Path, stop: impl Fn() -> bool) -> Result<Fetched> {
    use std::io::Write;
    let err = store_err(bucket, key);
    let k = Key::from(key);
    let store = Arc::clone(&bucket.store);
    let head_key = k.clone();
    let (size, modified) = match block_on(async move { store.head(&head_key).await }) {
        Ok(meta) => (meta.size, std::time::SystemTime::from(meta.last_modified)),
        Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
        Err(e) => return Err(err(e)),
    };
    let mut file = std::fs::File::create(to).map_err(|e| Error::io(to, e))?;
    let step = (PART * UPLOADS) as u64;
    let mut at = 0u64;
    while at < size {
        if stop() {
            return Ok(Fetched::Stopped);
        }
        let end = (at + step).min(size);
        let store = Arc::clone(&bucket.store);
        let ranges: Vec<std::ops::Range<u64>> = (at..end)
            .step_by(PART)
            .map(|lo| lo..(lo + PART as u64).min(end))
            .collect();
        let k = k.clone();
        let parts = block_on(async move { store.get_ranges(&k, &ranges).await }).map_err(&err)?;
        for p in parts {
            file.write_all(&p).map_err(|e| Error::io(to, e))?;
        }
        at = end;
    }
    Ok(Fetched::Done { size, modified })
}

/// How a download ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// This many bytes are in the file; the object's modification time.
    Done {
        size: u64,
        modified: std::time::SystemTime,
    },
    Stopped,
    /// There is no such object.
    Missing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        let u = S3Url::parse("s3://b/a/b/").unwrap().unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("b", "a/b"));
        assert_eq!(u.to_string(), "s3://b/a/b");
        assert!(S3Url::parse("/tmp/x").is_none());
        assert!(S3Url::parse("s3://").unwrap().is_err());
        assert!(S3Url::parse("s3://b/a/../c").unwrap().is_err());
        let root = S3Url::parse("s3://b/in").unwrap().unwrap();
        assert!(root.contains(&S3Url::parse("s3://b/in/x.csv").unwrap().unwrap()));
        assert!(!root.contains(&S3Url::parse("s3://b/inside.csv").unwrap().unwrap()));
        assert!(!root.contains(&S3Url::parse("s3://c/in/x.csv").unwrap().unwrap()));
    }
}
