//! The one integration-test binary: a real `sluice` process per test on
//! ephemeral ports, driven by real clients (tokio-postgres, psql, reqwest).
//!
//! * `pg`: the PostgreSQL wire protocol: simple and extended queries,
//!   parameters, logins, errors, psql.
//! * `http`: `/exec` and `/exp`.
//! * `durability`: restart, `kill -9` during a write, corrupt files.

mod common;
mod durability;
mod http;
mod pg;
