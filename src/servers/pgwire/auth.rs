//! Password login: the configured read-write user and, when enabled, the
//! read-only user. Which one logged in decides the session's rights.

use async_trait::async_trait;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};

use crate::engine::Config;
use crate::engine::Session;

#[derive(Debug, Clone)]
pub struct Users {
    user: String,
    password: String,
    readonly: Option<(String, String)>,
}

impl Users {
    pub fn new(c: &Config) -> Self {
        Users {
            user: c.pg_user.clone(),
            password: c.pg_password.clone(),
            readonly: c
                .pg_readonly_enabled
                .then(|| (c.pg_readonly_user.clone(), c.pg_readonly_password.clone())),
        }
    }

    /// The session of a logged-in user.
    pub fn session(config: &Config, user: &str) -> Session {
        let read_only =
            config.pg_readonly_enabled && user == config.pg_readonly_user && user != config.pg_user;
        Session {
            statement_timeout: None,
            user: user.to_string(),
            read_only,
            cancel: Default::default(),
            sql: None,
        }
    }
}

#[async_trait]
impl AuthSource for Users {
    // The trait spells `LoginInfo` without its lifetime; so must we.
    #[allow(elided_lifetimes_in_paths)]
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        if user == self.user {
            return Ok(Password::new(None, self.password.as_bytes().to_vec()));
        }
        if let Some((ro_user, ro_password)) = &self.readonly
            && user == ro_user
        {
            return Ok(Password::new(None, ro_password.as_bytes().to_vec()));
        }
        Err(PgWireError::InvalidPassword(user.to_string()))
    }
}
