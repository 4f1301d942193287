//! The background compactor: one thread that, every interval, drops the
//! partitions each table's TTL has aged out ([`Table::expire_blocking`])
//! and merges the small files of its partitions (single-row INSERTs leave
//! one file each) with [`Table::compact_blocking`], so later queries open
//! a handful of files per partition instead of thousands.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Catalog;
use super::table::CompactionPolicy;

/// Merges per table and round at most this many times (then the next
/// table gets its turn).
const MERGES_PER_ROUND: usize = 64;

pub struct Compactor {
    stop: Mutex<Option<Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Compactor {
    /// Starts compacting every `interval` (none when it is zero).
    pub fn start(catalog: Arc<Catalog>, policy: CompactionPolicy, interval: Duration) -> Compactor {
        let (tx, rx) = channel();
        let thread = (!interval.is_zero())
            .then(|| {
                std::thread::Builder::new()
                    .name("compactor".into())
                    .spawn(move || run(&catalog, &policy, interval, &rx))
                    .ok()
            })
            .flatten();
        Compactor {
            stop: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
        }
    }

    /// Stops the thread after the merge it is doing, if any.
    pub fn shutdown(&self) {
        drop(self.stop.lock().expect("compactor").take());
        if let Some(t) = self.thread.lock().expect("compactor").take() {
            let _ = t.join();
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(catalog: &Catalog, policy: &CompactionPolicy, interval: Duration, stop: &Receiver<()>) {
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        for table in catalog.tables() {
            match table.expire_blocking() {
                Ok(0) => {}
                Ok(n) => {
                    crate::metrics::metrics()
                        .ttl_dropped_files
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(table = %table.display_name(), files = n, "dropped partitions past the table's TTL")
                }
                Err(e) => {
                    tracing::warn!(table = %table.display_name(), error = %e, "TTL enforcement failed")
                }
            }
            for _ in 0..MERGES_PER_ROUND {
                match table.compact_blocking(policy) {
                    Ok(0) => break,
                    Ok(n) => {
                        let m = crate::metrics::metrics();
                        m.compactions
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        m.compacted_files
                            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(table = %table.display_name(), files = n, "merged small files")
                    }
                    Err(e) => {
                        tracing::warn!(table = %table.display_name(), error = %e, "compaction failed");
                        break;
                    }
                }
                // Stop promptly on shutdown, between merges.
                if !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)) {
                    return;
                }
            }
        }
    }
}
