//! `sys.tables`: one row per user table with its designated timestamp,
//! partition unit, row count and partition count, read from the live
//! manifests and the rows of the write-ahead logs not yet applied (so it
//! is exact and costs no file access).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SysTable;
use crate::catalog::Catalog;
use crate::catalog::table::TableState;
use crate::error::Result;

#[derive(Debug)]
pub struct TablesTable {
    catalog: Arc<Catalog>,
    schema: SchemaRef,
}

impl TablesTable {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_schema", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("designated_timestamp", DataType::Utf8, true),
            Field::new("partition_by", DataType::Utf8, false),
            Field::new("row_count", DataType::Int64, false),
            Field::new("partition_count", DataType::Int64, false),
            Field::new("wal_enabled", DataType::Boolean, false),
        ]));
        TablesTable { catalog, schema }
    }
}

impl SysTable for TablesTable {
    fn name(&self) -> &'static str {
        "tables"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let tables = self.catalog.tables();
        // Rows of a write-ahead log count as soon as queries see them.
        let views: Vec<_> = tables
            .iter()
            .map(|t| t.read_view())
            .collect::<Result<_>>()?;
        let unapplied: Vec<usize> = views
            .iter()
            .map(|(_, rows)| rows.iter().map(RecordBatch::num_rows).sum())
            .collect();
        let partitions: Vec<usize> = views
            .iter()
            .map(|(state, rows)| partitions_with(state, rows))
            .collect::<Result<_>>()?;
        let states: Vec<_> = views.into_iter().map(|(s, _)| s).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|t| t.schema_name.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|t| t.name.as_str()),
                )),
                Arc::new(StringArray::from_iter(
                    states.iter().map(|s| s.meta.timestamp.clone()),
                )),
                Arc::new(StringArray::from_iter_values(
                    states.iter().map(|s| s.meta.partition_by.name()),
                )),
                Arc::new(Int64Array::from_iter_values(
                    states
                        .iter()
                        .zip(&unapplied)
                        .map(|(s, n)| (s.manifest.row_count() as usize + n) as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    partitions.iter().map(|&n| n as i64),
                )),
                Arc::new(BooleanArray::from_iter(
                    states.iter().map(|s| Some(s.meta.wal)),
                )),
            ],
        )?;
        Ok(batch)
    }
}

/// The partitions of a table's files and of its rows still in the
/// write-ahead log.
fn partitions_with(state: &TableState, unapplied: &[RecordBatch]) -> Result<usize> {
    let mut names: BTreeSet<String> = state
        .manifest
        .files
        .iter()
        .map(|f| f.partition.clone())
        .collect();
    let by = state.meta.partition_by;
    for batch in unapplied.iter().filter(|b| b.num_rows() > 0) {
        match state.meta.timestamp_index() {
            Some(i) => {
                let micros = crate::storage::files::timestamp_micros(batch.column(i))?;
                names.extend(micros.iter().flatten().map(|v| by.partition_name(v)));
            }
            None => {
                names.insert(by.partition_name(0));
            }
        }
    }
    Ok(names.len())
}
