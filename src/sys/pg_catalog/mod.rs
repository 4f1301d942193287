//! `pg_catalog`: PostgreSQL's system catalogs as clients query them (psql's
//! meta-commands, drivers' metadata calls), computed from the live catalog
//! on every scan like the `sys` tables. One file per table; object ids are
//! derived from names, so they are the same in every query and every
//! table that refers to them.

pub mod empty;
pub mod pg_am;
pub mod pg_attribute;
pub mod pg_class;
pub mod pg_database;
pub mod pg_namespace;
pub mod pg_roles;
pub mod pg_settings;
pub mod pg_tablespace;
pub mod pg_type;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;

use super::SysTable;
use crate::catalog::Catalog;

/// The schema name clients qualify catalog tables with.
pub const PG_CATALOG: &str = "pg_catalog";

/// PostgreSQL's fixed object ids for what exists in every database.
pub const PG_CATALOG_OID: i32 = 11;
pub const PUBLIC_OID: i32 = 2200;
pub const ADMIN_ROLE_OID: i32 = 10;
pub const HEAP_AM_OID: i32 = 2;
pub const DATABASE_OID: i32 = 16384;

/// The user everything belongs to.
pub const OWNER: &str = "admin";

/// A stable object id for a named object of `kind` (above PostgreSQL's
/// reserved range): the same in every query, so joins between catalog
/// tables line up.
pub fn oid_of(kind: &str, name: &str) -> i32 {
    // FNV-1a, folded into 2^30..2^31 (clear of PostgreSQL's built-in ids).
    let mut h: u32 = 0x811c_9dc5;
    for b in kind.bytes().chain([0]).chain(name.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((h & 0x3fff_ffff) | 0x4000_0000) as i32
}

/// The object id of schema `name`.
pub fn namespace_oid(name: &str) -> i32 {
    match name {
        PG_CATALOG => PG_CATALOG_OID,
        crate::catalog::DEFAULT_SCHEMA => PUBLIC_OID,
        other => oid_of("namespace", other),
    }
}

/// The object id of table `schema.name`.
pub fn table_oid(schema: &str, name: &str) -> i32 {
    oid_of("class", &format!("{schema}.{name}"))
}

/// The `sys` schema's tables, shown as views: (name, columns).
pub type SysViews = Arc<Vec<(String, SchemaRef)>>;

/// Every pg_catalog table over `catalog` and the `sys` views.
pub fn tables(catalog: &Arc<Catalog>, sys_views: SysViews) -> Vec<Arc<dyn SysTable>> {
    let mut tables: Vec<Arc<dyn SysTable>> = vec![
        Arc::new(pg_namespace::PgNamespace::new(Arc::clone(catalog))),
        Arc::new(pg_class::PgClass::new(
            Arc::clone(catalog),
            Arc::clone(&sys_views),
        )),
        Arc::new(pg_am::PgAm::default()),
        Arc::new(pg_database::PgDatabase::default()),
        Arc::new(pg_roles::PgRoles::new("pg_roles")),
        Arc::new(pg_roles::PgRoles::new("pg_user")),
        Arc::new(pg_type::PgType::default()),
        Arc::new(pg_attribute::PgAttribute::new(
            Arc::clone(catalog),
            sys_views,
        )),
        Arc::new(pg_settings::PgSettings::default()),
        Arc::new(pg_tablespace::PgTablespace::default()),
    ];
    for empty in empty::EmptyCatalog::all() {
        tables.push(Arc::new(empty));
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_are_stable_and_clear_of_builtins() {
        assert_eq!(
            table_oid("public", "weather"),
            table_oid("public", "weather")
        );
        assert_ne!(table_oid("public", "a"), table_oid("public", "b"));
        assert!(oid_of("class", "x") >= 1 << 30);
        assert_eq!(namespace_oid("public"), PUBLIC_OID);
    }
}
