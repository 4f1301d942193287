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
    assert!(server.stop().success());
}
