//! DataFusion's view of the catalog: one catalog `qdb` whose schemas are the
//! user schemas on disk plus the virtual `sys` and `pg_catalog`. Lookups go to the live
//! [`Catalog`] every time, so DDL is visible to the next query with no
//! re-registration.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;

use crate::catalog::provider::TableScanProvider;
use crate::catalog::{Catalog, SYS_SCHEMA};
use crate::sys::SysSchema;
use crate::sys::pg_catalog::PG_CATALOG;

#[derive(Debug)]
pub struct QdbCatalog {
    pub catalog: Arc<Catalog>,
    pub sys: Arc<SysSchema>,
    /// PostgreSQL's system catalogs, for clients' metadata queries.
    pub pg_catalog: Arc<SysSchema>,
}

impl CatalogProvider for QdbCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.catalog.schema_names();
        names.push(SYS_SCHEMA.to_string());
        names.push(PG_CATALOG.to_string());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == SYS_SCHEMA {
            return Some(Arc::clone(&self.sys) as Arc<dyn SchemaProvider>);
        }
        if name == PG_CATALOG {
            return Some(Arc::clone(&self.pg_catalog) as Arc<dyn SchemaProvider>);
        }
        if self.catalog.schema_exists(name) {
            Some(Arc::new(UserSchema {
                catalog: Arc::clone(&self.catalog),
                schema: name.to_string(),
            }))
        } else {
            None
        }
    }
}

#[derive(Debug)]
struct UserSchema {
    catalog: Arc<Catalog>,
    schema: String,
}

#[async_trait]
impl SchemaProvider for UserSchema {
    fn table_names(&self) -> Vec<String> {
        self.catalog.table_names(&self.schema)
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.catalog.get(&self.schema, name).map(|t| {
            Arc::new(TableScanProvider::new(t, self.catalog.column_cache()))
                as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.get(&self.schema, name).is_some()
    }
}
