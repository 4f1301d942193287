//! Tables and COPY sources on S3-compatible object storage (`moto_server`
//! on 127.0.0.1): COPY from a bucket into a table in a bucket, queries,
//! INSERT, compaction, TRUNCATE, DROP, restart, `kill -9` in the middle of
//! an import's commit, and two servers appending to one table, each state
//! read back by delta-rs and Polars from the bucket.

use std::time::Duration;

use crate::common::{S3, Server, eventually, scalar, scratch};
use crate::copy::{wait_final, wait_phase, weather_csv};
use crate::delta::{ours, read_back_at};

/// A server whose tables live in `s3://<bucket>/db` and whose COPY may
/// read below the local `import/` and `s3://<bucket>/landing`.
fn server_on(s3: &S3, root: &std::path::Path, extra: &[(&str, &str)]) -> Server {
    let tables = format!("s3://{}/db", s3.bucket);
    let copy = format!("import,s3://{}/landing", s3.bucket);
    let mut env: Vec<(&str, String)> = s3.env();
    env.push(("QDB_CAIRO_ROOT", tables));
    env.push(("QDB_CAIRO_SQL_COPY_ROOT", copy));
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    Server::start_with(root, &env)
}

/// Data files (not the log) of table `t` in the bucket.
fn objects(s3: &S3, table: &str) -> Vec<String> {
    s3.keys(&format!("db/public/{table}/"))
        .into_iter()
        .filter(|k| k.ends_with(".parquet") && !k.contains("/_delta_log/"))
        .collect()
}

/// Local Parquet files anywhere below `root` (a table on S3 keeps none
/// once its commits are done).
fn local_parquet(root: &std::path::Path) -> usize {
    crate::common::data_files(root).len()
}

#[tokio::test]
async fn tables_and_copy_sources_on_s3() {
    let s3 = S3::start("lake").await;
    let root = scratch("s3-tables").join("data");
    std::fs::create_dir_all(root.join("import")).unwrap();
    let file = root.join("w.csv");
    let r = weather_csv(&file, 100_000, 20, 11);
    s3.put_file("landing/weather.csv", &file);
    let want = format!("{}|{}|{}|{}", r.rows, r.temp_sum_milli, r.min_ts, r.max_ts);
    let url = format!("s3://{}/db/public/weather", s3.bucket);
    let opts = s3.storage_options();

    let server = server_on(&s3, &root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "100")]);
    let client = server.client().await;
    // A source outside every copy root is refused before anything starts.
    let err = client
        .simple_query("COPY weather FROM 's3://lake/db/x.csv' WITH HEADER true")
        .await
        .unwrap_err();
    let message = err.as_db_error().expect("a server error").message();
    assert!(message.contains("outside the copy root"), "{message}");
    let id = scalar(
        &client,
        "COPY weather FROM 's3://lake/landing/weather.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    assert_eq!(ours(&client).await, want);
    assert_eq!(read_back_at(&url, &opts), [want.clone(), want.clone()]);
    assert_eq!(objects(&s3, "weather").len(), 20);
    assert_eq!(
        local_parquet(&root),
        0,
        "uploaded files are not kept locally"
    );

    // A missing object is the import's error, naming it.
    let id = scalar(
        &client,
        "COPY weather FROM 's3://lake/landing/none.csv' WITH HEADER true",
    )
    .await;
    let (status, message, ..) = wait_final(&client, &id).await;
    assert_eq!(status, "failed");
    assert!(
        message.unwrap().contains("s3://lake/landing/none.csv"),
        "the message names the object"
    );

    // A glob of objects: one import of three files, in name order.
    let mut want_rows = 0;
    for i in 0..3 {
        let part = root.join(format!("part-{i}.csv"));
        want_rows += weather_csv(&part, 1_000, 2, 40 + i).rows;
        s3.put_file(&format!("landing/parts/part-{i}.csv"), &part);
    }
    let id = scalar(
        &client,
        "COPY parts FROM 's3://lake/landing/parts/*.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM parts").await,
        want_rows.to_string()
    );
    let named = crate::common::column(
        &client,
        &format!("SELECT DISTINCT file FROM sys.text_import_log WHERE id = '{id}' AND phase = 'indexing' ORDER BY file"),
    )
    .await;
    assert_eq!(
        named,
        (0..3)
            .map(|i| Some(format!("s3://lake/landing/parts/part-{i}.csv")))
            .collect::<Vec<_>>()
    );

    // INSERTs (each a version), merged by compaction; retired objects go.
    for i in 0..6 {
        client
            .batch_execute(&format!(
                "INSERT INTO weather (timestamp, city, tempF) VALUES (to_timestamp_micros(1262304000000000 + {i}), 'Extra', 1.5)"
            ))
            .await
            .unwrap();
    }
    eventually("compaction on S3", Duration::from_secs(60), || {
        let s3 = &s3;
        async move { (objects(s3, "weather").len() == 20).then_some(()) }
    })
    .await;
    let sql = ours(&client).await;
    assert!(sql.starts_with("100006|"), "{sql}");
    assert_eq!(read_back_at(&url, &opts), [sql.clone(), sql.clone()]);

    // A restart finds the table, its schema and its rows in the bucket.
    client
        .batch_execute(
            "CREATE SCHEMA other; CREATE TABLE other.t (ts TIMESTAMP, v INT) TIMESTAMP(ts) PARTITION BY DAY; \
             INSERT INTO other.t VALUES ('2024-01-01T00:00:00Z', 7)",
        )
        .await
        .unwrap();
    drop(client);
    let server = server.restart();
    let client = server.client().await;
    assert_eq!(ours(&client).await, sql);
    assert_eq!(scalar(&client, "SELECT sum(v) FROM other.t").await, "7");

    // RENAME TABLE has no atomic form on a bucket: refused, nothing moved.
    let err = client
        .simple_query("RENAME TABLE weather TO w2")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "0A000", "{err}");

    // TRUNCATE, then DROP: every reader agrees, the objects go.
    client
        .batch_execute("TRUNCATE TABLE weather")
        .await
        .unwrap();
    assert_eq!(ours(&client).await, "0|0|None|None");
    assert_eq!(
        read_back_at(&url, &opts),
        ["0|0|None|None", "0|0|None|None"]
    );
    client.batch_execute("DROP TABLE weather").await.unwrap();
    eventually(
        "the dropped table's objects to go",
        Duration::from_secs(30),
        || {
            let s3 = &s3;
            async move { s3.keys("db/public/weather/").is_empty().then_some(()) }
        },
    )
    .await;
    assert!(server.stop().success());
}

/// `kill -9` while an import uploads and commits: after the restart the
/// table has all of the import or none of it, for us and for delta-rs, and
/// the objects no version names are gone.
#[tokio::test]
async fn kill9_during_an_s3_import_leaves_a_consistent_table() {
    let s3 = S3::start("crash").await;
    let root = scratch("s3-kill").join("data");
    std::fs::create_dir_all(root.join("import")).unwrap();
    let r = weather_csv(&root.join("import/w.csv"), 200_000, 60, 3);
    let url = format!("s3://{}/db/public/weather", s3.bucket);
    let opts = s3.storage_options();
    let server = server_on(&s3, &root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let client = server.client().await;
    let copy = "COPY weather FROM 'w.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY";
    let id = scalar(&client, copy).await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    let one = format!("{}|", r.rows);
    assert!(ours(&client).await.starts_with(&one));

    // The second import of the same file (FORCE: the table has loaded
    // it) is killed once it attaches.
    let id = scalar(&client, &format!("{copy} FORCE true")).await;
    wait_phase(&client, &id, "attach_partitions").await;
    drop(client);
    server.kill9();
    let server = server_on(&s3, &root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let client = server.client().await;
    let after = ours(&client).await;
    let two = format!("{}|", 2 * r.rows);
    assert!(
        after.starts_with(&one) || after.starts_with(&two),
        "{after}"
    );
    assert_eq!(read_back_at(&url, &opts), [after.clone(), after.clone()]);
    // Start-up removed whatever the killed commit uploaded unnamed.
    let live = if after.starts_with(&two) { 120 } else { 60 };
    assert_eq!(objects(&s3, "weather").len(), live);
    assert!(server.stop().success());
}

/// Two servers on one table in the bucket append at once from several
/// connections: the store's conditional put lets one writer win each
/// version, the other rebases, and no row is lost or doubled.
#[tokio::test]
async fn two_servers_append_to_one_s3_table() {
    let s3 = S3::start("shared").await;
    let off = [("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")];
    let a = server_on(&s3, &scratch("s3-two-a").join("data"), &off);
    a.client()
        .await
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, w INT, v LONG) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .unwrap();
    // (A server finds the tables of the bucket when it starts.)
    let b = server_on(&s3, &scratch("s3-two-b").join("data"), &off);
    let table = format!("s3://{}/db/public/t", s3.bucket);
    crate::delta::append_from_both(&a, &b, 2, 15, &table, &s3.storage_options()).await;
    assert!(b.stop().success());
    assert!(a.stop().success());
}

/// BACKUP of a table on S3 downloads its version into the local backup,
/// which opens as a local data root and answers the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_an_s3_table_opens_locally() {
    let s3 = S3::start("backups").await;
    let root = scratch("s3-backup").join("data");
    std::fs::create_dir_all(root.join("import")).unwrap();
    let server = server_on(&s3, &root, &[]);
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE t (ts TIMESTAMP, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL;
         INSERT INTO t VALUES ('2024-01-01T00:00:00Z', 1.5), ('2024-01-02T00:00:00Z', 2.25), ('2024-01-03T00:00:00Z', 4.0);
         DELETE FROM t WHERE v > 4;",
    )
    .await
    .unwrap();
    let want = scalar(&c, "SELECT count(*) || '|' || sum(v) FROM t").await;
    let rows = c.query("BACKUP TABLE t TO 'remote'", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i64>(2), 3);
    server.stop();
    let copy = Server::start(&root.join("backup/remote"));
    let c = copy.client().await;
    assert_eq!(
        scalar(&c, "SELECT count(*) || '|' || sum(v) FROM t").await,
        want
    );
    copy.stop();
}
