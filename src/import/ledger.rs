//! The load ledger: which source files a table has loaded. Every file an
//! import commits is recorded in the import's own Delta version as a `txn`
//! action (Delta's record of idempotent writes): its `appId` is the file's
//! fingerprint (its name, size, modification time and a hash of its first
//! and last MiB), its `version` the ledger's epoch (the number of TRUNCATEs,
//! after which every file may be loaded again). A later COPY of the same
//! file finds the `appId` in the table's latest version and skips the file
//! unless `FORCE true`. The record and the rows are one commit, so the
//! ledger never says loaded for rows that are not there, nor the reverse.

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use crate::storage::delta::Load;

/// The bytes hashed at each end of the file.
const END: u64 = 1 << 20;

/// FNV-1a, 64 bits: a hash whose value never changes between releases.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn eat(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A file as the ledger knows it: its entry and what the entry was made
/// from (shown in `sys.copy_history`).
#[derive(Debug, Clone)]
pub struct Fingerprint {
    pub load: Load,
    pub size: u64,
    /// The modification time, UTC microseconds.
    pub modified_us: i64,
}

/// The fingerprint of the file at `path`, known to users as `name`, as a
/// ledger entry (its epoch is set at the commit). `modified` overrides the
/// file's own time (an object's, for a downloaded copy).
pub fn fingerprint(
    name: &str,
    path: &Path,
    modified: Option<SystemTime>,
) -> std::io::Result<Fingerprint> {
    let mut f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    let size = meta.len();
    let modified = match modified {
        Some(t) => t,
        None => meta.modified()?,
    };
    let micros = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut h = Fnv::new();
    h.eat(name.as_bytes());
    h.eat(&[0]);
    h.eat(&size.to_le_bytes());
    h.eat(&micros.to_le_bytes());
    let mut buf = vec![0u8; END.min(size) as usize];
    f.read_exact(&mut buf)?;
    h.eat(&buf);
    if size > END {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(
            size.saturating_sub(END).max(END.min(size)),
        ))?;
        buf.clear();
        f.read_to_end(&mut buf)?;
        h.eat(&buf);
    }
    Ok(Fingerprint {
        load: Load {
            app_id: format!("sluice-load-{:016x}", h.0),
            version: 0,
        },
        size,
        modified_us: micros as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_name_content_and_time() {
        let dir = std::env::temp_dir().join(format!("sluice-ledger-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.csv");
        std::fs::write(&p, vec![7u8; 3 << 20]).unwrap();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let a = fingerprint("a.csv", &p, Some(t)).unwrap().load;
        assert_eq!(fingerprint("a.csv", &p, Some(t)).unwrap().size, 3 << 20);
        assert_eq!(
            fingerprint("a.csv", &p, Some(t)).unwrap().load.app_id,
            a.app_id
        );
        assert_ne!(
            fingerprint("b.csv", &p, Some(t)).unwrap().load.app_id,
            a.app_id
        );
        let later = t + std::time::Duration::from_secs(1);
        assert_ne!(
            fingerprint("a.csv", &p, Some(later)).unwrap().load.app_id,
            a.app_id
        );
        // The last MiB changes.
        let mut bytes = vec![7u8; 3 << 20];
        *bytes.last_mut().unwrap() = 8;
        std::fs::write(&p, bytes).unwrap();
        assert_ne!(
            fingerprint("a.csv", &p, Some(t)).unwrap().load.app_id,
            a.app_id
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
