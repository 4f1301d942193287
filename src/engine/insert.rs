//! INSERT (VALUES or a query) and the row-writing half of CREATE TABLE AS.
//!
//! The source runs as a DataFusion stream; each batch is converted column by
//! column into the table's types (a value that does not fit fails the whole
//! statement with 22P02 naming the column) and written to new files in
//! chunks. One manifest swap at the end makes all rows visible at once; an
//! error or a crash before it leaves the table as it was.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast as sp;

use super::{Command, CommandKind, Engine, Output, Rows};
use crate::catalog::{AppendTxn, Table, TableMeta};
use crate::error::{Error, Result};
use crate::sql::Insert;
use crate::storage::Layout;

/// Rows buffered before a chunk is written, unless `batch N` says otherwise.
const DEFAULT_CHUNK_ROWS: usize = 1 << 20;

impl Engine {
    pub(super) async fn insert(&self, insert: &Insert, params: &[ScalarValue]) -> Result<Output> {
        let table = self.table(&insert.table)?;
        let targets = target_columns(&table.shared_meta(), insert)?;
        let rows = match super::values::columns(&insert.source, params) {
            Some(columns) => self.insert_values(&table, columns?, targets).await?,
            None => {
                let plan = self.inner_query(&insert.source, params).await?;
                self.insert_plan(&table, plan, targets, insert.batch)
                    .await?
            }
        };
        Ok(Output::Command(Command {
            tag: "INSERT",
            rows: Some(rows),
            kind: CommandKind::Dml,
        }))
    }

    /// Appends the rows of a VALUES list of literals (see `values`), with
    /// the checks and conversions of [`Engine::insert_plan`].
    async fn insert_values(
        &self,
        table: &Arc<Table>,
        columns: super::values::Columns,
        targets: Vec<usize>,
    ) -> Result<u64> {
        check_width(table, columns.arrays.len(), &targets)?;
        let (meta, layout) = table.definition();
        let batch = meta.convert_columns_to(
            Arc::clone(&layout.schema),
            &columns.arrays,
            columns.rows,
            &targets,
        )?;
        if let Some(wal) = self.small_write_log(table, &meta)
            && batch.num_rows() as u64 <= self.config.wal_max_statement_rows
        {
            return self
                .append_to_wal(table, &meta, &layout, wal, vec![batch])
                .await;
        }
        let txn = write_chunk(table.begin_append().await?, vec![batch]).await?;
        tokio::task::spawn_blocking(move || txn.commit())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// Runs `plan` and appends its rows to `table`; source column `i` goes
    /// to table column `targets[i]`, other columns get NULL.
    pub(super) async fn insert_plan(
        &self,
        table: &Arc<Table>,
        plan: LogicalPlan,
        targets: Vec<usize>,
        chunk: Option<u64>,
    ) -> Result<u64> {
        check_width(table, plan.schema().fields().len(), &targets)?;
        let chunk_rows = chunk
            .map(|n| n as usize)
            .unwrap_or(DEFAULT_CHUNK_ROWS)
            .max(1);
        let (meta, layout) = table.definition();
        let df = self.ctx.execute_logical_plan(plan).await?;
        let task = Arc::new(df.task_ctx());
        let physical = df.create_physical_plan().await?;
        let stream = datafusion::physical_plan::execute_stream(Arc::clone(&physical), task)?;
        // The rows hold the plan until the last is written: its scans pin
        // the snapshots they read, whose files a commit meanwhile (a
        // compaction of the source) must not remove before they are read.
        let mut stream = Rows::new(stream).holding(physical);
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut pending_rows = 0;
        // A small write goes to the table's write-ahead log: read the
        // source until it ends or outgrows the log's statement size.
        if let Some(wal) = self.small_write_log(table, &meta) {
            let limit = self.config.wal_max_statement_rows as usize;
            while pending_rows <= limit {
                let Some(batch) = stream.next().await else {
                    return self
                        .append_to_wal(table, &meta, &layout, wal, pending)
                        .await;
                };
                let batch = meta.convert_batch_to(Arc::clone(&layout.schema), &batch?, &targets)?;
                pending_rows += batch.num_rows();
                pending.push(batch);
            }
        }
        let mut txn = Some(table.begin_append().await?);
        while let Some(batch) = stream.next().await {
            let batch = meta.convert_batch_to(Arc::clone(&layout.schema), &batch?, &targets)?;
            pending_rows += batch.num_rows();
            pending.push(batch);
            if pending_rows >= chunk_rows {
                txn = Some(
                    write_chunk(txn.take().expect("open txn"), std::mem::take(&mut pending))
                        .await?,
                );
                pending_rows = 0;
            }
        }
        let mut txn = txn.take().expect("open txn");
        if !pending.is_empty() {
            txn = write_chunk(txn, pending).await?;
        }
        tokio::task::spawn_blocking(move || txn.commit())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// The log a small write to `table` goes to: none for a `BYPASS WAL`
    /// table, with `cairo.wal.enabled=false`, or for a table with DEDUP
    /// keys (its rows replace stored ones as they are committed, so they
    /// never sit in the log beside the rows they replace).
    fn small_write_log(
        &self,
        table: &Arc<Table>,
        meta: &TableMeta,
    ) -> Option<Arc<crate::catalog::wal::Wal>> {
        table
            .wal()
            .filter(|_| meta.wal && self.config.wal_enabled && meta.dedup_keys.is_empty())
            .cloned()
    }

    /// Appends `batches` to `table`'s write-ahead log as one record and
    /// waits until it is durable (sharing the fsync with other writers);
    /// wakes the applier once the log holds enough rows.
    async fn append_to_wal(
        &self,
        table: &Arc<Table>,
        meta: &TableMeta,
        layout: &Layout,
        wal: Arc<crate::catalog::wal::Wal>,
        batches: Vec<RecordBatch>,
    ) -> Result<u64> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(0);
        }
        // One statement's rows are one batch already: nothing to copy.
        let batch = match <[RecordBatch; 1]>::try_from(batches) {
            Ok([batch]) => batch,
            Err(batches) => datafusion::arrow::compute::concat_batches(&layout.schema, &batches)?,
        };
        // What the apply would refuse is refused now, not left in the log.
        crate::storage::files::check_designated(layout, &batch)?;
        wal.append(batch).await?;
        let waiting = wal.pending_rows();
        // The table's maxUncommittedRows, when set, is its batch size.
        let full = meta
            .params
            .max_uncommitted_rows
            .filter(|n| *n > 0)
            .unwrap_or(self.config.wal_apply_rows);
        if waiting as u64 >= full.saturating_mul(4) {
            // The applier is behind (a slow disk or bucket): this writer
            // applies, so the rows held in memory stay bounded.
            let t = Arc::clone(table);
            tokio::task::spawn_blocking(move || t.apply_wal_blocking())
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        } else if waiting as u64 >= full {
            self.wal_applier.wake();
        }
        Ok(rows as u64)
    }

    /// Types of `$n` placeholders in `INSERT … VALUES`: those of the columns
    /// they are written to.
    pub(super) fn insert_param_types(&self, insert: &Insert) -> Result<Vec<Option<DataType>>> {
        let table = self.table(&insert.table)?;
        let meta = table.meta();
        let targets = target_columns(&meta, insert)?;
        let mut out: Vec<Option<DataType>> = Vec::new();
        if let sp::SetExpr::Values(values) = insert.source.query.body.as_ref() {
            for row in &values.rows {
                for (j, e) in row.iter().enumerate() {
                    if let sp::Expr::Value(v) = e
                        && let sp::Value::Placeholder(p) = &v.value
                        && let Ok(n) = p.trim_start_matches('$').parse::<usize>()
                        && n >= 1
                        && let Some(&col) = targets.get(j)
                    {
                        if out.len() < n {
                            out.resize(n, None);
                        }
                        out[n - 1] = Some(meta.columns[col].ty.arrow_type());
                    }
                }
            }
        }
        Ok(out)
    }
}

async fn write_chunk(mut txn: AppendTxn, batches: Vec<RecordBatch>) -> Result<AppendTxn> {
    tokio::task::spawn_blocking(move || {
        txn.write(&batches)?;
        Ok(txn)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// The source must give a value for every target column.
fn check_width(table: &Table, width: usize, targets: &[usize]) -> Result<()> {
    if width != targets.len() {
        return Err(Error::invalid(format!(
            "column count mismatch [table={}, expected={}, actual={}]",
            table.display_name(),
            targets.len(),
            width
        )));
    }
    Ok(())
}

fn target_columns(meta: &TableMeta, insert: &Insert) -> Result<Vec<usize>> {
    if insert.columns.is_empty() {
        return Ok((0..meta.columns.len()).collect());
    }
    let mut out = Vec::with_capacity(insert.columns.len());
    for (name, position) in &insert.columns {
        let i = meta
            .column_index(name)
            .ok_or_else(|| Error::ColumnNotFound {
                column: name.clone(),
                position: Some(*position),
            })?;
        if out.contains(&i) {
            return Err(Error::DuplicateColumn {
                column: name.clone(),
            });
        }
        out.push(i);
    }
    Ok(out)
}
