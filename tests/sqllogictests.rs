//! Runs every `sql/**/*.slt` file through our pgwire server with a real
//! PostgreSQL client (tokio-postgres, simple query protocol). Each file gets
//! a fresh server on a fresh data root. Prints `N passed, N failed`.
//!
//! `cargo test --test sqllogictests -- <substring>` runs the matching files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use sluice::config::Config;
use sluice::engine::Engine;
use sluice::servers::Servers;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{NoTls, SimpleQueryMessage};

struct Pg {
    client: tokio_postgres::Client,
}

#[derive(Debug)]
struct PgError(tokio_postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server's message, not the client's generic "db error".
        match self.0.as_db_error() {
            Some(db) => write!(f, "{}", db.message()),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for PgError {}

impl Pg {
    /// Polls the import log until import `id` has its final row.
    async fn wait_import(&self, id: &str) -> Result<(), PgError> {
        let query = format!(
            "select status from sys.text_import_log where id = '{id}' and phase is null order by ts desc limit 1"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let rows = self.client.simple_query(&query).await.map_err(PgError)?;
            let status = rows.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            });
            if status.is_some_and(|s| s != "started") {
                return Ok(());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "import {id} did not end"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

#[async_trait]
impl AsyncDB for Pg {
    type Error = PgError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        let messages = self.client.simple_query(sql).await.map_err(PgError)?;
        // COPY answers with an id at once and imports in the background.
        // Like a user, the runner polls sys.text_import_log until that
        // import's final row, which keeps the files deterministic.
        let is_copy = sql
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("copy"));
        if is_copy && !sql.to_lowercase().contains("cancel") {
            let id = messages.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            });
            if let Some(id) = id {
                self.wait_import(&id).await?;
            }
        }
        let mut rows = Vec::new();
        let mut columns = None;
        let mut count = 0;
        for m in messages {
            match m {
                SimpleQueryMessage::RowDescription(cols) => columns = Some(cols.len()),
                SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        match columns {
            Some(n) => Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            }),
            None => Ok(DBOutput::StatementComplete(count)),
        }
    }

    async fn shutdown(&mut self) {}

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }

    async fn run_command(
        mut command: std::process::Command,
    ) -> std::io::Result<std::process::Output> {
        tokio::process::Command::from(std::mem::replace(
            &mut command,
            std::process::Command::new("true"),
        ))
        .output()
        .await
    }

    fn error_sql_state(err: &PgError) -> Option<String> {
        err.0.code().map(|c| c.code().to_string())
    }
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "slt") {
            out.push(p);
        }
    }
}

async fn start(root: &Path) -> (Arc<Engine>, Servers) {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap();
    let copy_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/data");
    let copy_root = copy_root.display().to_string();
    let file = [
        ("pg.net.bind.to", "127.0.0.1:0"),
        ("http.bind.to", "127.0.0.1:0"),
        ("pg.readonly.user.enabled", "true"),
        ("cairo.sql.copy.root", copy_root.as_str()),
        // Three workers and tiny chunks: every import crosses chunk
        // boundaries, also in the conformance files.
        ("cairo.sql.copy.worker.count", "3"),
        ("cairo.sql.copy.min.chunk.size", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_sources(root, file, &[]).unwrap();
    let engine = Engine::open(config).unwrap();
    let servers = Servers::start(Arc::clone(&engine)).await.unwrap();
    (engine, servers)
}

async fn run_file(path: &Path, scratch: &Path) -> Result<(), String> {
    let root = scratch.join(path.file_stem().unwrap());
    let (engine, servers) = start(&root).await;
    let addr = servers.pg_addr.unwrap();
    let conn_str = format!(
        "host={} port={} user=admin password=quest",
        addr.ip(),
        addr.port()
    );
    let mut runner = Runner::new(move || {
        let conn_str = conn_str.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&conn_str, NoTls)
                .await
                .map_err(PgError)?;
            tokio::spawn(connection);
            Ok(Pg { client })
        }
    });
    runner.set_var("__DATA_ROOT__".into(), root.display().to_string());
    let result = runner
        .run_file_async(path)
        .await
        .map_err(|e| e.display(true).to_string());
    servers.stop().await;
    engine.shutdown();
    let _ = std::fs::remove_dir_all(&root);
    result
}

#[tokio::main]
async fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sql_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files = Vec::new();
    slt_files(&sql_dir, &mut files);
    files.retain(|f| {
        filter.is_empty()
            || filter
                .iter()
                .any(|s| f.to_string_lossy().contains(s.as_str()))
    });
    let scratch = std::env::temp_dir().join(format!("sluice-slt-{}", std::process::id()));
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        let name = f.strip_prefix(&sql_dir).unwrap_or(f).display().to_string();
        match run_file(f, &scratch).await {
            Ok(()) => {
                passed += 1;
                println!("ok      {name}");
            }
            Err(e) => {
                failed += 1;
                println!("FAILED  {name}\n{e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{passed} passed, {failed} failed");
    if failed > 0 || files.is_empty() {
        std::process::exit(1);
    }
}
