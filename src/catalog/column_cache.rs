//! Decoded columns of table files, kept in memory up to a configured size
//! (`query.cache.size`), least recently used out first.
//!
//! A table's files never change once written (a new version writes new
//! files under new names), so a column decoded once answers every later
//! query of that file until it is evicted: no check is needed for it to be
//! current. QuestDB reads its column files through the operating system's
//! page cache; a Parquet file has to be decoded first, and on the TSBS
//! queries decoding was most of a scan's time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::DataType;

/// One column of one file, as a table of this type reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnKey {
    /// The file, named so that files of different tables never meet
    /// (the table's location and the file's path in it).
    pub file: Arc<str>,
    pub column: Arc<str>,
    pub data_type: DataType,
}

/// A column of a file as arrays of consecutive rows, each with buffers of
/// its own (a slice of one big array would weigh, to DataFusion's memory
/// accounting, as much as the whole array).
pub type Chunks = Arc<[ArrayRef]>;

#[derive(Debug)]
pub struct ColumnCache {
    limit: usize,
    inner: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<ColumnKey, Entry>,
    /// Entries by last use, oldest first.
    by_use: BTreeMap<u64, ColumnKey>,
    clock: u64,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    chunks: Chunks,
    bytes: usize,
    used: u64,
}

/// What the cache holds, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUse {
    pub columns: usize,
    pub bytes: usize,
}

impl ColumnCache {
    /// A cache of at most `limit` bytes of arrays (0 keeps nothing).
    pub fn new(limit: usize) -> ColumnCache {
        ColumnCache {
            limit,
            inner: Mutex::new(Lru::default()),
        }
    }

    /// Whether `bytes` of columns may be kept: at most half the limit, so
    /// that one scan never pushes out everything else (nothing when the
    /// limit is 0). Scans larger than this read Parquet instead (see
    /// `provider`).
    pub fn admits(&self, bytes: u64) -> bool {
        self.limit > 0 && bytes <= self.limit as u64 / 2
    }

    pub fn usage(&self) -> CacheUse {
        let lru = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        CacheUse {
            columns: lru.entries.len(),
            bytes: lru.bytes,
        }
    }

    /// The column, if it is held; it becomes the most recently used.
    pub fn get(&self, key: &ColumnKey) -> Option<Chunks> {
        let mut lru = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lru = &mut *lru;
        lru.clock += 1;
        let entry = lru.entries.get_mut(key)?;
        lru.by_use.remove(&entry.used);
        entry.used = lru.clock;
        lru.by_use.insert(lru.clock, key.clone());
        Some(Arc::clone(&entry.chunks))
    }

    /// Keeps `chunks` under `key`, evicting the least recently used
    /// columns until the whole fits the limit; a column the cache does not
    /// admit is not kept.
    pub fn put(&self, key: ColumnKey, chunks: Chunks) {
        let bytes: usize = chunks.iter().map(|a| a.get_array_memory_size()).sum();
        if !self.admits(bytes as u64) {
            return;
        }
        let mut lru = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lru = &mut *lru;
        lru.clock += 1;
        let used = lru.clock;
        if let Some(old) = lru.entries.insert(
            key.clone(),
            Entry {
                chunks,
                bytes,
                used,
            },
        ) {
            lru.by_use.remove(&old.used);
            lru.bytes -= old.bytes;
        }
        lru.by_use.insert(used, key);
        lru.bytes += bytes;
        while lru.bytes > self.limit {
            let Some((_, oldest)) = lru.by_use.pop_first() else {
                break;
            };
            if let Some(gone) = lru.entries.remove(&oldest) {
                lru.bytes -= gone.bytes;
            }
        }
    }
}

/// About how many bytes a value of `data_type` takes decoded, to guess a
/// scan's size before reading it (strings by a typical length).
pub fn width_of(data_type: &DataType) -> u64 {
    match data_type {
        DataType::Dictionary(key, _) => width_of(key),
        DataType::Boolean => 1,
        DataType::Utf8 | DataType::Binary => 4 + 20,
        DataType::LargeUtf8 | DataType::LargeBinary => 8 + 20,
        DataType::Utf8View | DataType::BinaryView => 16 + 8,
        other => other.primitive_width().unwrap_or(32) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    fn key(file: &str) -> ColumnKey {
        ColumnKey {
            file: Arc::from(file),
            column: Arc::from("v"),
            data_type: DataType::Int64,
        }
    }

    fn column(rows: i64) -> Chunks {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        Arc::from(vec![a])
    }

    fn size(c: &Chunks) -> usize {
        c.iter().map(|a| a.get_array_memory_size()).sum()
    }

    #[test]
    fn the_least_recently_used_column_goes_first() {
        let one = size(&column(1000));
        let cache = ColumnCache::new(one * 3);
        cache.put(key("a"), column(1000));
        cache.put(key("b"), column(1000));
        cache.put(key("c"), column(1000));
        assert!(cache.get(&key("a")).is_some(), "a is used again");
        cache.put(key("d"), column(1000));
        assert!(cache.get(&key("b")).is_none(), "b was the oldest");
        for k in ["a", "c", "d"] {
            assert_eq!(cache.get(&key(k)).unwrap()[0].len(), 1000, "{k}");
        }
        let usage = cache.usage();
        assert_eq!((usage.columns, usage.bytes), (3, one * 3));
        // Putting a key again replaces it without counting it twice.
        cache.put(key("d"), column(1000));
        assert_eq!(cache.usage().bytes, one * 3);
    }

    #[test]
    fn a_column_over_half_the_limit_is_not_kept() {
        let cache = ColumnCache::new(size(&column(1000)));
        cache.put(key("big"), column(1000));
        assert!(cache.get(&key("big")).is_none());
        assert_eq!(cache.usage().bytes, 0);
        let none = ColumnCache::new(0);
        none.put(key("a"), column(1));
        assert!(none.get(&key("a")).is_none());
    }
}
