//! The one place files and directories a commit no longer names are
//! removed. Queries planned against an older manifest may still read them:
//! a file goes once every snapshot that named it is released (a scan pins
//! its snapshot for as long as its plan lives, however long the client
//! takes to read the result) and a short grace period has passed. One
//! thread, owned by the catalog (and joined when the last table and the
//! catalog are dropped), removes them. Whatever a crash leaves behind is
//! removed at the next start instead.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::storage::{Bucket, Manifest};

/// Something to remove: a local file or directory, or objects of a bucket
/// (removed in the order given).
#[derive(Debug)]
pub enum Doomed {
    Path(PathBuf),
    Objects(Arc<Bucket>, Vec<String>),
}

/// How long a retired file stays at least (for a query between taking a
/// snapshot and pinning it in a scan).
pub const GRACE: Duration = Duration::from_secs(1);

/// How often files waiting for their readers are looked at again.
const RECHECK: Duration = Duration::from_millis(200);

/// What to remove, when.
struct Due {
    at: Instant,
    /// The end of the retention period: until then the paths stay even
    /// when the catalog closes (a later start-up removes them).
    kept_until: Instant,
    paths: Vec<Doomed>,
    /// Snapshots that name the paths; removal waits until none is alive.
    readers: Vec<Weak<Manifest>>,
}

impl Due {
    fn ready(&self, now: Instant) -> bool {
        self.at <= now && self.readers.iter().all(|r| r.strong_count() == 0)
    }
}

#[derive(Debug)]
pub struct Reaper {
    tx: Mutex<Option<Sender<Due>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reaper {
    pub fn start() -> Reaper {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap(rx))
            .ok();
        Reaper {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
        }
    }

    /// Removes `paths` (files, directories, objects) once `keep` (a
    /// retention period) and at least the grace period have passed and
    /// every snapshot in `readers` is released.
    pub fn retire_after(&self, paths: Vec<Doomed>, readers: Vec<Weak<Manifest>>, keep: Duration) {
        if paths.is_empty() {
            return;
        }
        let now = Instant::now();
        let due = Due {
            at: now + GRACE.max(keep),
            kept_until: now + keep,
            paths,
            readers,
        };
        let sent = match self.tx.lock().expect("reaper").as_ref() {
            Some(tx) => tx.send(due).map_err(|e| e.0),
            None => Err(due),
        };
        // No reaper thread (it could not start): remove at once.
        if let Err(due) = sent {
            remove(due.paths);
        }
    }
}

impl Drop for Reaper {
    /// Closes the queue and waits for the thread, which removes what is
    /// pending and past its retention at once (no query outlives the
    /// catalog); the rest stays for a later start-up to remove.
    fn drop(&mut self) {
        drop(self.tx.lock().expect("reaper").take());
        if let Some(t) = self.thread.lock().expect("reaper").take() {
            let _ = t.join();
        }
    }
}

fn reap(rx: Receiver<Due>) {
    let mut pending: Vec<Due> = Vec::new();
    loop {
        // (Files waiting for readers are looked at every RECHECK.)
        let next = pending
            .iter()
            .map(|d| d.at.max(Instant::now()).min(Instant::now() + RECHECK))
            .min();
        let got = match next {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(due) => pending.push(due),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let now = Instant::now();
                for d in pending.into_iter().filter(|d| d.kept_until <= now) {
                    remove(d.paths);
                }
                return;
            }
        }
        let now = Instant::now();
        let (ready, rest): (Vec<Due>, Vec<Due>) = pending.into_iter().partition(|d| d.ready(now));
        pending = rest;
        for d in ready {
            remove(d.paths);
        }
        let held = pending.iter().filter(|d| d.at <= now).count();
        crate::metrics::metrics()
            .retired_held_by_readers
            .store(held as i64, std::sync::atomic::Ordering::Relaxed);
    }
}

fn remove(paths: Vec<Doomed>) {
    let mut removed = 0;
    for p in paths {
        match p {
            Doomed::Path(p) => {
                let done = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                removed += u64::from(done.is_ok());
            }
            Doomed::Objects(bucket, keys) => {
                let n = keys.len() as u64;
                // What stays is removed at the next start.
                match bucket.delete(keys) {
                    Ok(()) => removed += n,
                    Err(e) => tracing::warn!("could not remove retired objects: {e}"),
                }
            }
        }
    }
    let m = crate::metrics::metrics();
    m.vacuum_runs
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    m.vacuumed_files
        .fetch_add(removed, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_removals_happen_when_the_reaper_is_dropped() {
        let dir = std::env::temp_dir().join(format!("sluice-reaper-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("f"), b"x").unwrap();
        let reaper = Reaper::start();
        reaper.retire_after(
            vec![Doomed::Path(dir.join("f")), Doomed::Path(dir.join("sub"))],
            Vec::new(),
            Duration::ZERO,
        );
        // Within the grace period the files are still there.
        assert!(dir.join("f").exists() && dir.join("sub").exists());
        drop(reaper);
        assert!(!dir.join("f").exists() && !dir.join("sub").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
