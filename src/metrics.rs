//! The process's counters for the Prometheus endpoint: connections,
//! statements by outcome with a latency histogram, imports and their
//! phases, compaction and TTL runs. Each place that does the work bumps its
//! counter here; the minimal HTTP server (`servers::min`) renders them,
//! with the gauges it reads from the catalog at scrape time.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (seconds) of the statement latency histogram.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub struct Metrics {
    pub pg_connections: AtomicI64,
    pub pg_connections_total: AtomicU64,
    pub http_requests_total: AtomicU64,
    pub http_connections: AtomicI64,
    pub http_connections_total: AtomicU64,
    pub statements_ok: AtomicU64,
    pub statements_failed: AtomicU64,
    /// Queries that read no table run from a kept plan, unplanned.
    pub plans_reused: AtomicU64,
    /// Queries run from the optimized plan of their shape (literals bound).
    pub shapes_reused: AtomicU64,
    /// Per bucket of [`LATENCY_BUCKETS`], then +Inf; not cumulative here.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_micros: AtomicU64,
    pub imports_started: AtomicU64,
    pub imports_finished: AtomicU64,
    pub imports_failed: AtomicU64,
    pub imports_cancelled: AtomicU64,
    pub import_rows: AtomicU64,
    pub import_bytes: AtomicU64,
    pub import_rows_rejected: AtomicU64,
    /// Phase name -> (runs, seconds).
    phases: Mutex<BTreeMap<&'static str, (u64, f64)>>,
    pub compactions: AtomicU64,
    pub compacted_files: AtomicU64,
    pub ttl_dropped_files: AtomicU64,
    /// Rounds of removing retired files, and the files they removed.
    pub vacuum_runs: AtomicU64,
    pub vacuumed_files: AtomicU64,
    /// Retired file sets past their grace and retention, kept only because
    /// a running query still reads them.
    pub retired_held_by_readers: AtomicI64,
    pub backups: AtomicU64,
}

/// How an import ended, for its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportEnd {
    Finished,
    Failed,
    Cancelled,
}

impl Metrics {
    /// A statement ended after `seconds`.
    pub fn statement(&self, ok: bool, seconds: f64) {
        let counter = if ok {
            &self.statements_ok
        } else {
            &self.statements_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The histogram as Prometheus wants it: cumulative counts per bound
    /// (the last is +Inf), and the sum of seconds.
    pub fn latency(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let counts = self
            .latency
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (
            counts,
            self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }

    pub fn import_ended(&self, end: ImportEnd, rows: u64, bytes: u64, rejected: u64) {
        let counter = match end {
            ImportEnd::Finished => &self.imports_finished,
            ImportEnd::Failed => &self.imports_failed,
            ImportEnd::Cancelled => &self.imports_cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.import_rows.fetch_add(rows, Ordering::Relaxed);
        self.import_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.import_rows_rejected
            .fetch_add(rejected, Ordering::Relaxed);
    }

    pub fn phase(&self, name: &'static str, seconds: f64) {
        let mut phases = self.phases.lock().expect("metrics");
        let e = phases.entry(name).or_default();
        e.0 += 1;
        e.1 += seconds;
    }

    pub fn phases(&self) -> Vec<(&'static str, u64, f64)> {
        self.phases
            .lock()
            .expect("metrics")
            .iter()
            .map(|(k, (n, s))| (*k, *n, *s))
            .collect()
    }
}

/// The one registry of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative() {
        let m = Metrics::default();
        m.statement(true, 0.0001);
        m.statement(false, 0.02);
        m.statement(true, 60.0);
        let (counts, sum) = m.latency();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[5], 2);
        assert_eq!(*counts.last().unwrap(), 3);
        assert!((sum - 60.0201).abs() < 1e-6);
    }
}
