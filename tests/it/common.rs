//! Starting and stopping a real server process on a scratch data root.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::SinkExt;

pub struct Server {
    pub root: PathBuf,
    pub pg: SocketAddr,
    pub http: SocketAddr,
    /// The minimal HTTP server (health, metrics), when enabled.
    pub min: Option<SocketAddr>,
    child: Child,
    env: Vec<(String, String)>,
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_finished_runs);
    let dir = std::env::temp_dir().join(format!("sluice-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the scratch directories of earlier test runs whose process has
/// ended, so repeated runs on one machine do not fill its disk; a run's own
/// directories stay for a look after a failure.
fn sweep_finished_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("sluice-it-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Server {
    pub fn start(root: &Path) -> Server {
        Self::start_with(root, &[])
    }

    /// Starts `sluice serve` on `root` with extra `QDB_*` settings.
    pub fn start_with(root: &Path, env: &[(&str, &str)]) -> Server {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("serve")
            .arg("--root")
            .arg(root)
            // Outside the repository, so the shipped conf/ is not picked up.
            .current_dir(root.parent().unwrap())
            .env("QDB_PG_NET_BIND_TO", "127.0.0.1:0")
            .env("QDB_HTTP_BIND_TO", "127.0.0.1:0")
            .env("QDB_HTTP_MIN_NET_BIND_TO", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            // Files no version names go as soon as no query reads them, so
            // tests can count files; `delta::vacuum_*` tests the retention.
            .env("QDB_CAIRO_VACUUM_FILE_RETENTION_SEC", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sluice");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut pg, mut http, mut min) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while pg.is_none() || http.is_none() {
            assert!(Instant::now() < deadline, "server did not start");
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(a) = line.strip_prefix("http min listening on ") {
                min = Some(a.parse().unwrap());
            } else if let Some(a) = line.strip_prefix("pgwire listening on ") {
                pg = Some(a.parse().unwrap());
            } else if let Some(a) = line.strip_prefix("http listening on ") {
                http = Some(a.parse().unwrap());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            root: root.to_path_buf(),
            pg: pg.unwrap(),
            http: http.unwrap(),
            min,
            child,
            env,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        self.client_as("admin", "quest").await.expect("connect")
    }

    /// An admin client and the task driving its connection (abort it to
    /// drop the socket as a client that goes away does).
    pub async fn client_and_connection(
        &self,
    ) -> (
        tokio_postgres::Client,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    ) {
        let conn = format!(
            "host={} port={} user=admin password=quest dbname=qdb",
            self.pg.ip(),
            self.pg.port()
        );
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .expect("connect");
        (client, tokio::spawn(connection))
    }

    pub async fn client_as(
        &self,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let conn = format!(
            "host={} port={} user={user} password={password} dbname=qdb",
            self.pg.ip(),
            self.pg.port()
        );
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// A metric without labels from the server's `/metrics`, when the
    /// minimal server runs and names it.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let body = reqwest::get(format!("http://{}/metrics", self.min?))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// SIGTERM (as Ctrl-C would), then waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::mem::forget(self);
    }

    /// Stops cleanly and starts again on the same root and settings.
    pub fn restart(self) -> Server {
        let root = self.root.clone();
        let env = self.env.clone();
        assert!(self.stop().success());
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start_with(&root, &env)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// All values of a one-column text result.
pub async fn column(client: &tokio_postgres::Client, sql: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await.unwrap() {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            out.push(r.get(0).map(str::to_string));
        }
    }
    out
}

pub async fn scalar(client: &tokio_postgres::Client, sql: &str) -> String {
    column(client, sql)
        .await
        .into_iter()
        .next()
        .flatten()
        .expect("one value")
}

/// The plan DataFusion chose, all rows and columns of EXPLAIN as one text.
pub async fn explain(client: &tokio_postgres::Client, sql: &str) -> String {
    let mut out = String::new();
    for m in client
        .simple_query(&format!("EXPLAIN {sql}"))
        .await
        .unwrap()
    {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            for i in 0..r.len() {
                out.push_str(r.get(i).unwrap_or(""));
                out.push('\n');
            }
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// COPY FROM STDIN with each of `pieces` as one CopyData message.
pub async fn copy_in(
    client: &tokio_postgres::Client,
    sql: &str,
    pieces: &[&[u8]],
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, bytes::Bytes>(sql).await?;
    futures::pin_mut!(sink);
    for p in pieces {
        sink.send(bytes::Bytes::copy_from_slice(p)).await?;
    }
    sink.finish().await
}

/// Polls `check` every 10 ms until it gives a value, i.e. until the event
/// a test waits for has happened; fails naming `what` after `timeout`. The
/// one way tests wait: never a sleep standing in for the event.
pub async fn eventually<T, Fut>(what: &str, timeout: Duration, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every table's write-ahead log is applied: its rows are in
/// Parquet files and Delta versions, where file-level checks and other
/// servers find them.
pub async fn wal_applied(client: &tokio_postgres::Client) {
    eventually(
        "write-ahead logs applied",
        Duration::from_secs(60),
        || async move {
            (scalar(
                client,
                "SELECT coalesce(sum(pending_rows), 0) FROM sys.wal_tables",
            )
            .await
                == "0")
                .then_some(())
        },
    )
    .await;
}

/// Runs a Python program (clients we did not write: DuckDB, psycopg,
/// questdb-rest) with `env`; its stdout, after asserting that it succeeded.
pub fn python(script: &str, env: &[(&str, String)]) -> String {
    // Once the program's last line has run, it leaves without the
    // interpreter's teardown: native readers (delta-rs's runtime threads)
    // have aborted there after printing a correct answer ("terminate
    // called without an active exception"). An exception in the program
    // still ends it with an error before this line.
    let script = format!(
        "{script}\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_sys.stderr.flush()\n_os._exit(0)\n"
    );
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", &script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python3 is installed");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// The trimmed standard output of a command that must have succeeded (its
/// standard error in the failure).
pub fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The anonymous resident memory of process `pid`, in KiB (`RssAnon` in
/// /proc: heap and stacks, not the page cache of mapped files).
pub fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Samples `pid`'s RssAnon while `work` runs; the highest value seen.
pub fn peak_rss_anon_kib<T>(pid: u32, work: impl FnOnce() -> T) -> (T, u64) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&done);
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_anon_kib(pid));
            std::thread::sleep(Duration::from_millis(2));
        }
        peak.max(rss_anon_kib(pid))
    });
    let out = work();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (out, sampler.join().expect("sampler"))
}

/// The partition directories of a table (not its `_delta_log`), sorted.
pub fn partition_dirs(table_dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(table_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir() && e.file_name() != "_delta_log")
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    out.sort();
    out
}

/// The Parquet data files below `dir` (checkpoints in a `_delta_log`
/// are not data).
pub fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() && entry.file_name() != "_delta_log" {
            out.extend(data_files(&p));
        } else if p.extension().is_some_and(|e| e == "parquet") && p.is_file() {
            out.push(p);
        }
    }
    out
}

/// Every action of a Delta table's JSON commits, in version order.
pub fn delta_actions(table_dir: &Path) -> Vec<serde_json::Value> {
    let log = table_dir.join("_delta_log");
    let mut commits: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_stem()
                    .is_some_and(|s| s.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    commits.sort();
    commits
        .iter()
        .flat_map(|c| {
            std::fs::read_to_string(c)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The files the latest version of a Delta table names, replayed from its
/// JSON commits as the protocol defines (adds minus later removes).
pub fn delta_live_files(table_dir: &Path) -> std::collections::BTreeSet<String> {
    let mut live = std::collections::BTreeSet::new();
    for action in delta_actions(table_dir) {
        if let Some(p) = action["add"]["path"].as_str() {
            live.insert(p.to_string());
        }
        if let Some(p) = action["remove"]["path"].as_str() {
            live.remove(p);
        }
    }
    live
}

/// A local S3-compatible server (`moto_server`) on a free port of
/// 127.0.0.1 with one empty bucket; stopped when dropped.
pub struct S3 {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3 {
    pub async fn start(bucket: &str) -> S3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server is installed (pip install 'moto[server]')");
        let s3 = S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_string(),
        };
        let http = reqwest::Client::new();
        let url = format!("{}/{bucket}", s3.endpoint);
        eventually(
            "moto_server to create the bucket",
            Duration::from_secs(60),
            || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let r = http.put(&url).send().await.ok()?;
                    r.status().is_success().then_some(())
                }
            },
        )
        .await;
        s3
    }

    /// The AWS settings of this server, for sluice and for Python clients.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// delta-rs's and Polars' `storage_options` for this server (JSON).
    pub fn storage_options(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    /// Uploads a local file with boto3 (a client we did not write).
    pub fn put_file(&self, key: &str, local: &Path) {
        let mut env = self.env();
        env.push(("BUCKET", self.bucket.clone()));
        env.push(("KEY", key.into()));
        env.push(("LOCAL", local.display().to_string()));
        python(
            r#"
import os, boto3
boto3.client("s3").upload_file(os.environ["LOCAL"], os.environ["BUCKET"], os.environ["KEY"])
"#,
            &env,
        );
    }

    /// Every key below `prefix`, listed with boto3.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut env = self.env();
        env.push(("BUCKET", self.bucket.clone()));
        env.push(("PREFIX", prefix.into()));
        let out = python(
            r#"
import os, boto3
pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=os.environ["BUCKET"], Prefix=os.environ["PREFIX"])
for page in pages:
    for o in page.get("Contents", []):
        print(o["Key"])
"#,
            &env,
        );
        out.lines().map(str::to_string).collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
