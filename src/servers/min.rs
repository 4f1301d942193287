//! QuestDB's "minimal HTTP server" (`http.min.net.bind.to`, 127.0.0.1:9003
//! by default): `GET /` and `/status` answer 200 `Status: Healthy` while
//! the server can serve, 503 with the reason while it starts, stops, or
//! cannot write its data root; `GET /metrics` answers Prometheus' text
//! format. It starts before the engine opens, so a load balancer sees the
//! start-up, and needs no token (it shows no data).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::metrics::{LATENCY_BUCKETS, Metrics, metrics};

/// Where the server is in its life, as the health check reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Serving = 1,
    ShuttingDown = 2,
}

/// What the health check and the metrics read.
pub struct Health {
    phase: AtomicU8,
    root: PathBuf,
    engine: OnceLock<Arc<Engine>>,
}

impl Health {
    pub fn new(root: PathBuf) -> Arc<Health> {
        Arc::new(Health {
            phase: AtomicU8::new(Phase::Starting as u8),
            root,
            engine: OnceLock::new(),
        })
    }

    pub fn serving(&self, engine: Arc<Engine>) {
        let _ = self.engine.set(engine);
        self.phase.store(Phase::Serving as u8, Ordering::Release);
    }

    pub fn shutting_down(&self) {
        self.phase
            .store(Phase::ShuttingDown as u8, Ordering::Release);
    }

    /// `None` when healthy, else why not.
    fn problem(&self) -> Option<String> {
        match self.phase.load(Ordering::Acquire) {
            0 => return Some("starting".into()),
            2 => return Some("shutting down".into()),
            _ => {}
        }
        // A file created and removed: the root takes writes now.
        let probe = self.root.join(".health-probe");
        let written = std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe));
        written
            .err()
            .map(|e| format!("the data root is not writable ({e})"))
    }
}

/// The running minimal server.
pub struct MinServer {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MinServer {
    pub async fn start(bind: SocketAddr, health: Arc<Health>) -> Result<MinServer> {
        let listener = TcpListener::bind(bind).await.map_err(|e| Error::Config {
            key: "http.min.net.bind.to".into(),
            value: bind.to_string(),
            message: format!("cannot listen: {e}"),
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("http min listener", e))?;
        let app = Router::new()
            .route("/", get(status))
            .route("/status", get(status))
            .route("/metrics", get(prometheus))
            .with_state(health);
        let (shutdown, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = rx.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "minimal http server failed");
            }
        });
        Ok(MinServer {
            addr,
            shutdown,
            task,
        })
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}

async fn status(State(health): State<Arc<Health>>) -> Response {
    let problem = tokio::task::spawn_blocking(move || health.problem())
        .await
        .unwrap_or_else(|e| Some(e.to_string()));
    match problem {
        None => (StatusCode::OK, "Status: Healthy\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Status: Unhealthy: {why}\n"),
        )
            .into_response(),
    }
}

async fn prometheus(State(health): State<Arc<Health>>) -> Response {
    let body = render(health.engine.get().map(Arc::as_ref));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// One metric family: its HELP and TYPE lines, then its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

fn one(v: impl Into<f64>) -> Vec<(String, f64)> {
    vec![(String::new(), v.into())]
}

/// A label value with Prometheus' escapes.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render(engine: Option<&Engine>) -> String {
    let m = metrics();
    let mut out = String::new();
    server_families(&mut out, m);
    import_families(&mut out, m);
    maintenance_families(&mut out, m);
    if let Some(engine) = engine {
        table_families(&mut out, engine);
    }
    family(
        &mut out,
        "sluice_process_resident_memory_bytes",
        "gauge",
        "Resident memory of the process (VmRSS).",
        &one(resident_bytes() as f64),
    );
    out
}

/// Connections, requests and statements.
fn server_families(out: &mut String, m: &Metrics) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    family(
        out,
        "sluice_pg_connections",
        "gauge",
        "Open PostgreSQL wire protocol connections.",
        &one(m.pg_connections.load(Ordering::Relaxed) as f64),
    );
    family(
        out,
        "sluice_pg_connections_total",
        "counter",
        "PostgreSQL connections accepted.",
        &one(load(&m.pg_connections_total)),
    );
    family(
        out,
        "sluice_http_connections",
        "gauge",
        "Open connections on the main HTTP port.",
        &one(m.http_connections.load(Ordering::Relaxed) as f64),
    );
    family(
        out,
        "sluice_http_connections_total",
        "counter",
        "Connections accepted on the main HTTP port.",
        &one(load(&m.http_connections_total)),
    );
    family(
        out,
        "sluice_http_requests_total",
        "counter",
        "HTTP requests on the main HTTP port.",
        &one(load(&m.http_requests_total)),
    );
    family(
        out,
        "sluice_statements_total",
        "counter",
        "SQL statements run, by outcome.",
        &[
            ("{outcome=\"ok\"}".into(), load(&m.statements_ok)),
            ("{outcome=\"error\"}".into(), load(&m.statements_failed)),
        ],
    );
    family(
        out,
        "sluice_plans_reused_total",
        "counter",
        "Queries that read no table (SELECT 1 and the like) run from a plan kept from an earlier run of the same text.",
        &one(load(&m.plans_reused)),
    );
    family(
        out,
        "sluice_shape_plans_reused_total",
        "counter",
        "Queries run from the optimized plan kept for their shape (the same query with other literals in its WHERE comparisons).",
        &one(load(&m.shapes_reused)),
    );
    let (counts, sum) = m.latency();
    let _ = writeln!(
        out,
        "# HELP sluice_statement_duration_seconds Time from a statement's start to its result (or error); rows stream after it."
    );
    let _ = writeln!(out, "# TYPE sluice_statement_duration_seconds histogram");
    for (i, c) in counts.iter().enumerate() {
        let le = LATENCY_BUCKETS
            .get(i)
            .map_or("+Inf".to_string(), |b| b.to_string());
        let _ = writeln!(
            out,
            "sluice_statement_duration_seconds_bucket{{le=\"{le}\"}} {c}"
        );
    }
    let _ = writeln!(out, "sluice_statement_duration_seconds_sum {sum}");
    let _ = writeln!(
        out,
        "sluice_statement_duration_seconds_count {}",
        counts.last().copied().unwrap_or(0)
    );
}

/// Imports and their phases.
fn import_families(out: &mut String, m: &Metrics) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    family(
        out,
        "sluice_imports_started_total",
        "counter",
        "CSV and Parquet imports started (COPY, /imp, console).",
        &one(load(&m.imports_started)),
    );
    let ended = load(&m.imports_finished) + load(&m.imports_failed) + load(&m.imports_cancelled);
    family(
        out,
        "sluice_imports_running",
        "gauge",
        "Imports started and not yet ended.",
        &one((load(&m.imports_started) - ended).max(0.0)),
    );
    family(
        out,
        "sluice_imports_total",
        "counter",
        "Imports ended, by outcome.",
        &[
            ("{outcome=\"finished\"}".into(), load(&m.imports_finished)),
            ("{outcome=\"failed\"}".into(), load(&m.imports_failed)),
            ("{outcome=\"cancelled\"}".into(), load(&m.imports_cancelled)),
        ],
    );
    family(
        out,
        "sluice_import_rows_total",
        "counter",
        "Rows imported.",
        &one(load(&m.import_rows)),
    );
    family(
        out,
        "sluice_import_bytes_total",
        "counter",
        "Input bytes read by imports.",
        &one(load(&m.import_bytes)),
    );
    family(
        out,
        "sluice_import_rows_rejected_total",
        "counter",
        "Rows imports rejected.",
        &one(load(&m.import_rows_rejected)),
    );
    let phases = m.phases();
    family(
        out,
        "sluice_import_phase_seconds_total",
        "counter",
        "Seconds spent in each import phase.",
        &phases
            .iter()
            .map(|(p, _, s)| (format!("{{phase=\"{p}\"}}"), *s))
            .collect::<Vec<_>>(),
    );
    family(
        out,
        "sluice_import_phase_runs_total",
        "counter",
        "Import phases finished.",
        &phases
            .iter()
            .map(|(p, n, _)| (format!("{{phase=\"{p}\"}}"), *n as f64))
            .collect::<Vec<_>>(),
    );
}

/// Compaction, TTL, vacuum and backups.
fn maintenance_families(out: &mut String, m: &Metrics) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    family(
        out,
        "sluice_compactions_total",
        "counter",
        "Compaction merges (small files into one).",
        &one(load(&m.compactions)),
    );
    family(
        out,
        "sluice_compacted_files_total",
        "counter",
        "Files merged away by compaction.",
        &one(load(&m.compacted_files)),
    );
    family(
        out,
        "sluice_ttl_dropped_files_total",
        "counter",
        "Files dropped because their partition passed the table's TTL.",
        &one(load(&m.ttl_dropped_files)),
    );
    family(
        out,
        "sluice_vacuum_runs_total",
        "counter",
        "Rounds of removing files no version names any more.",
        &one(load(&m.vacuum_runs)),
    );
    family(
        out,
        "sluice_vacuumed_files_total",
        "counter",
        "Files (or objects) those rounds removed.",
        &one(load(&m.vacuumed_files)),
    );
    family(
        out,
        "sluice_retired_files_held_by_readers",
        "gauge",
        "Sets of retired files past their grace period kept because a running query reads them.",
        &one(m.retired_held_by_readers.load(Ordering::Relaxed) as f64),
    );
    family(
        out,
        "sluice_backups_total",
        "counter",
        "Backups written.",
        &one(load(&m.backups)),
    );
}

/// Per table, the query memory pool and the column cache.
fn table_families(out: &mut String, engine: &Engine) {
    let mut files = Vec::new();
    let mut bytes = Vec::new();
    let mut rows = Vec::new();
    let mut wal_rows = Vec::new();
    let mut wal_bytes = Vec::new();
    let mut wal_age = Vec::new();
    for t in engine.catalog().tables() {
        let l = format!("{{table=\"{}\"}}", label(&t.display_name()));
        let s = t.snapshot();
        files.push((l.clone(), s.manifest.files.len() as f64));
        bytes.push((
            l.clone(),
            s.manifest.files.iter().map(|f| f.size).sum::<u64>() as f64,
        ));
        rows.push((l.clone(), s.manifest.row_count() as f64));
        if let Some(w) = t.wal() {
            let lag = w.lag();
            wal_rows.push((l.clone(), lag.rows as f64));
            wal_bytes.push((l.clone(), lag.bytes as f64));
            wal_age.push((l, lag.age_sec));
        }
    }
    family(
        out,
        "sluice_table_files",
        "gauge",
        "Parquet files of each table's current version.",
        &files,
    );
    family(
        out,
        "sluice_table_bytes",
        "gauge",
        "Bytes of each table's current files.",
        &bytes,
    );
    family(
        out,
        "sluice_table_rows",
        "gauge",
        "Rows in each table's files (not counting its write-ahead log).",
        &rows,
    );
    family(
        out,
        "sluice_wal_pending_rows",
        "gauge",
        "Rows in each table's write-ahead log not yet applied.",
        &wal_rows,
    );
    family(
        out,
        "sluice_wal_pending_bytes",
        "gauge",
        "Bytes of write-ahead log records not yet applied.",
        &wal_bytes,
    );
    family(
        out,
        "sluice_wal_lag_seconds",
        "gauge",
        "Age of the oldest write-ahead log record not yet applied.",
        &wal_age,
    );
    family(
        out,
        "sluice_query_memory_used_bytes",
        "gauge",
        "Bytes the query memory pool has handed out.",
        &one(engine.query_memory_used() as f64),
    );
    family(
        out,
        "sluice_query_memory_limit_bytes",
        "gauge",
        "The query memory pool's size (query.memory.limit).",
        &one(engine.config().query_memory_limit as f64),
    );
    if let (Some(live), Some(peak)) = (crate::heap::live(), crate::heap::peak()) {
        family(
            out,
            "sluice_heap_live_bytes",
            "gauge",
            "Heap bytes allocated and not yet freed, all of the process.",
            &one(live as f64),
        );
        family(
            out,
            "sluice_heap_peak_bytes",
            "gauge",
            "The highest sluice_heap_live_bytes since the process started.",
            &one(peak as f64),
        );
    }
    let cache = engine.catalog().column_cache().usage();
    family(
        out,
        "sluice_column_cache_bytes",
        "gauge",
        "Bytes of decoded table columns kept for later scans (query.cache.size).",
        &one(cache.bytes as f64),
    );
    family(
        out,
        "sluice_column_cache_columns",
        "gauge",
        "File columns the column cache holds.",
        &one(cache.columns as f64),
    );
}

/// VmRSS from /proc (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
