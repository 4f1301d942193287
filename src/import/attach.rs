//! Phase `attach_partitions` and where files are written before it.
//!
//! A new table is built in a hidden staging directory next to the tables
//! (`.name.importing-<id>`) and appears by one rename with its manifest
//! already listing every file; start-up removes a staging directory left
//! by a crash. An existing table gets its files in its own directory under
//! names no manifest lists yet, and they appear with one manifest swap.
//! Either way the table has all the imported rows or none of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::log::Phase;
use super::{ImportError, Job};
use crate::catalog::{Catalog, Table, TableMeta};
use crate::storage::DataFile;
use crate::storage::delta::Load;

const PHASE: Phase = Phase::AttachPartitions;

/// Where an import writes its files.
pub enum Target {
    New {
        schema: String,
        name: String,
        staging: PathBuf,
        /// The new table's files are uploaded to object storage.
        remote: bool,
    },
    Existing {
        table: Arc<Table>,
    },
}

impl Target {
    /// Where `job` writes: the existing table, or (`new_table`) a staging
    /// directory for the table it creates.
    pub fn prepare(
        catalog: &Catalog,
        job: &Job<'_>,
        new_table: bool,
    ) -> Result<Target, ImportError> {
        let req = job.req;
        if !new_table {
            let table = catalog.get(&req.schema, &req.table).ok_or_else(|| {
                ImportError::setup(format!("table does not exist [table={}]", req.table))
            })?;
            return Ok(Target::Existing { table });
        }
        let staging = catalog
            .staging_dir(&req.schema, &req.table, job.id)
            .map_err(|e| ImportError::setup(e.to_string()))?;
        std::fs::create_dir_all(&staging).map_err(|e| {
            ImportError::setup(format!(
                "could not create temporary import work directory [path='{}']: {e}",
                staging.display()
            ))
        })?;
        Ok(Target::New {
            schema: req.schema.clone(),
            name: req.table.clone(),
            staging,
            remote: catalog.is_remote(),
        })
    }

    /// The directory files are written below (partition sub-directories).
    pub fn dir(&self) -> &Path {
        match self {
            Target::New { staging, .. } => staging,
            Target::Existing { table } => &table.loc.dir,
        }
    }

    /// Whether the written files are the table's own (on local disk, to be
    /// made durable before attach) rather than copies a commit uploads.
    pub fn files_stay_local(&self) -> bool {
        match self {
            Target::New { remote, .. } => !remote,
            Target::Existing { table } => table.loc.remote.is_none(),
        }
    }

    /// Makes `files` visible in one step.
    /// `loads` are the source files the commit records as loaded.
    pub fn attach(
        &self,
        catalog: &Catalog,
        meta: &TableMeta,
        files: Vec<DataFile>,
        loads: Vec<Load>,
    ) -> Result<(), ImportError> {
        let fail = |message: String| ImportError::Phase {
            phase: PHASE,
            message,
        };
        match self {
            Target::New {
                schema,
                name,
                staging,
                ..
            } => {
                catalog
                    .create_table_with_files(schema, name, meta.clone(), staging, files, &loads)
                    .map_err(|e| fail(e.to_string()))?;
                Ok(())
            }
            Target::Existing { table } => {
                let cleanup = |files: &[DataFile]| {
                    for f in files {
                        let _ = std::fs::remove_file(table.loc.dir.join(&f.path));
                    }
                };
                let mut txn = match table.begin_append_blocking() {
                    Ok(t) => t,
                    Err(e) => {
                        cleanup(&files);
                        return Err(fail(e.to_string()));
                    }
                };
                if table.meta() != *meta {
                    cleanup(&files);
                    return Err(fail(format!(
                        "the definition of table {} changed during the import",
                        table.display_name()
                    )));
                }
                // From here the transaction owns the files: dropping it
                // without a commit removes them.
                txn.add_files(files);
                txn.record_loads(loads);
                txn.commit()
                    .map_err(|e| fail(format!("could not attach: {e}")))?;
                Ok(())
            }
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // After a successful attach the staging directory was renamed
        // away; otherwise it holds an abandoned import.
        if let Target::New { staging, .. } = self {
            let _ = std::fs::remove_dir_all(staging);
        }
    }
}
