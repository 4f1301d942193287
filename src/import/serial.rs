//! The serial importer, for targets without partitions: one pass over the
//! records, decoded into batches and written as files of the target, made
//! visible by the same single attach as the parallel pipeline. It writes
//! only the import-level rows of `sys.text_import_log`.

use std::sync::atomic::Ordering;

use super::analyze::Analysis;
use super::attach::Target;
use super::csv::{Field, read_record};
use super::reject::Rejection;
use super::rows::{Outcome, RowDecoder};
use super::{DryRun, ImportError, Job, RowError, Summary};
use crate::catalog::Catalog;
use crate::storage::{DataFile, write_rows};

/// Rows decoded per Arrow batch.
const BATCH_ROWS: usize = 64 * 1024;
/// Rows per written file (each file is sorted by the designated timestamp).
const FILE_ROWS: usize = 1024 * 1024;

fn abort(job: &Job<'_>, buf: &[u8], e: RowError) -> ImportError {
    ImportError::setup(format!("[-1] {}", e.abort_text(&job.req.file_name, buf)))
}

/// Imports the whole file; on error also reports the rows handled.
pub fn run(
    job: &Job<'_>,
    buf: &[u8],
    a: &Analysis,
    catalog: &Catalog,
) -> Result<Summary, (ImportError, u64)> {
    let dry = job.req.options.dry_run;
    let target = match dry {
        true => None,
        false => Some(Target::prepare(catalog, job, a.plan.new_table).map_err(|e| (e, 0))?),
    };
    let plan = &a.plan;
    let mut decoder = RowDecoder::new(plan, job.req.on_error, BATCH_ROWS);
    let mut fields: Vec<Field> = Vec::with_capacity(plan.file_columns + 1);
    let mut batches = Vec::new();
    let mut pending = 0usize;
    let mut files: Vec<DataFile> = Vec::new();
    let (mut handled, mut imported) = (0u64, 0u64);
    let layout = plan.meta.layout();
    let remove_files = |files: &[DataFile]| {
        if let Some(t) = &target {
            for f in files {
                let _ = std::fs::remove_file(t.dir().join(&f.path));
            }
        }
    };
    let flush = |batches: &mut Vec<_>, files: &mut Vec<DataFile>| -> Result<(), ImportError> {
        // A dry run decodes every batch and keeps none.
        let Some(target) = &target else {
            batches.clear();
            return Ok(());
        };
        let tag = format!("{}-{}", job.file_stem(), files.len());
        let written = write_rows(target.dir(), &layout, batches, &tag)
            .map_err(|e| ImportError::setup(e.to_string()))?;
        files.extend(written);
        batches.clear();
        Ok(())
    };
    let policy = Rejection {
        on_error: job.req.on_error,
        sink: &job.errors,
    };
    let mut pos = a.structure.data_start;
    let result = (|| {
        while let Some(r) = read_record(buf, pos, job.dialect(), &mut fields) {
            pos = r.next;
            handled += 1;
            if handled.is_multiple_of(65_536) {
                if job.cancelled() {
                    return Err(ImportError::SerialCancelled);
                }
                job.progress.bytes_done.store(pos as u64, Ordering::Relaxed);
            }
            if r.open_quote {
                policy
                    .record(RowError::open_quote(
                        r.start as u64,
                        fields.len().saturating_sub(1),
                        &a.structure.names,
                    ))
                    .map_err(|e| abort(job, buf, e))?;
                continue;
            }
            match decoder.push(buf, &fields, r.start as u64, None, &job.errors) {
                Ok(Outcome::Imported) => imported += 1,
                Ok(Outcome::Skipped) => {}
                Err(e) => return Err(abort(job, buf, e)),
            }
            if decoder.full(BATCH_ROWS) {
                batches.push(decoder.finish());
                pending += BATCH_ROWS;
                if pending >= FILE_ROWS {
                    flush(&mut batches, &mut files)?;
                    pending = 0;
                }
            }
        }
        if job.cancelled() {
            return Err(ImportError::SerialCancelled);
        }
        if decoder.rows() > 0 {
            batches.push(decoder.finish());
        }
        if !batches.is_empty() {
            flush(&mut batches, &mut files)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        remove_files(&files);
        return Err((e, handled));
    }
    let Some(target) = target else {
        let mut summary = Summary::counts(
            job,
            (handled, handled, imported),
            usize::from(imported > 0),
            buf.len(),
        )
        .with(a, &files);
        let mut report = DryRun::new(a, buf, job.req.dialect, job.req.header.is_some());
        if imported > 0 {
            report.partitions = vec![(a.plan.meta.partition_by.partition_name(0), imported)];
        }
        summary.dry_run = Some(report);
        return Ok(summary);
    };
    let partitions = files.len().min(1);
    let summary =
        Summary::counts(job, (handled, handled, imported), partitions, buf.len()).with(a, &files);
    target
        .attach(catalog, &a.plan.meta, files, job.loads())
        .map_err(|e| (e, handled))
        .map_err(|(e, h)| match e {
            ImportError::Phase { message, .. } => (ImportError::setup(message), h),
            other => (other, h),
        })?;
    Ok(summary)
}
