//! COPY of several files: a glob (`exports/2024-*.csv`) or a directory
//! (`exports/`, every file below it) expanded to the files it names, in
//! name order, each confined to the copy roots like a single file.
//!
//! In a glob, `*` matches any run of characters and `?` one character,
//! neither crossing a `/`; `[abc]`, `[a-z]` and `[!a-z]` match one
//! character of (or not of) the set.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Engine;
use crate::config::CopyRoot;
use crate::import::{InputFile, RemoteSource};
use crate::storage::S3Url;

/// Whether a COPY source names several files.
pub fn is_pattern(name: &str) -> bool {
    name.ends_with('/') || name.contains(['*', '?', '['])
}

/// Splits a pattern into its directory (ending in `/`, maybe empty) and
/// the rest, relative to it (empty for a directory).
fn split(name: &str) -> (&str, &str) {
    let first_glob = name.find(['*', '?', '[']).unwrap_or(name.len());
    let cut = name[..first_glob].rfind('/').map_or(0, |i| i + 1);
    name.split_at(cut)
}

/// Whether `text` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') => (0..=text.len())
            .take_while(|&i| i == 0 || text[i - 1] != b'/')
            .any(|i| glob_match(&pattern[1..], &text[i..])),
        Some(b'?') => {
            text.first().is_some_and(|&c| c != b'/') && glob_match(&pattern[1..], &text[1..])
        }
        Some(b'[') => {
            let Some(end) = pattern
                .iter()
                .skip(2)
                .position(|&c| c == b']')
                .map(|p| p + 2)
            else {
                return text.first() == Some(&b'[') && glob_match(&pattern[1..], &text[1..]);
            };
            let Some(&c) = text.first() else { return false };
            let set = &pattern[1..end];
            let (negated, set) = match set.first() {
                Some(b'!' | b'^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negated && c != b'/' && glob_match(&pattern[end + 1..], &text[1..])
        }
        Some(&p) => text.first() == Some(&p) && glob_match(&pattern[1..], &text[1..]),
    }
}

/// Every file below `dir` (recursively), as paths relative to it.
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = format!("{rel}{name}");
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &format!("{path}/"), out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

impl Engine {
    /// The files a glob or directory names, in name order, each confined
    /// to the copy roots.
    pub(super) fn expand(&self, name: &str) -> Result<Vec<InputFile>, String> {
        let (dir, pattern) = split(name);
        let keep = |rel: &str| pattern.is_empty() || glob_match(pattern.as_bytes(), rel.as_bytes());
        let mut files = Vec::new();
        if let Some(url) = S3Url::parse(dir) {
            let url = url?;
            let inside = self.config.copy_roots.iter().any(|r| match r {
                CopyRoot::S3(root) => root.contains(&url),
                CopyRoot::Local(_) => false,
            });
            let Some(bucket) = self.buckets.get(&url.bucket).filter(|_| inside) else {
                return Err(format!("file is outside the copy root [file={name}]"));
            };
            let prefix = if url.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", url.prefix)
            };
            let listed = bucket.list(&url.prefix).map_err(|e| e.to_string())?;
            for o in listed {
                let Some(rel) = o.key.strip_prefix(&prefix) else {
                    continue;
                };
                if keep(rel) {
                    files.push(InputFile {
                        name: format!("{dir}{rel}"),
                        path: PathBuf::from(format!("{dir}{rel}")),
                        source: Some(RemoteSource {
                            bucket: Arc::clone(bucket),
                            key: o.key.clone(),
                        }),
                    });
                }
            }
        } else {
            let (base, _) = self.resolve_source(if dir.is_empty() { "." } else { dir })?;
            let mut rels = Vec::new();
            walk(&base, "", &mut rels).map_err(|e| format!("could not list [dir={dir}]: {e}"))?;
            for rel in rels.into_iter().filter(|r| keep(r)) {
                let shown = format!("{dir}{rel}");
                // Each file is confined on its own (a symbolic link inside
                // the directory may lead out).
                let (path, _) = self.resolve_source(&shown)?;
                files.push(InputFile {
                    name: shown,
                    path,
                    source: None,
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        if files.is_empty() {
            return Err(format!("no file matches [pattern={name}]"));
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m("2024-*.csv", "2024-01.csv"));
        assert!(m("*.csv", ".csv"));
        assert!(!m("*.csv", "a/b.csv"), "* stays in one directory");
        assert!(m("*/b.csv", "a/b.csv"));
        assert!(m("day-?.csv", "day-1.csv"));
        assert!(!m("day-?.csv", "day-10.csv"));
        assert!(m("day-[0-3].csv", "day-2.csv"));
        assert!(!m("day-[!0-3].csv", "day-2.csv"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("*.csv", "a.csv.gz"));
        assert_eq!(split("exports/2024-*.csv"), ("exports/", "2024-*.csv"));
        assert_eq!(split("exports/"), ("exports/", ""));
        assert_eq!(split("*.csv"), ("", "*.csv"));
        assert_eq!(split("s3://b/in/*/x.csv"), ("s3://b/in/", "*/x.csv"));
        assert!(is_pattern("exports/") && is_pattern("a*.csv") && !is_pattern("a.csv"));
    }
}
