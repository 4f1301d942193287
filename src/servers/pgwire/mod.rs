//! PostgreSQL wire protocol server (pgwire crate): password login with a
//! read-write and an optional read-only user, simple and extended query
//! protocols, PostgreSQL types and SQLSTATE codes.

mod auth;
mod handler;
mod types;

use std::sync::Arc;

use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::DefaultServerParameterProvider;
use pgwire::api::auth::StartupHandler;
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::Engine;

struct Factory {
    handler: Arc<handler::Handler>,
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
    let factory = Arc::new(Factory {
        handler: Arc::new(handler::Handler::new(Arc::clone(&engine))),
        startup: Arc::new(CleartextPasswordAuthStartupHandler::new(
            auth::Users::new(engine.config()),
            params,
        )),
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    let factory = Arc::clone(&factory);
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, factory).await {
                            tracing::debug!(error = %e, "pgwire connection ended with an error");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "pgwire accept failed"),
            },
            _ = shutdown.changed() => break,
        }
    }
}
