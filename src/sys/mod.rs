//! The `sys` schema: read-only virtual tables computed on every query from
//! live engine state. Each table is one file implementing [`SysTable`];
//! [`SysTableProvider`] adapts any of them to DataFusion, and
//! [`SysSchema`] lists them under `sys` (and, for PostgreSQL clients, the
//! [`pg_catalog`] tables under `pg_catalog`).

pub mod backup_log;
pub mod copy_export_log;
pub mod copy_history;
pub mod copy_progress;
pub mod partitions;
pub mod pg_catalog;
pub mod query_activity;
pub mod tables;
pub mod text_import_errors;
pub mod text_import_log;
pub mod wal_tables;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::error::Result;

/// A system table: a fixed schema and a snapshot of rows.
pub trait SysTable: std::fmt::Debug + Send + Sync {
    fn name(&self) -> &'static str;
    fn schema(&self) -> SchemaRef;
    /// The current rows, computed now.
    fn snapshot(&self) -> Result<RecordBatch>;
}

/// Adapts a [`SysTable`] to DataFusion: every scan sees fresh rows.
#[derive(Debug)]
pub struct SysTableProvider(pub Arc<dyn SysTable>);

#[async_trait]
impl TableProvider for SysTableProvider {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let batch = self.0.snapshot()?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.0.schema(),
            projection.cloned(),
        )?)
    }
}

/// A system table called as a function of no arguments: QuestDB's
/// `tables()` and `wal_tables()`, the same rows as `sys.tables` and
/// `sys.wal_tables` (with their column names).
#[derive(Debug)]
pub struct SysFunction(pub Arc<dyn SysTable>);

impl datafusion::catalog::TableFunctionImpl for SysFunction {
    fn call(&self, args: &[Expr]) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "{}() takes no arguments",
                self.0.name()
            )));
        }
        Ok(Arc::new(SysTableProvider(Arc::clone(&self.0))))
    }
}

/// The `sys` schema provider.
#[derive(Debug, Default)]
pub struct SysSchema {
    /// `sys` or `pg_catalog`, for messages.
    schema: &'static str,
    tables: BTreeMap<&'static str, Arc<dyn SysTable>>,
}

impl SysSchema {
    pub fn new(schema: &'static str, tables: Vec<Arc<dyn SysTable>>) -> Self {
        SysSchema {
            schema,
            tables: tables.into_iter().map(|t| (t.name(), t)).collect(),
        }
    }

    /// The system table called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn SysTable>> {
        self.tables.get(name).cloned()
    }
}

#[async_trait]
impl SchemaProvider for SysSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().map(|k| k.to_string()).collect()
    }

    /// A name that is not here is the engine's `TableNotFound`, which
    /// keeps its kind through DataFusion to the wire.
    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        match self.tables.get(name) {
            Some(t) => Ok(Some(Arc::new(SysTableProvider(Arc::clone(t))))),
            None => Err(crate::error::Error::TableNotFound {
                table: format!("{}.{name}", self.schema),
                position: None,
            }
            .into()),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}
