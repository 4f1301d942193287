//! `sys.partitions`: one row per partition of every user table, with its
//! file count, rows, bytes and designated-timestamp range, read from the
//! live manifests. It shows compaction at work: the file count of a
//! partition written by many small INSERTs drops to one.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::SysTable;
use crate::catalog::Catalog;
use crate::error::Result;

#[derive(Debug)]
pub struct PartitionsTable {
    catalog: Arc<Catalog>,
    schema: SchemaRef,
}

impl PartitionsTable {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, None);
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_schema", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("partition", DataType::Utf8, false),
            Field::new("file_count", DataType::Int64, false),
            Field::new("row_count", DataType::Int64, false),
            Field::new("bytes", DataType::Int64, false),
            Field::new("min_timestamp", ts(), true),
            Field::new("max_timestamp", ts(), true),
        ]));
        PartitionsTable { catalog, schema }
    }
}

/// (schema, table, partition, totals): one row.
type Row = (String, String, String, Totals);

/// One partition's totals.
#[derive(Default)]
struct Totals {
    files: i64,
    rows: i64,
    bytes: i64,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
}

impl SysTable for PartitionsTable {
    fn name(&self) -> &'static str {
        "partitions"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let mut rows: Vec<Row> = Vec::new();
        for table in self.catalog.tables() {
            let state = table.snapshot();
            let mut parts: BTreeMap<&str, Totals> = BTreeMap::new();
            for f in &state.manifest.files {
                let t = parts.entry(&f.partition).or_default();
                t.files += 1;
                t.rows += f.rows as i64;
                t.bytes += f.size as i64;
                t.min_ts = match (t.min_ts, f.min_ts) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                t.max_ts = match (t.max_ts, f.max_ts) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            for (p, t) in parts {
                rows.push((
                    table.schema_name.clone(),
                    table.name.clone(),
                    p.to_string(),
                    t,
                ));
            }
        }
        let text = |f: &dyn Fn(&Row) -> &str| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as _
        };
        let int = |f: &dyn Fn(&Totals) -> i64| {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| f(&r.3)))) as _
        };
        let ts = |f: &dyn Fn(&Totals) -> Option<i64>| {
            Arc::new(TimestampMicrosecondArray::from_iter(
                rows.iter().map(|r| f(&r.3)),
            )) as _
        };
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                text(&|r| &r.0),
                text(&|r| &r.1),
                text(&|r| &r.2),
                int(&|t| t.files),
                int(&|t| t.rows),
                int(&|t| t.bytes),
                ts(&|t| t.min_ts),
                ts(&|t| t.max_ts),
            ],
        )?)
    }
}
