//! COPY end to end against a real server: the seed guide's workflow over
//! psql, a differential check of a generated out-of-order file, cancel,
//! the one-import-at-a-time rule, `kill -9` around attach, restarts, HTTP
//! and the `sluice import` command.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{Server, column, eventually, partition_dirs, scalar, scratch};

/// A deterministic generator (no dependency): 64-bit LCG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
}

/// Reference aggregates computed while writing the file.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Reference {
    pub(crate) rows: u64,
    pub(crate) temp_sum_milli: i64,
    temp_count: u64,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    per_day: BTreeMap<i64, u64>,
}

/// A weather-shaped CSV: ISO microsecond timestamps in random order over
/// `days` days from 2010-01-01, quoted city names with commas, empty fields.
pub(crate) fn weather_csv(path: &Path, rows: u64, days: i64, seed: u64) -> Reference {
    use std::io::Write;
    let mut rng = Rng(seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "timestamp,city,tempF,windSpeed,events").unwrap();
    let base = 1_262_304_000_000_000i64; // 2010-01-01T00:00:00Z
    let mut r = Reference {
        min_ts: i64::MAX,
        max_ts: i64::MIN,
        ..Default::default()
    };
    let cities = [
        "\"Springfield, IL\"",
        "Shelbyville",
        "\"Ogdenville \"\"North\"\"\"",
        "Capital City",
    ];
    for _ in 0..rows {
        let ts = base + (rng.next() % (days as u64 * 86_400_000_000)) as i64;
        let secs = ts.div_euclid(1_000_000);
        let dt = chrono::DateTime::from_timestamp(secs, (ts.rem_euclid(1_000_000) * 1000) as u32)
            .unwrap();
        let temp_milli = (rng.next() % 120_000) as i64 - 20_000;
        let temp = if rng.next().is_multiple_of(10) {
            String::new()
        } else {
            r.temp_sum_milli += temp_milli;
            r.temp_count += 1;
            let sign = if temp_milli < 0 { "-" } else { "" };
            format!(
                "{sign}{}.{:03}",
                temp_milli.abs() / 1000,
                temp_milli.abs() % 1000
            )
        };
        writeln!(
            out,
            "{},{},{},{},{}",
            dt.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            cities[(rng.next() % 4) as usize],
            temp,
            rng.next() % 40,
            if rng.next().is_multiple_of(3) {
                "Rain"
            } else {
                ""
            }
        )
        .unwrap();
        r.rows += 1;
        r.min_ts = r.min_ts.min(ts);
        r.max_ts = r.max_ts.max(ts);
        *r.per_day.entry(ts.div_euclid(86_400_000_000)).or_default() += 1;
    }
    out.flush().unwrap();
    r
}

pub(crate) fn start(name: &str, extra: &[(&str, &str)]) -> (Server, std::path::PathBuf) {
    let root = scratch(name).join("data");
    let import = root.join("import");
    std::fs::create_dir_all(&import).unwrap();
    let server = Server::start_with(&root, extra);
    (server, import)
}

/// Polls the log until the import's last row is final; returns
/// (status, message, rows_handled, rows_imported, errors).
pub(crate) async fn wait_final(
    client: &tokio_postgres::Client,
    id: &str,
) -> (String, Option<String>, i64, i64, i64) {
    eventually(&format!("import {id} to end"), Duration::from_secs(300), || async move {
        let rows = client
            .query(
                "select status, message, rows_handled, rows_imported, errors from sys.text_import_log where id = $1 and phase is null order by ts desc limit 1",
                &[&id],
            )
            .await
            .unwrap();
        let r = rows.first()?;
        let status: String = r.get(0);
        (status != "started").then(|| {
            (
                status,
                r.get(1),
                r.get::<_, Option<i64>>(2).unwrap_or(0),
                r.get::<_, Option<i64>>(3).unwrap_or(0),
                r.get(4),
            )
        })
    })
    .await
}

/// Waits until import `id` has logged that `phase` started.
pub(crate) async fn wait_phase(client: &tokio_postgres::Client, id: &str, phase: &str) {
    eventually(
        &format!("{phase} of {id}"),
        Duration::from_secs(120),
        || async move {
            let n = scalar(
            client,
            &format!(
                "select count(*) from sys.text_import_log where id = '{id}' and phase = '{phase}'"
            ),
        )
        .await;
            (n != "0").then_some(())
        },
    )
    .await
}

fn psql(server: &Server, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            &server.pg.ip().to_string(),
            "-p",
            &server.pg.port().to_string(),
        ])
        .args([
            "-U",
            "admin",
            "-v",
            "ON_ERROR_STOP=1",
            "-A",
            "-t",
            "-F",
            "|",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", "quest")
        .output()
        .expect("psql is installed");
    assert!(
        out.status.success(),
        "psql failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// The user guide, step by step, as a user types it into psql.
#[tokio::test]
async fn seed_guide_workflow_over_psql() {
    let (server, import) = start("copy-guide", &[]);
    let reference = weather_csv(&import.join("weather.csv"), 20_000, 30, 7);
    // 1. A sample of the first 1000 lines.
    let text = std::fs::read_to_string(import.join("weather.csv")).unwrap();
    let sample: String = text.lines().take(1000).map(|l| format!("{l}\n")).collect();
    std::fs::write(import.join("test_file.csv"), sample).unwrap();
    let id = psql(
        &server,
        "COPY weather from 'test_file.csv' WITH HEADER true;",
    );
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    // Poll the log with psql until the finished row shows up.
    let latest = eventually("the import to end", Duration::from_secs(120), || {
        let server = &server;
        let id = &id;
        async move {
            let latest = psql(
                server,
                &format!(
                    "SELECT status, rows_handled, rows_imported, errors FROM sys.text_import_log WHERE id = '{id}' AND phase IS NULL ORDER BY ts DESC LIMIT 1;"
                ),
            );
            (!latest.starts_with("started")).then_some(latest)
        }
    })
    .await;
    assert_eq!(latest, "finished|999|999|0");
    // 2. Copy the inferred schema, make the timestamp designated.
    let ddl = psql(&server, "SHOW CREATE TABLE weather;");
    assert!(ddl.contains("timestamp TIMESTAMP"), "{ddl}");
    assert!(ddl.contains("tempF DOUBLE"), "{ddl}");
    let ddl = ddl.replace(
        ") PARTITION BY NONE",
        ") timestamp(timestamp) PARTITION BY DAY",
    );
    psql(&server, "DROP TABLE weather;");
    psql(&server, &ddl);
    // 3. The real import into the prepared table.
    let id = psql(
        &server,
        "COPY weather FROM 'weather.csv' WITH HEADER true TIMESTAMP 'timestamp' FORMAT 'yyyy-MM-ddTHH:mm:ss.SSSUUUZ' ON ERROR SKIP_ROW;",
    );
    let client = server.client().await;
    let (status, message, handled, imported, errors) = wait_final(&client, &id).await;
    assert_eq!((status.as_str(), message), ("finished", None));
    assert_eq!((handled, imported, errors), (20_000, 20_000, 0));
    let phases = psql(
        &server,
        &format!(
            "SELECT phase FROM sys.text_import_log WHERE id = '{id}' AND status = 'finished' AND phase IS NOT NULL;"
        ),
    );
    assert_eq!(
        phases,
        "analyze_file_structure\nboundary_check\nindexing\npartition_import\nattach_partitions"
    );
    assert_eq!(
        psql(&server, "SELECT count(*) FROM weather;"),
        reference.rows.to_string()
    );
    // 4. TRUNCATE and import again: same result.
    psql(&server, "TRUNCATE TABLE weather;");
    let id = psql(
        &server,
        "COPY weather FROM 'weather.csv' WITH HEADER true TIMESTAMP 'timestamp' FORMAT 'yyyy-MM-ddTHH:mm:ss.SSSUUUZ';",
    );
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    assert_eq!(
        psql(&server, "SELECT count(*) FROM weather;"),
        reference.rows.to_string()
    );
    // The work directory is gone.
    assert!(!server.root.join("tmp/import").join(&id).exists());
}

/// Aggregates of an out-of-order file imported with PARTITION BY DAY agree
/// with the ones computed while the file was written; every partition
/// decoded alone, in many small windows.
#[tokio::test]
async fn differential_out_of_order_day_partitions() {
    differential("copy-diff", "0").await;
}

/// The same with the days decoded in groups of a few partitions.
#[tokio::test]
async fn differential_out_of_order_day_partitions_grouped() {
    differential("copy-diff-grouped", "2m").await;
}

async fn differential(name: &str, decode_memory: &str) {
    let (server, import) = start(
        name,
        &[
            ("QDB_CAIRO_SQL_COPY_MIN_CHUNK_SIZE", "64k"),
            // 4k index entries per worker: the index spills to the work root.
            ("QDB_CAIRO_SQL_COPY_INDEX_MEMORY", "128k"),
            ("QDB_CAIRO_SQL_COPY_DECODE_MEMORY", decode_memory),
        ],
    );
    let r = weather_csv(&import.join("w.csv"), 150_000, 40, 42);
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY weather FROM 'w.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    let (status, message, handled, imported, errors) = wait_final(&client, &id).await;
    assert_eq!(status, "finished", "{message:?}");
    assert_eq!(
        (handled, imported, errors),
        (r.rows as i64, r.rows as i64, 0)
    );
    let row = client
        .query_one(
            "select count(*), count(tempF), cast(round(sum(tempF) * 1000) as bigint), \
             cast(min(timestamp) as varchar), cast(max(timestamp) as varchar) from weather",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), r.rows as i64);
    assert_eq!(row.get::<_, i64>(1), r.temp_count as i64);
    assert_eq!(row.get::<_, i64>(2), r.temp_sum_milli);
    let fmt = |micros: i64| {
        chrono::DateTime::from_timestamp_micros(micros)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    };
    assert_eq!(row.get::<_, String>(3), fmt(r.min_ts));
    assert_eq!(row.get::<_, String>(4), fmt(r.max_ts));
    // Rows per day, and one partition directory per day.
    let per_day = client
        .query(
            "select cast(date_trunc('day', timestamp) as varchar), count(*) from weather group by 1 order by 1",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64)> = per_day.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want: Vec<(String, i64)> = r
        .per_day
        .iter()
        .map(|(d, n)| {
            (
                format!("{}T00:00:00Z", &fmt(d * 86_400_000_000)[..10]),
                *n as i64,
            )
        })
        .collect();
    assert_eq!(got, want);
    let dirs = partition_dirs(&server.root.join("db/public/weather")).len();
    assert_eq!(dirs, r.per_day.len());
    // With this budget each day is decoded in many small windows; every
    // file must still be one run sorted by timestamp.
    let mut files = 0;
    for dir in partition_dirs(&server.root.join("db/public/weather")) {
        let dir = server.root.join("db/public/weather").join(dir);
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            files += 1;
            let reader =
                datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                    std::fs::File::open(&f).unwrap(),
                )
                .unwrap()
                .build()
                .unwrap();
            let mut last = i64::MIN;
            for batch in reader {
                let batch = batch.unwrap();
                let ts = batch
                    .column_by_name("timestamp")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::TimestampMicrosecondArray>()
                    .unwrap();
                for &v in ts.values() {
                    assert!(v >= last, "{} is not sorted", f.display());
                    last = v;
                }
            }
        }
    }
    assert_eq!(files, r.per_day.len());
    // Quoted values with commas and doubled quotes came through.
    let cities = column(&client, "select distinct city from weather order by city").await;
    assert_eq!(
        cities,
        [
            "Capital City",
            "Ogdenville \"North\"",
            "Shelbyville",
            "Springfield, IL"
        ]
        .map(|s| Some(s.to_string()))
    );
}

/// A second COPY while one runs is refused with the running id; CANCEL
/// stops the running one inside its phase and leaves nothing behind.
#[tokio::test]
async fn cancel_and_one_import_at_a_time() {
    let (server, import) = start("copy-cancel", &[("QDB_CAIRO_SQL_COPY_WORKER_COUNT", "1")]);
    weather_csv(&import.join("big.csv"), 1_500_000, 365, 3);
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY w FROM 'big.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    let err = client
        .simple_query(
            "COPY w2 FROM 'big.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
        )
        .await
        .unwrap_err();
    let msg = err.as_db_error().unwrap().message().to_string();
    assert_eq!(
        msg,
        format!(
            "unable to process the import request - another import may be in progress [activeImportId={id}]"
        )
    );
    // Cancel while it runs: once indexing has started.
    wait_phase(&client, &id, "indexing").await;
    let rows = client
        .simple_query(&format!("COPY '{id}' CANCEL"))
        .await
        .unwrap();
    let row = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((r.get(0).unwrap().to_string(), r.get(1).unwrap().to_string()))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(row, (id.clone(), "cancelled".to_string()));
    let (status, message, ..) = wait_final(&client, &id).await;
    assert_eq!(status, "cancelled");
    // sys.copy_progress says how it ended too.
    assert_eq!(
        scalar(&client, "select status from sys.copy_progress").await,
        "cancelled"
    );
    let message = message.unwrap();
    assert!(message.starts_with("import cancelled [phase="), "{message}");
    assert!(message.ends_with("msg=`Cancelled`]"), "{message}");
    // Nothing was created, the scratch space is gone, the slot is free.
    assert!(client.simple_query("select * from w").await.is_err());
    assert!(!server.root.join("tmp/import").join(&id).exists());
    let leftovers: Vec<_> = std::fs::read_dir(server.root.join("db/public"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Cancel of a finished import reports its status.
    let again = scalar(
        &client,
        &format!(
            "select status from sys.text_import_log where id = '{id}' order by ts desc limit 1"
        ),
    )
    .await;
    assert_eq!(again, "cancelled");
    std::fs::write(
        import.join("small.csv"),
        "ts,v\n2024-01-01T00:00:00.000000Z,1\n",
    )
    .unwrap();
    let id2 = scalar(
        &client,
        "COPY s FROM 'small.csv' WITH HEADER true TIMESTAMP 'ts' PARTITION BY DAY",
    )
    .await;
    assert_eq!(wait_final(&client, &id2).await.0, "finished");
    // A client that saw an import's final log row may send the next COPY
    // at once, and finds that import's error rows already written.
    let mut bad = String::from("ts,v\n2024-01-01T00:00:00.000000Z,1\n");
    for i in 0..2000 {
        bad.push_str(&format!("not-a-time,{i}\n"));
    }
    std::fs::write(import.join("bad.csv"), bad).unwrap();
    for n in 0..20 {
        let id = scalar(
            &client,
            &format!("COPY b{n} FROM 'bad.csv' WITH HEADER true TIMESTAMP 'ts' FORMAT 'yyyy-MM-ddTHH:mm:ss.SSSSSSZ' ON ERROR SKIP_ROW"),
        )
        .await;
        let (status, _, _, imported, errors) = wait_final(&client, &id).await;
        assert_eq!((status.as_str(), imported, errors), ("finished", 1, 2000));
        let lines = scalar(
            &client,
            &format!("select count(*) from sys.text_import_errors where id = '{id}'"),
        )
        .await;
        assert_eq!(lines, "2000", "import {n}");
    }
}

/// `kill -9` while the import attaches: after restart the table holds all
/// rows or does not exist, and the log says what happened.
#[tokio::test]
async fn kill9_around_attach_is_all_or_nothing() {
    let (server, import) = start("copy-kill", &[]);
    let r = weather_csv(&import.join("k.csv"), 300_000, 30, 11);
    let mut server = server;
    let mut outcomes = Vec::new();
    for round in 0..3 {
        let client = server.client().await;
        let id = scalar(
            &client,
            "COPY k FROM 'k.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
        )
        .await;
        // Wait until partition_import is under way or done, then kill: the
        // kill lands in partition_import or attach_partitions.
        eventually("the phase to kill in", Duration::from_secs(120), || {
            let client = &client;
            let id = &id;
            async move {
                let phases = column(
                    client,
                    &format!(
                        "select phase from sys.text_import_log where id = '{id}' and phase is not null"
                    ),
                )
                .await;
                (phases.len() >= 7 + round).then_some(())
            }
        })
        .await;
        drop(client);
        let root = server.root.clone();
        let env: Vec<(String, String)> = vec![];
        server.kill9();
        let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        server = Server::start_with(&root, &env);
        let client = server.client().await;
        let count = client.simple_query("select count(*) from k").await;
        let status = scalar(&client, &format!("select status from sys.text_import_log where id = '{id}' and phase is null order by ts desc limit 1")).await;
        match count {
            Ok(msgs) => {
                let n = msgs
                    .iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some(r.get(0).unwrap().to_string())
                        }
                        _ => None,
                    })
                    .unwrap();
                assert_eq!(n, r.rows.to_string(), "round {round}: partial table");
                outcomes.push(("all", status));
                client.simple_query("drop table k").await.unwrap();
            }
            Err(_) => {
                assert_eq!(status, "failed", "round {round}");
                outcomes.push(("none", status));
            }
        }
        // No staging directory survives the restart.
        let hidden: Vec<_> = std::fs::read_dir(root.join("db/public"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".importing-"))
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }
    eprintln!("kill -9 outcomes: {outcomes:?}");
    // Left alone, the import lands whole.
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY k FROM 'k.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    assert_eq!(
        scalar(&client, "select count(*) from k").await,
        r.rows.to_string()
    );
}

/// The log survives a restart; HTTP `/exec` runs COPY too; a blank copy
/// root disables COPY with QuestDB's message.
#[tokio::test]
async fn log_survives_restart_and_http_copy() {
    let (server, import) = start("copy-http", &[]);
    std::fs::write(
        import.join("h.csv"),
        "ts,v\n2024-01-01T00:00:00.000000Z,1\n2024-01-02T00:00:00.000000Z,2\n",
    )
    .unwrap();
    let url = server.url(&format!(
        "/exec?query={}",
        "COPY%20h%20FROM%20%27h.csv%27%20WITH%20HEADER%20true%20TIMESTAMP%20%27ts%27%20PARTITION%20BY%20DAY"
    ));
    let body: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(body["columns"][0]["name"], "id");
    let id = body["dataset"][0][0].as_str().unwrap().to_string();
    let client = server.client().await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    drop(client);
    let server = server.restart();
    let client = server.client().await;
    let rows = column(
        &client,
        &format!("select status from sys.text_import_log where id = '{id}' and phase is null"),
    )
    .await;
    assert_eq!(rows, [Some("started".into()), Some("finished".into())]);
    assert_eq!(scalar(&client, "select sum(v) from h").await, "3");
    drop(client);
    assert!(server.stop().success());

    let root = scratch("copy-disabled").join("data");
    let server = Server::start_with(&root, &[("QDB_CAIRO_SQL_COPY_ROOT", "")]);
    let client = server.client().await;
    let err = client
        .simple_query("COPY h FROM 'h.csv'")
        .await
        .unwrap_err();
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "COPY is disabled ['cairo.sql.copy.root' is not set?]"
    );
}

/// `sluice import` runs the same pipeline in-process and prints a summary;
/// the rows are there for the next server.
#[tokio::test]
async fn cli_import() {
    let dir = scratch("copy-cli");
    let root = dir.join("data");
    let csv = dir.join("cli.csv");
    let r = weather_csv(&csv, 5_000, 10, 5);
    // --dry-run prints the report and leaves no table behind.
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["import", csv.to_str().unwrap(), "--table", "cli"])
            .args(["--timestamp", "timestamp", "--partition-by", "DAY"])
            .args(extra)
            .arg("--root")
            .arg(&root)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let dry = run(&["--dry-run"]);
    let report = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{report}");
    assert!(report.contains("nothing was written"), "{report}");
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("partition "))
            .count(),
        10,
        "{report}"
    );
    let imported = report
        .lines()
        .find(|l| l.starts_with("summary") && l.contains("rows_imported"))
        .unwrap();
    assert!(imported.contains(&r.rows.to_string()), "{imported}");
    assert!(!root.join("db/public/cli").exists());
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("rows imported: {}", r.rows)),
        "{stdout}"
    );
    assert!(stdout.contains("partitions:    10"), "{stdout}");
    assert!(stdout.contains("MB/s"), "{stdout}");
    let server = Server::start(&root);
    let client = server.client().await;
    assert_eq!(
        scalar(&client, "select count(*) from cli").await,
        r.rows.to_string()
    );
}

/// SIGTERM during an import cancels it: the server stops promptly, the log
/// says `cancelled`, and no table or scratch space is left.
#[tokio::test]
async fn shutdown_cancels_a_running_import() {
    let (server, import) = start("copy-shutdown", &[("QDB_CAIRO_SQL_COPY_WORKER_COUNT", "1")]);
    weather_csv(&import.join("big.csv"), 1_000_000, 100, 9);
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY w FROM 'big.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    // Shut down while it runs: once indexing has started.
    wait_phase(&client, &id, "indexing").await;
    drop(client);
    let root = server.root.clone();
    let t = Instant::now();
    assert!(server.stop().success());
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "shutdown took {:?}",
        t.elapsed()
    );
    let server = Server::start(&root);
    let client = server.client().await;
    let status = scalar(&client, &format!("select status from sys.text_import_log where id = '{id}' and phase is null order by ts desc limit 1")).await;
    assert_eq!(status, "cancelled");
    assert!(client.simple_query("select * from w").await.is_err());
    assert!(!root.join("tmp/import").join(&id).exists());
}

/// `sys.copy_progress` while a COPY runs: polled every 10 ms, the fraction
/// never goes back and ends at 1 with every row counted, the phase moves
/// through indexing and partition_import, and the ETA given near halfway
/// is within a factor of two of the time that was actually left.
#[tokio::test]
async fn copy_progress_moves_steadily_to_the_end() {
    let (server, import) = start("copy-progress", &[("QDB_CAIRO_SQL_COPY_WORKER_COUNT", "1")]);
    let reference = weather_csv(&import.join("big.csv"), 1_500_000, 365, 7);
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY w FROM 'big.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    let started = std::time::Instant::now();
    let mut last = -1.0f64;
    let mut phases: Vec<String> = Vec::new();
    let mut halfway: Option<(std::time::Instant, f64)> = None;
    // Polled every 10 ms until the import reports itself finished.
    let deadline = started + Duration::from_secs(300);
    let final_row = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the import did not finish"
        );
        let row = client
            .query_opt(
                "SELECT fraction, phase, status, eta_sec, rows_imported, bytes_done, bytes_total FROM sys.copy_progress WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            let fraction: f64 = row.get(0);
            assert!(
                fraction >= last,
                "progress went back: {last} then {fraction}"
            );
            assert!((0.0..=1.0).contains(&fraction), "{fraction}");
            last = fraction;
            if let Some(p) = row.get::<_, Option<String>>(1)
                && phases.last() != Some(&p)
            {
                phases.push(p);
            }
            if halfway.is_none() && (0.4..0.6).contains(&fraction) {
                let eta: Option<f64> = row.get(3);
                halfway = Some((std::time::Instant::now(), eta.expect("an ETA at half way")));
            }
            let status: String = row.get(2);
            if status == "finished" {
                break (
                    fraction,
                    row.get::<_, i64>(4),
                    row.get::<_, i64>(5),
                    row.get::<_, i64>(6),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let ended = std::time::Instant::now();
    let (fraction, imported, bytes_done, bytes_total) = final_row;
    assert_eq!(fraction, 1.0);
    assert_eq!(imported as u64, reference.rows);
    assert!(
        bytes_done > 0 && bytes_done <= bytes_total,
        "{bytes_done} of {bytes_total}"
    );
    assert!(
        phases.contains(&"indexing".to_string())
            && phases.contains(&"partition_import".to_string()),
        "phases seen: {phases:?}"
    );
    let (at, eta) = halfway.expect("a poll landed between 40 % and 60 %");
    let left = ended.duration_since(at).as_secs_f64();
    eprintln!("ETA at half way {eta:.2} s, {left:.2} s were left; phases {phases:?}");
    assert!(
        eta <= left * 2.0 + 0.5 && eta >= left / 2.0 - 0.5,
        "ETA {eta:.2} s at half way, {left:.2} s were left (run took {:.2} s)",
        ended.duration_since(started).as_secs_f64()
    );
}

/// `DRY RUN true` over psql: the report lists the inferred columns, the
/// partitions with the reference's row counts and the rejected lines, and
/// nothing is written (no table, no log rows); the real import then
/// rejects exactly the reported lines. Into an existing table, a dry run
/// leaves its rows and files as they were; under ON ERROR ABORT it fails
/// naming the line.
#[tokio::test]
async fn dry_run_reports_exactly_what_the_import_does() {
    use std::io::Write;
    let (server, import) = start("copy-dry-run", &[]);
    let path = import.join("dry.csv");
    let reference = weather_csv(&path, 30_000, 12, 21);
    // Three bad records at the end: a timestamp, a number, extra fields.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(
        b"yesterday,Shelbyville,1.5,3,\n2010-01-03T00:00:00.000000Z,Shelbyville,warm,3,\n2010-01-04T00:00:00.000000Z,Shelbyville,2.5,3,,surplus\n",
    )
    .unwrap();
    drop(f);
    let first_bad = reference.rows + 2;
    let statement =
        "COPY weather FROM 'dry.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY";
    let report = psql(&server, &format!("{statement} DRY RUN true;"));
    let rows: Vec<Vec<&str>> = report.lines().map(|l| l.split('|').collect()).collect();
    let find = |section: &str, name: &str| {
        rows.iter()
            .find(|r| r[0] == section && r[1] == name)
            .unwrap_or_else(|| panic!("no {section} {name} in\n{report}"))
            .clone()
    };
    assert_eq!(find("column", "timestamp")[2], "TIMESTAMP");
    assert!(find("column", "timestamp")[3].contains("designated timestamp"));
    assert_eq!(find("column", "tempF")[2], "DOUBLE");
    // The column has the file column's name, as written.
    assert!(find("column", "tempF")[3].contains("type inferred"));
    assert_eq!(find("column", "city")[2], "VARCHAR");
    assert_eq!(find("dialect", "delimiter")[2], ",");
    assert_eq!(find("dialect", "delimiter")[3], "detected");
    // A delimiter the file does not use: the report names the one it does.
    let wrong = psql(
        &server,
        "COPY semi FROM 'dry.csv' WITH HEADER true DELIMITER ';' DRY RUN true;",
    );
    assert!(
        wrong.contains(
            "dialect|delimiter|;|given; the file's first lines look delimited by ',': DELIMITER ',' or no DELIMITER"
        ),
        "{wrong}"
    );
    assert_eq!(find("table", "weather")[2], "new");
    let partitions: BTreeMap<String, u64> = rows
        .iter()
        .filter(|r| r[0] == "partition")
        .map(|r| (r[1].to_string(), r[2].parse().unwrap()))
        .collect();
    let day = |d: i64| {
        chrono::DateTime::from_timestamp(d * 86_400, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let want: BTreeMap<String, u64> = reference
        .per_day
        .iter()
        .map(|(d, n)| (day(*d), *n))
        .collect();
    assert_eq!(partitions, want);
    let rejected: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r[0] == "rejected")
        .map(|r| (r[1].to_string(), r[2].to_string()))
        .collect();
    assert_eq!(
        rejected.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        (first_bad..first_bad + 3)
            .map(|l| format!("line {l}"))
            .collect::<Vec<_>>(),
        "{report}"
    );
    assert_eq!(
        find("summary", "rows_imported")[2],
        reference.rows.to_string()
    );
    assert_eq!(find("summary", "errors")[2], "3");
    assert!(
        find("summary", "projected_seconds")[2]
            .parse::<f64>()
            .unwrap()
            >= 0.0
    );
    // Nothing was written.
    let client = server.client().await;
    assert_eq!(
        scalar(
            &client,
            "select count(*) from sys.tables where table_name = 'weather'"
        )
        .await,
        "0"
    );
    assert_eq!(
        scalar(&client, "select count(*) from sys.text_import_log").await,
        "0"
    );
    assert_eq!(
        scalar(&client, "select count(*) from sys.text_import_errors").await,
        "0"
    );
    // The real import rejects the same lines for the same reasons.
    let id = psql(&server, &format!("{statement};"));
    let (status, _, _, imported, errors) = wait_final(&client, &id).await;
    assert_eq!(
        (status.as_str(), imported, errors),
        ("finished", reference.rows as i64, 3)
    );
    let logged = psql(
        &server,
        &format!(
            "SELECT line, message FROM sys.text_import_errors WHERE id = '{id}' ORDER BY line;"
        ),
    );
    let logged: Vec<(String, String)> = logged
        .lines()
        .map(|l| {
            let (line, message) = l.split_once('|').unwrap();
            (format!("line {line}"), message.to_string())
        })
        .collect();
    assert_eq!(logged, rejected);
    // Into the existing table: rows and files unchanged.
    let files = |server: &Server| {
        let mut v: Vec<String> = walk(&server.root.join("db"));
        v.sort();
        v
    };
    let before = files(&server);
    let report = psql(&server, &format!("{statement} DRY RUN true;"));
    assert!(report.contains("table|weather|existing|"), "{report}");
    assert_eq!(files(&server), before);
    assert_eq!(
        scalar(&client, "select count(*) from weather").await,
        reference.rows.to_string()
    );
    // ABORT fails at the first bad line, and says which.
    let e = client
        .simple_query(&format!("{statement} ON ERROR ABORT DRY RUN true"))
        .await
        .unwrap_err();
    let text = e.as_db_error().unwrap().message().to_string();
    assert!(
        text.contains("dry run") && text.contains(&format!("line={first_bad}")),
        "{text}"
    );
    assert_eq!(files(&server), before);
}

/// Every file below `dir`, as paths relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}
