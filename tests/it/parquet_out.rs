//! COPY … TO 'dir' WITH FORMAT PARQUET: an asynchronous export that
//! answers with an id, logs to `sys.copy_export_log`, writes below the
//! export root only, and whose files DuckDB and pyarrow read back as the
//! table's rows; CANCEL and `kill -9` leave no destination and no scratch.

use std::path::Path;
use std::time::Duration;

use crate::common::{Server, eventually, python, scalar};
use crate::copy::{start, wait_final, weather_csv};

/// Polls the export log until export `id` has its final row; returns
/// (status, message, files, rows).
async fn wait_export(client: &tokio_postgres::Client, id: &str) -> (String, String, i64, i64) {
    eventually(&format!("export {id} to end"), Duration::from_secs(300), || async move {
        let rows = client
            .query(
                "select status, message, num_exported_files, num_exported_rows from sys.copy_export_log \
                 where id = $1 and phase in ('none', 'success') order by ts desc limit 1",
                &[&id],
            )
            .await
            .unwrap();
        let r = rows.first()?;
        let status: String = r.get(0);
        (status != "started").then(|| {
            (
                status,
                r.get::<_, Option<String>>(1).unwrap_or_default(),
                r.get(2),
                r.get(3),
            )
        })
    })
    .await
}

/// Waits until export `id` has logged that `phase` started.
async fn wait_export_phase(client: &tokio_postgres::Client, id: &str, phase: &str) {
    eventually(
        &format!("{phase} of {id}"),
        Duration::from_secs(120),
        || async move {
            let n = scalar(
            client,
            &format!(
                "select count(*) from sys.copy_export_log where id = '{id}' and phase = '{phase}'"
            ),
        )
        .await;
            (n != "0").then_some(())
        },
    )
    .await
}

async fn error_of(client: &tokio_postgres::Client, sql: &str) -> String {
    let e = client.simple_query(sql).await.unwrap_err();
    e.as_db_error().unwrap().message().to_string()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// No export left scratch space behind in the export root.
fn no_scratch(export: &Path) {
    let left: Vec<String> = names(export)
        .into_iter()
        .filter(|n| n.starts_with(".export-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

async fn import_weather(server: &Server, import: &Path, rows: u64, days: i64) -> String {
    weather_csv(&import.join("w.csv"), rows, days, 5);
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY w FROM 'w.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    scalar(
        &client,
        "SELECT count(*) || '|' || round(sum(tempF), 3) || '|' || cast(min(timestamp) AS BIGINT) || '|' || cast(max(timestamp) AS BIGINT) FROM w",
    )
    .await
}

/// DuckDB over the files matched by `glob`: `rows|Σ tempF|min ts|max ts`.
fn duckdb_totals(glob: &Path) -> String {
    python(
        r#"
import os, duckdb
q = f"""SELECT count(*), round(sum(tempF), 3), epoch_us(min(timestamp)), epoch_us(max(timestamp))
        FROM read_parquet('{os.environ['GLOB']}')"""
print("|".join(str(v) for v in duckdb.connect().execute(q).fetchall()[0]))
"#,
        &[("GLOB", glob.display().to_string())],
    )
}

#[tokio::test]
async fn exports_read_back_by_duckdb_and_pyarrow() {
    // 1 MiB of encoded rows per row group at most, whatever ROW_GROUP_SIZE.
    let (server, import) = start("parquet-out", &[("QDB_CAIRO_SQL_COPY_EXPORT_MEMORY", "1m")]);
    let export = server.root.join("export");
    let ours = import_weather(&server, &import, 100_000, 20).await;
    let client = server.client().await;

    // A table: one file per partition of the table's own unit, named as
    // its partitions are, each holding only its day.
    let id = scalar(&client, "COPY w TO 'daily' WITH FORMAT PARQUET").await;
    assert_eq!(id.len(), 16);
    let (status, message, files, rows) = wait_export(&client, &id).await;
    assert_eq!(status, "finished", "{message}");
    assert_eq!((files, rows), (20, 100_000));
    assert_eq!(message, "exported 100000 rows to 20 files");
    let daily = names(&export.join("daily"));
    assert_eq!(daily.len(), 20);
    assert_eq!(daily[0], "2010-01-01.parquet");
    assert_eq!(daily[19], "2010-01-20.parquet");
    assert_eq!(duckdb_totals(&export.join("daily/*.parquet")), ours);
    let misplaced = python(
        r#"
import os, duckdb
q = f"""SELECT count(*) FROM (
          SELECT filename, strftime(min(timestamp), '%Y-%m-%d') lo, strftime(max(timestamp), '%Y-%m-%d') hi
          FROM read_parquet('{os.environ['GLOB']}', filename = true) GROUP BY filename)
        WHERE lo <> hi OR lo <> regexp_extract(filename, '(\d{{4}}-\d{{2}}-\d{{2}})\.parquet', 1)"""
print(duckdb.connect().execute(q).fetchall()[0][0])
"#,
        &[("GLOB", export.join("daily/*.parquet").display().to_string())],
    );
    assert_eq!(misplaced, "0");
    // Its phases, in order.
    let phases = crate::common::column(
        &client,
        &format!(
            "select phase || ':' || status from sys.copy_export_log where id = '{id}' order by ts"
        ),
    )
    .await;
    let phases: Vec<String> = phases.into_iter().flatten().collect();
    assert_eq!(
        phases,
        [
            "none:started",
            "converting_partitions:started",
            "converting_partitions:finished",
            "move_files:started",
            "move_files:finished",
            "success:finished"
        ]
    );
    let first_day = export
        .join("daily/2010-01-01.parquet")
        .display()
        .to_string();
    // pyarrow: LZ4_RAW by default (pyarrow calls it LZ4), row groups of at
    // most 100,000 rows, the table's columns and types.
    let meta = python(
        r#"
import os, pyarrow.parquet as pq
f = pq.ParquetFile(os.environ["F"])
m = f.metadata
print(m.row_group(0).column(0).compression, m.num_rows, f.schema_arrow.field("timestamp").type, ",".join(f.schema_arrow.names))
"#,
        &[("F", first_day.clone())],
    );
    assert!(
        meta.starts_with("LZ4 ")
            && meta.ends_with(" timestamp[us, tz=UTC] timestamp,city,tempF,windSpeed,events"),
        "{meta}"
    );
    // Encodings fitted to the rows: the timestamp, in order, as
    // differences; tempF (DOUBLE) plain; city (text) a dictionary.
    let encodings = python(
        r#"
import os, pyarrow.parquet as pq
rg = pq.ParquetFile(os.environ["F"]).metadata.row_group(0)
print("|".join(",".join(sorted(rg.column(i).encodings)) for i in range(3)))
"#,
        &[("F", first_day.clone())],
    );
    let encodings: Vec<&str> = encodings.split('|').collect();
    assert!(
        encodings[0].contains("DELTA_BINARY_PACKED"),
        "{encodings:?}"
    );
    assert!(encodings[1].contains("DICTIONARY"), "{encodings:?}");
    assert!(!encodings[2].contains("DELTA"), "{encodings:?}");

    // A query, partitioned by month, ZSTD, small row groups.
    let warm = scalar(&client, "SELECT count(*) FROM w WHERE tempF > 50").await;
    let id = scalar(
        &client,
        "COPY (SELECT timestamp, city, tempF FROM w WHERE tempF > 50) TO 'warm/monthly' \
         WITH FORMAT PARQUET PARTITION_BY MONTH COMPRESSION_CODEC ZSTD COMPRESSION_LEVEL 9 ROW_GROUP_SIZE 1000",
    )
    .await;
    let (status, message, files, rows) = wait_export(&client, &id).await;
    assert_eq!(status, "finished", "{message}");
    assert_eq!((files, rows.to_string()), (1, warm.clone()));
    assert_eq!(
        scalar(
            &client,
            &format!("select table_name || '|' || export_path from sys.copy_export_log where id = '{id}' limit 1")
        )
        .await,
        "query|warm/monthly"
    );
    let meta = python(
        r#"
import os, pyarrow.parquet as pq
m = pq.ParquetFile(os.environ["F"]).metadata
sizes = [m.row_group(i).num_rows for i in range(m.num_row_groups)]
print(m.num_rows, max(sizes), m.row_group(0).column(0).compression, m.num_columns)
"#,
        &[(
            "F",
            export
                .join("warm/monthly/2010-01.parquet")
                .display()
                .to_string(),
        )],
    );
    assert_eq!(meta, format!("{warm} 1000 ZSTD 3"));

    // No partitions: one file; Parquet 2, no statistics, a bloom filter on
    // city only (DuckDB's parquet_metadata shows where it is).
    let id = scalar(
        &client,
        "COPY w TO 'all' WITH FORMAT PARQUET PARTITION_BY NONE STATISTICS_ENABLED false \
         PARQUET_VERSION 2 BLOOM_FILTER_COLUMNS 'city' BLOOM_FILTER_FPP 0.05",
    )
    .await;
    assert_eq!(wait_export(&client, &id).await.0, "finished");
    assert_eq!(names(&export.join("all")), ["default.parquet"]);
    assert_eq!(duckdb_totals(&export.join("all/default.parquet")), ours);
    let meta = python(
        r#"
import os, duckdb, pyarrow.parquet as pq
f = os.environ["F"]
m = pq.ParquetFile(f).metadata
blooms = duckdb.connect().execute(
    f"SELECT path_in_schema FROM parquet_metadata('{f}') WHERE bloom_filter_offset IS NOT NULL GROUP BY 1").fetchall()
print(m.format_version, m.row_group(0).column(1).is_stats_set, ",".join(b[0] for b in blooms))
"#,
        &[(
            "F",
            export.join("all/default.parquet").display().to_string(),
        )],
    );
    assert_eq!(meta, "2.6 False city");

    // The memory limit closes row groups before ROW_GROUP_SIZE rows.
    let id = scalar(
        &client,
        "COPY w TO 'bounded' WITH PARTITION_BY NONE ROW_GROUP_SIZE 10000000",
    )
    .await;
    assert_eq!(wait_export(&client, &id).await.0, "finished");
    let groups = python(
        r#"
import os, pyarrow.parquet as pq
m = pq.ParquetFile(os.environ["F"]).metadata
sizes = [m.row_group(i).total_byte_size for i in range(m.num_row_groups)]
print(m.num_rows, m.num_row_groups > 1, max(sizes) < 3 * 2**20)
"#,
        &[(
            "F",
            export.join("bounded/default.parquet").display().to_string(),
        )],
    );
    assert_eq!(groups, "100000 True True");

    // Refused before anything runs: a destination with files, names
    // outside the export root, bad options.
    let msg = error_of(&client, "COPY w TO 'daily' WITH FORMAT PARQUET").await;
    assert_eq!(
        msg,
        "the export directory exists and is not empty [path=daily]"
    );
    let msg = error_of(&client, "COPY w TO 'a/../../x' WITH FORMAT PARQUET").await;
    assert!(msg.contains("'.' is not allowed"), "{msg}");
    let msg = error_of(&client, "COPY w TO '/etc/sluice' WITH FORMAT PARQUET").await;
    assert!(msg.contains("outside the export root"), "{msg}");
    let msg = error_of(
        &client,
        "COPY (SELECT 1 AS a) TO 'one' WITH PARTITION_BY DAY",
    )
    .await;
    assert_eq!(
        msg,
        "PARTITION_BY DAY needs a timestamp column: the query has none"
    );
    let msg = error_of(
        &client,
        "COPY w TO 'x' WITH COMPRESSION_CODEC SNAPPY COMPRESSION_LEVEL 3",
    )
    .await;
    assert!(
        msg.contains("COMPRESSION_LEVEL applies to GZIP, ZSTD and BROTLI"),
        "{msg}"
    );
    let msg = error_of(&client, "COPY w TO 'x' WITH BLOOM_FILTER_COLUMNS 'nope'").await;
    assert!(msg.contains("[column=nope]"), "{msg}");
    // A bad option is PostgreSQL's invalid_parameter_value, over the wire
    // and as HTTP 400 from /exec.
    let e = client
        .simple_query("COPY w TO 'x' WITH COMPRESSION_CODEC ZSTD COMPRESSION_LEVEL 99")
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "22023", "{e:?}");
    let resp = reqwest::Client::new()
        .get(server.url("/exec"))
        .query(&[(
            "query",
            "COPY w TO 'x' WITH COMPRESSION_CODEC SNAPPY COMPRESSION_LEVEL 3",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body = resp.text().await.unwrap();
    assert!(body.contains("COMPRESSION_LEVEL applies"), "{body}");
    let msg = error_of(&client, "COPY nope TO 'x' WITH FORMAT PARQUET").await;
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(!export.join("x").exists() && !export.join("one").exists());
    // CANCEL of a finished export reports how it ended.
    let rows = client
        .simple_query(&format!("COPY '{id}' CANCEL"))
        .await
        .unwrap();
    let status = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(1).unwrap().to_string()),
        _ => None,
    });
    assert_eq!(status.as_deref(), Some("finished"));
    no_scratch(&export);
    // The log is kept across a restart.
    let server = server.restart();
    let client = server.client().await;
    assert_eq!(
        scalar(
            &client,
            "select count(DISTINCT id) from sys.copy_export_log where status = 'finished'"
        )
        .await,
        "4"
    );
}

#[tokio::test]
async fn cancel_and_kill_during_an_export_leave_nothing() {
    let (server, import) = start("parquet-out-cancel", &[]);
    let export = server.root.join("export");
    import_weather(&server, &import, 1_500_000, 365).await;
    let client = server.client().await;
    // GZIP at its highest level: long enough to be stopped half-way.
    let slow =
        "WITH FORMAT PARQUET COMPRESSION_CODEC GZIP COMPRESSION_LEVEL 9 ROW_GROUP_SIZE 10000";
    let id = scalar(&client, &format!("COPY w TO 'big' {slow}")).await;
    let msg = error_of(&client, &format!("COPY w TO 'big2' {slow}")).await;
    assert_eq!(
        msg,
        format!(
            "unable to process the export request - another export may be in progress [activeExportId={id}]"
        )
    );
    wait_export_phase(&client, &id, "converting_partitions").await;
    let rows = client
        .simple_query(&format!("COPY '{id}' CANCEL"))
        .await
        .unwrap();
    let row = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => {
            Some((r.get(0).unwrap().to_string(), r.get(1).unwrap().to_string()))
        }
        _ => None,
    });
    assert_eq!(row, Some((id.clone(), "cancelled".to_string())));
    let (status, message, _, rows) = wait_export(&client, &id).await;
    assert_eq!(status, "cancelled");
    assert_eq!(message, "export cancelled [phase=converting_partitions]");
    assert!(rows < 1_500_000, "{rows}");
    assert!(!export.join("big").exists());
    no_scratch(&export);

    // kill -9 while an export writes: after the restart the export is
    // failed in the log, its scratch is gone, the destination was never
    // made, and the name can be exported to.
    let id = scalar(&client, &format!("COPY w TO 'big' {slow}")).await;
    wait_export_phase(&client, &id, "converting_partitions").await;
    eventually("scratch files", Duration::from_secs(60), || {
        let dir = export.join(format!(".export-{id}"));
        async move { std::fs::read_dir(&dir).ok()?.next().map(|_| ()) }
    })
    .await;
    let root = server.root.clone();
    server.kill9();
    let server = Server::start(&root);
    let client = server.client().await;
    let (status, message, ..) = wait_export(&client, &id).await;
    assert_eq!(status, "failed");
    assert_eq!(
        message,
        "export interrupted: the server stopped before it finished"
    );
    no_scratch(&export);
    assert!(!export.join("big").exists());
    let id = scalar(
        &client,
        "COPY (SELECT * FROM w ORDER BY timestamp LIMIT 10) TO 'big' WITH FORMAT PARQUET",
    )
    .await;
    let (status, message, files, rows) = wait_export(&client, &id).await;
    assert_eq!(
        (status.as_str(), files, rows),
        ("finished", 1, 10),
        "{message}"
    );
}
