//! `sys.query_activity`: the statements running now, like QuestDB's
//! `query_activity()` and PostgreSQL's `pg_stat_activity`: an id, the
//! user, when it started and its text. A statement is listed from its
//! start until its result (rows, or COPY TO STDOUT's data) has been read
//! to the end or dropped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::SysTable;
use crate::error::Result;

/// One running statement.
#[derive(Debug, Clone)]
struct Running {
    user: String,
    query: Arc<str>,
    started_micros: i64,
}

/// The statements running now.
#[derive(Debug, Default)]
pub struct Activity {
    next: AtomicU64,
    running: Mutex<BTreeMap<u64, Running>>,
}

/// A statement's place in [`Activity`]; dropping it ends the listing.
#[derive(Debug)]
pub struct Listed {
    activity: Arc<Activity>,
    id: u64,
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.activity
            .running
            .lock()
            .expect("query activity")
            .remove(&self.id);
    }
}

impl Activity {
    /// Lists a statement of `user` with text `query` until the returned
    /// value is dropped.
    pub fn start(self: &Arc<Self>, user: &str, query: Arc<str>) -> Listed {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let running = Running {
            user: user.to_string(),
            query,
            started_micros: chrono::Utc::now().timestamp_micros(),
        };
        self.running
            .lock()
            .expect("query activity")
            .insert(id, running);
        Listed {
            activity: Arc::clone(self),
            id,
        }
    }
}

#[derive(Debug)]
pub struct QueryActivity {
    activity: Arc<Activity>,
    schema: SchemaRef,
}

impl QueryActivity {
    pub fn new(activity: Arc<Activity>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("query_id", DataType::Int64, false),
            Field::new("username", DataType::Utf8, false),
            Field::new(
                "query_start",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("query", DataType::Utf8, false),
        ]));
        QueryActivity { activity, schema }
    }
}

impl SysTable for QueryActivity {
    fn name(&self) -> &'static str {
        "query_activity"
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let rows: Vec<(u64, Running)> = self
            .activity
            .running
            .lock()
            .expect("query activity")
            .iter()
            .map(|(id, r)| (*id, r.clone()))
            .collect();
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|(id, _)| *id as i64),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(_, r)| r.user.as_str()),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        rows.iter().map(|(_, r)| r.started_micros),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(_, r)| &*r.query),
                )),
            ],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_listed_until_dropped() {
        let activity = Arc::new(Activity::default());
        let table = QueryActivity::new(Arc::clone(&activity));
        let a = activity.start("admin", "SELECT 1".into());
        let b = activity.start("reader", "SELECT 2".into());
        assert_eq!(table.snapshot().unwrap().num_rows(), 2);
        drop(a);
        let batch = table.snapshot().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let users = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(users.value(0), "reader");
        drop(b);
        assert_eq!(table.snapshot().unwrap().num_rows(), 0);
    }
}
