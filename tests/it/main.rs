//! The one integration-test binary: a real `sluice` process per test on
//! ephemeral ports, driven by real clients (tokio-postgres, psql, reqwest).
//!
//! * `alter`: ALTER TABLE, UPDATE, DELETE, DROP PARTITION as Delta readers
//!   see them, `kill -9` mid-UPDATE, DEDUP imports, TTL, bloom filters.
//! * `ops`: health checks, Prometheus metrics, BACKUP under writes and
//!   `kill -9`.
//! * `pg`: the PostgreSQL wire protocol: simple and extended queries,
//!   parameters, logins, errors, psql.
//! * `http`: `/exec` and `/exp`.
//! * `durability`: restart, `kill -9` during a write, corrupt files.
//! * `copy`: COPY end to end (psql workflow, differential check, cancel,
//!   `kill -9` around attach, HTTP, `sluice import`).
//! * `ingest`: `/imp`, Arc's CSV endpoint, Parquet bulk-import jobs,
//!   COPY FROM STDIN / TO STDOUT, compressed COPY files.
//! * `correctness`: values never changed by inference, one bad value fails
//!   one row, PostgreSQL's COPY rules and types, names kept inside the root.
//! * `console`: the Web Console in Debian's Chromium driven by Playwright.
//! * `dialects`: CSV dialects, preambles and encodings, by option and by
//!   detection, against DuckDB's sniffer.
//! * `many`: COPY of a glob or a directory: one import, one commit, files
//!   named in the log and errors, columns by name.
//! * `parquet_in`: COPY of Parquet files, checked against DuckDB.
//! * `compaction`: small files merged, readers consistent, `kill -9`.
//! * `delta`: tables read back by delta-rs and Polars as Delta tables,
//!   migration of `_manifest.json` tables.
//! * `s3`: tables and COPY sources on a local S3 server (moto): COPY,
//!   queries, restart, `kill -9` mid-commit, two servers on one table.
//! * `wal`: the write-ahead log of small writes: kill -9 mid-stream,
//!   torn tails, visibility, DDL ordering, files after the apply.
//! * `streaming`: results stream with bounded server memory (psql, `/exp`,
//!   COPY TO STDOUT), fetch sizes, cancel and disconnect mid-result.

mod alter;
mod common;
mod compaction;
mod console;
mod copy;
mod correctness;
mod delta;
mod dialects;
mod durability;
mod http;
mod ingest;
mod many;
mod ops;
mod parquet_in;
mod parquet_out;
mod pg;
mod s3;
mod streaming;
mod timeseries;
mod wal;
