//! Compaction: many single-row INSERTs leave a handful of files per
//! partition, readers never see a row twice or miss one, and `kill -9` at
//! any point of a merge leaves the table whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{self, Server, eventually, scalar, scratch};

/// `clients` concurrent connections each INSERT `per_client` single rows
/// (`v = 1`, timestamps spread over two days so two partitions fill up).
async fn single_row_inserts(server: &Server, clients: usize, per_client: usize) {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = server.client().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let second = (c * per_client + i) * 60;
                client
                    .execute(
                        &format!(
                            "INSERT INTO t VALUES (to_timestamp_micros({second}000000 + 1704067200000000), 1)"
                        ),
                        &[],
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    common::data_files(dir)
}

/// Files the table's latest Delta version names.
fn manifest_files(table_dir: &Path) -> usize {
    common::delta_live_files(table_dir).len()
}

/// 2,000 single-row INSERTs from 8 clients: within seconds each partition
/// is down to a handful of files, every row counted once throughout.
#[tokio::test]
async fn small_inserts_are_compacted() {
    let root = scratch("compact").join("data");
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "100")]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, v LONG) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL",
        )
        .await
        .unwrap();
    // A reader that checks, query after query, that no row is seen twice
    // or missed while merges swap files under it (`v = 1`, so the sum is
    // the count, and the count only grows).
    let reader = server.client().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reader = Arc::clone(&stop);
    let checks = tokio::spawn(async move {
        let (mut last, mut queries) = (0i64, 0u32);
        while !stop_reader.load(std::sync::atomic::Ordering::Relaxed) {
            let row = reader
                .query_one("SELECT count(*), coalesce(sum(v), 0) FROM t", &[])
                .await
                .unwrap();
            let (count, sum): (i64, i64) = (row.get(0), row.get(1));
            assert_eq!(count, sum, "a row seen twice or missed");
            assert!(count >= last, "rows went missing: {last} then {count}");
            last = count;
            queries += 1;
        }
        queries
    });
    single_row_inserts(&server, 8, 250).await;
    let files = eventually("compaction", Duration::from_secs(30), || {
        let client = &client;
        async move {
            let rows = client
                .query(
                    "SELECT file_count FROM sys.partitions WHERE table_name = 't'",
                    &[],
                )
                .await
                .unwrap();
            let counts: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            (counts.len() == 2 && counts.iter().all(|&n| n <= 2)).then_some(counts)
        }
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(checks.await.unwrap() > 0, "the reader ran");
    assert_eq!(files.len(), 2);
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "2000");
    assert_eq!(scalar(&client, "SELECT sum(v) FROM t").await, "2000");
    assert_eq!(
        scalar(
            &client,
            "SELECT sum(row_count) FROM sys.partitions WHERE table_name = 't'"
        )
        .await,
        "2000"
    );
    // Retired files leave the disk once no query reads them.
    let dir = root.join("db/public/t");
    eventually("retired files to go", Duration::from_secs(10), || {
        let settled = parquet_files(&dir).len() == manifest_files(&dir);
        async move { settled.then_some(()) }
    })
    .await;
}

/// `kill -9` at several moments while a table of 1,200 small files is
/// compacted: every restart finds all rows exactly once, and start-up
/// removes what the merge left (its unfinished file or the old ones).
#[tokio::test]
async fn kill9_during_compaction_keeps_every_row_once() {
    let root = scratch("compact-kill9").join("data");
    let dir = root.join("db/public/t");
    {
        let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
        let client = server.client().await;
        client
            .batch_execute(
                "CREATE TABLE t (ts TIMESTAMP, v LONG) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL",
            )
            .await
            .unwrap();
        single_row_inserts(&server, 8, 150).await;
        assert!(server.stop().success());
    }
    assert_eq!(manifest_files(&dir), 1200);
    // Each round kills the server the moment a merge has written a file
    // the manifest does not name yet (the event, not a delay, picks the
    // moment), until a kill has landed mid-merge twice or the table is
    // compacted.
    let mut caught_mid_merge = 0;
    for round in 0..5 {
        if caught_mid_merge == 2 || manifest_files(&dir) < 2 {
            break;
        }
        let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "1")]);
        let merging = || parquet_files(&dir).len() > manifest_files(&dir);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !merging() && manifest_files(&dir) >= 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.kill9();
        // Files on disk the manifest does not name: a merge was cut short.
        let on_disk = parquet_files(&dir).len();
        let named = manifest_files(&dir);
        caught_mid_merge += usize::from(on_disk > named);
        eprintln!("kill -9 in round {round}: {on_disk} files on disk, {named} named");
        let check = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
        let c = check.client().await;
        assert_eq!(scalar(&c, "SELECT count(*) FROM t").await, "1200");
        assert_eq!(scalar(&c, "SELECT sum(v) FROM t").await, "1200");
        assert_eq!(
            parquet_files(&dir).len(),
            manifest_files(&dir),
            "start-up left files no manifest names"
        );
        assert!(check.stop().success());
    }
    assert!(caught_mid_merge > 0, "no kill landed during a merge");
}

/// A result still being read pins the snapshot it started from: a merge
/// that commits meanwhile, and the grace period after it, remove none of
/// the files the reader has yet to open; once the reader is gone they go.
#[tokio::test]
async fn a_streaming_reader_keeps_the_files_it_reads() {
    let root = scratch("compact-pin").join("data");
    let dir = root.join("db/public/t");
    {
        let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
        let client = server.client().await;
        client
            .batch_execute(
                "CREATE TABLE t (ts TIMESTAMP, v LONG, s VARCHAR) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL",
            )
            .await
            .unwrap();
        // Twelve files of 100,000 rows in one day, each INSERT its own.
        for i in 0..12i64 {
            client
                .batch_execute(&format!(
                    "INSERT INTO t SELECT to_timestamp_micros(1704067200000000 + ({i} * 100000 + value) * 1000), 1, 'padding text for row ' || value FROM generate_series(1, 100000)"
                ))
                .await
                .unwrap();
        }
        assert!(server.stop().success());
    }
    assert_eq!(manifest_files(&dir), 12);
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "200")]);
    let client = server.client().await;
    // Start reading, then stop: the socket fills and the scan waits with
    // most files not yet opened.
    let rows = client
        .query_raw("SELECT v FROM t", std::iter::empty::<i64>())
        .await
        .unwrap();
    let mut rows = Box::pin(rows);
    use futures::StreamExt;
    let mut sum: i64 = 0;
    for _ in 0..10 {
        sum += rows.next().await.unwrap().unwrap().get::<_, i64>(0);
    }
    let observer = server.client().await;
    eventually("the merge to commit", Duration::from_secs(30), || {
        let observer = &observer;
        async move {
            let n = scalar(
                observer,
                "SELECT file_count FROM sys.partitions WHERE table_name = 't'",
            )
            .await;
            (n == "1").then_some(())
        }
    })
    .await;
    // The reaper reports the retired files past their grace period and
    // kept for the reader alone: only the pin keeps them.
    eventually(
        "the reaper to hold the retired files for the reader",
        Duration::from_secs(30),
        || {
            let server = &server;
            async move {
                server
                    .metric("sluice_retired_files_held_by_readers")
                    .await
                    .is_some_and(|v| v >= 1.0)
                    .then_some(())
            }
        },
    )
    .await;
    assert!(
        parquet_files(&dir).len() > 1,
        "the retired files went while a reader held them"
    );
    while let Some(row) = rows.next().await {
        sum += row.unwrap().get::<_, i64>(0);
    }
    assert_eq!(
        sum, 1_200_000,
        "every row read exactly once across the merge"
    );
    drop(rows);
    drop(client);
    eventually(
        "retired files to go once the reader is gone",
        Duration::from_secs(10),
        || {
            let settled = parquet_files(&dir).len() == manifest_files(&dir);
            async move { settled.then_some(()) }
        },
    )
    .await;
}
