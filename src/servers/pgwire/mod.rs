//! PostgreSQL wire protocol server (pgwire crate): password login with a
//! read-write and an optional read-only user, simple and extended query
//! protocols, PostgreSQL types and SQLSTATE codes, CancelRequest.

mod auth;
mod cancel;
mod errors;
mod handler;
mod types;

use std::sync::Arc;

use pgwire::api::auth::DefaultServerParameterProvider;
use pgwire::api::auth::StartupHandler;
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ConnectionManager, PgWireServerHandlers};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::Engine;

struct Factory {
    handler: Arc<handler::Handler>,
    /// Connections by (pid, secret key), for CancelRequest.
    cancel: Arc<cancel::Canceller>,
    startup: Arc<CleartextPasswordAuthStartupHandler<auth::Users, DefaultServerParameterProvider>>,
}

impl PgWireServerHandlers for Factory {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.handler)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.handler)
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        Arc::clone(&self.handler)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut params = DefaultServerParameterProvider::default();
    params.server_version = "16.6 (sluice)".to_string();
    params.time_zone = "UTC".to_string();
    // Each login registers its connection (the key it gets in
    // BackendKeyData); a CancelRequest naming it fires the signal pgwire
    // races planning against, and the token of the statement's result
    // stream (see `cancel`).
    let connections = Arc::new(ConnectionManager::new());
    let statements = Arc::new(cancel::Connections::default());
    let factory = Arc::new(Factory {
        handler: Arc::new(handler::Handler::new(
            Arc::clone(&engine),
            Arc::clone(&statements),
        )),
        cancel: Arc::new(cancel::Canceller {
            pgwire: DefaultCancelHandler::new(Arc::clone(&connections)),
            connections: statements,
        }),
        startup: Arc::new(
            CleartextPasswordAuthStartupHandler::new(auth::Users::new(engine.config()), params)
                .with_connection_manager(connections),
        ),
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    // Answers go out as soon as they are written, as
                    // PostgreSQL's do: a statement's reply must not wait on
                    // the acknowledgement of the one before.
                    let _ = socket.set_nodelay(true);
                    let factory = Arc::clone(&factory);
                    let m = crate::metrics::metrics();
                    m.pg_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    m.pg_connections_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, factory).await {
                            tracing::debug!(error = %e, "pgwire connection ended with an error");
                        }
                        m.pg_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    });
                }
                Err(e) => tracing::warn!(error = %e, "pgwire accept failed"),
            },
            _ = shutdown.changed() => break,
        }
    }
}
