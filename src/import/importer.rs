//! The one import slot and the thread that runs a background COPY. Every
//! way in takes the slot: COPY at once (refused while another import
//! runs), the synchronous callers after waiting for it, woken by the
//! slot's condition variable when it is released. The slot holds the
//! import's one cancel flag, which COPY CANCEL, a shutdown, the CLI's
//! Ctrl-C and a client that went away all set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::ImportRequest;
use super::error::ImportError;
use super::job::{Progress, Settings, Summary};
use super::log::{ImportLog, Status};
use crate::catalog::Catalog;
use crate::error::{Error, Result};

struct Active {
    id: String,
    cancel: Arc<AtomicBool>,
    progress: Arc<Progress>,
}

/// The one import slot and the background thread running it.
pub struct Importer {
    pub(super) catalog: Arc<Catalog>,
    pub(super) journal: Arc<ImportLog>,
    pub(super) settings: Settings,
    active: Mutex<Option<Active>>,
    /// The last import that ran (its progress, finished), until the next.
    last: Mutex<Option<(String, Arc<Progress>)>>,
    /// Notified whenever the slot is released.
    freed: Condvar,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer").finish_non_exhaustive()
    }
}

/// Parses an import id as COPY CANCEL accepts it (hex, up to 16 digits).
pub fn parse_id(text: &str) -> Option<String> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    u64::from_str_radix(text, 16)
        .ok()
        .map(|v| format!("{v:016x}"))
}

/// How often a synchronous caller waiting for the slot looks at its own
/// cancel flag (a client that went away); the slot's release wakes it at
/// once.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

impl Importer {
    pub fn new(catalog: Arc<Catalog>, journal: Arc<ImportLog>, settings: Settings) -> Importer {
        Importer {
            catalog,
            journal,
            settings,
            active: Mutex::new(None),
            last: Mutex::new(None),
            freed: Condvar::new(),
            thread: Mutex::new(None),
        }
    }

    /// Start-up step: removes the scratch of imports that died with the
    /// process (their tables were left as they were).
    pub fn clear_scratch(&self) {
        let _ = std::fs::remove_dir_all(self.settings.work_root.join("import"));
    }

    pub fn journal(&self) -> &Arc<ImportLog> {
        &self.journal
    }

    /// Takes the slot for a new import with `cancel` as its flag; waits up
    /// to `wait` for a running import to release it (none: refuse at once).
    fn reserve(
        &self,
        cancel: &Arc<AtomicBool>,
        progress: &Arc<Progress>,
        wait: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + wait;
        let mut active = self.active.lock().expect("import slot");
        while let Some(a) = active.as_ref() {
            let now = Instant::now();
            // An import whose final log row may be visible has finished
            // its work and is releasing the slot: a client that saw the
            // row and sent the next COPY is not refused.
            let ending = a.progress.done.load(Ordering::Acquire);
            if !ending && (now >= deadline || cancel.load(Ordering::Relaxed)) {
                return Err(Error::invalid(format!(
                    "unable to process the import request - another import may be in progress [activeImportId={}]",
                    a.id
                )));
            }
            let step = deadline
                .saturating_duration_since(now)
                .clamp(CANCEL_CHECK / 10, CANCEL_CHECK);
            active = self
                .freed
                .wait_timeout(active, step)
                .expect("import slot")
                .0;
        }
        let id = new_id();
        *active = Some(Active {
            id: id.clone(),
            cancel: Arc::clone(cancel),
            progress: Arc::clone(progress),
        });
        Ok(id)
    }

    fn release(&self, id: &str) {
        let mut active = self.active.lock().expect("import slot");
        if active.as_ref().is_some_and(|a| a.id == id) {
            if let Some(a) = active.take() {
                *self.last.lock().expect("last import") = Some((a.id, a.progress));
            }
            self.freed.notify_all();
        }
    }

    /// Starts `req` in the background; returns its id at once.
    pub fn submit(self: &Arc<Self>, req: ImportRequest) -> Result<String> {
        req.validate()?;
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let id = self.reserve(&cancel, &progress, Duration::ZERO)?;
        // Reap the previous import's thread (it has released the slot).
        if let Some(h) = self.thread.lock().expect("import thread").take() {
            let _ = h.join();
        }
        let this = Arc::clone(self);
        let job_id = id.clone();
        let handle = std::thread::Builder::new()
            .name(format!("copy-{id}"))
            .spawn(move || {
                let _ = this.run(&job_id, &req, &cancel, &progress);
                this.release(&job_id);
            })
            .map_err(|e| {
                self.release(&id);
                Error::Internal(format!("could not start the import thread: {e}"))
            })?;
        *self.thread.lock().expect("import thread") = Some(handle);
        Ok(id)
    }

    /// Runs `req` on the calling thread (the CLI), with the same slot, log
    /// and pipeline as COPY; `cancel` (Ctrl-C) is the import's flag.
    pub fn run_now(
        &self,
        req: &ImportRequest,
        progress: &Arc<Progress>,
        cancel: Arc<AtomicBool>,
    ) -> Result<std::result::Result<Summary, ImportError>> {
        self.run_waiting(req, progress, cancel, Duration::ZERO)
    }

    /// Runs `req` on the calling thread for a synchronous caller (`/imp`,
    /// the Arc endpoint, COPY FROM STDIN, bulk jobs): waits up to `wait`
    /// for a running import to end instead of refusing at once. `cancel`
    /// (a client that went away) stops the wait or the import.
    pub fn run_sync(
        &self,
        req: &ImportRequest,
        wait: Duration,
        cancel: Arc<AtomicBool>,
    ) -> Result<std::result::Result<Summary, ImportError>> {
        self.run_waiting(req, &Arc::new(Progress::default()), cancel, wait)
    }

    fn run_waiting(
        &self,
        req: &ImportRequest,
        progress: &Arc<Progress>,
        cancel: Arc<AtomicBool>,
        wait: Duration,
    ) -> Result<std::result::Result<Summary, ImportError>> {
        req.validate()?;
        let id = self.reserve(&cancel, progress, wait)?;
        let out = self.run(&id, req, &cancel, progress);
        self.release(&id);
        Ok(out)
    }

    /// The running import's id and progress, or else the last one's
    /// (finished), for `sys.copy_progress`.
    pub fn progress(&self) -> Option<(String, Arc<Progress>)> {
        if let Some(a) = self.active.lock().expect("import slot").as_ref() {
            return Some((a.id.clone(), Arc::clone(&a.progress)));
        }
        self.last.lock().expect("last import").clone()
    }

    /// `COPY 'id' CANCEL`: the status to report (`None`: no such import).
    pub fn cancel(&self, id: &str) -> Option<Status> {
        if let Some(a) = self.active.lock().expect("import slot").as_ref()
            && a.id == id
        {
            a.cancel.store(true, Ordering::Relaxed);
            return Some(Status::Cancelled);
        }
        self.journal.latest_status(id)
    }

    /// Waits for the background import, if any, to end (`sluice sql "COPY …"`).
    pub fn wait(&self) {
        if let Some(h) = self.thread.lock().expect("import thread").take() {
            let _ = h.join();
        }
    }

    /// Cancels the running import and waits for it to stop (server shutdown).
    pub fn shutdown(&self) {
        if let Some(a) = self.active.lock().expect("import slot").as_ref() {
            a.cancel.store(true, Ordering::Relaxed);
        }
        self.wait();
    }
}

/// A new COPY id: a random positive 63-bit number in 16 hex digits, as
/// QuestDB's are (imports and exports share the form).
pub fn new_id() -> String {
    let u = uuid::Uuid::new_v4().as_u128();
    format!("{:016x}", ((u >> 64) as u64 ^ u as u64) & (i64::MAX as u64))
}
