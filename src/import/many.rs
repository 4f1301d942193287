//! A COPY of several files (a glob or a directory): one import, one id,
//! one commit. The files go through the phases one after another, each
//! phase parallel within the file, under the file's own name in the phase
//! rows of `sys.text_import_log` and in `sys.text_import_errors`. The first
//! file's analysis decides the table (as for one file); every later file
//! must have the same columns, in any order (they map by name), and is read
//! with the table's types. `attach_partitions` then names every file's
//! output in one version: the table has all the files' rows or none.
//! A set of Parquet files works the same way: each maps by name onto the
//! table the first defines; CSV and Parquet files are not mixed.

use std::path::Path;
use std::sync::Arc;

use super::analyze::{self, Analysis};
use super::job::{Job, Summary};
use super::log::{Phase, Status};
use super::partition_import::Written;
use super::pipeline::partitioned;
use super::{ImportError, Importer, attach, boundary, indexing, partition_import};
use crate::catalog::Table;

type Failed = (ImportError, u64);

/// What the files imported so far add up to.
#[derive(Default)]
struct Totals {
    records: u64,
    handled: u64,
    imported: u64,
    bytes: usize,
    files: Vec<crate::storage::DataFile>,
    /// The ledger entries of the files imported.
    loads: Vec<crate::storage::delta::Load>,
    /// Files the table had loaded before.
    skipped: usize,
}

impl Importer {
    pub(super) fn many(&self, job: &Job<'_>, work_dir: &Path) -> Result<Summary, Failed> {
        let req = job.req;
        if req.options.dry_run {
            return Err((
                ImportError::setup("DRY RUN takes one file, not a glob or a directory"),
                0,
            ));
        }
        let existing = self.existing(job)?;
        if !partitioned(job, existing.as_deref()) {
            return Err((
                ImportError::setup(
                    "a COPY of several files needs a partitioned table: add PARTITION BY",
                ),
                0,
            ));
        }
        let mut first: Option<First> = None;
        let mut target: Option<attach::Target> = None;
        let mut t = Totals::default();
        for (i, input) in req.options.inputs.iter().enumerate() {
            let one = req.for_input(input);
            let sub = job.for_file(&one, i, job.errors.room());
            let work = work_dir.join(i.to_string());
            let result = self.one_file(&sub, &existing, &mut first, &mut target, &work);
            let _ = std::fs::remove_dir_all(&work);
            // This file's error rows, with its line numbers, whatever the
            // outcome.
            let rows = self.error_rows(&sub);
            job.file_errors.lock().expect("file errors").extend(rows);
            job.errors.absorb(&sub.errors);
            job.phases
                .lock()
                .expect("phases")
                .append(&mut sub.phases.lock().expect("phases"));
            drop(sub.local_input.lock().expect("source").take());
            let Some((written, records, handled, bytes)) =
                result.map_err(|(e, h)| (e, t.handled + h))?
            else {
                job.record(&sub, 0, Status::Skipped);
                t.skipped += 1;
                continue;
            };
            job.record(&sub, written.rows, Status::Finished);
            t.loads.extend(sub.loads());
            t.records += records;
            t.handled += handled;
            t.imported += written.rows;
            t.bytes += bytes;
            t.files.extend(written.files);
            job.progress
                .rows_total
                .store(t.handled, std::sync::atomic::Ordering::Relaxed);
        }
        let note = (t.skipped > 0).then(|| {
            format!(
                "skipped {} of {} files the table loaded before; WITH FORCE true loads them again",
                t.skipped,
                req.options.inputs.len()
            )
        });
        let (Some(first), Some(target)) = (first, target) else {
            if t.skipped == req.options.inputs.len() {
                return Ok(Summary {
                    note,
                    ..Summary::default()
                });
            }
            return Err((
                ImportError::setup("No rows in input files to import."),
                t.handled,
            ));
        };
        let summary = Summary::counts(
            job,
            (t.records, t.handled, t.imported),
            crate::storage::manifest::partition_count(&t.files),
            t.bytes,
        );
        let mut summary = match &first.csv {
            Some(a) => summary.with(a, &t.files),
            None => summary.with_files(&t.files),
        };
        summary.note = note;
        let handled = t.handled;
        job.phase(Phase::AttachPartitions, || {
            target.attach(&self.catalog, &first.meta, t.files, t.loads)
        })
        .map_err(|e| (e, handled))?;
        Ok(summary)
    }

    /// One file's phases up to partition_import; returns what it wrote,
    /// its record and row counts and its size, or `None` when the table
    /// loaded the file before (logged as skipped).
    fn one_file(
        &self,
        job: &Job<'_>,
        existing: &Option<Arc<Table>>,
        first: &mut Option<First>,
        target: &mut Option<attach::Target>,
        work_dir: &Path,
    ) -> Result<Option<(Written, u64, u64, usize)>, Failed> {
        // A file that adds nothing is logged as skipped, with why.
        let skipped = |why: &str| {
            job.log(
                Some(Phase::AnalyzeFileStructure),
                Status::Skipped,
                Some(why.to_string()),
                (None, None, 0),
            );
            Ok(None)
        };
        let Some(map) = self.open(job)? else {
            return skipped("empty file: nothing to import");
        };
        if self.loaded_before(job, existing.as_deref())? {
            return skipped("the table loaded this file before");
        }
        // Later files are read as the first one defined the table.
        let meta = match first {
            Some(f) => Some(f.meta.clone()),
            None => existing.as_ref().map(|t| t.meta()),
        };
        let parquet = super::parquet::is_parquet(&map);
        if let Some(f) = first.as_ref()
            && f.csv.is_some() == parquet
        {
            let kind = |p: bool| if p { "Parquet" } else { "CSV" };
            return Err((
                ImportError::setup(format!(
                    "the files have different formats [file={}, format={}; first file={}, format={}]",
                    job.req.file_name,
                    kind(parquet),
                    f.file,
                    kind(!parquet)
                )),
                0,
            ));
        }
        if parquet {
            return self.one_parquet(job, map, meta.as_ref(), first, target);
        }
        let plan = job.phase(Phase::AnalyzeFileStructure, || {
            let plan = analyze::run(job, &map, meta.as_ref())?;
            match first
                .as_ref()
                .and_then(|f| f.csv.as_ref().map(|a| (a, &f.file)))
            {
                Some((a, name)) => same_columns(a, name, &plan, job).map(|()| plan),
                None => Ok(plan),
            }
        });
        let plan = match plan {
            Ok(p) => p,
            Err(ImportError::Empty) => return skipped("empty file: nothing to import"),
            Err(e) => return Err((e, 0)),
        };
        let chunks = job
            .phase(Phase::BoundaryCheck, || {
                boundary::run(job, &map, plan.structure.data_start)
            })
            .map_err(|e| (e, 0))?;
        let index = job
            .phase(Phase::Indexing, || {
                indexing::run(job, &map, &plan, &chunks, work_dir)
            })
            .map_err(|e| (e, 0))?;
        let (records, handled) = (index.records, index.rows);
        if index.partitions.is_empty() {
            return Ok(Some((Written::default(), records, handled, map.len())));
        }
        if target.is_none() {
            *target = Some(
                attach::Target::prepare(&self.catalog, job, plan.plan.new_table)
                    .map_err(|e| (e, handled))?,
            );
        }
        let written = job
            .phase(Phase::PartitionImport, || {
                partition_import::run(job, &map, &plan, index, target.as_ref())
            })
            .map_err(|e| (e, handled))?;
        if first.is_none() {
            *first = Some(First {
                meta: plan.plan.meta.clone(),
                file: job.req.file_name.clone(),
                csv: Some(plan),
            });
        }
        Ok(Some((written, records, handled, map.len())))
    }

    /// One Parquet file of the set: mapped by name onto the table the
    /// first file (or the existing table) defines, its rows written.
    fn one_parquet(
        &self,
        job: &Job<'_>,
        map: memmap2::Mmap,
        meta: Option<&crate::catalog::TableMeta>,
        first: &mut Option<First>,
        target: &mut Option<attach::Target>,
    ) -> Result<Option<(Written, u64, u64, usize)>, Failed> {
        let size = map.len();
        let data = bytes::Bytes::from_owner(map);
        let plan = job
            .phase(Phase::AnalyzeFileStructure, || {
                super::parquet::plan(job, &data, meta)
            })
            .map_err(|e| (e, 0))?;
        if target.is_none() {
            *target = Some(
                attach::Target::prepare(&self.catalog, job, plan.new_table).map_err(|e| (e, 0))?,
            );
        }
        let written = job
            .phase(Phase::PartitionImport, || {
                super::parquet::write(
                    job,
                    &data,
                    &plan,
                    target.as_ref().expect("prepared"),
                    self.settings.decode_memory,
                )
            })
            .map_err(|e| (e, 0))?;
        if first.is_none() {
            *first = Some(First {
                meta: plan.meta.clone(),
                file: job.req.file_name.clone(),
                csv: None,
            });
        }
        let rows = written.rows;
        Ok(Some((written, rows, rows, size)))
    }
}

/// The file that defined the table's columns for the rest of the set.
struct First {
    meta: crate::catalog::TableMeta,
    file: String,
    /// Its analysis when it is a CSV file (`None`: Parquet).
    csv: Option<Analysis>,
}

/// Checks that a later file has the first file's columns (by name when
/// both have a header, else by count).
fn same_columns(
    first: &Analysis,
    first_file: &str,
    later: &Analysis,
    job: &Job<'_>,
) -> Result<(), ImportError> {
    let names = |a: &Analysis| -> Vec<String> {
        let mut v: Vec<String> = a
            .structure
            .names
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        v.sort();
        v
    };
    let (a, b) = (&first.structure, &later.structure);
    let differ = if a.header && b.header {
        names(first) != names(later)
    } else {
        a.names.len() != b.names.len()
    };
    if differ {
        return Err(ImportError::setup(format!(
            "the files have different columns [file={}, columns={}; first file={first_file}, columns={}]",
            job.req.file_name,
            b.names.join(","),
            a.names.join(","),
        )));
    }
    Ok(())
}
