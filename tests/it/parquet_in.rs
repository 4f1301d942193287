//! COPY of a Parquet file: recognised by its magic bytes, mapped by name,
//! partitioned and sorted like CSV, read back equal to what DuckDB reads
//! from the same file.

use crate::common::{python, scalar};
use crate::copy::{start, wait_final};

/// Writes `name` with pyarrow: `rows` rows over 10 days in random order
/// (ts in microseconds, city, temp with NULLs, n, flag), with the columns
/// in `order`.
fn write_parquet(dir: &std::path::Path, name: &str, rows: usize, seed: u64, order: &str) {
    python(
        r#"
import os, random
import pyarrow as pa, pyarrow.parquet as pq
r = random.Random(int(os.environ["SEED"]))
n = int(os.environ["ROWS"])
base = 1262304000000000
cols = {
    "ts": pa.array([base + r.randrange(10 * 86400 * 10**6) for _ in range(n)], pa.timestamp("us", tz="UTC")),
    "city": pa.array([r.choice(["Springfield", "Shelbyville", "Ogdenville", "Münster"]) for _ in range(n)]),
    "temp": pa.array([None if r.random() < 0.1 else r.uniform(-20, 100) for _ in range(n)], pa.float64()),
    "n": pa.array([r.randrange(-10**12, 10**12) for _ in range(n)], pa.int64()),
    "flag": pa.array([r.random() < 0.5 for _ in range(n)]),
}
order = os.environ["ORDER"].split(",")
pq.write_table(pa.table({c: cols[c] for c in order}), os.environ["OUT"], row_group_size=20000)
"#,
        &[
            ("SEED", seed.to_string()),
            ("ROWS", rows.to_string()),
            ("ORDER", order.to_string()),
            ("OUT", dir.join(name).display().to_string()),
        ],
    );
}

/// DuckDB's reading of files: `rows|Σ temp (6 decimals)|Σ n|min ts|max ts|cities`.
fn duckdb(files: &[std::path::PathBuf]) -> String {
    let list = files
        .iter()
        .map(|f| format!("'{}'", f.display()))
        .collect::<Vec<_>>()
        .join(",");
    python(
        r#"
import os, duckdb
q = f"""SELECT count(*), round(sum(temp), 6), sum(n), epoch_us(min(ts)), epoch_us(max(ts)), count(DISTINCT city)
        FROM read_parquet([{os.environ['FILES']}], union_by_name = true)"""
print("|".join(str(v) for v in duckdb.connect().execute(q).fetchall()[0]))
"#,
        &[("FILES", list)],
    )
}

#[tokio::test]
async fn parquet_files_import_as_duckdb_reads_them() {
    let (server, import) = start("parquet-in", &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    write_parquet(&import, "a.parquet", 50_000, 1, "ts,city,temp,n,flag");
    let client = server.client().await;
    let ours = "SELECT count(*) || '|' || round(sum(temp), 6) || '|' || sum(n) || '|' || \
        cast(min(ts) AS BIGINT) || '|' || cast(max(ts) AS BIGINT) || '|' || count(DISTINCT city) FROM pq";
    // A dry run first: the file's columns and the rows per day partition
    // (DuckDB's count of each day), nothing written.
    let report = client
        .simple_query("COPY pq FROM 'a.parquet' WITH TIMESTAMP 'ts' PARTITION BY DAY DRY RUN true")
        .await
        .unwrap();
    let rows: Vec<[String; 4]> = report
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some([0, 1, 2, 3].map(|i| r.get(i).unwrap_or("").to_string()))
            }
            _ => None,
        })
        .collect();
    let of = |section: &str| {
        rows.iter()
            .filter(|r| r[0] == section)
            .map(|r| format!("{}={}", r[1], r[2]))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(of("dialect"), "format=parquet");
    assert_eq!(
        of("column"),
        "ts=TIMESTAMP,city=VARCHAR,temp=DOUBLE,n=LONG,flag=BOOLEAN"
    );
    let days = python(
        "import duckdb, os\nprint(','.join(f'{d}={n}' for d, n in duckdb.sql(\"SELECT strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d'), count(*) FROM read_parquet('\" + os.environ['F'] + \"') GROUP BY 1 ORDER BY 1\").fetchall()))",
        &[("F", import.join("a.parquet").display().to_string())],
    );
    assert_eq!(of("partition"), days);
    assert!(
        scalar(
            &client,
            "SELECT count(*) FROM sys.tables WHERE table_name = 'pq'"
        )
        .await
            == "0"
    );
    let id = scalar(
        &client,
        "COPY pq FROM 'a.parquet' WITH TIMESTAMP 'ts' PARTITION BY DAY",
    )
    .await;
    let (status, message, _, imported, _) = wait_final(&client, &id).await;
    assert_eq!(status, "finished", "{message:?}");
    assert_eq!(imported, 50_000);
    assert_eq!(
        scalar(&client, ours).await,
        duckdb(&[import.join("a.parquet")])
    );
    // Sorted and partitioned like a CSV import: ten day partitions.
    assert_eq!(
        scalar(
            &client,
            "SELECT count(*) FROM sys.partitions WHERE table_name = 'pq'"
        )
        .await,
        "10"
    );
    assert_eq!(
        scalar(&client, "SELECT data_type FROM information_schema.columns WHERE table_name = 'pq' AND column_name = 'n'").await,
        "Int64"
    );

    // Into the existing table, columns in another order: mapped by name.
    write_parquet(&import, "b.parquet", 20_000, 2, "flag,n,temp,city,ts");
    let id = scalar(&client, "COPY pq FROM 'b.parquet'").await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    assert_eq!(
        scalar(&client, ours).await,
        duckdb(&[import.join("a.parquet"), import.join("b.parquet")])
    );

    // A column the table has not: the import fails naming it; no rows.
    python(
        r#"
import os, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"ts": pa.array([0], pa.timestamp("us", tz="UTC")), "extra": [1]}), os.environ["OUT"])
"#,
        &[("OUT", import.join("c.parquet").display().to_string())],
    );
    let id = scalar(&client, "COPY pq FROM 'c.parquet'").await;
    let (status, message, ..) = wait_final(&client, &id).await;
    assert_eq!(status, "failed");
    assert!(message.unwrap().contains("column=extra"));
    assert_eq!(scalar(&client, "SELECT count(*) FROM pq").await, "70000");

    // A glob of Parquet files is one import and one commit: a new table
    // from the first file, the second's columns in another order; then a
    // CSV file among them fails naming both files, and adds nothing.
    let parts = import.join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    write_parquet(&parts, "p1.parquet", 30_000, 3, "ts,city,temp,n,flag");
    write_parquet(&parts, "p2.parquet", 25_000, 4, "n,ts,flag,city,temp");
    let id = scalar(
        &client,
        "COPY pg FROM 'parts/*.parquet' WITH TIMESTAMP 'ts' PARTITION BY DAY",
    )
    .await;
    let (status, message, _, imported, _) = wait_final(&client, &id).await;
    assert_eq!(status, "finished", "{message:?}");
    assert_eq!(imported, 55_000);
    assert_eq!(
        scalar(&client, &ours.replace("FROM pq", "FROM pg")).await,
        duckdb(&[parts.join("p1.parquet"), parts.join("p2.parquet")])
    );
    let files = crate::common::column(
        &client,
        &format!("SELECT DISTINCT file FROM sys.text_import_log WHERE id = '{id}' AND phase = 'partition_import' ORDER BY 1"),
    )
    .await;
    assert_eq!(
        files,
        [
            Some("parts/p1.parquet".to_string()),
            Some("parts/p2.parquet".to_string())
        ]
    );
    std::fs::write(
        parts.join("p3.parquet.csv"),
        "ts,city\n2010-01-01T00:00:00Z,x\n",
    )
    .unwrap();
    write_parquet(&parts, "p4.parquet", 1_000, 5, "ts,city,temp,n,flag");
    let id = scalar(&client, "COPY pg FROM 'parts/' WITH FORCE true").await;
    let (status, message, ..) = wait_final(&client, &id).await;
    assert_eq!(status, "failed");
    let message = message.unwrap();
    assert!(
        message.contains("the files have different formats [file=parts/p3.parquet.csv, format=CSV; first file=parts/p1.parquet, format=Parquet]"),
        "{message}"
    );
    assert_eq!(scalar(&client, "SELECT count(*) FROM pg").await, "55000");
    assert!(server.stop().success());
}

/// CANCEL while a Parquet file's rows are written: the import ends
/// cancelled inside partition_import, no table is made, no scratch stays.
#[tokio::test]
async fn cancel_of_a_parquet_import() {
    let (server, import) = start("parquet-in-cancel", &[]);
    python(
        r#"
import os, duckdb
duckdb.connect().execute(f"""COPY (
    SELECT TIMESTAMPTZ '2010-01-01 00:00:00+00' + to_microseconds(CAST(hash(i) % 31536000000000 AS BIGINT)) AS ts,
           i % 97 AS n, CAST(hash(i * 7) % 1000 AS BIGINT) / 10.0 AS temp, 'city-' || (i % 13) AS city
    FROM range(2000000) t(i)) TO '{os.environ["OUT"]}' (FORMAT parquet, ROW_GROUP_SIZE 50000)""")
"#,
        &[("OUT", import.join("big.parquet").display().to_string())],
    );
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY big FROM 'big.parquet' WITH TIMESTAMP 'ts' PARTITION BY DAY",
    )
    .await;
    crate::copy::wait_phase(&client, &id, "partition_import").await;
    let rows = client
        .simple_query(&format!("COPY '{id}' CANCEL"))
        .await
        .unwrap();
    let status = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(1).unwrap().to_string()),
        _ => None,
    });
    assert_eq!(status.as_deref(), Some("cancelled"));
    let (status, message, ..) = wait_final(&client, &id).await;
    assert_eq!(status, "cancelled");
    let message = message.unwrap();
    assert!(
        message.starts_with("import cancelled [phase=partition_import"),
        "{message}"
    );
    assert!(client.simple_query("SELECT * FROM big").await.is_err());
    assert!(!server.root.join("tmp/import").join(&id).exists());
    let leftovers: Vec<_> = std::fs::read_dir(server.root.join("db/public"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
