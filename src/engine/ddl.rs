//! DDL and catalog statements: CREATE / DROP / TRUNCATE / RENAME / ALTER and
//! the SHOW family.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast as sp;

use super::{Engine, Output, Rows, text_rows};
use crate::catalog::{ColumnMeta, Table, TableMeta};
use crate::error::{Error, Result};
use crate::schema::ColumnType;
use crate::sql::{CreateTable, TableRef};
use crate::time::PartitionBy;

impl Engine {
    pub(crate) fn table(&self, t: &TableRef) -> Result<Arc<Table>> {
        self.catalog
            .get(&t.schema, &t.name)
            .ok_or_else(|| Error::TableNotFound {
                table: t.to_string(),
                position: Some(t.position),
            })
    }

    /// The table a query's FROM names (`t` or `schema.t`), for the
    /// rewrites that need its designated timestamp and columns.
    pub(crate) fn table_of_relation(
        &self,
        name: &sp::ObjectName,
        position: Option<usize>,
    ) -> Result<Arc<Table>> {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(crate::sql::parser::ident_name))
            .collect();
        let (schema, table) = match parts.as_slice() {
            [t] => (crate::catalog::DEFAULT_SCHEMA.to_string(), t.clone()),
            [s, t] => (s.clone(), t.clone()),
            _ => (String::new(), name.to_string()),
        };
        self.catalog
            .get(&schema, &table)
            .ok_or_else(|| Error::TableNotFound {
                table: format!("{schema}.{table}"),
                position,
            })
    }

    pub(super) async fn create_table(&self, c: CreateTable) -> Result<Output> {
        let (columns, source) = match &c.as_query {
            Some(q) => {
                let plan = self.inner_query(q, &[]).await?;
                let schema = plan.schema().as_arrow().clone();
                let columns: Vec<ColumnMeta> = schema
                    .fields()
                    .iter()
                    .map(|f| ColumnMeta::new(f.name().clone(), ColumnType::of_field(f)))
                    .collect();
                (columns, Some(plan))
            }
            None => (c.columns.clone(), None),
        };
        let partition_by = c.partition_by.unwrap_or(PartitionBy::None);
        let mut meta = TableMeta {
            columns,
            timestamp: None,
            partition_by,
            // QuestDB's default: partitioned tables are WAL tables.
            wal: c.wal.unwrap_or(partition_by != PartitionBy::None),
            params: Default::default(),
            ttl: c.ttl,
            dedup_keys: vec![],
        };
        for p in &c.params {
            meta.params.set(p);
        }
        if let Some((ts, position)) = &c.timestamp {
            let col = meta.column(ts).ok_or_else(|| Error::ColumnNotFound {
                column: ts.clone(),
                position: Some(*position),
            })?;
            meta.timestamp = Some(col.name.clone());
            // CREATE TABLE AS may select a timestamp of another precision.
            if let Some(i) = meta.column_index(ts)
                && meta.columns[i].ty == ColumnType::Date
            {
                meta.columns[i].ty = ColumnType::Timestamp;
            }
        }
        meta.dedup_keys = column_names(&meta, &c.dedup)?;
        let Some(table) =
            self.catalog
                .create_table(&c.table.schema, &c.table.name, meta, c.if_not_exists)?
        else {
            return Ok(Output::ddl("CREATE TABLE"));
        };
        if let Some(plan) = source {
            // A failed copy must not leave a half-filled new table behind.
            let n = table.meta().columns.len();
            if let Err(e) = self.insert_plan(&table, plan, (0..n).collect(), None).await {
                let _ = self.drop_table(&table.schema_name, &table.name);
                return Err(e);
            }
        }
        Ok(Output::ddl("CREATE TABLE"))
    }

    pub(super) fn drop_tables(&self, tables: Vec<TableRef>, if_exists: bool) -> Result<Output> {
        for t in &tables {
            if !self.drop_table(&t.schema, &t.name)? && !if_exists {
                return Err(Error::TableNotFound {
                    table: t.to_string(),
                    position: Some(t.position),
                });
            }
        }
        Ok(Output::ddl("DROP TABLE"))
    }

    pub(super) async fn truncate(&self, tables: Vec<TableRef>) -> Result<Output> {
        let resolved = tables
            .iter()
            .map(|t| self.table(t))
            .collect::<Result<Vec<_>>>()?;
        for t in resolved {
            t.truncate().await?;
        }
        Ok(Output::ddl("TRUNCATE TABLE"))
    }

    pub(super) async fn rename_table(&self, from: TableRef, to: TableRef) -> Result<Output> {
        if from.schema != to.schema {
            return Err(Error::invalid(
                "a table can only be renamed within its schema",
            ));
        }
        let table = self.table(&from)?;
        // The log is closed to new rows and applied, so every row written
        // before the rename is in the table's files when it moves.
        if let Some(wal) = table.wal() {
            wal.close();
            let applied = Arc::clone(&table);
            let done = tokio::task::spawn_blocking(move || applied.apply_wal_blocking())
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            if let Err(e) = done {
                wal.reopen();
                return Err(e);
            }
        }
        if let Err(e) = self
            .catalog
            .rename_table(&from.schema, &from.name, &to.name)
        {
            if let Some(wal) = table.wal() {
                wal.reopen();
            }
            return Err(e);
        }
        // Plans kept for the old name hold the table object no longer.
        self.shapes.retain_current(&self.catalog);
        Ok(Output::ddl("RENAME TABLE"))
    }

    /// Drops a table, and every plan kept for a shape that reads it: a
    /// kept plan holds the table, and the dropped table's files are
    /// removed only once nothing does.
    pub(super) fn drop_table(&self, schema: &str, name: &str) -> Result<bool> {
        let dropped = self.catalog.drop_table(schema, name)?;
        self.shapes.retain_current(&self.catalog);
        Ok(dropped)
    }

    /// Applies `table`'s write-ahead log now (before a change of its
    /// definition rewrites its files).
    pub(super) async fn apply_wal(&self, table: &Arc<crate::catalog::Table>) -> Result<()> {
        let t = Arc::clone(table);
        tokio::task::spawn_blocking(move || t.apply_wal_blocking())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        Ok(())
    }

    pub(super) fn show_tables(&self) -> Result<Output> {
        let names = self.catalog.table_names(crate::catalog::DEFAULT_SCHEMA);
        Ok(Output::Rows(text_rows("table_name", names)))
    }

    /// QuestDB's SHOW COLUMNS layout.
    pub(super) fn show_columns(&self, table: TableRef) -> Result<Output> {
        let meta = self.table(&table)?.meta();
        let schema = show_columns_schema();
        let cols = &meta.columns;
        let is_ts = |c: &ColumnMeta| {
            meta.timestamp
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(&c.name))
        };
        let sym = |c: &ColumnMeta| c.ty == ColumnType::Symbol;
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                cols.iter().map(|c| c.name.clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                cols.iter().map(|c| c.ty.name()),
            )),
            Arc::new(BooleanArray::from_iter(
                cols.iter().map(|c| Some(c.indexed)),
            )),
            Arc::new(Int32Array::from_iter_values(cols.iter().map(|c| {
                c.index_capacity.unwrap_or(if c.indexed { 256 } else { 0 }) as i32
            }))),
            Arc::new(BooleanArray::from_iter(
                cols.iter()
                    .map(|c| Some(sym(c) && c.symbol_cache.unwrap_or(true))),
            )),
            Arc::new(Int32Array::from_iter_values(cols.iter().map(|c| {
                if sym(c) {
                    c.symbol_capacity.unwrap_or(128) as i32
                } else {
                    0
                }
            }))),
            Arc::new(BooleanArray::from_iter(cols.iter().map(|c| Some(is_ts(c))))),
            Arc::new(BooleanArray::from_iter(cols.iter().map(|_| Some(false)))),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
        Ok(Output::Rows(Rows::from_batches(schema, vec![batch])))
    }

    pub(super) fn show_create_table(&self, table: TableRef) -> Result<Output> {
        let meta = self.table(&table)?.meta();
        Ok(Output::Rows(text_rows(
            "ddl",
            vec![meta.ddl(&table.to_string())],
        )))
    }
}

/// Columns named in a statement, spelled as the table spells them.
pub(super) fn column_names(meta: &TableMeta, names: &[(String, usize)]) -> Result<Vec<String>> {
    names
        .iter()
        .map(|(n, position)| {
            meta.column(n)
                .map(|c| c.name.clone())
                .ok_or_else(|| Error::ColumnNotFound {
                    column: n.clone(),
                    position: Some(*position),
                })
        })
        .collect()
}

/// QuestDB's SHOW COLUMNS columns.
pub(super) fn show_columns_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("column", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("indexed", DataType::Boolean, false),
        Field::new("indexBlockCapacity", DataType::Int32, false),
        Field::new("symbolCached", DataType::Boolean, false),
        Field::new("symbolCapacity", DataType::Int32, false),
        Field::new("designated", DataType::Boolean, false),
        Field::new("upsertKey", DataType::Boolean, false),
    ]))
}
