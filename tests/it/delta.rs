//! Tables are Delta tables: delta-rs (the `deltalake` package) and Polars
//! read a COPY-imported table exactly as our SQL does, after INSERTs,
//! compaction and TRUNCATE, and never see an import killed mid-way; a
//! table of the release before (`_manifest.json`) is migrated at start-up.

use std::path::Path;
use std::time::Duration;

use crate::common::{self, Server, eventually, python, scalar};
use crate::copy::{start, wait_final, weather_csv};

/// What delta-rs and Polars each read from the Delta table at `dir`:
/// `rows|temperature sum in thousandths|min ts|max ts` (microseconds).
fn read_back(dir: &Path) -> [String; 2] {
    read_back_at(&dir.display().to_string(), "{}")
}

/// [`read_back`] of the table at `table` (a path or an `s3://` URL) with
/// delta-rs's `storage_options` (JSON).
pub(crate) fn read_back_at(table: &str, storage_options: &str) -> [String; 2] {
    // os._exit: delta-rs's runtime can abort while Python shuts down,
    // after the answer is printed.
    let out = python(
        r#"
import json, os, sys
from deltalake import DeltaTable
import polars as pl
import pyarrow.compute as pc
p = os.environ["TABLE"]
opts = json.loads(os.environ["STORAGE"]) or None
t = DeltaTable(p, storage_options=opts).to_pyarrow_table()
ts = t.column("timestamp").cast("int64")
s = pc.sum(t.column("tempF")).as_py() or 0.0
print(f"{t.num_rows}|{round(s * 1000)}|{pc.min(ts).as_py()}|{pc.max(ts).as_py()}")
df = pl.read_delta(p, storage_options=opts)
ts = df["timestamp"].cast(pl.Int64)
s = df["tempF"].sum() or 0.0
print(f"{df.height}|{round(s * 1000)}|{ts.min()}|{ts.max()}")
sys.stdout.flush()
os._exit(0)
"#,
        &[
            ("TABLE", table.to_string()),
            ("STORAGE", storage_options.to_string()),
        ],
    );
    let mut lines = out.lines().map(str::to_string);
    [lines.next().unwrap(), lines.next().unwrap()]
}

pub(crate) async fn ours(client: &tokio_postgres::Client) -> String {
    let row = client
        .query_one(
            r#"select count(*), sum(tempF), min(timestamp), max(timestamp) from weather"#,
            &[],
        )
        .await
        .unwrap();
    let micros = |i: usize| {
        row.get::<_, Option<std::time::SystemTime>>(i)
            .map_or("None".to_string(), |t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_micros()
                    .to_string()
            })
    };
    format!(
        "{}|{}|{}|{}",
        row.get::<_, i64>(0),
        (row.get::<_, Option<f64>>(1).unwrap_or(0.0) * 1000.0).round() as i64,
        micros(2),
        micros(3)
    )
}

/// A server with table `weather` COPY-imported from a generated file, and
/// the reference answer `rows|Σ tempF in thousandths|min ts|max ts`.
async fn imported(name: &str, rows: u64, days: i64, env: &[(&str, &str)]) -> (Server, String) {
    let (server, import) = start(name, env);
    let r = weather_csv(&import.join("w.csv"), rows, days, 5);
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY weather FROM 'w.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    let want = format!("{}|{}|{}|{}", r.rows, r.temp_sum_milli, r.min_ts, r.max_ts);
    (server, want)
}

#[tokio::test]
async fn delta_readers_see_what_sql_sees() {
    let rows = 200_000;
    let (server, want) = imported(
        "delta-read",
        rows,
        40,
        // Each small INSERT its own version (the direct path): this is
        // about Delta readers, compaction and checkpoints of such writes.
        &[
            ("QDB_CAIRO_COMPACTION_INTERVAL_MS", "100"),
            ("QDB_CAIRO_WAL_ENABLED", "false"),
        ],
    )
    .await;
    let client = server.client().await;
    let dir = server.root.join("db/public/weather");
    assert_eq!(ours(&client).await, want);
    assert_eq!(read_back(&dir), [want.clone(), want]);

    // Small INSERTs (each a version), then compaction merges them.
    for i in 0..12 {
        client
            .batch_execute(&format!(
                "INSERT INTO weather (timestamp, city, tempF) VALUES (to_timestamp_micros(1262304000000000 + {i}), 'Extra', 1.5)"
            ))
            .await
            .unwrap();
    }
    eventually(
        "compaction to merge the inserts",
        Duration::from_secs(60),
        || {
            let dir = dir.clone();
            async move {
                let live = common::delta_live_files(&dir);
                let day = live.iter().filter(|p| p.starts_with("2010-01-01/")).count();
                (common::data_files(&dir).len() == live.len() && day <= 2).then_some(())
            }
        },
    )
    .await;
    let sql = ours(&client).await;
    assert!(sql.starts_with(&format!("{}|", rows + 12)), "{sql}");
    assert_eq!(read_back(&dir), [sql.clone(), sql]);
    // A checkpoint was written along the way (every ten versions).
    let checkpoints = std::fs::read_dir(dir.join("_delta_log"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".checkpoint.parquet")
        })
        .count();
    assert!(checkpoints >= 1);

    // An import killed mid-way is invisible to every reader (FORCE: the
    // table has loaded the file).
    let before = ours(&client).await;
    let id = scalar(
        &client,
        "COPY weather FROM 'w.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY FORCE true",
    )
    .await;
    crate::copy::wait_phase(&client, &id, "partition_import").await;
    drop(client);
    let root = server.root.clone();
    server.kill9();
    let server = Server::start_with(&root, &[]);
    let client = server.client().await;
    let after = ours(&client).await;
    let landed = format!("{}|", 2 * rows + 12);
    assert!(after == before || after.starts_with(&landed), "{after}");
    assert_eq!(read_back(&dir), [after.clone(), after]);

    // TRUNCATE: an empty table for everyone.
    client
        .batch_execute("TRUNCATE TABLE weather")
        .await
        .unwrap();
    assert_eq!(ours(&client).await, "0|0|None|None");
    assert_eq!(read_back(&dir), ["0|0|None|None", "0|0|None|None"]);
    assert!(server.stop().success());
}

/// A table as the release before wrote it: Parquet files and a
/// `_manifest.json` naming them. Built here from a table of this release
/// by replacing its log with the manifest it would have had.
fn make_legacy(dir: &Path) {
    let mut definition = None;
    let mut files = Vec::new();
    let live = common::delta_live_files(dir);
    for a in common::delta_actions(dir) {
        if let Some(d) = a["metaData"]["configuration"]["sluice.definition"].as_str() {
            definition = Some(serde_json::from_str::<serde_json::Value>(d).unwrap());
        }
        let add = &a["add"];
        if let Some(p) = add["path"].as_str()
            && live.contains(p)
        {
            let stats: serde_json::Value =
                serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
            files.push(serde_json::json!({
                "partition": p.split('/').next().unwrap(),
                "path": p,
                "rows": stats["numRecords"],
                "size": add["size"],
                "min_ts": stats["sluiceTimestampRange"]["min"],
                "max_ts": stats["sluiceTimestampRange"]["max"],
            }));
        }
    }
    let manifest = serde_json::json!({
        "version": 3,
        "definition": definition.unwrap(),
        "files": files,
    });
    std::fs::remove_dir_all(dir.join("_delta_log")).unwrap();
    std::fs::write(
        dir.join("_manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn tables_of_the_release_before_are_migrated() {
    let (server, want) = imported("delta-migrate", 20_000, 5, &[]).await;
    let root = server.root.clone();
    assert!(server.stop().success());
    let dir = root.join("db/public/weather");
    make_legacy(&dir);
    let parquet_before = common::data_files(&dir).len();

    // Start-up turns the manifest into version 0 and removes it.
    let server = Server::start_with(&root, &[]);
    let client = server.client().await;
    assert_eq!(ours(&client).await, want);
    assert!(!dir.join("_manifest.json").exists());
    assert!(dir.join("_delta_log/00000000000000000000.json").exists());
    assert_eq!(common::delta_live_files(&dir).len(), parquet_before);
    assert_eq!(read_back(&dir), [want.clone(), want.clone()]);
    drop(client);
    assert!(server.stop().success());

    // A crash after version 0 and before the manifest went: the log wins,
    // the leftover manifest is removed, nothing is counted twice.
    std::fs::write(dir.join("_manifest.json"), b"{\"version\": 1}").unwrap();
    let server = Server::start_with(&root, &[]);
    let client = server.client().await;
    assert_eq!(ours(&client).await, want);
    assert!(!dir.join("_manifest.json").exists());
    assert!(server.stop().success());
}

/// Every column type reads back from the Delta table with its value: the
/// same row through delta-rs and Polars, microsecond and nanosecond digits,
/// an hourly partition directory, text outside ASCII.
#[tokio::test]
async fn every_type_reads_back_exactly() {
    let (server, _) = start("delta-types", &[]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE ty (ts TIMESTAMP, tn TIMESTAMP_NS, d DATE, b BYTE, s SHORT, i INT, l LONG, \
             f FLOAT, x DOUBLE, ok BOOLEAN, c CHAR, vc VARCHAR, st STRING, sy SYMBOL, u UUID, ip IPv4) \
             TIMESTAMP(ts) PARTITION BY HOUR BYPASS WAL;
             INSERT INTO ty VALUES ('2024-01-01T10:00:00.123456Z', '2024-01-01T00:00:00.123456789Z', \
             '2024-01-02', 7, -300, 70000, -9000000000, 1.25, -2.5, true, 'x', 'héllo', 'wörld', 'sym', \
             '11111111-2222-3333-4444-555555555555', '255.1.2.3')",
        )
        .await
        .unwrap();
    let dir = server.root.join("db/public/ty");
    assert_eq!(common::partition_dirs(&dir), ["2024-01-01T10"]);
    let out = python(
        r#"
import os, sys
from deltalake import DeltaTable
import polars as pl
p = os.environ["TABLE"]
a = DeltaTable(p).to_pyarrow_table().to_pylist()[0]
# Polars will not read nanosecond timestamps as the `long` Delta declares.
cols = [c for c in a if c != "tn"]
b = pl.read_delta(p, columns=cols).to_dicts()[0]
b["tn"] = a["tn"]
for row in (a, b):
    print("|".join([
        row["ts"].isoformat(), str(row["tn"]), row["d"].isoformat(), str(row["b"]), str(row["s"]),
        str(row["i"]), str(row["l"]), str(row["f"]), str(row["x"]), str(row["ok"]), row["c"],
        row["vc"], row["st"], row["sy"], bytes(row["u"]).hex(), str(row["ip"]),
    ]))
sys.stdout.flush()
os._exit(0)
"#,
        &[("TABLE", dir.display().to_string())],
    );
    let want = "2024-01-01T10:00:00.123456+00:00|1704067200123456789|2024-01-02T00:00:00+00:00|7|-300|70000|-9000000000|1.25|-2.5|True|x|héllo|wörld|sym|11111111222233334444555555555555|4278256131";
    assert_eq!(out, format!("{want}\n{want}"));
    assert!(server.stop().success());
}

/// Two servers on one table directory (`cairo.root` shared), both
/// appending at once from several connections: every row lands exactly
/// once, each server sees the other's, and so does delta-rs.
#[tokio::test]
async fn two_servers_append_to_one_table() {
    let root_a = common::scratch("delta-two-a").join("data");
    let root_b = common::scratch("delta-two-b").join("data");
    let shared = root_a.join("db");
    let shared_env = shared.display().to_string();
    let a = Server::start_with(&root_a, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    a.client()
        .await
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, w INT, v LONG) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .unwrap();
    let b = Server::start_with(
        &root_b,
        &[
            ("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0"),
            ("QDB_CAIRO_ROOT", shared_env.as_str()),
        ],
    );
    let table = shared.join("public/t").display().to_string();
    append_from_both(&a, &b, 3, 40, &table, "{}").await;
    assert!(b.stop().success());
    assert!(a.stop().success());
}

/// Vacuum waits for the retention periods: a file compaction retired stays
/// while a reader of the older version may need it (delta-rs reads that
/// version), and goes after the file retention; at a restart, a file a
/// recent commit removed is kept even when it was written long ago, an
/// old file no version ever named goes, a new one (another writer's, in
/// flight) stays; log entries before a checkpoint go after the log
/// retention and the table still reads.
#[tokio::test]
async fn vacuum_keeps_files_for_the_retention_period() {
    let mut env = [
        ("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0"),
        ("QDB_CAIRO_VACUUM_FILE_RETENTION_SEC", "4"),
        ("QDB_CAIRO_VACUUM_LOG_RETENTION_DAYS", "0"),
    ];
    let (server, _) = start("delta-vacuum", &env);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, v LONG) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL",
        )
        .await
        .unwrap();
    let dir = server.root.join("db/public/t");
    let insert =
        |i: i64| format!("INSERT INTO t VALUES (to_timestamp_micros(1704067200000000 + {i}), {i})");
    // Versions 1 to 3, one file each; then compaction is turned on.
    for i in 0..3 {
        client.batch_execute(&insert(i)).await.unwrap();
    }
    drop(client);
    assert!(server.stop().success());
    env[0].1 = "100";
    let server = Server::start_with(&server_root(&dir), &env);
    let client = server.client().await;
    // Compaction merged the three files; they are still on disk.
    let on_disk = eventually("compaction", Duration::from_secs(30), || {
        let dir = dir.clone();
        async move {
            let live = common::delta_live_files(&dir);
            (live.len() == 1).then(|| common::data_files(&dir).len())
        }
    })
    .await;
    assert_eq!(on_disk, 4, "retired files wait for the retention");
    let out = python(
        r#"
import os, sys
from deltalake import DeltaTable
print(DeltaTable(os.environ["TABLE"], version=3).to_pyarrow_table().num_rows)
sys.stdout.flush()
os._exit(0)
"#,
        &[("TABLE", dir.display().to_string())],
    );
    assert_eq!(out, "3", "version 3 still reads");
    eventually("retired files to go", Duration::from_secs(30), || {
        let dir = dir.clone();
        async move { (common::data_files(&dir).len() == 1).then_some(()) }
    })
    .await;

    // Log entries: more than ten versions make a checkpoint, and the
    // entries before it go (log retention 0 days).
    for i in 3..16 {
        client.batch_execute(&insert(i)).await.unwrap();
    }
    let log = dir.join("_delta_log");
    eventually("old log entries to go", Duration::from_secs(30), || {
        let log = log.clone();
        async move { (!log.join("00000000000000000000.json").exists()).then_some(()) }
    })
    .await;
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "16");
    drop(client);
    assert!(server.stop().success());

    // Start-up: an hour-old file a recent commit retired is kept, even
    // when the commit's log entry is gone (the checkpoint's tombstone says
    // when it was removed), an hour-old stray file goes, a new one stays.
    let env = [
        ("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0"),
        ("QDB_CAIRO_VACUUM_FILE_RETENTION_SEC", "1800"),
        ("QDB_CAIRO_VACUUM_LOG_RETENTION_DAYS", "0"),
    ];
    let server = Server::start_with(&server_root(&dir), &env);
    let client = server.client().await;
    for i in 16..18 {
        client.batch_execute(&insert(i)).await.unwrap();
    }
    // TRUNCATE retires every file of January; then eleven versions in
    // February make a checkpoint, and the TRUNCATE's entry goes.
    client.batch_execute("TRUNCATE TABLE t").await.unwrap();
    let truncate_entry = std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".json"))
        .max()
        .unwrap();
    let retired = common::data_files(&dir);
    assert!(!retired.is_empty());
    for i in 0..11 {
        client
            .batch_execute(&format!(
                "INSERT INTO t VALUES (to_timestamp_micros(1706745600000000 + {i}), {i})"
            ))
            .await
            .unwrap();
    }
    eventually(
        "the TRUNCATE's log entry to go",
        Duration::from_secs(30),
        || {
            let gone = log.join(&truncate_entry);
            async move { (!gone.exists()).then_some(()) }
        },
    )
    .await;
    drop(client);
    assert!(server.stop().success());
    let part = retired[0].parent().unwrap().to_path_buf();
    let (old_stray, new_stray) = (
        part.join("old-stray.parquet"),
        part.join("new-stray.parquet"),
    );
    std::fs::write(&old_stray, b"x").unwrap();
    std::fs::write(&new_stray, b"x").unwrap();
    let mut aged = retired.clone();
    aged.push(old_stray.clone());
    for f in &aged {
        let status = std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(f)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let server = Server::start_with(&server_root(&dir), &env);
    for f in &retired {
        assert!(
            f.exists(),
            "{} was removed within the retention",
            f.display()
        );
    }
    assert!(!old_stray.exists());
    assert!(new_stray.exists());
    assert_eq!(
        scalar(&server.client().await, "SELECT count(*) FROM t").await,
        "11"
    );
    assert!(server.stop().success());
}

/// The data root of the server whose table directory is `dir`.
fn server_root(dir: &Path) -> std::path::PathBuf {
    dir.ancestors().nth(3).unwrap().to_path_buf()
}

/// Servers `a` and `b`, both writing table `t (ts, w, v)`, INSERT at once
/// from `clients` connections each, `per_client` rows apiece; then both
/// servers and delta-rs (reading `table` with `storage_options`, JSON)
/// count every row exactly once.
pub(crate) async fn append_from_both(
    a: &Server,
    b: &Server,
    clients: i32,
    per_client: i32,
    table: &str,
    storage_options: &str,
) {
    let mut tasks = Vec::new();
    for (server, first) in [(a, 0), (b, clients)] {
        for w in first..first + clients {
            let client = server.client().await;
            tasks.push(tokio::spawn(async move {
                for v in 0..per_client {
                    client
                        .execute(
                            &format!(
                                "INSERT INTO t VALUES (to_timestamp_micros(1704067200000000 + {v} * 3600000000), {w}, {v})"
                            ),
                            &[],
                        )
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = (2 * clients * per_client).to_string();
    // Each server sees the other's rows once they are applied.
    for server in [&a, &b] {
        common::wal_applied(&server.client().await).await;
    }
    for server in [a, b] {
        let c = server.client().await;
        assert_eq!(scalar(&c, "SELECT count(*) FROM t").await, total);
        assert_eq!(
            scalar(&c, "SELECT count(*) FROM (SELECT DISTINCT w, v FROM t)").await,
            total
        );
    }
    let out = python(
        r#"
import json, os, sys
from deltalake import DeltaTable
opts = json.loads(os.environ["STORAGE"]) or None
t = DeltaTable(os.environ["TABLE"], storage_options=opts).to_pyarrow_table()
print(t.num_rows, len(set(zip(t.column("w").to_pylist(), t.column("v").to_pylist()))))
sys.stdout.flush()
os._exit(0)
"#,
        &[
            ("TABLE", table.to_string()),
            ("STORAGE", storage_options.to_string()),
        ],
    );
    assert_eq!(out, format!("{total} {total}"));
}
