//! Simple and extended query handlers. Statements are parsed and described
//! (parameter and result types) once, at Parse; Execute binds parameters and
//! runs them through the engine.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::send_execution_response;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::CopyResponse;
use pgwire::api::results::{DescribePortalResponse, DescribeResponse, DescribeStatementResponse};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, METADATA_USER, Type};
use pgwire::api::{ClientPortalStore, ConnectionHandle, DEFAULT_NAME, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Describe, Execute, PortalSuspended, TARGET_TYPE_BYTE_PORTAL,
    TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::EmptyQueryResponse;

use super::auth::Users;
use super::cancel::{Connections, CurrentStatement};
use super::errors::{error_info, pg_error};
use super::types;
use crate::engine::copy::CopyInSink;
use crate::engine::{CommandKind, Described, Engine, Output, Session};
use crate::engine::{SessionCommand, Statement, parse};
use crate::error::{Error, locate_error};
use datafusion::common::ScalarValue;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Handler {
    engine: Arc<Engine>,
    parser: Arc<Parser>,
    connections: Arc<Connections>,
}

impl Handler {
    pub fn new(engine: Arc<Engine>, connections: Arc<Connections>) -> Self {
        Handler {
            parser: Arc::new(Parser {
                engine: Arc::clone(&engine),
            }),
            engine,
            connections,
        }
    }

    /// A fresh cancel token for the connection's next statement (the
    /// connection registers for CancelRequest on its first).
    fn statement_token<C: ClientInfo>(&self, client: &C) -> CancellationToken {
        let current = match client.session_extensions().get::<Arc<CurrentStatement>>() {
            Some(c) => Arc::clone(c.as_ref()),
            None => {
                let (pid, key) = client.pid_and_secret_key();
                let c = self.connections.register(pid, key);
                client.session_extensions().insert(Arc::clone(&c));
                c
            }
        };
        current.start()
    }

    fn session<C: ClientInfo>(&self, client: &C) -> Session {
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let mut session = Users::session(self.engine.config(), &user);
        session.statement_timeout = client
            .session_extensions()
            .get::<StatementTimeout>()
            .and_then(|t| t.0);
        session
    }

    /// Runs one statement for `client`. `SET statement_timeout` is kept on
    /// the connection, and `SHOW statement_timeout` answers from it.
    async fn execute<C: ClientInfo>(
        &self,
        client: &C,
        stmt: Statement,
        sql: &Arc<str>,
        params: &[ScalarValue],
    ) -> crate::error::Result<Output> {
        let mut session = self.session(client);
        session.sql = Some(Arc::clone(sql));
        session.cancel = self.statement_token(client);
        match &stmt {
            Statement::Session(SessionCommand::StatementTimeout(ms)) => {
                client
                    .session_extensions()
                    .insert(StatementTimeout(ms.map(Duration::from_millis)));
            }
            Statement::Session(SessionCommand::Show(p))
                if p.eq_ignore_ascii_case("statement_timeout") =>
            {
                let ms = session
                    .statement_timeout
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(self.engine.config().query_timeout_ms);
                let shown = if ms == 0 {
                    "0".to_string()
                } else {
                    format!("{ms}ms")
                };
                return Ok(Output::Rows(crate::engine::text_rows(
                    "statement_timeout",
                    vec![shown],
                )));
            }
            _ => {}
        }
        self.engine
            .execute_statement(stmt, &session, params, None)
            .await
    }
}

/// The connection's `SET statement_timeout`; `None` after RESET.
struct StatementTimeout(Option<Duration>);

/// The COPY FROM STDIN in progress on a connection.
#[derive(Default)]
struct CopyState(Mutex<Option<CopyInSink>>);

/// The wire response of one statement; a COPY FROM STDIN opens its sink and
/// parks it on the connection until CopyDone or CopyFail.
fn respond<C: ClientInfo>(
    engine: &Engine,
    client: &C,
    output: Output,
    format: &Format,
) -> PgWireResult<Response> {
    match output {
        Output::CopyIn(spec) => {
            let sink = engine.copy_in_sink(spec).map_err(|e| pg_error(&e))?;
            let columns = sink.columns();
            client
                .session_extensions()
                .insert(CopyState(Mutex::new(Some(sink))));
            Ok(Response::CopyIn(CopyResponse::new(
                0,
                columns,
                futures::stream::empty(),
            )))
        }
        Output::CopyOut(out) => {
            let data = out
                .messages
                .map(|m| m.map(CopyData::new).map_err(|e| pg_error(&e)));
            // (In binary mode the response appends the trailer itself.)
            Ok(Response::CopyOut(CopyResponse::new(
                i8::from(out.binary),
                out.columns,
                data,
            )))
        }
        other => response(other, format),
    }
}

fn response(output: Output, format: &Format) -> PgWireResult<Response> {
    match output {
        Output::CopyIn(_) | Output::CopyOut(_) => Err(pg_error(&Error::Internal(
            "COPY data outside a COPY response".into(),
        ))),
        Output::Rows(rows) => Ok(Response::Query(types::query_response(rows, format)?)),
        Output::Command(c) => {
            let tag = match (c.tag, c.rows) {
                ("INSERT", Some(n)) => Tag::new("INSERT").with_oid(0).with_rows(n as usize),
                (t, Some(n)) => Tag::new(t).with_rows(n as usize),
                (t, None) => Tag::new(t),
            };
            Ok(match (c.kind, c.tag) {
                (CommandKind::Session, "BEGIN") => Response::TransactionStart(tag),
                (CommandKind::Session, "COMMIT" | "ROLLBACK") => Response::TransactionEnd(tag),
                _ => Response::Execution(tag),
            })
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let statements = match parse(query) {
            Ok(s) => s,
            Err(e) => {
                return Ok(vec![Response::Error(Box::new(error_info(&locate_error(
                    query, e,
                ))))]);
            }
        };
        let mut out = Vec::with_capacity(statements.len());
        let last = statements.len().saturating_sub(1);
        let text: Arc<str> = query.into();
        for (i, stmt) in statements.into_iter().enumerate() {
            let result = match self.execute(client, stmt, &text, &[]).await {
                // pgwire sends the responses after every statement ran, so
                // rows of an earlier statement are read before the next
                // one runs (it may drop what they read); the last streams.
                Ok(Output::Rows(rows)) if i < last => {
                    let schema = Arc::clone(&rows.schema);
                    rows.collect()
                        .await
                        .map(|b| Output::Rows(crate::engine::Rows::from_batches(schema, b)))
                }
                other => other,
            };
            match result {
                Ok(o) => {
                    let copy_in = matches!(o, Output::CopyIn(_));
                    out.push(respond(&self.engine, client, o, &Format::UnifiedText)?);
                    if copy_in {
                        // The data follows; later statements would be lost.
                        break;
                    }
                }
                Err(e) => {
                    out.push(Response::Error(Box::new(error_info(&locate_error(
                        query, e,
                    )))));
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// A statement prepared over the extended protocol.
#[derive(Debug, Clone)]
pub struct Prepared {
    stmt: Statement,
    described: Described,
    /// The text it was prepared from.
    sql: Arc<str>,
}

pub struct Parser {
    engine: Arc<Engine>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = parse(sql).map_err(|e| pg_error(&e))?;
        if statements.len() > 1 {
            return Err(pg_error(&Error::syntax(
                "cannot insert multiple commands into a prepared statement",
                0,
            )));
        }
        let Some(stmt) = statements.pop() else {
            return Ok(None);
        };
        let described = self
            .engine
            .describe(&stmt)
            .await
            .map_err(|e| pg_error(&locate_error(sql, e)))?;
        Ok(Some(Arc::new(Prepared {
            stmt,
            described,
            sql: sql.into(),
        })))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .described
            .params
            .iter()
            .map(|t| t.as_ref().map(types::pg_type).unwrap_or(Type::UNKNOWN))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.described.schema {
            Some(schema) => types::fields(schema, format.unwrap_or(&Format::UnifiedText)),
            None => Ok(vec![]),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = Arc<Prepared>;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    /// pgwire's Bind, with BindComplete queued rather than flushed: the
    /// answers to Bind, Describe and Execute leave in one write at Sync
    /// (or Flush), as PostgreSQL's do. A flush per message cost two extra
    /// `sendto` calls, and the client wake-ups they cause, per statement.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "ERROR".to_owned(),
                        "08P01".to_owned(),
                        format!(
                            "bind message supplies {} parameters, but prepared statement {statement_name:?} requires 0",
                            message.parameters.len()
                        ),
                    ))));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire's Describe, its answer queued rather than flushed (see
    /// [`Handler::on_bind`]).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                Some(Entry::Value(stmt)) => {
                    let r = self.do_describe_statement(client, &stmt).await?;
                    feed_describe(client, &r).await
                }
                Some(Entry::Empty) => {
                    feed_describe(client, &DescribeStatementResponse::no_data()).await
                }
                None => Err(PgWireError::StatementNotFound(name.to_owned())),
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(Entry::Value(portal)) => {
                    let r = self.do_describe_portal(client, &portal).await?;
                    feed_describe(client, &r).await
                }
                Some(Entry::Empty) => {
                    feed_describe(client, &DescribePortalResponse::no_data()).await
                }
                None => Err(PgWireError::PortalNotFound(name.to_owned())),
            },
            other => Err(PgWireError::InvalidTargetType(other)),
        }
    }

    /// pgwire's Execute, with rows sent as they stream
    /// ([`send_portal_rows`]) instead of gathered per Execute.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let mut transaction_status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let max_rows = message.max_rows.max(0) as usize;
        let portal = match client.portal_store().get_portal(portal_name) {
            Some(Entry::Value(portal)) => portal,
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                client.set_state(PgWireConnectionState::ReadyForQuery);
                return Ok(());
            }
            None => return Err(PgWireError::PortalNotFound(portal_name.to_owned())),
        };
        let initial = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        if initial {
            let handle = client
                .session_extensions()
                .get::<Arc<ConnectionHandle>>()
                .map(|h| Arc::clone(h.as_ref()));
            let response = match handle {
                Some(handle) => {
                    let cancelled = handle.start_query().await;
                    tokio::select! {
                        r = ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows) => r,
                        _ = cancelled => Err(PgWireError::QueryCanceled),
                    }
                }
                None => {
                    ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows).await
                }
            }?;
            match response {
                Response::Query(results) => {
                    portal.start(results).await;
                    send_portal_rows(client, portal.as_ref(), max_rows).await?;
                }
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                }
                Response::Execution(tag) => send_execution_response(client, tag).await?,
                Response::TransactionStart(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_in_transaction_state();
                }
                Response::TransactionEnd(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_idle_state();
                    client.portal_store().rm_portal(DEFAULT_NAME);
                }
                Response::Error(err) => {
                    client
                        .send(PgWireBackendMessage::ErrorResponse((*err).into()))
                        .await?;
                    transaction_status = transaction_status.to_error_state();
                }
                Response::CopyIn(result) => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    pgwire::api::copy::send_copy_in_response(client, result).await?;
                }
                Response::CopyOut(result) => {
                    pgwire::api::copy::send_copy_out_response(client, result).await?;
                }
                Response::CopyBoth(result) => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    pgwire::api::copy::send_copy_both_response(client, result).await?;
                }
            }
        } else {
            // A suspended portal: the next rows.
            send_portal_rows(client, portal.as_ref(), max_rows).await?;
        }
        if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            client.set_state(PgWireConnectionState::ReadyForQuery);
            client.set_transaction_status(transaction_status);
        }
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let prepared = &portal.statement.statement;
        let mut params = Vec::with_capacity(portal.parameters.len());
        for i in 0..portal.parameters.len() {
            let expected = prepared.described.params.get(i).cloned().flatten();
            let pg = portal
                .statement
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .or_else(|| expected.as_ref().map(types::pg_type))
                .unwrap_or(Type::UNKNOWN);
            params.push(types::decode_param(portal, i, &pg, expected.as_ref())?);
        }
        let stmt = prepared.stmt.clone();
        match self.execute(client, stmt, &prepared.sql, &params).await {
            Ok(o) => respond(&self.engine, client, o, &portal.result_column_format),
            Err(e) => Err(pg_error(&e)),
        }
    }
}

/// A Describe's answer, queued: the parameter types, then the columns
/// (or NoData).
async fn feed_describe<C, R>(client: &mut C, r: &R) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    R: DescribeResponse,
{
    if let Some(types) = r.parameters() {
        client
            .feed(PgWireBackendMessage::ParameterDescription(
                ParameterDescription::new(types.iter().map(|t| t.oid()).collect()),
            ))
            .await?;
    }
    let message = if r.is_no_data() {
        PgWireBackendMessage::NoData(NoData::new())
    } else {
        PgWireBackendMessage::RowDescription(RowDescription::new(
            r.fields().iter().map(Into::into).collect(),
        ))
    };
    client.feed(message).await?;
    Ok(())
}

/// Sends up to `max_rows` rows (all, for 0) of the portal's result as
/// they stream, then PortalSuspended if rows remain or CommandComplete.
/// The last message is queued, not flushed: the client's Sync or Flush
/// sends it with ReadyForQuery, as PostgreSQL does, in one write (a second
/// loopback send was a quarter of a prepared `select 1`'s server CPU).
/// pgwire's own `Portal::fetch` gathers an Execute's rows before sending
/// them, which for `max_rows = 0` (what most drivers send) is the whole
/// result; here the client's socket paces the query instead.
async fn send_portal_rows<C, S: Clone>(
    client: &mut C,
    portal: &Portal<S>,
    max_rows: usize,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let state = portal.state();
    let mut state = state.lock().await;
    let PortalExecutionState::Suspended(response) = &mut *state else {
        // Finished (or never started): nothing more to send.
        *state = PortalExecutionState::Finished;
        drop(state);
        let tag = Tag::new("SELECT").with_rows(0);
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
        return Ok(());
    };
    let command_tag = response.command_tag().to_owned();
    let rows = response.data_rows();
    let mut sent = 0;
    let mut more = true;
    while max_rows == 0 || sent < max_rows {
        match rows.next().await {
            Some(row) => {
                client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                sent += 1;
            }
            None => {
                more = false;
                break;
            }
        }
    }
    if more {
        client
            .feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
            .await?;
    } else {
        *state = PortalExecutionState::Finished;
        let tag = Tag::new(&command_tag).with_rows(sent);
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
    }
    Ok(())
}

#[async_trait]
impl CopyHandler for Handler {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(state) = client.session_extensions().get::<CopyState>()
            && let Some(sink) = state.0.lock().expect("copy state").as_mut()
        {
            sink.write(&copy_data.data);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sink = client
            .session_extensions()
            .get::<CopyState>()
            .and_then(|s| s.0.lock().expect("copy state").take());
        let Some(sink) = sink else {
            return Err(pg_error(&Error::Internal("no COPY in progress".into())));
        };
        let rows = self
            .engine
            .copy_in_finish(sink)
            .await
            .map_err(|e| pg_error(&e))?;
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Dropping the sink removes the spooled data; nothing was imported.
        if let Some(state) = client.session_extensions().get::<CopyState>() {
            drop(state.0.lock().expect("copy state").take());
        }
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".to_string(),
            "57014".to_string(),
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}
