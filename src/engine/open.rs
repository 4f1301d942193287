//! How an [`Engine`](super::Engine) is put together at start-up: the
//! storage roots and their bucket clients, the `sys` and `pg_catalog`
//! schemas over the engine's parts, and the DataFusion context queries are
//! planned in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{alter, glue, pg_compat};
use crate::catalog::{Catalog, Root};
use crate::config::{Config, CopyRoot, TablesRoot};
use crate::error::{Error, Result};
use crate::import::Importer;
use crate::import::log::ImportLog;
use crate::storage::Bucket;
use crate::sys::text_import_errors::TextImportErrors;
use crate::sys::text_import_log::TextImportLog;
use crate::sys::{SysSchema, SysTable};

/// The tables' root and one client per bucket the configuration names,
/// shared by tables, COPY and queries; local roots are created.
pub(super) fn storage_roots(config: &Config) -> Result<(BTreeMap<String, Arc<Bucket>>, Root)> {
    let mut buckets: BTreeMap<String, Arc<Bucket>> = BTreeMap::new();
    let mut bucket = |name: &str| -> Result<Arc<Bucket>> {
        if let Some(b) = buckets.get(name) {
            return Ok(Arc::clone(b));
        }
        let b = Bucket::open(name)?;
        buckets.insert(name.to_string(), Arc::clone(&b));
        Ok(b)
    };
    let root = match &config.tables_root {
        TablesRoot::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            Root::Local(dir.clone())
        }
        TablesRoot::S3(url) => Root::Remote {
            bucket: bucket(&url.bucket)?,
            prefix: url.prefix.clone(),
            scratch: config.copy_work_root.join("tables"),
        },
    };
    for root in &config.copy_roots {
        match root {
            CopyRoot::Local(dir) => std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?,
            CopyRoot::S3(url) => {
                bucket(&url.bucket)?;
            }
        }
    }
    Ok((buckets, root))
}

/// The `sys` schema (the engine's state as tables) and `pg_catalog`.
pub(super) fn sys_schemas(
    config: &Config,
    catalog: &Arc<Catalog>,
    importer: &Arc<Importer>,
    journal: Arc<ImportLog>,
    export_log: Arc<crate::export::log::ExportLog>,
    activity: &Arc<crate::sys::query_activity::Activity>,
) -> (Arc<SysSchema>, Arc<SysSchema>) {
    let sys_tables: Vec<Arc<dyn SysTable>> = vec![
        Arc::new(crate::sys::query_activity::QueryActivity::new(Arc::clone(
            activity,
        ))),
        Arc::new(crate::sys::tables::TablesTable::new(Arc::clone(catalog))),
        Arc::new(crate::sys::wal_tables::WalTables::new(Arc::clone(catalog))),
        Arc::new(crate::sys::backup_log::BackupLog::new(
            config.backup_root.clone(),
        )),
        Arc::new(crate::sys::partitions::PartitionsTable::new(Arc::clone(
            catalog,
        ))),
        Arc::new(crate::sys::copy_progress::CopyProgress::new(Arc::clone(
            importer,
        ))),
        Arc::new(TextImportLog::new(Arc::clone(&journal))),
        Arc::new(crate::sys::copy_history::CopyHistory::new(Arc::clone(
            &journal,
        ))),
        Arc::new(crate::sys::copy_export_log::CopyExportLog::new(export_log)),
        Arc::new(TextImportErrors::new(journal)),
    ];
    let sys_views = Arc::new(
        sys_tables
            .iter()
            .map(|t| (t.name().to_string(), t.schema()))
            .collect(),
    );
    let sys = Arc::new(SysSchema::new(crate::catalog::SYS_SCHEMA, sys_tables));
    let pg_catalog = Arc::new(SysSchema::new(
        crate::sys::pg_catalog::PG_CATALOG,
        crate::sys::pg_catalog::tables(catalog, sys_views),
    ));
    (sys, pg_catalog)
}

/// The DataFusion context queries are planned in: its options, one memory
/// pool for all queries, the buckets' stores, sluice's and QuestDB's
/// functions and the catalog.
pub(super) fn query_context(
    config: &Config,
    spill: &Path,
    buckets: &BTreeMap<String, Arc<Bucket>>,
    catalog: &Arc<Catalog>,
    sys: Arc<SysSchema>,
    pg_catalog: Arc<SysSchema>,
) -> Result<SessionContext> {
    let session_config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(crate::catalog::DATABASE, crate::catalog::DEFAULT_SCHEMA)
        .with_create_default_catalog_and_schema(false)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.optimizer.prefer_existing_sort", true)
        // What a spilling sort keeps back for merging its runs: 10 MB
        // by default, too much of a small pool shared by two sorts, and
        // a sixteenth of a 32 MB pool (2 MB) was too little: the final
        // merge of a sort that had spilled then had to grow while the
        // other partition's sort held the rest of the pool, and failed
        // (seen once in CI). A quarter keeps the merge within what it
        // reserved before buffering.
        .set_usize(
            "datafusion.execution.sort_spill_reservation_bytes",
            (config.query_memory_limit / 4).clamp(1 << 20, 10 << 20) as usize,
        );
    // One pool for every query: a fair share each, spilling when it is
    // used up (sorts and aggregations) or failing with 53200.
    let runtime = RuntimeEnvBuilder::new()
        .with_temp_file_path(spill)
        .with_memory_pool(Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(
                config.query_memory_limit as usize,
            ),
        ))
        .build_arc()?;
    let state = SessionStateBuilder::new()
        .with_config(session_config)
        .with_runtime_env(runtime)
        .with_default_features()
        // After DataFusion's rules: aggregations keyed by SYMBOLs find
        // their groups with fixed-size keys.
        .with_physical_optimizer_rule(Arc::new(crate::query::symbol_groups::SymbolGroups))
        .build();
    let ctx = SessionContext::new_with_state(state);
    for b in buckets.values() {
        ctx.register_object_store(&b.url, Arc::clone(&b.store));
    }
    pg_compat::register(&ctx, catalog);
    ctx.register_udtf(
        "table_partitions",
        Arc::new(alter::TablePartitions {
            catalog: Arc::clone(catalog),
        }),
    );
    // QuestDB's spellings of two system tables.
    for name in ["tables", "wal_tables"] {
        if let Some(t) = sys.get(name) {
            ctx.register_udtf(name, Arc::new(crate::sys::SysFunction(t)));
        }
    }
    crate::query::time_functions::register(&ctx);
    crate::query::date_functions::register(&ctx);
    // Every table function is registered by now.
    let table_functions = Arc::new(ctx.state().table_functions().keys().cloned().collect());
    ctx.register_catalog(
        crate::catalog::DATABASE,
        Arc::new(glue::QdbCatalog {
            catalog: Arc::clone(catalog),
            table_functions,
            sys,
            pg_catalog,
        }),
    );
    Ok(ctx)
}
