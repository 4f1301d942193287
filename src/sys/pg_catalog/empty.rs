//! Catalogs that exist for clients' joins but have no rows here, because
//! sluice has nothing of their kind (each says why below). A client's
//! `LEFT JOIN pg_index …` then finds nothing instead of failing.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;
use crate::sys::SysTable;

#[derive(Debug)]
pub struct EmptyCatalog {
    name: &'static str,
    schema: SchemaRef,
}

/// Whether `name` is one of the catalogs here (so a query over it alone has
/// no rows).
pub fn is_empty_catalog(name: &str) -> bool {
    static NAMES: std::sync::LazyLock<Vec<&'static str>> =
        std::sync::LazyLock::new(|| EmptyCatalog::all().iter().map(|t| t.name).collect());
    NAMES.contains(&name)
}

impl EmptyCatalog {
    /// Every empty catalog, each with the columns clients select from it
    /// and why it has no rows.
    pub fn all() -> Vec<EmptyCatalog> {
        vec![
            // no comments on tables or columns; JDBC's `getTables` joins it.
            Self::new(
                "pg_description",
                &[
                    ("objoid", DataType::Int32),
                    ("classoid", DataType::Int32),
                    ("objsubid", DataType::Int32),
                    ("description", DataType::Utf8),
                ],
            ),
            // no column defaults: an absent value is NULL; JDBC's `getColumns`, SQLAlchemy's `get_columns` and psql `\d` join it.
            Self::new(
                "pg_attrdef",
                &[
                    ("oid", DataType::Int32),
                    ("adrelid", DataType::Int32),
                    ("adnum", DataType::Int16),
                    ("adbin", DataType::Utf8),
                ],
            ),
            // no indexes PostgreSQL would list: symbol indexes are not B-trees.
            Self::new(
                "pg_index",
                &[
                    ("indexrelid", DataType::Int32),
                    ("indrelid", DataType::Int32),
                    ("indnatts", DataType::Int16),
                    ("indnkeyatts", DataType::Int16),
                    ("indisunique", DataType::Boolean),
                    ("indisprimary", DataType::Boolean),
                    ("indisexclusion", DataType::Boolean),
                    ("indimmediate", DataType::Boolean),
                    ("indisclustered", DataType::Boolean),
                    ("indisvalid", DataType::Boolean),
                    ("indisreplident", DataType::Boolean),
                    ("indkey", DataType::Utf8),
                    ("indoption", DataType::Utf8),
                    ("indexprs", DataType::Utf8),
                    ("indpred", DataType::Utf8),
                ],
            ),
            // no constraints: no keys, checks or foreign keys.
            Self::new(
                "pg_constraint",
                &[
                    ("oid", DataType::Int32),
                    ("conname", DataType::Utf8),
                    ("connamespace", DataType::Int32),
                    ("contype", DataType::Utf8),
                    ("condeferrable", DataType::Boolean),
                    ("condeferred", DataType::Boolean),
                    ("convalidated", DataType::Boolean),
                    ("conrelid", DataType::Int32),
                    ("contypid", DataType::Int32),
                    ("conindid", DataType::Int32),
                    ("confrelid", DataType::Int32),
                    ("conkey", DataType::Utf8),
                    ("confkey", DataType::Utf8),
                    ("conbin", DataType::Utf8),
                ],
            ),
            // no table inheritance or declarative partitions.
            Self::new(
                "pg_inherits",
                &[
                    ("inhrelid", DataType::Int32),
                    ("inhparent", DataType::Int32),
                    ("inhseqno", DataType::Int32),
                    ("inhdetachpending", DataType::Boolean),
                ],
            ),
            // functions are DataFusion's and ours, not PostgreSQL procedures.
            Self::new(
                "pg_proc",
                &[
                    ("oid", DataType::Int32),
                    ("proname", DataType::Utf8),
                    ("pronamespace", DataType::Int32),
                    ("proowner", DataType::Int32),
                    ("prokind", DataType::Utf8),
                    ("prorettype", DataType::Int32),
                    ("proargtypes", DataType::Utf8),
                    ("prosrc", DataType::Utf8),
                ],
            ),
            // one default collation, which pg_type does not name.
            Self::new(
                "pg_collation",
                &[
                    ("oid", DataType::Int32),
                    ("collname", DataType::Utf8),
                    ("collnamespace", DataType::Int32),
                    ("collprovider", DataType::Utf8),
                ],
            ),
            // no sequences.
            Self::new(
                "pg_sequence",
                &[
                    ("seqrelid", DataType::Int32),
                    ("seqtypid", DataType::Int32),
                    ("seqstart", DataType::Int64),
                    ("seqincrement", DataType::Int64),
                ],
            ),
            // no triggers.
            Self::new(
                "pg_trigger",
                &[
                    ("oid", DataType::Int32),
                    ("tgrelid", DataType::Int32),
                    ("tgname", DataType::Utf8),
                    ("tgenabled", DataType::Utf8),
                    ("tgisinternal", DataType::Boolean),
                ],
            ),
            // no rules or user views.
            Self::new(
                "pg_rewrite",
                &[
                    ("oid", DataType::Int32),
                    ("rulename", DataType::Utf8),
                    ("ev_class", DataType::Int32),
                    ("ev_type", DataType::Utf8),
                ],
            ),
            // no row-level security.
            Self::new(
                "pg_policy",
                &[
                    ("oid", DataType::Int32),
                    ("polname", DataType::Utf8),
                    ("polrelid", DataType::Int32),
                ],
            ),
            // no extended statistics.
            Self::new(
                "pg_statistic_ext",
                &[
                    ("oid", DataType::Int32),
                    ("stxrelid", DataType::Int32),
                    ("stxname", DataType::Utf8),
                    ("stxnamespace", DataType::Int32),
                ],
            ),
            // no logical replication.
            Self::new(
                "pg_publication",
                &[("oid", DataType::Int32), ("pubname", DataType::Utf8)],
            ),
            // no logical replication.
            Self::new(
                "pg_publication_rel",
                &[
                    ("oid", DataType::Int32),
                    ("prpubid", DataType::Int32),
                    ("prrelid", DataType::Int32),
                ],
            ),
            // no logical replication.
            Self::new(
                "pg_publication_namespace",
                &[
                    ("oid", DataType::Int32),
                    ("pnpubid", DataType::Int32),
                    ("pnnspid", DataType::Int32),
                ],
            ),
            // one role, a member of nothing.
            Self::new(
                "pg_auth_members",
                &[
                    ("oid", DataType::Int32),
                    ("roleid", DataType::Int32),
                    ("member", DataType::Int32),
                    ("grantor", DataType::Int32),
                ],
            ),
            // no index operator classes (no B-tree indexes).
            Self::new(
                "pg_opclass",
                &[
                    ("oid", DataType::Int32),
                    ("opcname", DataType::Utf8),
                    ("opcmethod", DataType::Int32),
                    ("opcdefault", DataType::Boolean),
                ],
            ),
            // no extensions.
            Self::new(
                "pg_extension",
                &[
                    ("oid", DataType::Int32),
                    ("extname", DataType::Utf8),
                    ("extversion", DataType::Utf8),
                    ("extnamespace", DataType::Int32),
                ],
            ),
        ]
    }

    fn new(name: &'static str, columns: &[(&str, DataType)]) -> Self {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), false))
            .collect();
        EmptyCatalog {
            name,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

impl SysTable for EmptyCatalog {
    fn name(&self) -> &'static str {
        self.name
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        Ok(RecordBatch::new_empty(Arc::clone(&self.schema)))
    }
}
