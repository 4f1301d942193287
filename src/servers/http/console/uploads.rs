//! Files the console has uploaded and not yet imported. Each is a spool
//! in the work root; an import takes its own reference, so a file stays
//! on disk while an import reads it even after it leaves this list.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::engine::ingest::TempFile;

/// Uploads kept at once; the oldest leaves first.
const KEPT: usize = 16;

#[derive(Debug, Clone)]
pub struct Held {
    pub id: String,
    /// The file's name as the browser gave it, without `.gz`/`.zst`.
    pub name: String,
    pub bytes: u64,
    pub file: Arc<TempFile>,
}

#[derive(Debug, Default)]
pub struct Uploads {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    held: VecDeque<Held>,
}

impl Uploads {
    pub fn add(&self, name: String, bytes: u64, file: TempFile) -> Held {
        let mut inner = self.inner.lock().expect("uploads");
        inner.next += 1;
        let held = Held {
            id: format!("u{}", inner.next),
            name,
            bytes,
            file: Arc::new(file),
        };
        if inner.held.len() == KEPT {
            inner.held.pop_front();
        }
        inner.held.push_back(held.clone());
        held
    }

    pub fn get(&self, id: &str) -> Option<Held> {
        let inner = self.inner.lock().expect("uploads");
        inner.held.iter().find(|h| h.id == id).cloned()
    }

    /// Forgets `id`; its file goes when no import holds it any more.
    pub fn remove(&self, id: &str) -> bool {
        let mut inner = self.inner.lock().expect("uploads");
        let before = inner.held.len();
        inner.held.retain(|h| h.id != id);
        inner.held.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(dir: &std::path::Path, n: usize) -> TempFile {
        let path = dir.join(format!("f{n}"));
        std::fs::write(&path, b"a\n1\n").unwrap();
        TempFile { path }
    }

    #[test]
    fn the_oldest_upload_leaves_first_and_its_file_with_it() {
        let dir = std::env::temp_dir().join(format!("sluice-uploads-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let uploads = Uploads::default();
        let first = uploads.add("a.csv".into(), 4, temp(&dir, 0));
        let first_path = first.file.path.clone();
        drop(first);
        for n in 1..=KEPT {
            uploads.add(format!("{n}.csv"), 4, temp(&dir, n));
        }
        assert!(uploads.get("u1").is_none());
        assert!(!first_path.exists());
        let held = uploads.get("u2").unwrap();
        assert!(uploads.remove("u2"));
        // Still read by whoever holds it.
        assert!(held.file.path.exists());
        let path = held.file.path.clone();
        drop(held);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
