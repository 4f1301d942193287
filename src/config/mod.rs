//! Server configuration: `conf/server.conf` (Java properties with QuestDB's
//! key names), `QDB_*` environment overrides and built-in defaults, turned
//! once at start-up into a typed [`Config`]. A bad value stops start-up with
//! an error naming the key and the value; an unknown key is a warning.
//!
//! Precedence: environment > file > default (docs/configuration.md).

mod text_loader;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use text_loader::{TextLoaderFormats, TimestampFormat};

use crate::error::{Error, Result};
use crate::storage::{Retention, S3Url};

/// Every key the server understands, with its default. The shipped
/// `conf/server.conf` lists the same keys with the same values.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("http.enabled", "true"),
    ("http.bind.to", "127.0.0.1:9000"),
    ("pg.enabled", "true"),
    ("pg.net.bind.to", "127.0.0.1:8812"),
    ("pg.user", "admin"),
    ("pg.password", "quest"),
    ("pg.readonly.user.enabled", "false"),
    ("pg.readonly.user", "user"),
    ("pg.readonly.password", "quest"),
    ("http.auth.token", ""),
    ("http.multipart.max.size", "1g"),
    ("http.text.analysis.max.lines", "1000"),
    ("http.bulk.import.poll.ms", "1000"),
    ("cairo.root", "db"),
    ("cairo.sql.copy.root", "import"),
    ("cairo.sql.copy.work.root", "tmp"),
    ("cairo.sql.copy.worker.count", "0"),
    ("cairo.sql.copy.buffer.size", "2m"),
    ("cairo.sql.copy.log.retention.days", "3"),
    ("cairo.sql.copy.max.recorded.errors", "10000"),
    ("cairo.sql.copy.formats.file", "conf/text_loader.json"),
    ("cairo.sql.copy.min.chunk.size", "4m"),
    ("cairo.sql.copy.index.memory", "64m"),
    ("cairo.sql.copy.decode.memory", "256m"),
    ("cairo.sql.copy.export.root", "export"),
    ("cairo.sql.copy.export.memory", "128m"),
    ("query.timeout.sec", "60"),
    ("cairo.compaction.interval.ms", "1000"),
    ("cairo.compaction.max.files", "8"),
    ("cairo.compaction.small.file.size", "16m"),
    ("cairo.compaction.max.input.size", "64m"),
    ("query.memory.limit", "25%"),
    ("query.parallel.min.rows", "262144"),
    ("query.cache.size", "10%"),
    ("cairo.vacuum.file.retention.sec", "3600"),
    ("cairo.vacuum.log.retention.days", "30"),
    ("cairo.wal.enabled", "true"),
    ("cairo.wal.apply.interval.ms", "500"),
    ("cairo.wal.apply.rows", "100000"),
    ("cairo.wal.max.statement.rows", "10000"),
    ("http.min.enabled", "true"),
    ("http.min.net.bind.to", "127.0.0.1:9003"),
    ("cairo.sql.backup.root", "backup"),
    ("log.slow.query.ms", "1000"),
    ("log.format", "text"),
];

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data root: `db/`, `import/`, `tmp/` live below it.
    pub root: PathBuf,
    /// Where tables live (`cairo.root`: a directory, relative to `root`
    /// unless absolute, or an `s3://bucket/prefix` URL).
    pub tables_root: TablesRoot,
    pub http_enabled: bool,
    pub http_bind: SocketAddr,
    /// QuestDB's "minimal HTTP server": health and Prometheus metrics.
    pub http_min_enabled: bool,
    pub http_min_bind: SocketAddr,
    /// Where `BACKUP` writes (`cairo.sql.backup.root`; empty: BACKUP is off).
    pub backup_root: Option<PathBuf>,
    /// Statements slower than this are logged (zero: none).
    pub slow_query_ms: u64,
    /// `log.format=json`: one JSON object per log line.
    pub log_json: bool,
    pub pg_enabled: bool,
    pub pg_bind: SocketAddr,
    pub pg_user: String,
    pub pg_password: String,
    pub pg_readonly_enabled: bool,
    pub pg_readonly_user: String,
    pub pg_readonly_password: String,
    /// `None` when blank: HTTP needs no token.
    pub http_auth_token: Option<String>,
    pub http_multipart_max_size: u64,
    pub http_text_analysis_max_lines: usize,
    /// How often the bulk-import scheduler looks for staged jobs.
    pub bulk_import_poll_ms: u64,
    /// Where COPY may read (`cairo.sql.copy.root`, a comma-separated
    /// allow-list of directories and `s3://bucket/prefix` URLs); empty when
    /// blank: COPY is disabled.
    pub copy_roots: Vec<CopyRoot>,
    pub copy_work_root: PathBuf,
    /// Importer threads; already resolved (0 in the file means all cores).
    pub copy_worker_count: usize,
    pub copy_buffer_size: u64,
    pub copy_log_retention_days: u32,
    pub copy_max_recorded_errors: u64,
    pub copy_min_chunk_size: u64,
    pub copy_index_memory: u64,
    /// Decoded rows of small partitions held at once by partition_import,
    /// over all workers.
    pub copy_decode_memory: u64,
    /// Where `COPY … TO 'dir'` writes (`cairo.sql.copy.export.root`;
    /// `None`: exports are disabled).
    pub export_root: Option<PathBuf>,
    /// What one export's open row group may buffer before it is written.
    pub export_memory: u64,
    pub formats_file: PathBuf,
    pub formats: TextLoaderFormats,
    pub query_timeout_ms: u64,
    /// Bytes all running queries may hold in sorts, joins and
    /// aggregations before they spill (or fail with 53200).
    pub query_memory_limit: u64,
    /// A query whose table scans hold fewer rows than this in their time
    /// ranges (by the files' row counts and time ranges) is planned on
    /// one partition: splitting a small scan over the cores costs more in
    /// planning and exchanges than it saves. Zero: always parallel.
    pub query_parallel_min_rows: u64,
    /// Bytes of decoded table columns kept in memory for later scans.
    pub query_cache_size: u64,
    /// How often the compactor looks at tables (zero: never).
    pub compaction_interval_ms: u64,
    pub compaction_max_files: usize,
    pub compaction_small_file_size: u64,
    pub compaction_max_input_size: u64,
    /// How long files no version names, and old Delta log entries, are
    /// kept (for readers of older versions) before they are removed.
    pub retention: Retention,
    /// Small writes to WAL tables go through a write-ahead log.
    pub wal_enabled: bool,
    /// How often a table's log is applied (zero: only by size).
    pub wal_apply_interval_ms: u64,
    /// A table's log is applied as soon as it holds this many rows.
    pub wal_apply_rows: u64,
    /// An INSERT of more rows than this writes files directly.
    pub wal_max_statement_rows: u64,
}

impl Config {
    /// Loads the configuration for `root`. `conf` is the file to read; when
    /// `None`, `<root>/conf/server.conf` is read if it exists (QuestDB's
    /// layout). Nothing depends on the working directory.
    pub fn load(root: &Path, conf: Option<&Path>) -> Result<Config> {
        let file = match conf {
            Some(path) => Some(read_properties(path)?),
            None => {
                let default = root.join("conf").join("server.conf");
                if default.exists() {
                    Some(read_properties(&default)?)
                } else {
                    None
                }
            }
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::from_sources(root, file.unwrap_or_default(), &env)
    }

    /// Built-in defaults for `root`, no file, no environment.
    pub fn defaults(root: &Path) -> Result<Config> {
        Self::from_sources(root, BTreeMap::new(), &[])
    }

    /// Merges defaults, file values and environment overrides, then checks
    /// every value once.
    pub fn from_sources(
        root: &Path,
        file: BTreeMap<String, String>,
        env: &[(String, String)],
    ) -> Result<Config> {
        let mut values: BTreeMap<String, String> = DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (key, value) in file {
            if !values.contains_key(&key) {
                tracing::warn!(key = %key, "unknown configuration key ignored");
                continue;
            }
            values.insert(key, value);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("QDB_") else {
                continue;
            };
            match DEFAULTS.iter().find(|(k, _)| env_name(k) == rest) {
                Some((key, _)) => {
                    values.insert(key.to_string(), value.clone());
                }
                None => tracing::warn!(variable = %name, "unknown configuration variable ignored"),
            }
        }
        Self::build(root, &values)
    }

    fn build(root: &Path, v: &BTreeMap<String, String>) -> Result<Config> {
        let get = |k: &str| v.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
        let resolve = |p: &str| -> PathBuf {
            let path = PathBuf::from(p);
            if path.is_absolute() {
                path
            } else {
                root.join(path)
            }
        };
        let (formats_file, formats) = formats(root, v)?;
        let workers = parse_uint(v, "cairo.sql.copy.worker.count")? as usize;
        let timeout_sec = parse_uint(v, "query.timeout.sec")?;
        Ok(Config {
            root: root.to_path_buf(),
            tables_root: tables_root(v, &resolve)?,
            http_enabled: parse_bool(v, "http.enabled")?,
            http_bind: parse_addr(v, "http.bind.to")?,
            http_min_enabled: parse_bool(v, "http.min.enabled")?,
            http_min_bind: parse_addr(v, "http.min.net.bind.to")?,
            backup_root: Some(get("cairo.sql.backup.root"))
                .filter(|r| !r.trim().is_empty())
                .map(|r| resolve(r.trim())),
            slow_query_ms: parse_uint(v, "log.slow.query.ms")?,
            log_json: log_json(v)?,
            pg_enabled: parse_bool(v, "pg.enabled")?,
            pg_bind: parse_addr(v, "pg.net.bind.to")?,
            pg_user: non_empty(v, "pg.user")?,
            pg_password: get("pg.password"),
            pg_readonly_enabled: parse_bool(v, "pg.readonly.user.enabled")?,
            pg_readonly_user: non_empty(v, "pg.readonly.user")?,
            pg_readonly_password: get("pg.readonly.password"),
            http_auth_token: Some(get("http.auth.token")).filter(|t| !t.is_empty()),
            http_multipart_max_size: parse_size(v, "http.multipart.max.size")?,
            http_text_analysis_max_lines: parse_uint(v, "http.text.analysis.max.lines")? as usize,
            copy_roots: copy_roots(v, &resolve)?,
            copy_work_root: resolve(&non_empty(v, "cairo.sql.copy.work.root")?),
            copy_worker_count: if workers == 0 {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            } else {
                workers
            },
            copy_buffer_size: parse_size(v, "cairo.sql.copy.buffer.size")?,
            copy_log_retention_days: parse_uint(v, "cairo.sql.copy.log.retention.days")? as u32,
            copy_max_recorded_errors: parse_uint(v, "cairo.sql.copy.max.recorded.errors")?,
            copy_min_chunk_size: parse_size(v, "cairo.sql.copy.min.chunk.size")?.max(1),
            copy_index_memory: parse_size(v, "cairo.sql.copy.index.memory")?.max(16),
            copy_decode_memory: parse_size(v, "cairo.sql.copy.decode.memory")?,
            export_root: Some(get("cairo.sql.copy.export.root"))
                .filter(|r| !r.trim().is_empty())
                .map(|r| resolve(r.trim())),
            export_memory: parse_size(v, "cairo.sql.copy.export.memory")?.max(1 << 20),
            bulk_import_poll_ms: parse_uint(v, "http.bulk.import.poll.ms")?.max(10),
            formats_file,
            formats,
            query_timeout_ms: timeout_sec.saturating_mul(1000),
            query_memory_limit: parse_memory(v, "query.memory.limit")?,
            query_parallel_min_rows: parse_uint(v, "query.parallel.min.rows")?,
            query_cache_size: match raw(v, "query.cache.size").trim() {
                "0" => 0,
                _ => parse_memory(v, "query.cache.size")?,
            },
            compaction_interval_ms: parse_uint(v, "cairo.compaction.interval.ms")?,
            compaction_max_files: parse_uint(v, "cairo.compaction.max.files")?.max(1) as usize,
            compaction_small_file_size: parse_size(v, "cairo.compaction.small.file.size")?,
            compaction_max_input_size: parse_size(v, "cairo.compaction.max.input.size")?
                .max(1 << 20),
            wal_enabled: parse_bool(v, "cairo.wal.enabled")?,
            wal_apply_interval_ms: parse_uint(v, "cairo.wal.apply.interval.ms")?,
            wal_apply_rows: parse_uint(v, "cairo.wal.apply.rows")?.max(1),
            wal_max_statement_rows: parse_uint(v, "cairo.wal.max.statement.rows")?,
            retention: Retention {
                files: Duration::from_secs(parse_uint(v, "cairo.vacuum.file.retention.sec")?),
                log: Duration::from_secs(
                    parse_uint(v, "cairo.vacuum.log.retention.days")?.saturating_mul(86_400),
                ),
            },
        })
    }

    /// The first local copy root: where relative COPY names resolve.
    pub fn copy_dir(&self) -> Option<&Path> {
        self.copy_roots.iter().find_map(|r| match r {
            CopyRoot::Local(p) => Some(p.as_path()),
            CopyRoot::S3(_) => None,
        })
    }
}

/// Where tables live.
#[derive(Debug, Clone, PartialEq)]
pub enum TablesRoot {
    Local(PathBuf),
    S3(S3Url),
}

/// One root COPY may read below.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyRoot {
    Local(PathBuf),
    S3(S3Url),
}

/// `http.bind.to` -> `HTTP_BIND_TO`.
fn env_name(key: &str) -> String {
    key.to_ascii_uppercase().replace('.', "_")
}

fn read_properties(path: &Path) -> Result<BTreeMap<String, String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let map = java_properties::read(std::io::BufReader::new(file)).map_err(|e| Error::Config {
        key: "--conf".into(),
        value: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(map.into_iter().collect())
}

fn bad(key: &str, value: &str, message: &str) -> Error {
    Error::Config {
        key: key.into(),
        value: value.into(),
        message: message.into(),
    }
}

fn raw<'a>(v: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    v.get(key).map(|s| s.trim()).unwrap_or("")
}

fn non_empty(v: &BTreeMap<String, String>, key: &str) -> Result<String> {
    let s = raw(v, key);
    if s.is_empty() {
        Err(bad(key, s, "value must not be empty"))
    } else {
        Ok(s.to_string())
    }
}

fn parse_bool(v: &BTreeMap<String, String>, key: &str) -> Result<bool> {
    let s = raw(v, key);
    match s.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, s, "expected true or false")),
    }
}

fn parse_uint(v: &BTreeMap<String, String>, key: &str) -> Result<u64> {
    let s = raw(v, key);
    s.parse::<u64>()
        .map_err(|_| bad(key, s, "expected a non-negative whole number"))
}

fn parse_addr(v: &BTreeMap<String, String>, key: &str) -> Result<SocketAddr> {
    let s = raw(v, key);
    // QuestDB accepts `0.0.0.0:9000` and also a bare `:9000`.
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse::<SocketAddr>()
        .map_err(|_| bad(key, s, "expected host:port"))
}

/// Parses a size with an optional `k`, `m` or `g` suffix (powers of 1024).
pub fn parse_size_str(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_lowercase() {
                'k' => 1u64 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                _ => return None,
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// A size, or a percentage of the machine's RAM (`25%`).
fn parse_memory(v: &BTreeMap<String, String>, key: &str) -> Result<u64> {
    let s = raw(v, key);
    let bytes = match s.strip_suffix('%') {
        Some(p) => p
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(|p| physical_memory() / 100 * p),
        None => parse_size_str(s),
    };
    bytes.filter(|b| *b >= 1 << 20).ok_or_else(|| {
        bad(
            key,
            s,
            "expected a size of at least 1m (512m, 2g) or a share of RAM (25%)",
        )
    })
}

/// The machine's RAM in bytes (MemTotal), 4 GiB if it cannot be read.
fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4 << 30, |kib| kib * 1024)
}

fn parse_size(v: &BTreeMap<String, String>, key: &str) -> Result<u64> {
    let s = raw(v, key);
    parse_size_str(s).ok_or_else(|| bad(key, s, "expected a size such as 512k, 2m or 1g"))
}

/// The timestamp patterns COPY tries (`cairo.sql.copy.formats.file`,
/// relative like every other path key: against the root); without the
/// file, the patterns we ship (compiled in) apply.
fn formats(root: &Path, v: &BTreeMap<String, String>) -> Result<(PathBuf, TextLoaderFormats)> {
    let raw = raw(v, "cairo.sql.copy.formats.file");
    let file = {
        let p = PathBuf::from(raw);
        if p.is_absolute() { p } else { root.join(p) }
    };
    let formats = if file.exists() {
        TextLoaderFormats::load(&file).map_err(|message| Error::Config {
            key: "cairo.sql.copy.formats.file".into(),
            value: raw.to_string(),
            message,
        })?
    } else {
        TextLoaderFormats::builtin()
    };
    Ok((file, formats))
}

/// `cairo.root`: a directory, or an `s3://` URL.
fn tables_root(
    v: &BTreeMap<String, String>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<TablesRoot> {
    let raw = non_empty(v, "cairo.root")?;
    Ok(match S3Url::parse(&raw) {
        Some(url) => TablesRoot::S3(url.map_err(|message| Error::Config {
            key: "cairo.root".into(),
            value: raw.clone(),
            message,
        })?),
        None => TablesRoot::Local(resolve(&raw)),
    })
}

/// `cairo.sql.copy.root`: a comma-separated list of directories and
/// `s3://` URLs.
fn copy_roots(
    v: &BTreeMap<String, String>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<Vec<CopyRoot>> {
    let copy_root = raw(v, "cairo.sql.copy.root");
    copy_root
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| match S3Url::parse(r) {
            Some(url) => url.map(CopyRoot::S3).map_err(|message| Error::Config {
                key: "cairo.sql.copy.root".into(),
                value: copy_root.to_string(),
                message,
            }),
            None => Ok(CopyRoot::Local(resolve(r))),
        })
        .collect()
}

/// `log.format`: `text` or `json`.
fn log_json(v: &BTreeMap<String, String>) -> Result<bool> {
    match raw(v, "log.format").trim().to_ascii_lowercase().as_str() {
        "json" => Ok(true),
        "text" => Ok(false),
        other => Err(Error::Config {
            key: "log.format".into(),
            value: other.into(),
            message: "'text' or 'json' expected".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_spec() {
        let c = Config::defaults(Path::new("/r")).unwrap();
        assert_eq!(c.pg_bind.to_string(), "127.0.0.1:8812");
        assert_eq!(c.http_bind.to_string(), "127.0.0.1:9000");
        assert_eq!(c.copy_dir(), Some(Path::new("/r/import")));
        assert_eq!(c.copy_work_root, Path::new("/r/tmp"));
        assert_eq!(c.http_multipart_max_size, 1 << 30);
        assert_eq!(c.copy_buffer_size, 2 << 20);
        assert!(c.http_auth_token.is_none());
        assert_eq!(c.query_timeout_ms, 60_000);
    }

    #[test]
    fn roots_may_be_buckets() {
        let f = file(&[
            ("cairo.root", "s3://data/sluice/"),
            ("cairo.sql.copy.root", "import, s3://landing/csv ,/abs"),
        ]);
        let c = Config::from_sources(Path::new("/r"), f, &[]).unwrap();
        assert_eq!(
            c.tables_root,
            TablesRoot::S3(S3Url::parse("s3://data/sluice").unwrap().unwrap())
        );
        assert_eq!(
            c.copy_roots,
            vec![
                CopyRoot::Local(PathBuf::from("/r/import")),
                CopyRoot::S3(S3Url::parse("s3://landing/csv").unwrap().unwrap()),
                CopyRoot::Local(PathBuf::from("/abs")),
            ]
        );
        let bad = file(&[("cairo.root", "s3://b/../x")]);
        assert!(Config::from_sources(Path::new("/r"), bad, &[]).is_err());
    }

    #[test]
    fn query_memory_is_a_size_or_a_share_of_ram() {
        let c = Config::defaults(Path::new("/r")).unwrap();
        assert_eq!(c.query_memory_limit, physical_memory() / 100 * 25);
        let c = Config::from_sources(
            Path::new("/r"),
            file(&[("query.memory.limit", "512m")]),
            &[],
        )
        .unwrap();
        assert_eq!(c.query_memory_limit, 512 << 20);
        for bad in ["0", "150%", "lots", "100k"] {
            let f = file(&[("query.memory.limit", bad)]);
            assert!(
                Config::from_sources(Path::new("/r"), f, &[]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn env_beats_file_beats_default() {
        let f = file(&[("pg.user", "filer"), ("query.timeout.sec", "5")]);
        let env = vec![("QDB_PG_USER".to_string(), "envy".to_string())];
        let c = Config::from_sources(Path::new("/r"), f, &env).unwrap();
        assert_eq!(c.pg_user, "envy");
        assert_eq!(c.query_timeout_ms, 5000);
    }

    #[test]
    fn bad_value_names_key_and_value() {
        let f = file(&[("http.multipart.max.size", "lots")]);
        let err = Config::from_sources(Path::new("/r"), f, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.multipart.max.size"), "{err}");
        assert!(err.contains("lots"), "{err}");
    }

    #[test]
    fn blank_copy_root_disables_copy() {
        let f = file(&[("cairo.sql.copy.root", "")]);
        let c = Config::from_sources(Path::new("/r"), f, &[]).unwrap();
        assert!(c.copy_roots.is_empty());
    }

    #[test]
    fn shipped_conf_has_every_key_with_default_value() {
        let shipped = read_properties(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/conf/server.conf"
        )))
        .unwrap();
        for (k, v) in DEFAULTS {
            assert_eq!(shipped.get(*k).map(String::as_str), Some(*v), "key {k}");
        }
        assert_eq!(shipped.len(), DEFAULTS.len());
    }
}
