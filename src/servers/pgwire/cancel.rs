//! CancelRequest. A client cancels with the (pid, secret key) it got in
//! BackendKeyData; that names its connection, whose running statement is
//! stopped: pgwire's own handler drops the statement while it is being
//! planned, and the statement's cancel token ends its result stream,
//! where DataFusion does its work, with 57014.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio_util::sync::CancellationToken;

/// The cancel token of the statement a connection is running.
#[derive(Default)]
pub struct CurrentStatement(Mutex<CancellationToken>);

impl CurrentStatement {
    /// A fresh token for the next statement (the last one's is done).
    pub fn start(&self) -> CancellationToken {
        let token = CancellationToken::new();
        *self.0.lock().expect("cancel token") = token.clone();
        token
    }
}

/// Every connection's current statement, by its cancel key. Entries of
/// closed connections are dropped as new ones register.
#[derive(Default)]
pub struct Connections(Mutex<HashMap<i32, (SecretKey, Weak<CurrentStatement>)>>);

impl Connections {
    /// Registers the connection keyed (pid, key); it holds the returned
    /// handle for as long as it lives.
    pub fn register(&self, pid: i32, key: SecretKey) -> Arc<CurrentStatement> {
        let current = Arc::new(CurrentStatement::default());
        let mut map = self.0.lock().expect("connections");
        map.retain(|_, (_, w)| w.strong_count() > 0);
        map.insert(pid, (key, Arc::downgrade(&current)));
        current
    }

    fn cancel(&self, pid: i32, key: &SecretKey) {
        let map = self.0.lock().expect("connections");
        // (Compared as bytes: a request's key may arrive in the other of
        // SecretKey's two forms.)
        if let Some((k, current)) = map.get(&pid)
            && k.to_bytes() == key.to_bytes()
            && let Some(current) = current.upgrade()
        {
            current.0.lock().expect("cancel token").cancel();
        }
    }
}

pub struct Canceller {
    pub pgwire: DefaultCancelHandler,
    pub connections: Arc<Connections>,
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.connections.cancel(request.pid, &request.secret_key);
        self.pgwire.on_cancel_request(request).await;
    }
}
