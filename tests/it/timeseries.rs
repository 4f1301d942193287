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
