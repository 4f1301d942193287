//! Tables that change after CREATE: ALTER TABLE, UPDATE, DELETE and DROP
//! PARTITION as delta-rs and Polars read them, SHOW PARTITIONS and SHOW
//! CREATE TABLE, `kill -9` during an UPDATE, a file imported twice into a
//! DEDUP table, TTL, and bloom filters of indexed SYMBOL columns.

use std::path::Path;
use std::time::Duration;

use crate::common::{self, Server, eventually, python, scalar};

/// What delta-rs and Polars each read from the Delta table at `dir`:
/// `rows|columns|Σ v|non-null w`.
fn delta_view(dir: &Path) -> [String; 2] {
    let out = python(
        r#"
import os, sys
from deltalake import DeltaTable
import polars as pl
import pyarrow.compute as pc
p = os.environ["TABLE"]
t = DeltaTable(p).to_pyarrow_table()
w = t.column("w").null_count if "w" in t.column_names else -1
print(f"{t.num_rows}|{','.join(t.column_names)}|{pc.sum(t.column('v')).as_py()}|{t.num_rows - w if w >= 0 else -1}")
df = pl.read_delta(p)
w = df["w"].count() if "w" in df.columns else -1
print(f"{df.height}|{','.join(df.columns)}|{df['v'].sum()}|{w}")
sys.stdout.flush()
os._exit(0)
"#,
        &[("TABLE", dir.display().to_string())],
    );
    let mut lines = out.lines().map(str::to_string);
    [lines.next().unwrap(), lines.next().unwrap()]
}

/// The same view through our SQL.
async fn ours(c: &tokio_postgres::Client) -> String {
    let cols: Vec<String> = c
        .query("SHOW COLUMNS FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let has_w = cols.iter().any(|c| c == "w");
    let row = c
        .query_one(
            &format!(
                "SELECT count(*), sum(v), {} FROM t",
                if has_w { "count(w)" } else { "-1" }
            ),
            &[],
        )
        .await
        .unwrap();
    format!(
        "{}|{}|{:?}|{}",
        row.get::<_, i64>(0),
        cols.join(","),
        row.get::<_, Option<f64>>(1).unwrap_or(0.0),
        row.get::<_, i64>(2)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_readers_see_each_change_as_sql_does() {
    let root = common::scratch("alter_delta");
    // No compaction: each version below is one statement's.
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE t (ts TIMESTAMP, k SYMBOL, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL;
         INSERT INTO t VALUES ('2024-01-01T01:00:00Z', 'a', 1.0), ('2024-01-02T01:00:00Z', 'b', 2.0),
                              ('2024-01-03T01:00:00Z', 'a', 3.0), ('2024-01-03T02:00:00Z', 'c', 4.0);",
    )
    .await
    .unwrap();
    let dir = root.join("db/public/t");
    let check = |step: &'static str, want: String| {
        let dir = dir.clone();
        async move {
            let [rs, pl] = delta_view(&dir);
            assert_eq!(rs, want, "delta-rs after {step}");
            assert_eq!(pl, want, "Polars after {step}");
        }
    };
    c.batch_execute(
        "ALTER TABLE t ADD COLUMN w INT; INSERT INTO t VALUES ('2024-01-03T03:00:00Z', 'd', 5.0, 50);",
    )
    .await
    .unwrap();
    let view = ours(&c).await;
    assert_eq!(view, "5|ts,k,v,w|15.0|1");
    check("ADD COLUMN", view).await;

    let n = c
        .execute("UPDATE t SET v = v + 100, w = 1 WHERE k = 'a'", &[])
        .await
        .unwrap();
    assert_eq!(n, 2, "UPDATE's row count");
    let view = ours(&c).await;
    assert_eq!(view, "5|ts,k,v,w|215.0|3");
    check("UPDATE", view).await;

    let n = c.execute("DELETE FROM t WHERE v < 3", &[]).await.unwrap();
    assert_eq!(n, 1, "DELETE's row count");
    let view = ours(&c).await;
    assert_eq!(view, "4|ts,k,v,w|213.0|3");
    check("DELETE", view).await;

    c.batch_execute("ALTER TABLE t DROP COLUMN w")
        .await
        .unwrap();
    let view = ours(&c).await;
    assert_eq!(view, "4|ts,k,v|213.0|-1");
    check("DROP COLUMN", view).await;

    c.batch_execute("ALTER TABLE t DROP PARTITION LIST '2024-01-01'")
        .await
        .unwrap();
    let view = ours(&c).await;
    assert_eq!(view, "3|ts,k,v|112.0|-1");
    check("DROP PARTITION", view).await;

    // Each change was one Delta version.
    let versions = std::fs::read_dir(dir.join("_delta_log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count();
    // CREATE, INSERT, ADD COLUMN, INSERT, UPDATE, DELETE, DROP COLUMN, DROP PARTITION.
    assert_eq!(versions, 8, "one version per statement");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_partitions_and_the_stored_options() {
    let root = common::scratch("alter_show");
    let server = Server::start(&root);
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE trades (symbol SYMBOL CAPACITY 256 CACHE, side SYMBOL CAPACITY 256 CACHE, price DOUBLE, amount DOUBLE, timestamp TIMESTAMP) \
         timestamp(timestamp) PARTITION BY DAY TTL 30 DAYS WAL WITH maxUncommittedRows=500000, o3MaxLag=600000000us DEDUP UPSERT KEYS(timestamp, symbol);
         INSERT INTO trades VALUES ('AAA', 'buy', 1, 1, '2024-01-01T00:00:00Z'), ('BBB', 'sell', 2, 2, '2024-01-01T05:00:00Z'), ('AAA', 'buy', 3, 3, '2024-01-02T00:00:00Z');",
    )
    .await
    .unwrap();
    let ddl = scalar(&c, "SHOW CREATE TABLE trades").await;
    assert!(
        ddl.ends_with(
            ") timestamp(timestamp) PARTITION BY DAY TTL 30 DAYS WAL WITH maxUncommittedRows=500000, o3MaxLag=600000000us DEDUP UPSERT KEYS(timestamp, symbol);"
        ),
        "{ddl}"
    );
    let rows = c.query("SHOW PARTITIONS FROM trades", &[]).await.unwrap();
    assert_eq!(rows.len(), 2);
    let names: Vec<String> = rows.iter().map(|r| r.get("name")).collect();
    assert_eq!(names, ["2024-01-01", "2024-01-02"]);
    let counts: Vec<i64> = rows.iter().map(|r| r.get("numRows")).collect();
    assert_eq!(counts, [2, 1]);
    let active: Vec<bool> = rows.iter().map(|r| r.get("active")).collect();
    assert_eq!(active, [false, true]);
    for r in &rows {
        assert!(r.get::<_, i64>("diskSize") > 0);
        assert_eq!(r.get::<_, String>("partitionBy"), "DAY");
    }
    // The options survive a restart (they are in the Delta log).
    let server = server.restart();
    let c = server.client().await;
    assert_eq!(scalar(&c, "SHOW CREATE TABLE trades").await, ddl);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_update_leaves_the_table_before_or_after() {
    killed_mid_way(
        "alter_kill_update",
        ROWS_400K,
        "UPDATE t SET v = 2.0 WHERE k = 'a'",
        "SELECT count(*) FILTER (WHERE v = 2.0) || ' ' || count(*) FROM t",
        ["0 400000", "200000 400000"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_imported_twice_into_a_dedup_table_is_there_once() {
    let (server, import) = crate::copy::start("alter_dedup", &[]);
    let c = server.client().await;
    crate::copy::weather_csv(&import.join("a.csv"), 20_000, 4, 7);
    // The same rows under another name: the load ledger does not know it.
    std::fs::copy(import.join("a.csv"), import.join("b.csv")).unwrap();
    c.batch_execute(
        "CREATE TABLE weather (timestamp TIMESTAMP, city SYMBOL, tempF DOUBLE, windSpeed DOUBLE, events VARCHAR) \
         TIMESTAMP(timestamp) PARTITION BY DAY DEDUP UPSERT KEYS(timestamp, city);
         CREATE TABLE once (timestamp TIMESTAMP, city SYMBOL, tempF DOUBLE, windSpeed DOUBLE, events VARCHAR) \
         TIMESTAMP(timestamp) PARTITION BY DAY DEDUP UPSERT KEYS(timestamp, city);",
    )
    .await
    .unwrap();
    for (table, file) in [
        ("weather", "a.csv"),
        ("weather", "b.csv"),
        ("once", "a.csv"),
    ] {
        let id = scalar(&c, &format!("COPY {table} FROM '{file}' WITH HEADER true")).await;
        let (status, message, ..) = crate::copy::wait_final(&c, &id).await;
        assert_eq!(status, "finished", "{message:?}");
    }
    let summary = "SELECT count(*), round(sum(tempF), 3), count(DISTINCT city) FROM ";
    let twice = c
        .query_one(&format!("{summary} weather"), &[])
        .await
        .unwrap();
    let once = c.query_one(&format!("{summary} once"), &[]).await.unwrap();
    assert_eq!(twice.get::<_, i64>(0), once.get::<_, i64>(0));
    assert_eq!(
        twice.get::<_, Option<f64>>(1),
        once.get::<_, Option<f64>>(1)
    );
    // Deduplicated on (timestamp, city): no key twice.
    assert_eq!(
        scalar(
            &c,
            "SELECT count(*) FROM (SELECT timestamp, city FROM weather GROUP BY timestamp, city HAVING count(*) > 1)"
        )
        .await,
        "0"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_drops_the_partitions_that_age_out() {
    let root = common::scratch("alter_ttl");
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "100")]);
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE t (ts TIMESTAMP, v LONG) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL;
         INSERT INTO t VALUES ('2024-01-01T10:00:00Z', 1), ('2024-01-02T10:00:00Z', 2),
                              ('2024-01-03T10:00:00Z', 3), ('2024-01-04T10:00:00Z', 4),
                              ('2024-01-05T10:00:00Z', 5);
         ALTER TABLE t SET TTL 1 DAY;",
    )
    .await
    .unwrap();
    // The newest row is at 01-05 10:00: partitions ending by 01-04 10:00 go.
    let left = eventually("TTL enforcement", Duration::from_secs(30), || {
        let c = &c;
        async move {
            let v = common::column(c, "SELECT v FROM t ORDER BY ts").await;
            (v.len() == 2).then_some(v)
        }
    })
    .await;
    assert_eq!(left, [Some("4".to_string()), Some("5".to_string())]);
    // In the Delta log too: only the two kept days' files are live.
    let live = common::delta_live_files(&root.join("db/public/t"));
    let days: std::collections::BTreeSet<&str> =
        live.iter().filter_map(|p| p.split('/').next()).collect();
    assert_eq!(
        days.into_iter().collect::<Vec<_>>(),
        ["2024-01-04", "2024-01-05"]
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_symbol_skips_row_groups_by_bloom_filter() {
    let root = common::scratch("alter_index");
    // Without the column cache: the table is small enough to be served
    // from decoded columns, and the filters belong to the Parquet scan.
    let server = Server::start_with(&root, &[("QDB_QUERY_CACHE_SIZE", "0")]);
    let c = server.client().await;
    // Every day has hosts host_0 … host_6; host_3x only one day. Its
    // value lies inside every file's min-max range, so statistics cannot
    // skip a file for it: only the bloom filters can.
    c.batch_execute(
        "CREATE TABLE cpu (hostname SYMBOL, usage_user DOUBLE, timestamp TIMESTAMP) timestamp(timestamp) PARTITION BY DAY BYPASS WAL;
         INSERT INTO cpu SELECT CASE WHEN x / 1000 = 3 AND x % 7 = 1 THEN 'host_3x' ELSE 'host_' || (x % 7) END,
                1.0, to_timestamp_micros(1704067200000000 + x * 86400000)
           FROM generate_series(0, 9999) AS g(x);",
    )
    .await
    .unwrap();
    let query = "SELECT count(*) FROM cpu WHERE hostname = 'host_3x'";
    let before = common::explain(&c, &format!("ANALYZE {query}")).await;
    c.batch_execute("ALTER TABLE cpu ALTER COLUMN hostname ADD INDEX")
        .await
        .unwrap();
    let after = common::explain(&c, &format!("ANALYZE {query}")).await;
    assert_eq!(scalar(&c, query).await, "143");
    let metric = |plan: &str, name: &str| -> String {
        plan.split(&format!("{name}="))
            .nth(1)
            .map(|s| s.split([',', ']']).next().unwrap().to_string())
            .unwrap_or_default()
    };
    // Statistics keep all ten days' row groups, before and after.
    for plan in [&before, &after] {
        assert_eq!(
            metric(plan, "row_groups_pruned_statistics"),
            "10 total → 10 matched",
            "{plan}"
        );
    }
    // With the index, bloom filters skip the nine days without the host.
    assert_eq!(
        metric(&after, "row_groups_pruned_bloom_filter"),
        "10 total → 1 matched",
        "{after}"
    );
    server.stop();
}

/// UPDATE and DELETE with parameters from the drivers that bind them on
/// the server (asyncpg encodes by the types Describe gives, psycopg binds
/// text), and UPDATE over QuestDB's `/exec` with its row count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_delete_take_driver_parameters() {
    let root = common::scratch("alter_params");
    let server = Server::start(&root);
    let script = r#"
import asyncio, datetime, os, asyncpg, psycopg
port = os.environ["PG_PORT"]
async def main():
    c = await asyncpg.connect(f"postgresql://admin:quest@127.0.0.1:{port}/qdb")
    await c.execute("CREATE TABLE p (ts TIMESTAMP, k SYMBOL, v DOUBLE, n INT) TIMESTAMP(ts) PARTITION BY DAY")
    await c.execute("INSERT INTO p VALUES ('2024-01-01T00:00:00Z', 'a', 1.0, 1), ('2024-01-02T00:00:00Z', 'b', 2.0, 2), ('2024-01-03T00:00:00Z', 'c', 3.0, 3)")
    r = await c.execute("UPDATE p SET v = $1, n = $2 WHERE k = $3", 9.5, 7, "a")
    assert r == "UPDATE 1", r
    r = await c.execute("DELETE FROM p WHERE ts >= $1 AND n > $2", datetime.datetime(2024, 1, 3), 2)
    assert r == "DELETE 1", r
    got = await c.fetch("SELECT k, v, n FROM p ORDER BY ts")
    assert [tuple(g) for g in got] == [("a", 9.5, 7), ("b", 2.0, 2)], got
asyncio.run(main())
with psycopg.connect(f"postgresql://admin:quest@127.0.0.1:{port}/qdb", autocommit=True) as conn:
    cur = conn.execute("UPDATE p SET v = v + %s WHERE k = %s", (0.5, "b"))
    assert cur.rowcount == 1, cur.rowcount
    assert conn.execute("SELECT v FROM p WHERE k = 'b'").fetchone()[0] == 2.5
print("drivers ok")
"#;
    let out = python(script, &[("PG_PORT", server.pg.port().to_string())]);
    assert!(out.contains("drivers ok"), "{out}");
    let body: serde_json::Value = reqwest::get(server.url(&format!(
        "/exec?query={}",
        common::enc("UPDATE p SET n = 0")
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body, serde_json::json!({"dml": "OK", "updated": 2}));
    server.stop();
}

/// `statement` runs on its own connection and the server is killed once
/// the statement has written its first new file; after a restart `probe`
/// must answer as before the statement or as after it.
async fn killed_mid_way(
    name: &str,
    setup: &str,
    statement: &'static str,
    probe: &str,
    outcomes: [&str; 2],
) {
    killed_mid_way_with(name, &[], setup, statement, probe, outcomes).await
}

/// [`killed_mid_way`] with `files` (name, text) in the COPY root.
async fn killed_mid_way_with(
    name: &str,
    files: &[(&str, String)],
    setup: &str,
    statement: &'static str,
    probe: &str,
    outcomes: [&str; 2],
) {
    let root = common::scratch(name);
    std::fs::create_dir_all(root.join("import")).unwrap();
    for (file, text) in files {
        std::fs::write(root.join("import").join(file), text).unwrap();
    }
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let c = server.client().await;
    c.batch_execute(setup).await.unwrap();
    assert_eq!(scalar(&c, probe).await, outcomes[0], "before {statement}");
    let dir = root.join("db/public/t");
    let before = common::data_files(&dir).len();
    let log = std::fs::read_dir(dir.join("_delta_log")).unwrap().count();
    let (other, conn) = server.client_and_connection().await;
    let running = tokio::spawn(async move {
        let _conn = conn;
        let _ = other.batch_execute(statement).await;
    });
    // A new data file or a new log entry: the statement is under way.
    eventually(
        &format!("{statement} under way"),
        Duration::from_secs(60),
        || {
            let dir = dir.clone();
            async move {
                let log_now = std::fs::read_dir(dir.join("_delta_log")).unwrap().count();
                (common::data_files(&dir).len() > before || log_now > log).then_some(())
            }
        },
    )
    .await;
    server.kill9();
    running.abort();
    let server = Server::start(&root);
    let c = server.client().await;
    let got = scalar(&c, probe).await;
    assert!(
        outcomes.contains(&got.as_str()),
        "{statement} half done: {got} (before {}, after {})",
        outcomes[0],
        outcomes[1]
    );
    server.stop();
}

const ROWS_400K: &str =
    "CREATE TABLE t (ts TIMESTAMP, k SYMBOL, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL;
     INSERT INTO t SELECT ts, CASE WHEN x % 2 = 0 THEN 'a' ELSE 'b' END, 1.0
       FROM (SELECT x, to_timestamp_micros(1704067200000000 + x * 4000000) AS ts
             FROM generate_series(1, 400000) AS g(x));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_delete_or_a_drop_partition_leaves_before_or_after() {
    killed_mid_way(
        "alter_kill_delete",
        ROWS_400K,
        "DELETE FROM t WHERE k = 'a'",
        "SELECT count(*) FROM t",
        ["400000", "200000"],
    )
    .await;
    killed_mid_way(
        "alter_kill_drop",
        ROWS_400K,
        "ALTER TABLE t DROP PARTITION WHERE ts < '2024-01-10'",
        "SELECT count(*) FROM t WHERE ts < '2024-01-10'",
        ["194399", "0"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_dedup_insert_leaves_before_or_after() {
    // Every row of the INSERT replaces a stored one: the count stays, the
    // values move from 1.0 to 2.0 all at once or not at all.
    killed_mid_way(
        "alter_kill_dedup",
        &format!("{ROWS_400K} ALTER TABLE t DEDUP ENABLE UPSERT KEYS(ts, k);"),
        "INSERT INTO t SELECT ts, k, 2.0 FROM t",
        "SELECT count(*) || ' ' || sum(v) FROM t",
        ["400000 400000.0", "400000 800000.0"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_dedup_import_leaves_before_or_after() {
    // The file repeats every stored key with v = 2.0: the import replaces
    // all 400,000 rows at once or none of them.
    let mut csv = String::from("ts,k,v\n");
    for x in 1..=400_000i64 {
        let s = x * 4;
        let (d, h, m, sec) = (1 + s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
        let k = if x % 2 == 0 { "a" } else { "b" };
        csv.push_str(&format!("2024-01-{d:02}T{h:02}:{m:02}:{sec:02}Z,{k},2.0\n"));
    }
    killed_mid_way_with(
        "alter_kill_dedup_copy",
        &[("again.csv", csv)],
        &format!("{ROWS_400K} ALTER TABLE t DEDUP ENABLE UPSERT KEYS(ts, k);"),
        "COPY t FROM 'again.csv' WITH HEADER true",
        "SELECT count(*) || ' ' || sum(v) FROM t",
        ["400000 400000.0", "400000 800000.0"],
    )
    .await;
}

/// An UPDATE of a file far larger than its batches streams it: the
/// server's memory grows by a bounded amount, not by the file's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_of_a_large_file_streams_it() {
    let root = common::scratch("alter_memory");
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let c = server.client().await;
    // 2,000,000 rows in one partition, in at most two files (the INSERT
    // writes in chunks): about 100 bytes a row in memory, so a file read
    // whole would take 100 MiB or more.
    c.batch_execute(
        "CREATE TABLE t (ts TIMESTAMP, k SYMBOL, v DOUBLE, s VARCHAR) TIMESTAMP(ts) PARTITION BY YEAR BYPASS WAL;
         INSERT INTO t SELECT to_timestamp_micros(1704067200000000 + x * 1000000), CASE WHEN x % 2 = 0 THEN 'a' ELSE 'b' END,
                1.0, 'a text of some length ' || x FROM generate_series(1, 2000000) AS g(x);",
    )
    .await
    .unwrap();
    let dir = root.join("db/public/t");
    assert!(common::data_files(&dir).len() <= 2);
    // A fresh process: the memory the INSERT left with the allocator does
    // not hide what the UPDATE takes.
    drop(c);
    let server = server.restart();
    let c = server.client().await;
    let pid = server.pid();
    let before = common::rss_anon_kib(pid);
    let (out, peak) = common::peak_rss_anon_kib(pid, || {
        std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &server.pg.port().to_string(),
                "-U",
                "admin",
                "-d",
                "qdb",
            ])
            .args(["-c", "UPDATE t SET v = 2.0 WHERE k = 'a'"])
            .env("PGPASSWORD", "quest")
            .output()
            .unwrap()
    });
    assert_eq!(crate::common::succeeded(&out), "UPDATE 1000000");
    let grew_mib = peak.saturating_sub(before) / 1024;
    eprintln!("the UPDATE of 1,000,000 of 2,000,000 rows grew RssAnon by {grew_mib} MiB");
    assert!(grew_mib < 64, "the UPDATE took {grew_mib} MiB more");
    assert_eq!(scalar(&c, "SELECT sum(v) FROM t").await, "3000000.0");
    server.stop();
}
