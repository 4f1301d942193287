//! DataFusion's view of the catalog: one catalog `qdb` whose schemas are the
//! user schemas on disk plus the virtual `sys` and `pg_catalog`. Lookups go to the live
//! [`Catalog`] every time, so DDL is visible to the next query with no
//! re-registration.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::sql::sqlparser::ast as sp;

use crate::catalog::provider::TableScanProvider;
use crate::catalog::{Catalog, SYS_SCHEMA};
use crate::sql::parser::ident_name;
use crate::sys::SysSchema;
use crate::sys::pg_catalog::PG_CATALOG;

#[derive(Debug)]
pub struct QdbCatalog {
    pub catalog: Arc<Catalog>,
    /// The table functions' names (`generate_series`, `table_partitions`, …):
    /// DataFusion looks each `FROM f(…)` up as a table first, and a user
    /// schema answers those with "none here" so that it tries the function.
    pub table_functions: Arc<HashSet<String>>,
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
        // Any other name is a user schema, existing or not: a table looked
        // up in one that does not exist fails with the engine's own
        // `SchemaNotFound` (DataFusion's would be a "not found" text).
        Some(Arc::new(UserSchema {
            catalog: Arc::clone(&self.catalog),
            schema: name.to_string(),
            table_functions: Arc::clone(&self.table_functions),
        }))
    }
}

#[derive(Debug)]
struct UserSchema {
    catalog: Arc<Catalog>,
    schema: String,
    table_functions: Arc<HashSet<String>>,
}

#[async_trait]
impl SchemaProvider for UserSchema {
    fn table_names(&self) -> Vec<String> {
        self.catalog.table_names(&self.schema)
    }

    /// A table that is not here is the engine's `TableNotFound`, which
    /// keeps its kind through DataFusion to the wire (DataFusion's own
    /// "not found" is a planning error known only by its text).
    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        match self.catalog.get(&self.schema, name) {
            Some(t) => Ok(Some(Arc::new(TableScanProvider::new(
                t,
                self.catalog.column_cache(),
            )))),
            None if self.table_functions.contains(name) => Ok(None),
            None if !self.catalog.schema_exists(&self.schema) => {
                Err(crate::error::Error::SchemaNotFound {
                    schema: self.schema.clone(),
                }
                .into())
            }
            None => Err(crate::error::Error::TableNotFound {
                table: match self.schema.as_str() {
                    crate::catalog::DEFAULT_SCHEMA => name.to_string(),
                    schema => format!("{schema}.{name}"),
                },
                position: None,
            }
            .into()),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.get(&self.schema, name).is_some()
    }
}

/// A relation named without arguments that no table answers where
/// DataFusion would report it only in the text of a planning error: a
/// table function's name used as a table (`FROM generate_series`), or an
/// `information_schema` view that does not exist. The engine's own
/// `TableNotFound`, so it keeps its kind (42P01) to the wire.
pub fn missing_relation(
    state: &datafusion::execution::SessionState,
    stmt: &sp::Statement,
) -> Option<crate::error::Error> {
    let mut found = BareRelations::default();
    let _ = crate::sql::walk::walk(stmt, &mut found);
    let catalog = state.catalog_list().catalog(crate::catalog::DATABASE)?;
    found.names.into_iter().find_map(|parts| {
        let (schema, table) = match parts.as_slice() {
            [table] if !found.ctes.contains(table) => {
                if !state.table_functions().contains_key(table) {
                    return None;
                }
                (crate::catalog::DEFAULT_SCHEMA.to_string(), table.clone())
            }
            [.., schema, table] if schema == INFORMATION_SCHEMA => (schema.clone(), table.clone()),
            _ => return None,
        };
        let exists = if schema == INFORMATION_SCHEMA {
            // DataFusion answers these itself, outside the catalog.
            datafusion::catalog::information_schema::INFORMATION_SCHEMA_TABLES
                .contains(&table.as_str())
        } else {
            catalog
                .schema(&schema)
                .is_some_and(|s| s.table_exist(&table))
        };
        (!exists).then(|| crate::error::Error::TableNotFound {
            table: parts.join("."),
            position: None,
        })
    })
}

const INFORMATION_SCHEMA: &str = "information_schema";

/// The names of the relations a statement reads without arguments (as
/// DataFusion normalises them) and the names its CTEs define.
#[derive(Default)]
struct BareRelations {
    names: Vec<Vec<String>>,
    ctes: HashSet<String>,
}

impl crate::sql::walk::Hooks for BareRelations {
    fn pre_query(&mut self, q: &sp::Query) -> std::ops::ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(ident_name(&cte.alias.name));
            }
        }
        std::ops::ControlFlow::Continue(())
    }

    fn pre_table_factor(&mut self, t: &sp::TableFactor) -> std::ops::ControlFlow<()> {
        if let sp::TableFactor::Table {
            name, args: None, ..
        } = t
        {
            let parts = name
                .0
                .iter()
                .filter_map(|p| p.as_ident().map(ident_name))
                .collect();
            self.names.push(parts);
        }
        std::ops::ControlFlow::Continue(())
    }
}
