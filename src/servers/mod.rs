//! Network servers over the [`Engine`](crate::engine::Engine): PostgreSQL
//! wire protocol and HTTP. They translate wire formats to engine calls and
//! back, nothing more.

pub mod http;
pub mod min;
pub mod pgwire;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// Running servers: their bound addresses and a shutdown switch.
pub struct Servers {
    pub pg_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Servers {
    /// Binds every enabled listener and starts serving.
    pub async fn start(engine: Arc<Engine>) -> Result<Servers> {
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let config = engine.config().clone();
        let mut pg_addr = None;
        if config.pg_enabled {
            let listener = bind(config.pg_bind, "pg.net.bind.to").await?;
            pg_addr = Some(
                listener
                    .local_addr()
                    .map_err(|e| Error::io("pg listener", e))?,
            );
            tasks.push(tokio::spawn(pgwire::serve(
                listener,
                Arc::clone(&engine),
                rx.clone(),
            )));
        }
        let mut http_addr = None;
        if config.http_enabled {
            let listener = bind(config.http_bind, "http.bind.to").await?;
            http_addr = Some(
                listener
                    .local_addr()
                    .map_err(|e| Error::io("http listener", e))?,
            );
            tasks.push(tokio::spawn(http::serve(
                listener,
                Arc::clone(&engine),
                rx.clone(),
            )));
        }
        Ok(Servers {
            pg_addr,
            http_addr,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting connections and waits (at most a few seconds, so an
    /// idle client cannot hold shutdown hostage) for the listeners to close.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

async fn bind(addr: SocketAddr, key: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| Error::Config {
        key: key.to_string(),
        value: addr.to_string(),
        message: format!("cannot listen: {e}"),
    })
}
