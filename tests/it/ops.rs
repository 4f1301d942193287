//! Operating a server: the health check on the minimal HTTP server (503
//! while the data root cannot be written), `/metrics` parsed by
//! Prometheus' own Python parser with its counters moving, and BACKUP: a
//! backup taken while a COPY and INSERTs run opens as a server of its own
//! and answers as the source did at the backup's versions; `kill -9`
//! mid-backup leaves the source whole and no backup that looks complete.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{self, Server, eventually, python, scalar};

async fn get(url: String) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `chattr +i` on a directory: no file can be created in it, not even by
/// root (the tests run as root, for whom permission bits are no bar).
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(dir: &std::path::Path) -> Immutable {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .expect("chattr (e2fsprogs) is installed");
        assert!(ok.success(), "chattr +i {}", dir.display());
        Immutable(dir.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_while_the_root_is_read_only() {
    let root = common::scratch("ops_health").join("data");
    let server = Server::start(&root);
    let min = server.min.expect("the minimal server is on by default");
    let (code, body) = get(format!("http://{min}/status")).await;
    assert_eq!((code, body.as_str()), (200, "Status: Healthy\n"));
    let (code, _) = get(format!("http://{min}/")).await;
    assert_eq!(code, 200);
    {
        let _ro = Immutable::set(&root);
        let (code, body) = get(format!("http://{min}/status")).await;
        assert_eq!(code, 503, "{body}");
        assert!(
            body.starts_with("Status: Unhealthy: the data root is not writable"),
            "{body}"
        );
    }
    let (code, _) = get(format!("http://{min}/status")).await;
    assert_eq!(code, 200);
    server.stop();
}

/// The samples of a scrape, parsed by `prometheus_client`:
/// `name{labels}` -> value.
fn scrape(min: std::net::SocketAddr) -> BTreeMap<String, f64> {
    let out = python(
        r#"
import os, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(f"http://{os.environ['MIN']}/metrics").read().decode()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
"#,
        &[("MIN", min.to_string())],
    );
    out.lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_with_copies_and_queries() {
    let (server, import) = crate::copy::start("ops_metrics", &[]);
    let min = server.min.unwrap();
    let c = server.client().await;
    let before = scrape(min);
    crate::copy::weather_csv(&import.join("w.csv"), 5_000, 2, 3);
    let id = scalar(
        &c,
        "COPY weather FROM 'w.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    let (status, ..) = crate::copy::wait_final(&c, &id).await;
    assert_eq!(status, "finished");
    for _ in 0..5 {
        scalar(&c, "SELECT count(*) FROM weather").await;
    }
    let _ = c.simple_query("SELECT * FROM nope").await;
    let after = scrape(min);
    let delta =
        |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    assert_eq!(
        delta("sluice_imports_total{outcome=finished}"),
        1.0,
        "{after:?}"
    );
    assert_eq!(delta("sluice_import_rows_total{}"), 5_000.0);
    assert_eq!(after["sluice_imports_running{}"], 0.0);
    assert!(delta("sluice_import_bytes_total{}") > 100_000.0);
    assert!(delta("sluice_statements_total{outcome=ok}") >= 6.0);
    assert!(delta("sluice_statements_total{outcome=error}") >= 1.0);
    assert!(delta("sluice_statement_duration_seconds_count{}") >= 7.0);
    assert!(delta("sluice_import_phase_seconds_total{phase=partition_import}") > 0.0);
    assert_eq!(after["sluice_table_rows{table=weather}"], 5_000.0);
    assert!(after["sluice_table_files{table=weather}"] >= 2.0);
    assert!(after["sluice_pg_connections{}"] >= 1.0);
    // The scrapes' own connections count on the minimal port, not here;
    // the console page below is fetched on the main one.
    reqwest::get(server.url("/")).await.unwrap();
    let later = scrape(min);
    assert!(
        later["sluice_http_connections_total{}"] >= after["sluice_http_connections_total{}"] + 1.0
    );
    assert!(after["sluice_process_resident_memory_bytes{}"] > 1e6);
    server.stop();
}

/// A query that reads no table runs from the plan its first run left
/// (`sluice_plans_reused_total` counts it), over both protocols; `now()`,
/// `random()` and a subquery over a table are planned every time and
/// see new rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_queries_run_from_kept_plans() {
    let root = common::scratch("ops_constant_plans").join("data");
    let server = Server::start(&root);
    let min = server.min.unwrap();
    let c = server.client().await;
    c.simple_query("CREATE TABLE t (v INT, ts TIMESTAMP) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .unwrap();
    c.simple_query("INSERT INTO t VALUES (1, '2024-01-01T00:00:00Z')")
        .await
        .unwrap();
    common::wal_applied(&c).await;
    let before = scrape(min);
    for _ in 0..3 {
        assert_eq!(scalar(&c, "SELECT 1 + 1 AS two").await, "2");
    }
    let prepared = c.prepare("SELECT 40 + 2 AS answer").await.unwrap();
    for _ in 0..3 {
        let rows = c.query(&prepared, &[]).await.unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 42);
        assert_eq!(rows[0].columns()[0].name(), "answer");
    }
    for _ in 0..2 {
        let (code, body) = get(server.url("/exec?query=select%201")).await;
        assert_eq!(code, 200);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["columns"][0]["name"], "1");
        assert_eq!(body["dataset"], serde_json::json!([[1]]));
    }
    let first = scalar(&c, "SELECT now()").await;
    let second = scalar(&c, "SELECT now()").await;
    assert!(second > first, "{first} then {second}");
    let draws: std::collections::BTreeSet<String> =
        futures::future::join_all((0..4).map(|_| scalar(&c, "SELECT random()")))
            .await
            .into_iter()
            .collect();
    assert!(draws.len() > 1, "{draws:?}");
    assert_eq!(scalar(&c, "SELECT (SELECT count(*) FROM t)").await, "1");
    c.simple_query("INSERT INTO t VALUES (2, '2024-01-01T00:00:01Z')")
        .await
        .unwrap();
    common::wal_applied(&c).await;
    assert_eq!(scalar(&c, "SELECT (SELECT count(*) FROM t)").await, "2");
    let after = scrape(min);
    // Second and third runs of each of the three texts; nothing else.
    assert_eq!(
        after["sluice_plans_reused_total{}"] - before["sluice_plans_reused_total{}"],
        5.0
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_shapes_run_from_kept_plans() {
    let root = common::scratch("ops_shape_plans").join("data");
    let server = Server::start(&root);
    let min = server.min.unwrap();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE m (ts TIMESTAMP, host SYMBOL, v DOUBLE, i INT) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO m VALUES ('2024-01-01T00:00:00Z', 'a', 1.5, 1), ('2024-01-01T00:00:01Z', 'b', 2.5, 2),
                              ('2024-01-02T00:00:00Z', 'a', 3.5, 3), ('2024-01-02T00:00:01Z', 'b', 4.5, 4);",
    )
    .await
    .unwrap();
    common::wal_applied(&c).await;
    let exec = |sql: &str| {
        let url = server.url(&format!("/exec?query={}", common::enc(sql)));
        async move {
            let (code, body) = get(url).await;
            assert_eq!(code, 200, "{body}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            body["dataset"].clone()
        }
    };
    let before = scrape(min);
    let reused = |after: &BTreeMap<String, f64>| {
        after["sluice_shape_plans_reused_total{}"] - before["sluice_shape_plans_reused_total{}"]
    };
    // One shape, three sets of literals: planned once, bound three times.
    let shape = |host: &str, from: &str, to: &str| {
        format!(
            "SELECT sum(v) AS s FROM m WHERE host IN ('{host}') AND ts >= '{from}' AND ts < '{to}'"
        )
    };
    assert_eq!(
        exec(&shape("a", "2024-01-01", "2024-01-03")).await,
        serde_json::json!([[5.0]])
    );
    assert_eq!(
        exec(&shape("b", "2024-01-01", "2024-01-02")).await,
        serde_json::json!([[2.5]])
    );
    assert_eq!(
        exec(&shape("b", "2024-01-01T00:00:01Z", "2024-01-03")).await,
        serde_json::json!([[7.0]])
    );
    assert_eq!(reused(&scrape(min)), 2.0);
    // The same shape over pgwire's simple protocol shares the kept plan.
    let q = shape("a", "2024-01-02", "2024-01-03");
    assert_eq!(scalar(&c, &q).await, "3.5");
    assert_eq!(reused(&scrape(min)), 3.0);
    // A row inserted is seen by the kept plan (the scan is made again).
    c.simple_query("INSERT INTO m VALUES ('2024-01-02T00:00:02Z', 'a', 10.0, 5)")
        .await
        .unwrap();
    assert_eq!(scalar(&c, &q).await, "13.5");
    assert_eq!(reused(&scrape(min)), 4.0);
    // 2.5 against an INT is not an INT: planned as written, not bound.
    assert_eq!(
        exec("SELECT count(*) FROM m WHERE i > 2").await,
        serde_json::json!([[3]])
    );
    assert_eq!(
        exec("SELECT count(*) FROM m WHERE i > 2.5").await,
        serde_json::json!([[3]])
    );
    assert_eq!(
        exec("SELECT count(*) FROM m WHERE i > 3").await,
        serde_json::json!([[2]])
    );
    assert_eq!(reused(&scrape(min)), 5.0);
    // now() is not kept: each run is planned and sees its own time.
    for _ in 0..2 {
        assert_eq!(
            exec("SELECT count(*) FROM m WHERE ts < now()").await,
            serde_json::json!([[5]])
        );
    }
    assert_eq!(reused(&scrape(min)), 5.0);
    // A column added after the shape was kept is in its next answer.
    assert_eq!(
        exec("SELECT * FROM m WHERE i = 1")
            .await
            .as_array()
            .unwrap()[0]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    c.simple_query("ALTER TABLE m ADD COLUMN note STRING")
        .await
        .unwrap();
    let rows = exec("SELECT * FROM m WHERE i = 2").await;
    assert_eq!(rows[0].as_array().unwrap().len(), 5, "{rows}");
    assert_eq!(reused(&scrape(min)), 5.0);
    // ... and the shape, planned again, is kept again.
    let rows = exec("SELECT * FROM m WHERE i = 3").await;
    assert_eq!(rows[0].as_array().unwrap().len(), 5, "{rows}");
    assert_eq!(reused(&scrape(min)), 6.0);
    // A query of a table that does not exist yet fails; once the table
    // exists, its shape is kept.
    let missing = "SELECT count(*) FROM later WHERE v > 1";
    let (code, body) = get(server.url(&format!("/exec?query={}", common::enc(missing)))).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("later"), "{body}");
    c.simple_query("CREATE TABLE later (v DOUBLE)")
        .await
        .unwrap();
    c.simple_query("INSERT INTO later VALUES (2.5)")
        .await
        .unwrap();
    assert_eq!(exec(missing).await, serde_json::json!([[1]]));
    assert_eq!(
        exec("SELECT count(*) FROM later WHERE v > 3").await,
        serde_json::json!([[0]])
    );
    assert_eq!(reused(&scrape(min)), 7.0);
    // A dropped table's files go although plans of it were kept.
    c.simple_query("DROP TABLE m").await.unwrap();
    let schema_dir = root.join("db").join("public");
    common::eventually(
        "the dropped table's files to go",
        Duration::from_secs(30),
        || {
            let left: Vec<String> = std::fs::read_dir(&schema_dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".m.dropped-"))
                .collect();
            async move { left.is_empty().then_some(()) }
        },
    )
    .await;
    server.stop();
}

/// `count|sum|max ts` of each table, through our SQL.
async fn summary(c: &tokio_postgres::Client, tables: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for t in tables {
        out.push(
            scalar(
                c,
                &format!("SELECT count(*) || '|' || coalesce(round(sum(v), 3), 0) FROM {t}"),
            )
            .await,
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_opens_as_its_own_server() {
    // Files of earlier versions are kept, so delta-rs can read the source
    // at the backup's versions afterwards.
    let (server, import) = crate::copy::start(
        "ops_backup",
        &[("QDB_CAIRO_VACUUM_FILE_RETENTION_SEC", "3600")],
    );
    let c = server.client().await;
    let root = import.parent().unwrap().to_path_buf();
    c.batch_execute(
        "CREATE TABLE small (ts TIMESTAMP, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
         INSERT INTO small VALUES ('2024-01-01T00:00:00Z', 1.5), ('2024-01-02T00:00:00Z', 2.5);
         CREATE TABLE big (ts TIMESTAMP, k SYMBOL, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL;",
    )
    .await
    .unwrap();
    // A COPY and single-row INSERTs run while the backup is taken.
    let csv = import.join("big.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(f, "ts,k,v").unwrap();
        for i in 0..300_000i64 {
            let (d, h, m, s) = (1 + i / 86_400, i % 86_400 / 3600, i % 3600 / 60, i % 60);
            writeln!(
                f,
                "2024-01-{d:02}T{h:02}:{m:02}:{s:02}Z,k{},{}",
                i % 5,
                i % 100
            )
            .unwrap();
        }
    }
    let copy_id = scalar(&c, "COPY big FROM 'big.csv' WITH HEADER true").await;
    let (writer, conn) = server.client_and_connection().await;
    let inserts = tokio::spawn(async move {
        let _conn = conn;
        for i in 0..200 {
            writer
                .execute(
                    "INSERT INTO small VALUES ($1, $2)",
                    &[
                        &std::time::SystemTime::UNIX_EPOCH
                            .checked_add(Duration::from_secs(1_704_153_600 + i))
                            .unwrap(),
                        &(i as f64),
                    ],
                )
                .await
                .unwrap();
        }
    });
    let rows = c.query("BACKUP DATABASE TO 'b1'", &[]).await.unwrap();
    let versions: BTreeMap<String, i64> = rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect();
    assert!(
        versions.contains_key("small") && versions.contains_key("big"),
        "{versions:?}"
    );
    // The source as of the backup's versions: read back through delta-rs
    // at those versions.
    let at_version = |table: &str, version: i64| {
        python(
            r#"
import os
from deltalake import DeltaTable
import pyarrow.compute as pc
t = DeltaTable(os.environ["TABLE"], version=int(os.environ["VERSION"])).to_pyarrow_table()
s = pc.sum(t.column("v")).as_py() or 0
print(f"{t.num_rows}|{round(s, 3)}")
os._exit(0)
"#,
            &[
                (
                    "TABLE",
                    root.join("db/public").join(table).display().to_string(),
                ),
                ("VERSION", version.to_string()),
            ],
        )
    };
    let expected: Vec<String> = ["big", "small"]
        .iter()
        .map(|t| at_version(t, versions[*t]))
        .collect();
    inserts.await.unwrap();
    crate::copy::wait_final(&c, &copy_id).await;
    // The log lists it.
    assert_eq!(
        scalar(
            &c,
            "SELECT count(*) FROM sys.backup_log WHERE backup = 'b1'"
        )
        .await,
        "2"
    );
    let backup = root.join("backup/b1");
    assert!(backup.join("backup.json").exists());
    server.stop();
    // The backup is a data root of its own.
    let copy = Server::start(&backup);
    let c = copy.client().await;
    let got: Vec<String> = summary(&c, &["big", "small"])
        .await
        .into_iter()
        .map(|s| s.replace(".0|", "|"))
        .collect();
    let normalise = |s: &str| {
        let (n, sum) = s.split_once('|').unwrap();
        format!("{n}|{}", sum.parse::<f64>().unwrap())
    };
    assert_eq!(
        got.iter().map(|s| normalise(s)).collect::<Vec<_>>(),
        expected.iter().map(|s| normalise(s)).collect::<Vec<_>>()
    );
    copy.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_backup_leaves_no_backup_that_looks_complete() {
    let root = common::scratch("ops_backup_kill").join("data");
    let server = Server::start(&root);
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE t (ts TIMESTAMP, v DOUBLE) TIMESTAMP(ts) PARTITION BY HOUR BYPASS WAL;
         INSERT INTO t SELECT to_timestamp_micros(1704067200000000 + x * 10000000), x * 1.0 FROM generate_series(0, 199999) AS g(x);",
    )
    .await
    .unwrap();
    let before = summary(&c, &["t"]).await;
    let (other, conn) = server.client_and_connection().await;
    let running = tokio::spawn(async move {
        let _conn = conn;
        let _ = other.batch_execute("BACKUP TABLE t TO 'k1'").await;
    });
    let (partial, whole) = (root.join("backup/.k1.partial"), root.join("backup/k1"));
    eventually("the backup under way", Duration::from_secs(60), || {
        let started = partial.exists() || whole.exists();
        async move { started.then_some(()) }
    })
    .await;
    server.kill9();
    running.abort();
    let server = Server::start(&root);
    let c = server.client().await;
    assert_eq!(summary(&c, &["t"]).await, before, "the source changed");
    // Either the rename happened (a whole backup) or no backup is listed.
    let listed = scalar(&c, "SELECT count(*) FROM sys.backup_log").await;
    let complete = root.join("backup/k1/backup.json").exists();
    assert_eq!(
        listed == "1",
        complete,
        "listed {listed}, complete {complete}"
    );
    assert!(!root.join("backup/k1").exists() || complete);
    server.stop();
}

/// `log.format=json`: every line one JSON object; a statement slower than
/// `log.slow.query.ms` is logged with its kind and duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_slow_statements() {
    let root = common::scratch("ops_logs").join("data");
    std::fs::create_dir_all(&root).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--root"])
        .arg(&root)
        .args([
            "sql",
            "CREATE TABLE x (ts TIMESTAMP, a INT) TIMESTAMP(ts) PARTITION BY DAY",
        ])
        .current_dir(root.parent().unwrap())
        .env("QDB_LOG_FORMAT", "json")
        .env("QDB_LOG_SLOW_QUERY_MS", "1")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let slow = lines
        .iter()
        .find(|l| l["message"] == "slow statement")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(slow["statement"], "CREATE TABLE");
    assert_eq!(
        slow["sql"],
        "CREATE TABLE x (ts TIMESTAMP, a INT) TIMESTAMP(ts) PARTITION BY DAY"
    );
    assert!(slow["seconds"].as_f64().unwrap() >= 0.001);
    assert_eq!(slow["level"], "WARN");
}

/// Kills a child process when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Prometheus (Debian's) scrapes `/metrics` and answers queries
/// over what it scraped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_metrics() {
    let dir = common::scratch("ops_prometheus");
    let server = Server::start(&dir.join("data"));
    let min = server.min.unwrap();
    let c = server.client().await;
    scalar(&c, "SELECT 1").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sluice\n    static_configs:\n      - targets: [\"{min}\"]\n"
        ),
    )
    .unwrap();
    let _prometheus = Child(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package) is installed"),
    );
    let query = |q: &'static str| {
        let url = format!(
            "http://127.0.0.1:{port}/api/v1/query?query={}",
            common::enc(q)
        );
        async move {
            let body: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            let v = body["data"]["result"][0]["value"][1].as_str()?.to_string();
            Some(v)
        }
    };
    let up = eventually(
        "Prometheus scraping sluice",
        Duration::from_secs(60),
        || query("up{job=\"sluice\"}"),
    )
    .await;
    assert_eq!(up, "1");
    let statements = eventually("a statement counted", Duration::from_secs(60), || {
        query("sum(sluice_statements_total)")
    })
    .await;
    assert!(statements.parse::<f64>().unwrap() >= 1.0, "{statements}");
    server.stop();
}
