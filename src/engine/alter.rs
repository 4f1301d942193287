//! ALTER TABLE: each form becomes a new definition and a choice of files
//! for [`Table::change`], which commits both as one Delta version. Column
//! additions and table options change no file; dropped or renamed columns,
//! type changes and new indexes rewrite the files (a Delta reader sees the
//! files and the schema change together); DROP PARTITION removes files.
//! SHOW PARTITIONS answers here too.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{cast, kernels::cmp::distinct};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::rows::Rows;
use super::{Engine, Output};
use crate::catalog::table::{RowMap, Selection};
use crate::catalog::{ColumnMeta, Table, TableMeta};
use crate::error::{Error, Result};
use crate::schema::ColumnType;
use crate::sql::ast::{AlterTable, PartitionPick, TableRef};
use crate::storage::DataFile;
use crate::storage::location::{ATTACHABLE, DETACHED};
use crate::time::PartitionBy;

impl Engine {
    pub(super) async fn alter_table(&self, table: TableRef, action: AlterTable) -> Result<Output> {
        let t = self.table(&table)?;
        let mut meta = t.meta();
        // Rows still in the write-ahead log become files under the old
        // definition first, so every change below sees them.
        self.apply_wal(&t).await?;
        match action {
            AlterTable::AddColumns {
                columns,
                if_not_exists,
            } => add_columns(&t, meta, columns, if_not_exists).await?,
            AlterTable::DropColumns(names) => drop_columns(&t, meta, names).await?,
            AlterTable::RenameColumn { from, to } => rename_column(&t, meta, from, to).await?,
            AlterTable::ColumnType { column, ty } => column_type(&t, meta, column, ty).await?,
            AlterTable::Index { column, add } => set_index(&t, meta, column, add).await?,
            AlterTable::DropPartitions(pick) => {
                let dropped = self.partitions_picked(&t, &meta, pick)?;
                t.change(
                    meta,
                    move |files| {
                        Ok(Selection {
                            dropped: files
                                .iter()
                                .filter(|f| dropped.contains(&f.partition))
                                .cloned()
                                .collect(),
                            rewritten: Vec::new(),
                        })
                    },
                    unchanged(),
                )
                .await?;
            }
            AlterTable::DetachPartitions(pick) => {
                let names = self.partitions_picked(&t, &meta, pick)?;
                self.detach(&t, meta, names).await?;
            }
            AlterTable::AttachPartitions(names) => {
                for (name, position) in names {
                    self.attach(&t, &name, position).await?;
                }
            }
            AlterTable::SetParams(params) => {
                for p in &params {
                    meta.params.set(p);
                }
                t.change(meta, |_| Ok(Selection::default()), unchanged())
                    .await?;
            }
            AlterTable::SetTtl(ttl) => {
                if ttl.is_some() && meta.partition_by == PartitionBy::None {
                    return Err(Error::invalid(format!(
                        "TTL is possible only on partitioned tables [table={}]",
                        t.display_name()
                    )));
                }
                meta.ttl = ttl;
                t.change(meta, |_| Ok(Selection::default()), unchanged())
                    .await?;
            }
            AlterTable::Dedup(keys) => {
                meta.dedup_keys = match keys {
                    Some(keys) => super::ddl::column_names(&meta, &keys)?,
                    None => Vec::new(),
                };
                meta.validate()?;
                t.change(meta, |_| Ok(Selection::default()), unchanged())
                    .await?;
            }
        }
        Ok(Output::ddl("ALTER TABLE"))
    }

    /// The partition names a DROP PARTITION picks; each listed one must
    /// exist.
    fn partitions_picked(
        &self,
        t: &Table,
        meta: &TableMeta,
        pick: PartitionPick,
    ) -> Result<Vec<String>> {
        let unit = meta.partition_by;
        let Some(ts) = meta.timestamp.clone().filter(|_| unit != PartitionBy::None) else {
            return Err(Error::invalid(format!(
                "table is not partitioned [table={}]",
                t.display_name()
            )));
        };
        // Partition name -> its start.
        let mut present: BTreeMap<String, i64> = BTreeMap::new();
        for f in &t.snapshot().manifest.files {
            if let Some(min) = f.min_ts {
                present.insert(f.partition.clone(), unit.floor(min));
            }
        }
        match pick {
            PartitionPick::List(names) => {
                let mut out = Vec::new();
                for (name, position) in names {
                    let found = present
                        .keys()
                        .find(|p| p.eq_ignore_ascii_case(&name))
                        .cloned()
                        .or_else(|| match crate::time::interval::parse(&name) {
                            Some(Ok((lo, _))) => {
                                Some(unit.partition_name(lo)).filter(|p| present.contains_key(p))
                            }
                            _ => None,
                        });
                    match found {
                        Some(p) => out.push(p),
                        None => {
                            return Err(Error::Invalid {
                                message: format!(
                                    "could not remove partition [table={}, partition={name}, partitionBy={}]: no such partition",
                                    t.display_name(),
                                    unit.name()
                                ),
                                position: Some(position),
                            });
                        }
                    }
                }
                Ok(out)
            }
            PartitionPick::Where(condition) => {
                // The condition is evaluated on each partition's start, as
                // the value of the designated timestamp.
                let field = Field::new(
                    &ts,
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                );
                let schema = Arc::new(Schema::new(vec![field]));
                let starts =
                    TimestampMicrosecondArray::from(present.values().copied().collect::<Vec<_>>())
                        .with_timezone("UTC");
                let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(starts)])?;
                let mask = self.row_condition(*condition, &schema, &[])?(&batch)?;
                Ok(present
                    .keys()
                    .zip(mask.iter())
                    .filter(|(_, m)| m.unwrap_or(false))
                    .map(|(p, _)| p.clone())
                    .collect())
            }
        }
    }

    /// Takes partitions out of the table: their files are linked into
    /// `<partition>.detached/` beside the table before the version that
    /// removes them commits, so they are never only in a removed state.
    async fn detach(&self, t: &Arc<Table>, meta: TableMeta, names: Vec<String>) -> Result<()> {
        local_only(t, "DETACH PARTITION")?;
        let newest = t
            .snapshot()
            .manifest
            .files
            .iter()
            .map(|f| f.partition.clone())
            .max();
        for name in &names {
            if Some(name) == newest.as_ref() {
                return Err(Error::invalid(format!(
                    "cannot detach the active (newest) partition [table={}, partition={name}]",
                    t.display_name()
                )));
            }
            if t.loc.dir.join(format!("{name}{DETACHED}")).exists() {
                return Err(Error::invalid(format!(
                    "partition is already detached [table={}, partition={name}{DETACHED}]",
                    t.display_name()
                )));
            }
        }
        let dir = t.loc.dir.clone();
        t.change(
            meta,
            move |files| {
                let gone: Vec<DataFile> = files
                    .iter()
                    .filter(|f| names.contains(&f.partition))
                    .cloned()
                    .collect();
                for name in &names {
                    let target = dir.join(format!("{name}{DETACHED}"));
                    std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
                    for f in gone.iter().filter(|f| &f.partition == name) {
                        let from = dir.join(&f.path);
                        let to = target.join(from.file_name().expect("a data file has a name"));
                        if std::fs::hard_link(&from, &to).is_err() {
                            std::fs::copy(&from, &to).map_err(|e| Error::io(&to, e))?;
                        }
                    }
                    crate::storage::sync_dir(&target)?;
                }
                crate::storage::sync_dir(&dir)?;
                Ok(Selection {
                    dropped: gone,
                    rewritten: Vec::new(),
                })
            },
            unchanged(),
        )
        .await?;
        Ok(())
    }

    /// Brings `<name>.attachable/` (or `<name>.detached/`) back: its
    /// Parquet files are read under the table's current columns (by name),
    /// checked to hold only that partition's rows, and appended in one
    /// version; the directory goes once that version is committed.
    async fn attach(&self, t: &Arc<Table>, name: &str, position: usize) -> Result<()> {
        local_only(t, "ATTACH PARTITION")?;
        let state = t.snapshot();
        let unit = state.meta.partition_by;
        let fail = |why: String| Error::Invalid {
            message: format!(
                "could not attach partition [table={}, partition={name}]: {why}",
                t.display_name()
            ),
            position: Some(position),
        };
        if state.manifest.files.iter().any(|f| f.partition == name) {
            return Err(fail("the table has this partition".into()));
        }
        let Some(dir) = [ATTACHABLE, DETACHED]
            .iter()
            .map(|s| t.loc.dir.join(format!("{name}{s}")))
            .find(|d| d.is_dir())
        else {
            return Err(fail(format!(
                "no directory {name}{ATTACHABLE} (or {name}{DETACHED}) in the table's directory"
            )));
        };
        let mut files = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let file = e.file_name().to_string_lossy().to_string();
            if file.ends_with(".parquet") {
                files.push(DataFile {
                    partition: name.to_string(),
                    path: file,
                    rows: 0,
                    size: 0,
                    min_ts: None,
                    max_ts: None,
                });
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let layout = state.meta.layout();
        let source = crate::storage::TableLoc::local(dir.clone());
        let batches = crate::storage::read_files(&source, &files, &layout.schema)?;
        if let Some(i) = layout.timestamp {
            for b in &batches {
                let micros = crate::storage::files::timestamp_micros(b.column(i))?;
                if let Some(v) = micros
                    .iter()
                    .flatten()
                    .find(|v| unit.partition_name(*v) != name)
                {
                    return Err(fail(format!(
                        "a row belongs to partition {}",
                        unit.partition_name(v)
                    )));
                }
            }
        }
        let mut txn = t.begin_append().await?;
        tokio::task::spawn_blocking(move || {
            txn.write(&batches)?;
            txn.commit()
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(())
    }

    /// QuestDB's SHOW PARTITIONS: one row per partition, with the rows of
    /// the write-ahead log counted where they will go.
    pub(super) fn show_partitions(&self, table: TableRef) -> Result<Output> {
        let batch = partitions_of(self.table(&table)?.as_ref())?;
        Ok(Output::Rows(Rows::from_batches(
            batch.schema(),
            vec![batch],
        )))
    }
}

/// ADD COLUMN: files without the column read it as NULL, so none changes.
async fn add_columns(
    t: &Arc<Table>,
    mut meta: TableMeta,
    columns: Vec<(ColumnMeta, usize)>,
    if_not_exists: bool,
) -> Result<()> {
    for (col, position) in columns {
        if meta.column(&col.name).is_some() {
            if if_not_exists {
                continue;
            }
            return Err(Error::Invalid {
                message: format!("column '{}' already exists", col.name),
                position: Some(position),
            });
        }
        meta.columns.push(col);
    }
    meta.validate()?;
    // Files without the column read it as NULL: none changes.
    t.change(meta, |_| Ok(Selection::default()), unchanged())
        .await?;
    Ok(())
}

/// DROP COLUMN: every file is written again without the columns.
async fn drop_columns(
    t: &Arc<Table>,
    mut meta: TableMeta,
    names: Vec<(String, usize)>,
) -> Result<()> {
    for (name, position) in &names {
        let i = column_at(&meta, name, *position)?;
        let col = meta.columns[i].name.clone();
        if meta.timestamp.as_deref() == Some(col.as_str()) {
            return Err(Error::Invalid {
                message: format!("cannot drop the designated timestamp [column={col}]"),
                position: Some(*position),
            });
        }
        if meta.dedup_keys.contains(&col) {
            return Err(Error::Invalid {
                message: format!(
                    "cannot drop a deduplication key; DEDUP DISABLE first [column={col}]"
                ),
                position: Some(*position),
            });
        }
        meta.columns.remove(i);
    }
    meta.validate()?;
    // The files lose the column, so a column added later under
    // the same name does not bring old values back.
    let schema = meta.arrow_schema();
    t.change(
        meta,
        Selection::rewrite_all,
        Box::new(move |b| reshaped(&b, &schema)),
    )
    .await?;
    Ok(())
}

/// RENAME COLUMN, with the designated timestamp and dedup keys it names.
async fn rename_column(
    t: &Arc<Table>,
    mut meta: TableMeta,
    from: (String, usize),
    to: String,
) -> Result<()> {
    let i = column_at(&meta, &from.0, from.1)?;
    if meta.column_index(&to).is_some_and(|j| j != i) {
        return Err(Error::DuplicateColumn { column: to });
    }
    let old = meta.columns[i].name.clone();
    if meta.timestamp.as_deref() == Some(old.as_str()) {
        meta.timestamp = Some(to.clone());
    }
    for k in meta.dedup_keys.iter_mut().filter(|k| **k == old) {
        *k = to.clone();
    }
    meta.columns[i].name = to;
    meta.validate()?;
    // Same positions and types, new names.
    let schema = meta.arrow_schema();
    t.change(
        meta,
        Selection::rewrite_all,
        Box::new(move |b| {
            let n = b.num_rows() as u64;
            Ok((
                RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec())?,
                n,
            ))
        }),
    )
    .await?;
    Ok(())
}

/// ALTER COLUMN … TYPE: every value cast, none silently changed.
async fn column_type(
    t: &Arc<Table>,
    mut meta: TableMeta,
    column: (String, usize),
    ty: ColumnType,
) -> Result<()> {
    let i = column_at(&meta, &column.0, column.1)?;
    let col = meta.columns[i].clone();
    if meta.timestamp.as_deref() == Some(col.name.as_str()) {
        return Err(Error::Invalid {
            message: format!(
                "cannot change the type of the designated timestamp [column={}]",
                col.name
            ),
            position: Some(column.1),
        });
    }
    if col.ty == ty {
        return Ok(());
    }
    meta.columns[i].ty = ty;
    if ty != ColumnType::Symbol {
        meta.columns[i].indexed = false;
    }
    meta.validate()?;
    let schema = meta.arrow_schema();
    let (name, from) = (col.name.clone(), col.ty);
    t.change(
        meta,
        Selection::rewrite_all,
        Box::new(move |b| {
            let old = b.column(i);
            let new = cast(old, schema.field(i).data_type())?;
            check_kept(&name, from, ty, old, &new)?;
            let mut columns = b.columns().to_vec();
            columns[i] = new;
            let n = b.num_rows() as u64;
            Ok((RecordBatch::try_new(Arc::clone(&schema), columns)?, n))
        }),
    )
    .await?;
    Ok(())
}

/// ADD INDEX / DROP INDEX on a SYMBOL column.
async fn set_index(
    t: &Arc<Table>,
    mut meta: TableMeta,
    column: (String, usize),
    add: bool,
) -> Result<()> {
    let i = column_at(&meta, &column.0, column.1)?;
    let col = &meta.columns[i];
    if col.ty != ColumnType::Symbol {
        return Err(Error::Invalid {
            message: format!(
                "indexes are only supported for SYMBOL columns [column={}]",
                col.name
            ),
            position: Some(column.1),
        });
    }
    if col.indexed == add {
        return Err(Error::Invalid {
            message: format!(
                "column {} [column={}]",
                if add {
                    "is already indexed"
                } else {
                    "is not indexed"
                },
                col.name
            ),
            position: Some(column.1),
        });
    }
    meta.columns[i].indexed = add;
    if add {
        // Every file is written again with the column's bloom
        // filters; a dropped index leaves them (unused, small).
        t.change(
            meta,
            Selection::rewrite_all,
            Box::new(|b| {
                let n = b.num_rows() as u64;
                Ok((b, n))
            }),
        )
        .await?;
    } else {
        t.change(meta, |_| Ok(Selection::default()), unchanged())
            .await?;
    }
    Ok(())
}

/// QuestDB's `table_partitions('t')`: SHOW PARTITIONS as a relation, to
/// filter, sort and join.
#[derive(Debug)]
pub(super) struct TablePartitions {
    pub catalog: Arc<crate::catalog::Catalog>,
}

impl datafusion::catalog::TableFunctionImpl for TablePartitions {
    fn call(
        &self,
        args: &[datafusion::logical_expr::Expr],
    ) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>> {
        use datafusion::common::ScalarValue;
        let name = match args {
            [
                datafusion::logical_expr::Expr::Literal(
                    ScalarValue::Utf8(Some(n)) | ScalarValue::Utf8View(Some(n)),
                    _,
                ),
            ] => n.clone(),
            _ => {
                return Err(datafusion::error::DataFusionError::Plan(
                    "table_partitions expects one text argument: the table's name".into(),
                ));
            }
        };
        let (schema, table) = match name.split_once('.') {
            Some((s, t)) => (s.to_string(), t.to_string()),
            None => (crate::catalog::DEFAULT_SCHEMA.to_string(), name.clone()),
        };
        let t = self
            .catalog
            .get(&schema, &table)
            .ok_or_else(|| Error::TableNotFound {
                table: name.clone(),
                position: None,
            })?;
        let batch = partitions_of(&t)?;
        Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}

/// One row per partition of `t`, in QuestDB's SHOW PARTITIONS columns,
/// with the rows of the write-ahead log counted where they will go.
fn partitions_of(t: &Table) -> Result<RecordBatch> {
    {
        let (state, pending) = t.read_view()?;
        let unit = state.meta.partition_by;
        #[derive(Default)]
        struct Part {
            min: Option<i64>,
            max: Option<i64>,
            rows: i64,
            size: i64,
        }
        let mut parts: BTreeMap<String, Part> = BTreeMap::new();
        let mut add = |name: String, min: Option<i64>, max: Option<i64>, rows: i64, size: i64| {
            let p = parts.entry(name).or_default();
            p.min = match (p.min, min) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            p.max = p.max.max(max);
            p.rows += rows;
            p.size += size;
        };
        for f in &state.manifest.files {
            add(
                f.partition.clone(),
                f.min_ts,
                f.max_ts,
                f.rows as i64,
                f.size as i64,
            );
        }
        if let Some(i) = state.meta.timestamp_index() {
            // By partition start first: a name per partition, not per row.
            let mut logged: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
            for b in &pending {
                let micros = crate::storage::files::timestamp_micros(b.column(i))?;
                for v in micros.iter().flatten() {
                    let e = logged.entry(unit.floor(v)).or_insert((v, v, 0));
                    *e = (e.0.min(v), e.1.max(v), e.2 + 1);
                }
            }
            for (floor, (min, max, rows)) in logged {
                add(unit.partition_name(floor), Some(min), Some(max), rows, 0);
            }
        }
        let n = parts.len();
        let last = n.saturating_sub(1);
        let ts = |f: fn(&Part) -> Option<i64>| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from(parts.values().map(f).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            )
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values(0..n as i32)),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                unit.name(),
                n,
            ))),
            Arc::new(StringArray::from_iter_values(parts.keys())),
            ts(|p| p.min),
            ts(|p| p.max),
            Arc::new(Int64Array::from_iter_values(parts.values().map(|p| p.rows))),
            Arc::new(Int64Array::from_iter_values(parts.values().map(|p| p.size))),
            Arc::new(StringArray::from_iter_values(
                parts.values().map(|p| human_size(p.size)),
            )),
            flags(n, |_| false),
            flags(n, |i| i == last),
            flags(n, |_| true),
            flags(n, |_| false),
            flags(n, |_| false),
        ];
        Ok(RecordBatch::try_new(show_partitions_schema(), columns)?)
    }
}

/// QuestDB's SHOW PARTITIONS columns.
pub(super) fn show_partitions_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("index", DataType::Int32, false),
        Field::new("partitionBy", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("minTimestamp", ts.clone(), true),
        Field::new("maxTimestamp", ts, true),
        Field::new("numRows", DataType::Int64, false),
        Field::new("diskSize", DataType::Int64, false),
        Field::new("diskSizeHuman", DataType::Utf8, false),
        Field::new("readOnly", DataType::Boolean, false),
        Field::new("active", DataType::Boolean, false),
        Field::new("attached", DataType::Boolean, false),
        Field::new("detached", DataType::Boolean, false),
        Field::new("attachable", DataType::Boolean, false),
    ]))
}

fn flags(n: usize, f: impl Fn(usize) -> bool) -> ArrayRef {
    Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(f(i)))))
}

/// QuestDB's human sizes: `512.0 B`, `1.5 KiB`, `3.2 MiB`.
fn human_size(bytes: i64) -> String {
    let mut v = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if v < 1024.0 {
            return format!("{v:.1} {unit}");
        }
        v /= 1024.0;
    }
    format!("{v:.1} TiB")
}

/// Detached partitions are directories beside a local table's.
fn local_only(t: &Table, what: &str) -> Result<()> {
    if t.loc.remote.is_some() {
        return Err(Error::unsupported(format!(
            "{what} is not supported for tables on object storage [table={}]",
            t.display_name()
        )));
    }
    Ok(())
}

/// The index of a column named in a statement.
fn column_at(meta: &TableMeta, name: &str, position: usize) -> Result<usize> {
    meta.column_index(name)
        .ok_or_else(|| Error::ColumnNotFound {
            column: name.to_string(),
            position: Some(position),
        })
}

/// A row map for changes that read no file.
fn unchanged() -> RowMap {
    Box::new(|b| Ok((b, 0)))
}

/// `b` in `schema` (the columns it keeps), all its rows counted.
fn reshaped(b: &RecordBatch, schema: &SchemaRef) -> Result<(RecordBatch, u64)> {
    Ok((crate::storage::conform(b, schema)?, b.num_rows() as u64))
}

/// Fails, naming the first row, when converting `old` to `new` changed a
/// value: the new values converted back must be the old ones.
pub(super) fn check_kept(
    column: &str,
    from: ColumnType,
    to: ColumnType,
    old: &ArrayRef,
    new: &ArrayRef,
) -> Result<()> {
    let back = cast(new, old.data_type())?;
    let changed = distinct(old, &back)?;
    if let Some(row) = changed.iter().position(|c| c == Some(true)) {
        let value =
            datafusion::arrow::util::display::array_value_to_string(old, row).unwrap_or_default();
        return Err(Error::BadValue {
            column: column.to_string(),
            value: format!("{value} (row {row} of a file)"),
            from: from.name().into(),
            to: to.name().into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrowing_that_changes_a_value_is_refused() {
        let old: ArrayRef = Arc::new(datafusion::arrow::array::Float64Array::from(vec![
            Some(1.0),
            None,
            Some(2.5),
        ]));
        let new = cast(&old, &DataType::Int32).unwrap();
        let e = check_kept("v", ColumnType::Double, ColumnType::Int, &old, &new).unwrap_err();
        assert!(e.to_string().contains("2.5 (row 2"), "{e}");
        let wide = cast(&old, &DataType::Float64).unwrap();
        check_kept("v", ColumnType::Double, ColumnType::Double, &old, &wide).unwrap();
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
