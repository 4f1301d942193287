//! An append-only journal of JSON lines that survives restarts: the store
//! behind the COPY import and export logs. Rows are kept in memory and
//! appended to the file as they come; retention rewrites the file with an
//! atomic rename, and a torn last line (a crash while appending) is
//! dropped at open.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The day (since the epoch) of a UTC timestamp in microseconds.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(MICROS_PER_DAY)
}

/// The newest `n` days that have a timestamp among `ts`: QuestDB counts
/// log retention in days with rows, not in calendar days.
pub fn newest_days(ts: impl Iterator<Item = i64>, n: u32) -> BTreeSet<i64> {
    let days: BTreeSet<i64> = ts.map(day_of).collect();
    days.iter().rev().take(n as usize).copied().collect()
}

#[derive(Debug)]
pub struct Journal<T> {
    path: PathBuf,
    pub rows: Vec<T>,
    file: File,
}

impl<T: Serialize + for<'de> Deserialize<'de>> Journal<T> {
    /// Loads the rows; a torn last line (crash while appending) is dropped.
    pub fn open(path: PathBuf) -> Result<Self> {
        let mut rows = Vec::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| Error::io(&path, e))?;
                if let Ok(row) = serde_json::from_str(&line) {
                    rows.push(row);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Journal { path, rows, file })
    }

    pub fn append(&mut self, new: Vec<T>) -> Result<()> {
        let mut text = String::new();
        for r in &new {
            text.push_str(&serde_json::to_string(r).map_err(|e| Error::Internal(e.to_string()))?);
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(&self.path, e))?;
        self.rows.extend(new);
        Ok(())
    }

    /// Rewrites the file with the rows `keep` accepts (atomic rename).
    pub fn retain(&mut self, keep: impl Fn(&T) -> bool) -> Result<()> {
        let before = self.rows.len();
        self.rows.retain(|r| keep(r));
        if self.rows.len() == before {
            return Ok(());
        }
        let mut text = String::new();
        for r in &self.rows {
            text.push_str(&serde_json::to_string(r).map_err(|e| Error::Internal(e.to_string()))?);
            text.push('\n');
        }
        super::write_atomic(&self.path, text.as_bytes())?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(())
    }
}
