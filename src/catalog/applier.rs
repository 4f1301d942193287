//! The background step that applies tables' write-ahead logs: every
//! interval, or as soon as a writer says a table's log holds enough rows,
//! each table with rows waiting gets them written as Parquet in one Delta
//! version ([`Table::apply_wal_blocking`]). On shutdown what is left is
//! applied, so readers of the Delta table find every row.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Catalog;
use super::table::CompactionPolicy;

/// Merges after an apply, per table, at most this many (as the compactor).
const MERGES_AFTER_APPLY: usize = 16;

enum Signal {
    /// A table's log reached the apply size.
    Full,
    Stop,
}

pub struct Applier {
    tx: Mutex<Option<Sender<Signal>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Applier {
    /// Applies every `interval` (zero: only when a log is full). After an
    /// apply the table's small files are merged by `policy` (`None`: no
    /// compaction), since the compactor's round skips a table whose
    /// writer is busy, and a table with a steady stream of applies is.
    pub fn start(
        catalog: Arc<Catalog>,
        interval: Duration,
        policy: Option<CompactionPolicy>,
    ) -> Applier {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("wal-apply".into())
            .spawn(move || run(&catalog, interval, policy.as_ref(), &rx))
            .ok();
        Applier {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
        }
    }

    /// A table's log holds `cairo.wal.apply.rows` rows: apply now.
    pub fn wake(&self) {
        if let Some(tx) = self.tx.lock().expect("applier").as_ref() {
            let _ = tx.send(Signal::Full);
        }
    }

    /// Stops the thread after applying what every log holds.
    pub fn shutdown(&self) {
        if let Some(tx) = self.tx.lock().expect("applier").take() {
            let _ = tx.send(Signal::Stop);
        }
        if let Some(t) = self.thread.lock().expect("applier").take() {
            let _ = t.join();
        }
    }
}

impl Drop for Applier {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    catalog: &Catalog,
    interval: Duration,
    policy: Option<&CompactionPolicy>,
    rx: &Receiver<Signal>,
) {
    loop {
        let signal = if interval.is_zero() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(interval)
        };
        let stop = matches!(
            signal,
            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected)
        );
        apply_all(catalog, policy);
        if stop {
            return;
        }
    }
}

fn apply_all(catalog: &Catalog, policy: Option<&CompactionPolicy>) {
    for table in catalog.tables() {
        if table.wal().is_none_or(|w| w.pending_rows() == 0) {
            continue;
        }
        match table.apply_wal_blocking() {
            Ok(rows) => {
                tracing::debug!(table = %table.display_name(), rows, "applied write-ahead log");
                for _ in 0..MERGES_AFTER_APPLY {
                    match policy.map(|p| table.compact_blocking(p)) {
                        Some(Ok(n)) if n > 0 => {}
                        Some(Err(e)) => {
                            tracing::warn!(table = %table.display_name(), error = %e, "compaction after an apply failed");
                            break;
                        }
                        _ => break,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(table = %table.display_name(), error = %e, "write-ahead log apply failed; retrying later")
            }
        }
    }
}
