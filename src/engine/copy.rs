//! `COPY t FROM 'file'` and `COPY 'id' CANCEL`: statement checks, path
//! confinement to the copy root, and the hand-over to the importer.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{Engine, Output, Rows};
use crate::error::{Error, Result};
use crate::import::{ImportRequest, OnError, parse_id};
use crate::sql::{Copy, CopyOnError};
use crate::storage::PartitionBy;

/// Result columns of COPY (`id`) and COPY CANCEL (`id`, `status`).
pub fn copy_schema(cancel: bool) -> SchemaRef {
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    if cancel {
        fields.push(Field::new("status", DataType::Utf8, false));
    }
    Arc::new(Schema::new(fields))
}

fn one_row(schema: SchemaRef, values: &[&str]) -> Result<Output> {
    let columns = values
        .iter()
        .map(|v| Arc::new(StringArray::from(vec![*v])) as _)
        .collect();
    Ok(Output::Rows(Rows {
        batches: vec![RecordBatch::try_new(Arc::clone(&schema), columns)?],
        schema,
    }))
}

/// Resolves `name` inside the copy root without opening anything:
/// `..` is refused, an absolute path must lie below the root (or name a
/// file below it, QuestDB's leading `/`), and symlinks may not lead out.
pub fn resolve_copy_path(root: &Path, name: &str) -> std::result::Result<PathBuf, String> {
    let outside = || {
        format!(
            "file is outside the copy root [file={name}, copy root={}]",
            root.display()
        )
    };
    let given = Path::new(name);
    if given.components().any(|c| c == Component::ParentDir) {
        return Err("'.' is not allowed".into());
    }
    let canon_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let candidate = if given.is_absolute() {
        if given.starts_with(root) || given.starts_with(&canon_root) {
            given.to_path_buf()
        } else {
            let inside = root.join(name.trim_start_matches(['/', '\\']));
            if !inside.exists() {
                return Err(outside());
            }
            inside
        }
    } else {
        root.join(given)
    };
    // A file that does not exist is reported by the import (its log says
    // so); one that exists must really be inside the root.
    if let Ok(real) = candidate.canonicalize()
        && !real.starts_with(&canon_root)
    {
        return Err(format!(
            "file leads outside the copy root through a symbolic link [file={name}, target={}]",
            real.display()
        ));
    }
    Ok(candidate)
}

impl Engine {
    pub(super) fn copy(&self, c: Copy) -> Result<Output> {
        let Some(root) = &self.config.copy_root else {
            return Err(Error::invalid(
                "COPY is disabled ['cairo.sql.copy.root' is not set?]",
            ));
        };
        if c.timestamp.is_none() && c.partition_by.is_some_and(|p| p != PartitionBy::None) {
            return Err(Error::invalid(
                "invalid option used for import without a designated timestamp (format or partition by)",
            ));
        }
        let path = resolve_copy_path(root, &c.file).map_err(|message| Error::Invalid {
            message,
            position: Some(c.file_position),
        })?;
        let req = ImportRequest {
            schema: c.table.schema.clone(),
            table: c.table.name.clone(),
            file_name: c.file.clone(),
            path,
            header: c.header,
            timestamp: c.timestamp,
            format: c.format,
            delimiter: c.delimiter.unwrap_or(b','),
            partition_by: c.partition_by,
            on_error: match c.on_error.unwrap_or(CopyOnError::SkipRow) {
                CopyOnError::SkipRow => OnError::SkipRow,
                CopyOnError::SkipColumn => OnError::SkipColumn,
                CopyOnError::Abort => OnError::Abort,
            },
            options: Default::default(),
        };
        if !self.catalog.schema_exists(&req.schema) {
            return Err(Error::SchemaNotFound { schema: req.schema });
        }
        let id = self.importer.submit(req)?;
        one_row(copy_schema(false), &[&id])
    }

    pub(super) fn copy_cancel(&self, id: String) -> Result<Output> {
        let Some(parsed) = parse_id(&id) else {
            return Err(Error::Syntax {
                message: format!("copy cancel ID format is invalid: '{id}'"),
                position: 0,
            });
        };
        let status = self.importer.cancel(&parsed);
        one_row(copy_schema(true), &[&id, &status])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("sluice-copyroot-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.csv"), "x\n").unwrap();
        assert_eq!(
            resolve_copy_path(&root, "a.csv").unwrap(),
            root.join("a.csv")
        );
        assert_eq!(
            resolve_copy_path(&root, "/a.csv").unwrap(),
            root.join("a.csv")
        );
        assert!(resolve_copy_path(&root, "sub/../../x").is_err());
        assert!(resolve_copy_path(&root, "/etc/passwd").is_err());
        let abs = root.join("a.csv");
        assert_eq!(
            resolve_copy_path(&root, abs.to_str().unwrap()).unwrap(),
            abs
        );
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        assert!(
            resolve_copy_path(&root, "escape/passwd")
                .unwrap_err()
                .contains("symbolic link")
        );
        // A missing file is the import's to report.
        assert!(resolve_copy_path(&root, "missing.csv").is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }
}
