//! QuestDB's time-series SQL through a real server: interval literals on
//! the designated timestamp prune partitions (checked with EXPLAIN), and
//! SAMPLE BY agrees with DuckDB's time_bucket over the table's own files.

use crate::common::{Server, explain, python, scalar, scratch};

#[tokio::test]
async fn interval_literals_prune_partitions_and_sample_by_matches_duckdb() {
    let root = scratch("timeseries").join("data");
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, k SYMBOL, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO t SELECT dateadd('m', value * 7, '2024-01-01T00:00:00Z'),
                                  CASE WHEN value % 3 = 0 THEN 'x' ELSE 'y' END, CAST(value % 17 AS DOUBLE)
                           FROM generate_series(0, 1999)",
        )
        .await
        .unwrap();
    crate::common::wal_applied(&client).await;
    // 2000 rows, 7 minutes apart: 10 days, one partition each.
    assert_eq!(
        scalar(
            &client,
            "SELECT count(*) FROM sys.partitions WHERE table_name = 't'"
        )
        .await,
        "10"
    );
    let plan = explain(&client, "SELECT * FROM t WHERE ts IN '2024-01-03'").await;
    let files: Vec<&str> = plan.matches(".parquet").collect();
    assert_eq!(files.len(), 1, "{plan}");
    assert!(plan.contains("/2024-01-03/"), "{plan}");
    let plan = explain(&client, "SELECT * FROM t WHERE ts IN '2024-01-03T10;2d'").await;
    assert_eq!(plan.matches(".parquet").count(), 3, "{plan}");
    let plan = explain(
        &client,
        "SELECT * FROM t WHERE ts BETWEEN '2024-01-02' AND '2024-01-02T23:59:59Z'",
    )
    .await;
    assert_eq!(plan.matches(".parquet").count(), 1, "{plan}");
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM t WHERE ts IN '2024-01-03'").await,
        python(
            "import duckdb; print(duckdb.connect().execute(\"SELECT count(*) FROM range(2000) r(i) WHERE i * 7 >= 2 * 1440 AND i * 7 < 3 * 1440\").fetchall()[0][0])",
            &[],
        )
    );

    // EXPLAIN shows the plan SAMPLE BY runs.
    let plan = explain(
        &client,
        "SELECT ts, avg(v) FROM t WHERE ts IN '2024-01-03' SAMPLE BY 1h",
    )
    .await;
    assert!(plan.contains("timestamp_floor"), "{plan}");
    assert_eq!(files_read(&plan).len(), 1, "{plan}");

    // COPY of a SAMPLE BY query, to STDOUT and to Parquet files, which
    // DuckDB reads back.
    let stream = client
        .copy_out("COPY (SELECT ts, count() FROM t SAMPLE BY 1d) TO STDOUT WITH (FORMAT csv)")
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(stream).await.unwrap();
    let text: String = chunks.iter().map(|c| String::from_utf8_lossy(c)).collect();
    let days: Vec<&str> = text.lines().collect();
    assert_eq!(days.len(), 10, "{text}");
    assert_eq!(days[0], "2024-01-01 00:00:00,206");
    let id = scalar(
        &client,
        "COPY (SELECT ts, count() AS n FROM t SAMPLE BY 1d) TO 'daily' WITH FORMAT PARQUET",
    )
    .await;
    crate::common::eventually("the export", std::time::Duration::from_secs(30), || {
        let client = &client;
        let id = id.clone();
        async move {
            let q = format!(
                "SELECT status FROM sys.copy_export_log WHERE id = '{id}' ORDER BY ts DESC LIMIT 1"
            );
            // (The export thread writes its first log row after COPY
            // returns the id: no row yet is not finished yet.)
            let status = crate::common::column(client, &q).await;
            (status.first() == Some(&Some("finished".to_string()))).then_some(())
        }
    })
    .await;
    assert_eq!(
        python(
            "import duckdb, os; print(duckdb.connect().execute(f\"SELECT count(*), sum(n) FROM read_parquet('{os.environ['D']}/*.parquet')\").fetchall()[0])",
            &[("D", root.join("export/daily").display().to_string())],
        ),
        "(10, 2000)"
    );

    // SAMPLE BY 1h, keyed, against DuckDB's time_bucket over the same
    // Parquet files.
    let mut ours = Vec::new();
    for m in client
        .simple_query("SELECT ts, k, round(avg(v), 6), count() FROM t SAMPLE BY 1h")
        .await
        .unwrap()
    {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            let cells: Vec<&str> = (0..4).map(|i| r.get(i).unwrap()).collect();
            ours.push(cells.join(" "));
        }
    }
    let duck = python(
        r#"
import os, duckdb
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
rows = con.execute(f"""
  SELECT strftime(time_bucket(INTERVAL 1 hour, ts), '%Y-%m-%d %H:%M:%S.%f'), k, round(avg(v), 6), count(*)
  FROM read_parquet('{os.environ['GLOB']}') GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
for r in rows:
    print(f"{r[0]} {r[1]} {r[2]} {r[3]}")
"#,
        &[(
            "GLOB",
            root.join("db/public/t/*/*.parquet").display().to_string(),
        )],
    );
    let duck: Vec<String> = duck.lines().map(str::to_string).collect();
    assert_eq!(ours.len(), duck.len());
    // Same buckets, keys and counts; averages as numbers.
    for (a, b) in ours.iter().zip(&duck) {
        let (a, b): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
        assert_eq!(a[..3], b[..3], "{a:?} {b:?}");
        assert_eq!(a[4], b[4]);
        let (x, y): (f64, f64) = (a[3].parse().unwrap(), b[3].parse().unwrap());
        assert!((x - y).abs() < 1e-9, "{a:?} {b:?}");
    }
}

/// The distinct Parquet files a plan reads.
fn files_read(plan: &str) -> std::collections::BTreeSet<String> {
    plan.split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']'))
        .filter(|w| w.ends_with(".parquet"))
        .map(str::to_string)
        .collect()
}

/// Rows of a simple query, cells joined by spaces.
async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await.unwrap() {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            let cells: Vec<&str> = (0..r.len()).map(|i| r.get(i).unwrap_or("NULL")).collect();
            out.push(cells.join(" "));
        }
    }
    out
}

/// LATEST ON reads only the newest files: those that hold every key (their
/// dictionaries say which) or, with a WHERE or two key columns, those from
/// the oldest of the keys' newest rows on; EXPLAIN shows which. Its rows
/// equal DuckDB's newest row per key over all of the table's files, also
/// after a row with a new key lands in an old partition.
#[tokio::test]
async fn latest_on_reads_the_newest_files_and_matches_duckdb() {
    let root = scratch("latest-on").join("data");
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let client = server.client().await;
    // 2000 rows 7 minutes apart (10 day partitions), keys a to e in every
    // day; 'rare' on days 1 and 8 only, a NULL key on day 9.
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, k SYMBOL, k2 SYMBOL, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL;
             INSERT INTO t SELECT dateadd('m', value * 7, '2024-01-01T00:00:00Z'),
                                  chr(97 + CAST(value % 5 AS INT)), CASE WHEN value % 2 = 0 THEN 'p' ELSE 'q' END,
                                  CAST(value % 17 AS DOUBLE)
                           FROM generate_series(0, 1999);
             INSERT INTO t VALUES ('2024-01-01T05:00:00Z', 'rare', 'p', 100), ('2024-01-08T05:00:00Z', 'rare', 'q', 200);
             INSERT INTO t VALUES ('2024-01-09T06:00:00Z', NULL, 'p', 300);",
        )
        .await
        .unwrap();
    let glob = root.join("db/public/t/*/*.parquet").display().to_string();
    let duck = |filter: &str, keys: &str| {
        let script = format!(
            r#"
import os, duckdb
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
rows = con.execute(f"""
  SELECT strftime(ts, '%Y-%m-%d %H:%M:%S.%f'), k, k2, v FROM (
    SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY ts DESC) AS rn
    FROM read_parquet('{{os.environ['GLOB']}}') {filter}) WHERE rn = 1 ORDER BY ts""").fetchall()
for r in rows:
    print(' '.join('NULL' if c is None else str(c) for c in r))
"#
        );
        python(&script, &[("GLOB", glob.clone())])
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // (EXPLAIN lists at most five files of a group, so a whole-table scan
    // is told by its older files.)
    let old = |files: &std::collections::BTreeSet<String>| {
        files
            .iter()
            .any(|f| f.contains("/2024-01-01/") || f.contains("/2024-01-02/"))
    };
    assert!(old(&files_read(&explain(&client, "SELECT * FROM t").await)));

    // One key column, no WHERE: days 8 to 10 hold every key (5 files).
    let sql = "SELECT ts, k, k2, v FROM t LATEST ON ts PARTITION BY k";
    let read = files_read(&explain(&client, sql).await);
    assert_eq!(read.len(), 5, "{read:?}");
    assert!(read.iter().all(|f| {
        ["/2024-01-08/", "/2024-01-09/", "/2024-01-10/"]
            .iter()
            .any(|d| f.contains(d))
    }));
    let ours = rows(&client, sql).await;
    assert_eq!(ours.len(), 7, "a to e, rare and NULL: {ours:?}");
    assert_eq!(ours, duck("", "k"));

    // With a WHERE, the oldest of the keys' newest rows that pass it bounds
    // the scan: day 8 ('rare' at 200), or day 1 when 'rare' must be < 150.
    let sql = "SELECT ts, k, k2, v FROM t WHERE v >= 1 LATEST ON ts PARTITION BY k";
    assert_eq!(rows(&client, sql).await, duck("WHERE v >= 1", "k"));
    let read = files_read(&explain(&client, sql).await);
    assert_eq!(read.len(), 5, "{read:?}");
    let sql = "SELECT ts, k, k2, v FROM t WHERE v < 150 LATEST ON ts PARTITION BY k";
    assert!(old(&files_read(&explain(&client, sql).await)));
    assert_eq!(rows(&client, sql).await, duck("WHERE v < 150", "k"));

    // Two key columns: ('rare', 'p') is newest on day 1.
    let sql = "SELECT ts, k, k2, v FROM t LATEST ON ts PARTITION BY k, k2";
    assert!(old(&files_read(&explain(&client, sql).await)));
    let sql = "SELECT ts, k, k2, v FROM t WHERE ts >= '2024-01-02' LATEST ON ts PARTITION BY k, k2";
    let read = files_read(&explain(&client, sql).await);
    assert_eq!(read.len(), 5, "{read:?}");
    assert_eq!(
        rows(&client, sql).await,
        duck("WHERE ts >= '2024-01-02'", "k, k2")
    );
    let sql = "SELECT ts, k, k2, v FROM t LATEST ON ts PARTITION BY k, k2";
    let ours = rows(&client, sql).await;
    assert_eq!(ours, duck("", "k, k2"));
    assert_eq!(ours.len(), 5 * 2 + 2 + 1);

    // A new key in an old partition: the newest files no longer hold
    // every key (day 2 on is read), and the answer has it.
    client
        .batch_execute("INSERT INTO t VALUES ('2024-01-02T03:00:00Z', 'late', 'q', 400)")
        .await
        .unwrap();
    let sql = "SELECT ts, k, k2, v FROM t LATEST ON ts PARTITION BY k";
    assert!(old(&files_read(&explain(&client, sql).await)));
    let ours = rows(&client, sql).await;
    assert!(ours.iter().any(|r| r.contains(" late ")), "{ours:?}");
    assert_eq!(ours, duck("", "k"));
    drop(client);
    assert!(server.stop().success());
}

/// ASOF, LT and SPLICE JOIN agree with DuckDB's ASOF joins over the same
/// Parquet files: 2,000 trades and 1,500 quotes with keys and times that
/// interleave (some at the same instant). SPLICE JOIN is checked as the
/// union of the trades' ASOF match and the quotes' strictly-earlier match.
#[tokio::test]
async fn asof_lt_and_splice_join_match_duckdb() {
    let root = scratch("asof-duckdb").join("data");
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE trades (ts TIMESTAMP, sym SYMBOL, price DOUBLE) TIMESTAMP(ts) PARTITION BY HOUR;
             CREATE TABLE quotes (ts TIMESTAMP, sym SYMBOL, bid DOUBLE) TIMESTAMP(ts) PARTITION BY HOUR;
             INSERT INTO trades SELECT dateadd('s', value * 7, '2024-01-01T00:00:00Z'),
                                       chr(65 + CAST(value % 3 AS INT)), CAST(value AS DOUBLE)
                                FROM generate_series(0, 1999);
             INSERT INTO quotes SELECT dateadd('s', value * 11 + 3, '2024-01-01T00:00:00Z'),
                                       chr(65 + CAST(value % 4 AS INT)), CAST(value AS DOUBLE)
                                FROM generate_series(0, 1499);",
        )
        .await
        .unwrap();
    // DuckDB reads the files: the rows must be out of the write-ahead log.
    crate::common::wal_applied(&client).await;
    let duck = |sql: &str| {
        let script = format!(
            r#"
import os, duckdb
con = duckdb.connect()
con.execute(f"CREATE VIEW trades AS SELECT * FROM read_parquet('{{os.environ['ROOT']}}/trades/*/*.parquet')")
con.execute(f"CREATE VIEW quotes AS SELECT * FROM read_parquet('{{os.environ['ROOT']}}/quotes/*/*.parquet')")
for r in con.execute("""{sql}""").fetchall():
    print(' '.join('NULL' if c is None else str(c) for c in r))
"#
        );
        let root = root.join("db/public").display().to_string();
        let mut lines: Vec<String> = python(&script, &[("ROOT", root)])
            .lines()
            .map(numbers_alike)
            .collect();
        lines.sort();
        lines
    };
    let ours = |sql: &'static str| {
        let client = &client;
        async move {
            let mut r: Vec<String> = rows(client, sql)
                .await
                .iter()
                .map(|r| numbers_alike(r))
                .collect();
            r.sort();
            r
        }
    };
    let asof = ours("SELECT t.sym, t.price, q.bid FROM trades t ASOF JOIN quotes q ON (sym)").await;
    assert_eq!(asof.len(), 2000);
    same_rows(
        &asof,
        &duck(
            "SELECT t.sym, t.price, q.bid FROM trades t ASOF LEFT JOIN quotes q ON t.sym = q.sym AND t.ts >= q.ts",
        ),
    );
    same_rows(
        &ours("SELECT t.sym, t.price, q.bid FROM trades t LT JOIN quotes q ON (sym)").await,
        &duck(
            "SELECT t.sym, t.price, q.bid FROM trades t ASOF LEFT JOIN quotes q ON t.sym = q.sym AND t.ts > q.ts",
        ),
    );
    let splice = ours("SELECT t.price, q.bid FROM trades t SPLICE JOIN quotes q ON (sym)").await;
    assert_eq!(splice.len(), 3500);
    same_rows(
        &splice,
        &duck(
            "SELECT t.price, q.bid FROM trades t ASOF LEFT JOIN quotes q ON t.sym = q.sym AND t.ts >= q.ts
             UNION ALL
             SELECT t.price, q.bid FROM quotes q ASOF LEFT JOIN trades t ON q.sym = t.sym AND q.ts > t.ts"
        )
    );
    drop(client);
    assert!(server.stop().success());
}

/// A row's numbers written one way (DuckDB prints `3.0`, we print `3`).
fn numbers_alike(row: &str) -> String {
    row.split(' ')
        .map(|c| {
            c.parse::<f64>()
                .map_or_else(|_| c.to_string(), |v| v.to_string())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Equal sorted rows; on a difference, the first rows that differ.
fn same_rows(ours: &[String], theirs: &[String]) {
    let first = ours.iter().zip(theirs).position(|(a, b)| a != b);
    assert!(
        ours.len() == theirs.len() && first.is_none(),
        "{} rows against {}; first difference: {:?}",
        ours.len(),
        theirs.len(),
        first.map(|i| (&ours[i], &theirs[i]))
    );
}

/// A plain filtered scan comes back in designated-timestamp order, as
/// QuestDB returns a table scan: over big files (which DataFusion may read
/// as several byte ranges at once) and over files whose time ranges
/// overlap (read as two ordered chains), merged, never sorted.
#[tokio::test]
async fn scans_come_in_timestamp_order() {
    let root = scratch("scan-order").join("data");
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let client = server.client().await;
    // One day of 3M rows (three files of 14-17 MB), then 1M rows more
    // whose times fall between the first ones' (a fourth file overlapping
    // them).
    client
        .batch_execute(
            "CREATE TABLE big (ts TIMESTAMP, v DOUBLE, w DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO big SELECT dateadd('T', value * 2, '2024-01-01T00:00:00Z'), random(), random() FROM generate_series(0, 2999999);
             INSERT INTO big SELECT dateadd('T', value * 6 + 1, '2024-01-01T00:00:00Z'), random(), random() FROM generate_series(0, 999999)",
        )
        .await
        .unwrap();
    // Served from decoded columns (the default column cache), then, after
    // a restart without the cache, streamed from Parquet: in order both ways.
    let mut server = server;
    for (cache, scan) in [(None, "CachedScanExec"), (Some("0"), "DataSourceExec")] {
        if let Some(size) = cache {
            assert!(server.stop().success());
            server = Server::start_with(
                &root,
                &[
                    ("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0"),
                    ("QDB_QUERY_CACHE_SIZE", size),
                ],
            );
        }
        let client = server.client().await;
        for q in [
            "SELECT ts, v FROM big WHERE v > 0.99",
            "SELECT * FROM big WHERE w < 0.01 AND ts >= '2024-01-01T00:10:00Z'",
            "SELECT ts, v * 2 FROM big WHERE v > 0.99",
        ] {
            let plan = explain(&client, q).await;
            assert!(plan.contains(scan), "{scan}: {plan}");
            assert!(!plan.contains("SortExec:"), "a merge, not a sort: {plan}");
            assert!(file_groups(&plan) >= 2, "several ordered chains: {plan}");
            assert!(plan.contains("SortPreservingMergeExec"), "{plan}");
            let rows = client.query(q, &[]).await.unwrap();
            assert!(rows.len() > 30_000, "{q}: {}", rows.len());
            let ts: Vec<std::time::SystemTime> = rows.iter().map(|r| r.get(0)).collect();
            assert!(
                ts.windows(2).all(|w| w[0] <= w[1]),
                "{q} ({scan}): rows out of timestamp order"
            );
        }
        // The scan applies the WHERE itself (no filter above it when it
        // reads cached columns), also on columns it does not output.
        let q = "SELECT ts FROM big WHERE w < 0.01 AND v > 0.5";
        let plan = explain(&client, q).await;
        if scan == "CachedScanExec" {
            assert!(!plan.contains("FilterExec"), "{plan}");
        }
        let rows = client.query(q, &[]).await.unwrap();
        let counted: i64 = client
            .query_one("SELECT count(*) FROM big WHERE w < 0.01 AND v > 0.5", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows.len() as i64, counted, "{scan}");
        assert!(counted > 10_000, "{counted}");
        let firsts = client
            .query("SELECT v FROM big WHERE w < 0.5 ORDER BY ts LIMIT 3", &[])
            .await
            .unwrap();
        let limited = client
            .query("SELECT v FROM big WHERE w < 0.5 LIMIT 3", &[])
            .await
            .unwrap();
        let v =
            |rs: &[tokio_postgres::Row]| rs.iter().map(|r| r.get::<_, f64>(0)).collect::<Vec<_>>();
        assert_eq!(v(&limited), v(&firsts), "{scan}");
        assert_eq!(limited.len(), 3);
    }
    let client = server.client().await;
    // One chain of files over several days is read as consecutive parts at
    // once, still merged in order.
    client
        .batch_execute(
            "CREATE TABLE days (ts TIMESTAMP, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO days SELECT dateadd('s', value, '2024-01-01T00:00:00Z'), random() FROM generate_series(0, 4 * 86400 - 1)",
        )
        .await
        .unwrap();
    let q = "SELECT ts, v FROM days WHERE v > 0.9";
    let plan = explain(&client, q).await;
    assert!(
        file_groups(&plan) >= 2 && plan.contains("SortPreservingMergeExec"),
        "{plan}"
    );
    assert!(!plan.contains("SortExec:"), "{plan}");
    let rows = client.query(q, &[]).await.unwrap();
    let ts: Vec<std::time::SystemTime> = rows.iter().map(|r| r.get(0)).collect();
    assert!(ts.len() > 30_000 && ts.windows(2).all(|w| w[0] <= w[1]));
    // One hour of it is about 3,600 rows, under query.parallel.min.rows:
    // planned on one partition, no exchange, the same rows.
    let hour = "ts >= '2024-01-02T00:00:00Z' AND ts < '2024-01-02T01:00:00Z'";
    let q = format!("SELECT ts, v FROM days WHERE {hour} AND v > 0.5");
    let plan = explain(&client, &q).await;
    assert!(
        !plan.contains("RepartitionExec") && file_groups(&plan) == 1,
        "{plan}"
    );
    let rows = client.query(&q, &[]).await.unwrap();
    let counted: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM days WHERE {hour} AND v > 0.5"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows.len() as i64, counted);
    assert!(rows.len() > 1_000, "{}", rows.len());
    // Without the timestamp selected, and with a LIMIT: still the first
    // rows in time.
    let values =
        |rs: &[tokio_postgres::Row]| rs.iter().map(|r| r.get::<_, f64>(0)).collect::<Vec<_>>();
    let rows = client
        .query("SELECT v FROM big WHERE w < 0.5 LIMIT 3", &[])
        .await
        .unwrap();
    let firsts = client
        .query("SELECT v FROM big WHERE w < 0.5 ORDER BY ts LIMIT 3", &[])
        .await
        .unwrap();
    assert_eq!(values(&rows), values(&firsts));
}

/// How many file groups (read at once) a plan's scan has.
fn file_groups(plan: &str) -> usize {
    plan.split("file_groups={")
        .nth(1)
        .and_then(|g| g.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
