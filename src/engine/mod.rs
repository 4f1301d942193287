//! The engine: the one API the servers call. It owns the catalog, the
//! importer, the DataFusion context and the system tables, executes parsed
//! statements and returns [`Output`]s that the wire layers only have to
//! encode.

mod alter;
mod backup;
mod constant_plans;
pub mod copy;
pub mod copy_out;
mod copy_to;
mod ddl;
mod dml;
pub mod dry_run;
mod glue;
pub mod ingest;
mod insert;
mod latest_on;
mod open;
pub mod parquet_out;
mod pg_compat;
pub mod present;
pub mod rows;
mod shape_plans;
mod sources;
mod values;

pub use rows::Rows;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast as sp;

// What the servers use of the layers below, named here so that they
// depend on the engine (and the error and leaf modules) alone.
pub use crate::catalog::{DEFAULT_SCHEMA, SYS_SCHEMA};
pub use crate::config::Config;
pub use crate::sql::{QdbLimit, SessionCommand, Statement, parse};

use crate::catalog::Catalog;
use crate::catalog::provider::TableScanProvider;
use crate::error::{Error, Result};
use crate::import::log::ImportLog;
use crate::import::{Importer, Settings as ImportSettings};
use crate::query::sample_by::FillSpec;
use crate::sql::{self, Clauses};
use crate::storage::Bucket;
use crate::sys::SysTableProvider;

/// Who runs a statement.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub read_only: bool,
    /// `SET statement_timeout` of this connection (zero: none); `None`:
    /// `query.timeout` from the configuration applies.
    pub statement_timeout: Option<Duration>,
    /// Fired to stop the statement (a CancelRequest): its result stream
    /// ends with 57014.
    pub cancel: tokio_util::sync::CancellationToken,
    /// The text the statement came in (for the logs of slow and failed
    /// statements).
    pub sql: Option<Arc<str>>,
}

impl Session {
    pub fn admin() -> Self {
        Session {
            statement_timeout: None,
            user: "admin".into(),
            read_only: false,
            cancel: Default::default(),
            sql: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// CREATE, DROP, ALTER, RENAME, TRUNCATE.
    Ddl,
    /// INSERT.
    Dml,
    /// BEGIN, COMMIT, SET: accepted, change nothing.
    Session,
}

/// What a statement that returns no rows did.
#[derive(Debug, Clone)]
pub struct Command {
    /// The PostgreSQL command tag (`CREATE TABLE`, `INSERT`, …).
    pub tag: &'static str,
    pub rows: Option<u64>,
    pub kind: CommandKind,
}

#[derive(Debug)]
pub enum Output {
    Rows(Rows),
    Command(Command),
    /// COPY FROM STDIN accepted: the wire layer now streams the data into
    /// [`Engine::copy_in_sink`] and finishes with [`Engine::copy_in_finish`].
    CopyIn(copy::CopyIn),
    /// COPY TO STDOUT: one encoded message per row, as the rows stream.
    CopyOut(copy::CopyOut),
}

impl Output {
    fn ddl(tag: &'static str) -> Output {
        Output::Command(Command {
            tag,
            rows: None,
            kind: CommandKind::Ddl,
        })
    }
}

/// What a client learns before executing a prepared statement.
#[derive(Debug, Clone)]
pub struct Described {
    /// `$1`, `$2`, …: the inferred type of each parameter, when known.
    pub params: Vec<Option<DataType>>,
    /// The result columns, `None` for statements without rows.
    pub schema: Option<SchemaRef>,
}

pub struct Engine {
    config: Arc<Config>,
    /// The clients of the buckets tables and COPY sources are in.
    buckets: BTreeMap<String, Arc<Bucket>>,
    catalog: Arc<Catalog>,
    compactor: crate::catalog::compactor::Compactor,
    /// Applies tables' write-ahead logs.
    wal_applier: crate::catalog::applier::Applier,
    importer: Arc<Importer>,
    /// `None` when `cairo.sql.copy.export.root` is empty.
    exporter: Option<Arc<crate::export::Exporter>>,
    bulk: Arc<ingest::bulk::BulkImports>,
    /// The statements running now (`sys.query_activity`).
    activity: Arc<crate::sys::query_activity::Activity>,
    ctx: SessionContext,
    /// The context's state as it stands once every function and catalog
    /// is registered, shared by every statement's SQL planning: a
    /// statement copies the state only to run (the copy carries its
    /// `now()`), not to be planned.
    planner: Arc<datafusion::execution::SessionState>,
    /// Copies of the context's state that ran a statement, kept to run
    /// the next ones: a copy (and dropping it) was a tenth of a small
    /// query's time. Emptied when a SET changes the context.
    states: std::sync::Mutex<Vec<datafusion::execution::SessionState>>,
    /// What every plan runs with (functions, configuration, memory pool),
    /// built once; rebuilt when a SET changes the context.
    task: std::sync::RwLock<Arc<TaskContext>>,
    /// Plans of queries that read no table, run again unplanned.
    constants: constant_plans::ConstantPlans,
    /// Optimized plans of queries by shape, bound again with new literals.
    shapes: shape_plans::ShapePlans,
}

/// How many copies of the session state [`Engine::stream`] keeps: as
/// many as statements are planned at once, about.
const KEPT_STATES: usize = 16;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("root", &self.config.root)
            .finish()
    }
}

impl Engine {
    /// Opens the data root: loads the catalog, builds the query context.
    pub fn open(config: Config) -> Result<Arc<Engine>> {
        // DataFusion's spill files; whatever a killed process left is junk.
        let spill = config.root.join("tmp").join("query");
        let _ = std::fs::remove_dir_all(&spill);
        for dir in [config.root.clone(), spill.clone()] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let (buckets, root) = open::storage_roots(&config)?;
        let catalog = Arc::new(Catalog::open_at(root, config.retention)?);
        let journal = Arc::new(ImportLog::open(
            &config.root.join("sys"),
            config.copy_log_retention_days,
        )?);
        let importer = Arc::new(Importer::new(
            Arc::clone(&catalog),
            Arc::clone(&journal),
            ImportSettings::from_config(&config),
        ));
        // Start-up: scratch of imports that died with the last process.
        importer.clear_scratch();
        let export_log = Arc::new(crate::export::log::ExportLog::open(
            &config.root.join("sys"),
            config.copy_log_retention_days,
        )?);
        let exporter = match &config.export_root {
            Some(root) => Some(Arc::new(crate::export::Exporter::open(
                root,
                config.export_memory as usize,
                Arc::clone(&export_log),
            )?)),
            None => None,
        };
        let bulk = ingest::bulk::BulkImports::start(
            &config.root,
            Arc::clone(&catalog),
            Duration::from_millis(config.bulk_import_poll_ms),
        )?;
        let activity = Arc::new(crate::sys::query_activity::Activity::default());
        let (sys, pg_catalog) =
            open::sys_schemas(&config, &catalog, &importer, journal, export_log, &activity);
        let ctx = open::query_context(&config, &spill, &buckets, &catalog, sys, pg_catalog)?;
        let policy = crate::catalog::CompactionPolicy {
            max_files: config.compaction_max_files,
            small_file: config.compaction_small_file_size,
            max_input: config.compaction_max_input_size,
            // Five compaction rounds without new rows (at least a second).
            settle: Duration::from_millis(config.compaction_interval_ms.saturating_mul(5))
                .max(Duration::from_secs(1)),
        };
        let compactor = crate::catalog::compactor::Compactor::start(
            Arc::clone(&catalog),
            policy.clone(),
            Duration::from_millis(config.compaction_interval_ms),
        );
        // Logs are opened (and what a stopped server left in them replayed
        // and applied) even when new writes no longer go to them.
        catalog.enable_wal(&config.root.join("wal"))?;
        catalog.cache_columns(config.query_cache_size as usize);
        let wal_applier = crate::catalog::applier::Applier::start(
            Arc::clone(&catalog),
            Duration::from_millis(config.wal_apply_interval_ms),
            (config.compaction_interval_ms > 0).then_some(policy),
        );
        let planner = Arc::new(ctx.state());
        let task = std::sync::RwLock::new(Arc::new(TaskContext::from(&ctx.state())));
        Ok(Arc::new(Engine {
            config: Arc::new(config),
            buckets,
            compactor,
            wal_applier,
            catalog,
            importer,
            exporter,
            bulk,
            activity,
            ctx,
            planner,
            states: std::sync::Mutex::default(),
            task,
            constants: Default::default(),
            shapes: Default::default(),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes the query memory pool has handed out now.
    pub fn query_memory_used(&self) -> usize {
        self.ctx.runtime_env().memory_pool.reserved()
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn importer(&self) -> &Arc<Importer> {
        &self.importer
    }

    /// The Parquet bulk-import jobs and their scheduler.
    pub fn bulk(&self) -> &Arc<ingest::bulk::BulkImports> {
        &self.bulk
    }

    /// Stops background work: cancels a running import and waits for it.
    pub fn shutdown(&self) {
        self.importer.shutdown();
        if let Some(e) = &self.exporter {
            e.shutdown();
        }
        self.bulk.shutdown();
        self.wal_applier.shutdown();
        self.compactor.shutdown();
    }

    /// Parses and runs every statement of `sql` in order; stops at the first
    /// error. Each statement commits on its own.
    pub async fn execute(&self, sql: &str, session: &Session) -> Result<Vec<Output>> {
        let statements = sql::parse(sql)?;
        let mut out = Vec::with_capacity(statements.len());
        for stmt in statements {
            out.push(self.execute_statement(stmt, session, &[], None).await?);
        }
        Ok(out)
    }

    /// Runs one parsed statement with bound parameters (`$1`, …) under a
    /// timeout (`None`: the configured `query.timeout.sec`).
    pub async fn execute_statement(
        &self,
        stmt: Statement,
        session: &Session,
        params: &[ScalarValue],
        timeout: Option<Duration>,
    ) -> Result<Output> {
        let started = std::time::Instant::now();
        let kind = stmt.kind();
        let out = self.execute_checked(stmt, session, params, timeout).await;
        let seconds = started.elapsed().as_secs_f64();
        crate::metrics::metrics().statement(out.is_ok(), seconds);
        let slow = self.config.slow_query_ms;
        if let Err(e) = &out {
            tracing::info!(
                statement = kind,
                sql = session.sql.as_deref(),
                user = %session.user,
                seconds,
                sqlstate = e.sqlstate(),
                error = %e,
                "statement failed"
            );
        }
        if slow > 0 && seconds * 1000.0 >= slow as f64 {
            tracing::warn!(
                statement = kind,
                sql = session.sql.as_deref(),
                user = %session.user,
                seconds,
                error = out.as_ref().err().map(|e| e.to_string()),
                "slow statement"
            );
        }
        out
    }

    /// [`Engine::execute_statement`] after its clock starts.
    async fn execute_checked(
        &self,
        stmt: Statement,
        session: &Session,
        params: &[ScalarValue],
        timeout: Option<Duration>,
    ) -> Result<Output> {
        self.check_permission(&stmt, session)?;
        let timeout = timeout
            .or(session.statement_timeout)
            .unwrap_or(Duration::from_millis(self.config.query_timeout_ms));
        let deadline = (!timeout.is_zero()).then(|| tokio::time::Instant::now() + timeout);
        let limit = self.config.query_memory_limit;
        // Listed in sys.query_activity until its result is read or dropped.
        let text = session
            .sql
            .clone()
            .unwrap_or_else(|| Arc::from(stmt.kind()));
        let listed = self.activity.start(&session.user, text);
        let run = self.run(stmt, params);
        let output = tokio::select! {
            r = run => r.map_err(|e| e.with_memory_limit(limit))?,
            _ = rows::sleep_until(deadline) => {
                return Err(Error::Timeout {
                    millis: timeout.as_millis() as u64,
                });
            }
            _ = session.cancel.cancelled() => return Err(Error::Cancelled),
        };
        // A result is produced as it is read: the deadline and the cancel
        // signal go with it.
        Ok(match output {
            Output::Rows(rows) => Output::Rows(
                rows.guarded(session.cancel.clone(), deadline)
                    .map_err(move |e| e.with_memory_limit(limit))
                    .keeping(listed),
            ),
            Output::CopyOut(mut out) => {
                let guarded = rows::guard(out.messages, session.cancel.clone(), deadline);
                out.messages = Box::pin(futures::StreamExt::map(guarded, move |m| {
                    let _kept = &listed;
                    m
                }));
                Output::CopyOut(out)
            }
            other => other,
        })
    }

    fn check_permission(&self, stmt: &Statement, session: &Session) -> Result<()> {
        if !stmt.is_write() {
            return Ok(());
        }
        if session.read_only {
            return Err(Error::PermissionDenied {
                message: format!("user '{}' is read-only", session.user),
            });
        }
        let touches_sys = match stmt {
            Statement::CreateTable(c) => c.table.schema == SYS_SCHEMA,
            Statement::CreateSchema { name, .. } => name == SYS_SCHEMA,
            Statement::DropTable { tables, .. } | Statement::Truncate { tables } => {
                tables.iter().any(|t| t.schema == SYS_SCHEMA)
            }
            Statement::RenameTable { from, to } => {
                from.schema == SYS_SCHEMA || to.schema == SYS_SCHEMA
            }
            Statement::AlterTable { table, .. }
            | Statement::Update { table, .. }
            | Statement::Delete { table, .. } => table.schema == SYS_SCHEMA,
            Statement::Insert(i) => i.table.schema == SYS_SCHEMA,
            Statement::Copy(c) => c.table.schema == SYS_SCHEMA,
            Statement::CopyFromStdin(c) => c.table.schema == SYS_SCHEMA,
            Statement::Backup(b) => b.tables.iter().flatten().any(|t| t.schema == SYS_SCHEMA),
            _ => false,
        };
        if touches_sys {
            return Err(Error::PermissionDenied {
                message: "the sys schema is read-only".into(),
            });
        }
        Ok(())
    }

    /// Every arm's work is boxed: the future of `run` is then as small as
    /// its own state, not as large as the largest statement's (DataFusion's
    /// planning futures are tens of KiB), and it is moved several times on
    /// its way to the runtime, for every statement.
    async fn run(&self, stmt: Statement, params: &[ScalarValue]) -> Result<Output> {
        match stmt {
            Statement::Query {
                query,
                limit,
                clauses,
            } => {
                // A query that may read no table: its kept plan, or it
                // is kept once planned if it gives the same answer always.
                let candidate =
                    params.is_empty() && clauses.is_empty() && constant_plans::candidate(&query);
                let kept = candidate.then(|| self.constants.get(&query)).flatten();
                let rows = match kept {
                    Some(physical) => {
                        crate::metrics::metrics()
                            .plans_reused
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.rows(self.task(), physical)?
                    }
                    None if !candidate && params.is_empty() => {
                        let p = self.rewrite_query(query, &clauses)?;
                        let (task, physical) = Box::pin(self.shaped(p)).await?;
                        self.rows(task, physical)?
                    }
                    None => {
                        // The tree is copied only to be kept.
                        let key = candidate.then(|| (*query).clone());
                        let p = self.rewrite_query(query, &clauses)?;
                        let plan =
                            Box::pin(self.plan(sp::Statement::Query(p.query), params, &p.extras))
                                .await?;
                        let keep = key.filter(|_| constant_plans::constant(&plan));
                        let (task, physical) =
                            Box::pin(self.physical_plan(plan, Stage::Logical)).await?;
                        if let Some(key) = keep {
                            self.constants.insert(key, Arc::clone(&physical));
                        }
                        self.rows(task, physical)?
                    }
                };
                Ok(Output::Rows(match limit {
                    Some(l) => rows.limit(l, false),
                    None => rows,
                }))
            }
            Statement::Explain { statement, clauses } => {
                let (explain, extras) = self.explained(&statement, &clauses)?;
                let plan = Box::pin(self.plan(explain, params, &extras)).await?;
                Ok(Output::Rows(Box::pin(self.stream(plan)).await?))
            }
            Statement::Other(s) => Ok(Output::Rows(Box::pin(self.query(*s, params)).await?)),
            Statement::Insert(insert) => Box::pin(self.insert(&insert, params)).await,
            Statement::CreateTable(c) => Box::pin(self.create_table(c)).await,
            Statement::CreateSchema {
                name,
                if_not_exists,
            } => {
                self.catalog.create_schema(&name, if_not_exists)?;
                Ok(Output::ddl("CREATE SCHEMA"))
            }
            Statement::DropTable { tables, if_exists } => self.drop_tables(tables, if_exists),
            Statement::Truncate { tables } => Box::pin(self.truncate(tables)).await,
            Statement::RenameTable { from, to } => Box::pin(self.rename_table(from, to)).await,
            Statement::AlterTable { table, action } => {
                Box::pin(self.alter_table(table, action)).await
            }
            Statement::Update {
                table,
                assignments,
                selection,
            } => Box::pin(self.update(table, assignments, selection, params)).await,
            Statement::Delete { table, selection } => {
                Box::pin(self.delete(table, selection, params)).await
            }
            Statement::ShowPartitions { table } => self.show_partitions(table),
            Statement::ShowTables => self.show_tables(),
            Statement::ShowColumns { table } => self.show_columns(table),
            Statement::ShowCreateTable { table } => self.show_create_table(table),
            Statement::Session(cmd) => session_command(cmd),
            Statement::Copy(c) => Box::pin(self.copy(c)).await,
            Statement::CopyCancel { id } => self.copy_cancel(id),
            Statement::CopyFromStdin(c) => self.copy_from_stdin(c),
            Statement::CopyToStdout { source, options } => {
                Box::pin(self.copy_to_stdout(source, options)).await
            }
            Statement::CopyTo(c) => Box::pin(self.copy_to(c)).await,
            Statement::Backup(b) => Box::pin(self.backup(b)).await,
        }
    }

    /// The physical plan of a query with no parameters, from the
    /// optimized plan kept for its shape when there is one (see
    /// [`shape_plans`]); a shape seen the first time is kept if it fits.
    async fn shaped(
        &self,
        p: Prepared,
    ) -> Result<(
        Arc<TaskContext>,
        Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    )> {
        if !p.extras.fills.is_empty() || !p.extras.relations.is_empty() {
            let plan = self
                .plan(sp::Statement::Query(p.query), &[], &p.extras)
                .await?;
            return self.physical_plan(plan, Stage::Logical).await;
        }
        let (stmt, hidden) = self.prepare_statement(sp::Statement::Query(p.query));
        let Some((shape, literals)) = shape_plans::lift(&stmt) else {
            return self.planned(stmt, hidden).await;
        };
        // A kept plan of tables since changed is made again.
        let kept = self.shapes.get(&shape).filter(|k| k.current(&self.catalog));
        let seen = kept.is_some();
        let kept = match kept {
            Some(kept) => kept,
            None => match self.keep_shape(&shape, hidden, literals.len()).await {
                Some(kept) => {
                    self.shapes.insert(shape, kept.clone());
                    kept
                }
                None => {
                    // The query's own errors, if it has any, are its
                    // answer; if it plans, its shape is not planned again.
                    let planned = self.planned(stmt, hidden).await?;
                    self.shapes.insert(shape, shape_plans::Kept::Unfit);
                    return Ok(planned);
                }
            },
        };
        if let shape_plans::Kept::Plan(kept) = kept
            && let Some(plan) = kept.bind(&literals)
        {
            if seen {
                crate::metrics::metrics()
                    .shapes_reused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return self.physical_plan(plan, Stage::Optimized).await;
        }
        self.planned(stmt, hidden).await
    }

    /// The physical plan of a prepared statement, planned as a whole.
    async fn planned(
        &self,
        stmt: sp::Statement,
        hidden: usize,
    ) -> Result<(
        Arc<TaskContext>,
        Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    )> {
        let (plan, _) = self
            .plan_prepared(stmt, hidden, &[], &Extras::default())
            .await?;
        self.physical_plan(plan, Stage::Logical).await
    }

    /// What is kept of a query's shape: its optimized plan, or that it
    /// cannot be kept; nothing when the shape does not plan (a parameter
    /// where DataFusion takes none, a table that does not exist).
    async fn keep_shape(
        &self,
        shape: &sp::Statement,
        hidden: usize,
        parameters: usize,
    ) -> Option<shape_plans::Kept> {
        let (plan, _) = self
            .plan_prepared(shape.clone(), hidden, &[], &Extras::default())
            .await
            .ok()?;
        match shape_plans::Shape::of(&plan, parameters, |plan| self.optimize(plan)) {
            Ok(Some(shape)) => Some(shape_plans::Kept::Plan(Arc::new(shape))),
            Ok(None) => Some(shape_plans::Kept::Unfit),
            Err(_) => None,
        }
    }

    /// QuestDB's query forms made a query DataFusion plans: SAMPLE BY (its
    /// SELECTs become aggregations; the fills are left for the plan),
    /// LATEST ON and time joins (left to the relation planner).
    fn rewrite_query(&self, mut query: Box<sp::Query>, clauses: &Clauses) -> Result<Prepared> {
        // The query's and the clauses' column names take the columns'
        // spelling before the clauses' rewrites compare them with the
        // catalog's (planning does the query again, for statements with
        // no clause).
        let mut owned;
        let mut clauses = clauses;
        if !clauses.is_empty()
            && let Some(names) = self.column_case(query.as_ref())
        {
            owned = clauses.clone();
            for l in &mut owned.latest {
                l.ts.iter_mut()
                    .chain(l.keys.iter_mut())
                    .for_each(|i| names.fix(i));
            }
            names.apply(query.as_mut());
            clauses = &owned;
        }
        if clauses.is_empty() {
            return Ok(Prepared {
                query,
                extras: Extras::default(),
            });
        }
        let fills = crate::query::sample_by::rewrite_samples(&mut query, &clauses.samples, self)?;
        let relations = crate::query::relations::prepare(&mut query, clauses, self)?;
        Ok(Prepared {
            query,
            extras: Extras { fills, relations },
        })
    }

    /// An EXPLAIN whose query is rewritten as [`Engine::rewrite_query`]
    /// does, so it shows the plan that runs.
    fn explained(
        &self,
        explain: &sp::Statement,
        clauses: &Clauses,
    ) -> Result<(sp::Statement, Extras)> {
        let mut explain = explain.clone();
        let mut extras = Extras::default();
        if let sp::Statement::Explain { statement, .. } = &mut explain
            && let sp::Statement::Query(q) = statement.as_mut()
        {
            let p = self.rewrite_query(q.clone(), clauses)?;
            *q = p.query;
            extras = p.extras;
        }
        Ok((explain, extras))
    }

    /// The plan of a query inside another statement (CREATE TABLE AS,
    /// INSERT … SELECT, COPY (…) TO), made as for a query on its own.
    pub(super) async fn inner_query(
        &self,
        q: &crate::sql::QueryParts,
        params: &[ScalarValue],
    ) -> Result<LogicalPlan> {
        let p = self.rewrite_query(q.query.clone(), &q.clauses)?;
        self.plan(sp::Statement::Query(p.query), params, &p.extras)
            .await
    }

    /// Plans a statement DataFusion understands, binding parameters. A
    /// LATEST ON relation on a designated timestamp is narrowed to the
    /// newest files: by their dictionaries, or by running the bound plan
    /// the first planning pass leaves and planning again with the bound.
    async fn plan(
        &self,
        stmt: sp::Statement,
        params: &[ScalarValue],
        extras: &Extras,
    ) -> Result<LogicalPlan> {
        if extras.relations.latest.is_empty() {
            return self
                .plan_once(stmt, params, extras)
                .await
                .map(|(plan, _)| plan);
        }
        let mut extras = extras.clone();
        self.bound_by_files(&mut extras.relations).await?;
        loop {
            let (plan, bounds) = self.plan_once(stmt.clone(), params, &extras).await?;
            if bounds.is_empty() {
                return Ok(plan);
            }
            for b in bounds {
                let bound = self.run_bound(b.plan, params).await?;
                let spec = &mut extras.relations.latest[b.spec];
                spec.bound = bound;
                // No row passes the WHERE: the relation is empty anyway.
                spec.designated = bound.is_some();
            }
        }
    }

    /// One planning pass: the plan, and the plans that would find bounds
    /// for its LATEST ON relations.
    async fn plan_once(
        &self,
        stmt: sp::Statement,
        params: &[ScalarValue],
        extras: &Extras,
    ) -> Result<(LogicalPlan, Vec<crate::query::latest_on::Bound>)> {
        let (stmt, hidden) = self.prepare_statement(stmt);
        self.plan_prepared(stmt, hidden, params, extras).await
    }

    /// The statement DataFusion plans: PostgreSQL's and QuestDB's
    /// spellings made DataFusion's, columns spelled as the tables spell
    /// them; and how many ORDER BY items became hidden output columns.
    fn prepare_statement(&self, mut stmt: sp::Statement) -> (sp::Statement, usize) {
        let mut hidden = 0;
        if let sp::Statement::Query(q) = &mut stmt {
            hidden = pg_compat::order_subqueries_to_columns(q);
        }
        // pg_catalog comes first on PostgreSQL's search path, so its
        // tables win over user tables of the same name, as there.
        let pg = self
            .ctx
            .catalog(crate::catalog::DATABASE)
            .and_then(|c| c.schema(crate::sys::pg_catalog::PG_CATALOG));
        if let Some(names) = self.column_case(&stmt) {
            names.apply(&mut stmt);
        }
        pg_compat::rewrite_pg_spellings(&mut stmt, &|name| {
            pg.as_ref().is_some_and(|s| s.table_exist(name))
        });
        if let sp::Statement::Query(q) = &mut stmt {
            crate::query::names::questdb_names(q);
        }
        (stmt, hidden)
    }

    /// Plans a prepared statement (see [`Engine::prepare_statement`]).
    async fn plan_prepared(
        &self,
        stmt: sp::Statement,
        hidden: usize,
        params: &[ScalarValue],
        extras: &Extras,
    ) -> Result<(LogicalPlan, Vec<crate::query::latest_on::Bound>)> {
        if let Some(e) = glue::missing_relation(&self.planner, &stmt) {
            return Err(e);
        }
        let (plan, bounds) = if extras.relations.is_empty() {
            let plan = self
                .planner
                .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
                .await?;
            (plan, vec![])
        } else {
            // The query's own relation planner, in a copy of the state.
            let relations = extras.relations.planner();
            let state = SessionStateBuilder::new_from_existing((*self.planner).clone())
                .with_relation_planners(vec![relations.clone()])
                .build();
            let plan = state
                .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
                .await?;
            (plan, relations.take_bounds())
        };
        let plan = match extras.fills.as_slice() {
            [] => plan,
            fills => crate::query::sample_by::apply_fills(plan, fills, self.planner.as_ref())?,
        };
        let plan = crate::query::scan_order::in_table_order(plan)?;
        let plan = match hidden {
            0 => plan,
            n => {
                // The ORDER BY items that became columns are not output.
                let columns = plan.schema().columns();
                let keep = columns.len().saturating_sub(n);
                LogicalPlanBuilder::from(plan)
                    .project(
                        columns
                            .into_iter()
                            .take(keep)
                            .map(datafusion::logical_expr::Expr::Column),
                    )?
                    .build()?
            }
        };
        Ok((with_params(plan, params)?, bounds))
    }

    /// Every row of a table, in designated-timestamp order.
    pub(super) async fn table_scan(&self, t: &crate::sql::TableRef) -> Result<LogicalPlan> {
        let reference =
            datafusion::common::TableReference::partial(t.schema.as_str(), t.name.as_str());
        let provider = self.ctx.table_provider(reference.clone()).await?;
        let plan = datafusion::logical_expr::LogicalPlanBuilder::scan(
            reference,
            datafusion::datasource::provider_as_source(provider),
            None,
        )?
        .build()?;
        Ok(crate::query::scan_order::in_table_order(plan)?)
    }

    async fn query(&self, stmt: sp::Statement, params: &[ScalarValue]) -> Result<Rows> {
        let plan = self.plan(stmt, params, &Extras::default()).await?;
        self.stream(plan).await
    }

    /// Runs a plan; its rows stream as the client reads them.
    async fn stream(&self, plan: LogicalPlan) -> Result<Rows> {
        let (task, physical) = self.physical_plan(plan, Stage::Logical).await?;
        self.rows(task, physical)
    }

    /// What plans run with.
    fn task(&self) -> Arc<TaskContext> {
        Arc::clone(&self.task.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Starts a physical plan: batches are produced as the client reads
    /// them. The stream holds the plan, and so the table snapshots its
    /// scans pinned.
    fn rows(
        &self,
        task: Arc<TaskContext>,
        physical: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    ) -> Result<Rows> {
        let stream = datafusion::physical_plan::execute_stream(Arc::clone(&physical), task)?;
        Ok(Rows::new(stream).holding(physical))
    }

    /// The physical plan of a logical one and the task context it runs in.
    async fn physical_plan(
        &self,
        plan: LogicalPlan,
        stage: Stage,
    ) -> Result<(
        Arc<TaskContext>,
        Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    )> {
        Ok(match plan {
            // DataFusion's own statements (SET, PREPARE, DDL) go through
            // the context, which carries them out.
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) => {
                let df = self.ctx.execute_logical_plan(plan).await?;
                let physical = df.create_physical_plan().await?;
                // A SET may have changed what statements run with.
                let state = self.ctx.state();
                self.lock_states().clear();
                self.constants.clear();
                self.shapes.clear();
                let task = Arc::new(TaskContext::from(&state));
                *self.task.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&task);
                (task, physical)
            }
            // A query: a copy of the session state plans it (with the
            // statement's now()); the copy is kept for the next one.
            plan => {
                let mut state = self.lock_states().pop().unwrap_or_else(|| self.ctx.state());
                let planned = self.plan_physical(&mut state, &plan, stage).await;
                let mut states = self.lock_states();
                if states.len() < KEPT_STATES {
                    states.push(state);
                }
                drop(states);
                (self.task(), planned?)
            }
        })
    }

    /// The physical plan of a query, on one partition when its scans are
    /// small (see [`Engine::small_scans`]).
    async fn plan_physical(
        &self,
        state: &mut datafusion::execution::SessionState,
        plan: &LogicalPlan,
        stage: Stage,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let partitions = self.planner.config().target_partitions();
        state.config_mut().options_mut().execution.target_partitions = partitions;
        // The statement's now().
        state.mark_start_execution();
        let optimized;
        let plan = match stage {
            Stage::Logical => {
                optimized = state.optimize(plan)?;
                &optimized
            }
            Stage::Optimized => plan,
        };
        if self.small_scans(plan) {
            state.config_mut().options_mut().execution.target_partitions = 1;
        }
        state
            .query_planner()
            .create_physical_plan(plan, state)
            .await
    }

    /// A logical plan optimized, by a kept copy of the session state.
    fn optimize(&self, plan: &LogicalPlan) -> Result<LogicalPlan> {
        let mut state = self.lock_states().pop().unwrap_or_else(|| self.ctx.state());
        state.mark_start_execution();
        let optimized = state.optimize(plan);
        let mut states = self.lock_states();
        if states.len() < KEPT_STATES {
            states.push(state);
        }
        drop(states);
        Ok(optimized?)
    }

    fn lock_states(&self) -> std::sync::MutexGuard<'_, Vec<datafusion::execution::SessionState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether every table an optimized plan scans holds fewer rows in its
    /// scan's time range than `query.parallel.min.rows`: such a query runs
    /// on one partition (see `Config::query_parallel_min_rows`).
    fn small_scans(&self, plan: &LogicalPlan) -> bool {
        let limit = self.config.query_parallel_min_rows;
        if limit == 0 {
            return false;
        }
        let mut rows = 0u64;
        let mut known = true;
        let _ = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let provider = datafusion::datasource::source_as_provider(&scan.source).ok();
                let provider = provider.as_deref();
                match provider.and_then(|p| p.downcast_ref::<TableScanProvider>()) {
                    Some(table) => rows = rows.saturating_add(table.rows_in_range(&scan.filters)),
                    // sys and pg_catalog tables are small; anything else
                    // is not known.
                    None => {
                        known &=
                            provider.is_some_and(|p| p.downcast_ref::<SysTableProvider>().is_some())
                    }
                }
            }
            Ok(if known && rows < limit {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        });
        known && rows < limit
    }

    /// Parameter and result types of a statement, without running it.
    pub async fn describe(&self, stmt: &Statement) -> Result<Described> {
        match stmt {
            // Described from one planning pass: no bound is looked for.
            Statement::Query { query, clauses, .. } => {
                let p = self.rewrite_query(query.clone(), clauses)?;
                self.describe_plan(sp::Statement::Query(p.query), &p.extras)
                    .await
            }
            Statement::Explain { statement, clauses } => {
                let (explain, extras) = self.explained(statement, clauses)?;
                self.describe_plan(explain, &extras).await
            }
            Statement::Other(s) => self.describe_plan((**s).clone(), &Extras::default()).await,
            Statement::Insert(i) => Ok(Described {
                params: self.insert_param_types(i)?,
                schema: None,
            }),
            Statement::Update {
                table,
                assignments,
                selection,
            } => Ok(Described {
                params: self.dml_param_types(table, assignments, selection.as_ref())?,
                schema: None,
            }),
            Statement::Delete { table, selection } => Ok(Described {
                params: self.dml_param_types(table, &[], selection.as_ref())?,
                schema: None,
            }),
            // SHOW's columns are fixed: described without running it (only
            // the table is resolved, so an unknown one fails at Parse).
            Statement::ShowTables => Ok(Described {
                params: vec![],
                schema: Some(text_schema("table_name")),
            }),
            Statement::ShowColumns { table } => {
                self.table(table)?;
                Ok(Described {
                    params: vec![],
                    schema: Some(ddl::show_columns_schema()),
                })
            }
            Statement::ShowCreateTable { table } => {
                self.table(table)?;
                Ok(Described {
                    params: vec![],
                    schema: Some(text_schema("ddl")),
                })
            }
            Statement::Backup(_) => Ok(Described {
                params: vec![],
                schema: Some(backup::backup_schema()),
            }),
            Statement::ShowPartitions { table } => {
                self.table(table)?;
                Ok(Described {
                    params: vec![],
                    schema: Some(alter::show_partitions_schema()),
                })
            }
            Statement::Session(SessionCommand::Show(param)) => Ok(Described {
                params: vec![],
                schema: Some(text_schema(&param.replace(' ', "_"))),
            }),
            Statement::Copy(c) => Ok(Described {
                params: vec![],
                schema: Some(match c.dry_run {
                    true => dry_run::schema(),
                    false => copy::copy_schema(false),
                }),
            }),
            Statement::CopyTo(_) => Ok(Described {
                params: vec![],
                schema: Some(copy::copy_schema(false)),
            }),
            Statement::CopyCancel { .. } => Ok(Described {
                params: vec![],
                schema: Some(copy::copy_schema(true)),
            }),
            Statement::CopyFromStdin(c) => {
                // Checked at Parse, as PostgreSQL does: a missing table or
                // column fails before the client starts sending data.
                self.copy_from_stdin(c.clone())?;
                Ok(Described {
                    params: vec![],
                    schema: None,
                })
            }
            _ => Ok(Described {
                params: vec![],
                schema: None,
            }),
        }
    }

    async fn describe_plan(&self, stmt: sp::Statement, extras: &Extras) -> Result<Described> {
        let (plan, _) = self.plan_once(stmt, &[], extras).await?;
        let types = plan.get_parameter_types()?;
        let mut params: Vec<(usize, Option<DataType>)> = types
            .into_iter()
            .filter_map(|(name, t)| {
                name.trim_start_matches('$')
                    .parse::<usize>()
                    .ok()
                    .map(|i| (i, t))
            })
            .collect();
        params.sort_by_key(|(i, _)| *i);
        let n = params.last().map(|(i, _)| *i).unwrap_or(0);
        let mut out = vec![None; n];
        for (i, t) in params {
            out[i - 1] = t;
        }
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        Ok(Described {
            params: out,
            schema: Some(schema),
        })
    }
}

/// A query made ready for DataFusion's planner.
struct Prepared {
    query: Box<sp::Query>,
    extras: Extras,
}

/// How far a logical plan has come on its way to running.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// As planned from SQL: the optimizer has still to run.
    Logical,
    /// Optimized already (a kept shape's plan, bound).
    Optimized,
}

/// What planning a query needs besides its AST: the SAMPLE BY fills its
/// plan still needs, and its relations of ours.
#[derive(Debug, Clone, Default)]
pub(super) struct Extras {
    fills: Vec<FillSpec>,
    relations: crate::query::relations::Relations,
}

/// Binds a plan's parameters.
fn with_params(plan: LogicalPlan, params: &[ScalarValue]) -> Result<LogicalPlan> {
    if params.is_empty() {
        return Ok(plan);
    }
    Ok(plan.with_param_values(ParamValues::List(
        params.iter().cloned().map(Into::into).collect(),
    ))?)
}

impl Engine {
    /// The spellings of the columns of the tables `node` reads, when any
    /// is not lower case.
    fn column_case<V: sp::Visit>(&self, node: &V) -> Option<crate::query::column_case::Names> {
        let metas: Vec<_> = crate::sql::walk::relations(node)
            .iter()
            .filter_map(|t| self.table_of_relation(t, None).ok())
            .map(|t| t.meta())
            .collect();
        crate::query::column_case::Names::of(
            metas
                .iter()
                .flat_map(|m| m.columns.iter().map(|c| c.name.as_str())),
        )
    }
}

impl crate::query::Env for Engine {
    fn designated_timestamp(
        &self,
        name: &sp::ObjectName,
        position: usize,
    ) -> Result<Option<String>> {
        let table = self.table_of_relation(name, Some(position))?;
        Ok(table.meta().timestamp.clone())
    }

    fn is_aggregate(&self, name: &str) -> bool {
        self.planner.aggregate_functions().contains_key(name)
    }
}

/// The schema of a one-column text result.
fn text_schema(column: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, true)]))
}

/// A one-column text result.
pub(crate) fn text_rows(column: &str, values: Vec<String>) -> Rows {
    let schema = text_schema(column);
    let array: ArrayRef = Arc::new(StringArray::from(values));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![array]).expect("one text column");
    Rows::from_batches(schema, vec![batch])
}

fn session_command(cmd: SessionCommand) -> Result<Output> {
    let tag = match cmd {
        SessionCommand::Begin => "BEGIN",
        SessionCommand::Commit => "COMMIT",
        SessionCommand::Rollback => "ROLLBACK",
        SessionCommand::Savepoint => "SAVEPOINT",
        SessionCommand::Release => "RELEASE",
        SessionCommand::Set | SessionCommand::StatementTimeout(_) => "SET",
        SessionCommand::Reset => "RESET",
        SessionCommand::Discard => "DISCARD ALL",
        SessionCommand::Deallocate => "DEALLOCATE",
        SessionCommand::Show(param) => {
            let name = param.replace(' ', "_");
            let Some(value) = crate::sys::pg_catalog::pg_settings::value_of(&name) else {
                return Err(Error::invalid(format!(
                    "unrecognized configuration parameter \"{param}\""
                )));
            };
            return Ok(Output::Rows(text_rows(&name, vec![value.to_string()])));
        }
    };
    Ok(Output::Command(Command {
        tag,
        rows: None,
        kind: CommandKind::Session,
    }))
}
