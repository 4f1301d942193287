//! Every way in besides COPY: `/imp`, Arc's `/api/v1/import/csv` and
//! InfluxDB 3's Parquet bulk import with reqwest and curl, COPY FROM STDIN
//! and COPY TO STDOUT with tokio-postgres and psql, compressed COPY files.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use futures::SinkExt;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::common::{Server, copy_in, enc, eventually, partition_dirs, scalar, scratch};

async fn sql_json(server: &Server, query: &str) -> Value {
    let url = server.url(&format!("/exec?query={}", enc(query)));
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// The dataset of a query through `/exec`.
async fn dataset(server: &Server, query: &str) -> Value {
    let v = sql_json(server, query).await;
    assert!(v.get("dataset").is_some(), "{query}: {v}");
    v["dataset"].clone()
}

async fn table_exists(server: &Server, name: &str) -> bool {
    let v = sql_json(server, "SHOW TABLES").await;
    v["dataset"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r[0] == json!(name))
}

fn file_part(name: &str, bytes: Vec<u8>) -> Part {
    Part::bytes(bytes).file_name(name.to_string())
}

async fn post_form(server: &Server, path: &str, form: Form) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(server.url(path))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

const SENSORS: &str = "ts,sensor,temperature,humidity\n\
2024-01-01T00:00:00.000000Z,s1,20.5,40\n\
2024-01-01T12:00:00.000000Z,s2,21.5,41\n\
2024-01-02T00:00:00.000000Z,s1,bad,42\n\
2024-01-03T00:00:00.000000Z,s3,23.5,43\n";

#[tokio::test]
async fn imp_uploads_like_questdb() {
    let root = scratch("imp").join("data");
    let server = Server::start(&root);

    // Name from the file, header and types detected, DAY by default with a
    // timestamp, JSON with per-column errors (the schema makes
    // temperature DOUBLE, so `bad` is one rejected row).
    let form = Form::new()
        .text(
            "schema",
            r#"[{"name":"temperature","type":"DOUBLE"},{"name":"sensor","type":"SYMBOL"}]"#,
        )
        .part("data", file_part("Sensor Data.csv", SENSORS.into()));
    let (s, body) = post_form(&server, "/imp?timestamp=ts&fmt=json", form).await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "OK");
    assert_eq!(
        v["location"], "SensorData",
        "the name as QuestDB makes it from the file name"
    );
    assert_eq!(
        (v["rowsImported"].clone(), v["rowsRejected"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(v["header"], true);
    assert_eq!(v["partitionBy"], "DAY");
    assert_eq!(v["timestamp"], "ts");
    assert_eq!(
        v["columns"],
        json!([
            {"name": "ts", "type": "TIMESTAMP", "size": 8, "errors": 0},
            {"name": "sensor", "type": "SYMBOL", "size": 4, "errors": 0},
            {"name": "temperature", "type": "DOUBLE", "size": 8, "errors": 1},
            {"name": "humidity", "type": "INT", "size": 4, "errors": 0},
        ])
    );
    assert_eq!(
        dataset(&server, "SELECT count(*), sum(temperature) FROM sensordata").await,
        json!([[3, 65.5]])
    );
    // The rejected row names its line.
    let errors = dataset(
        &server,
        "SELECT line, column_name, value FROM sys.text_import_errors",
    )
    .await;
    assert_eq!(errors, json!([[4, "temperature", "bad"]]));

    // Tabular answer; a semicolon file whose delimiter is detected; no
    // header detected on an all-text first row is still fine with forceHeader.
    let semi = SENSORS.replace(',', ";").replace("bad", "22.5");
    let form = Form::new().part("data", file_part("semi.csv", semi.into_bytes()));
    let (s, body) = post_form(&server, "/imp?name=semi&forceHeader=true", form).await;
    assert_eq!(s, 200, "{body}");
    let line = |words: &[&str]| {
        body.lines()
            .any(|l| words.iter().all(|w| l.split('|').any(|c| c.trim() == *w)))
    };
    assert!(line(&["Rows imported", "4"]), "{body}");
    assert!(line(&["temperature", "DOUBLE", "0"]), "{body}");
    assert!(line(&["Partition by", "NONE"]), "{body}");

    // Appending (create=false) to an existing table; then overwrite.
    let form = Form::new().part(
        "data",
        file_part("x.csv", SENSORS.replace("bad", "1").into()),
    );
    let (s, body) = post_form(
        &server,
        "/imp?name=semi&create=false&fmt=json&partitionBy=DAY",
        form,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["rowsImported"], 4);
    assert_eq!(v["warnings"], json!(["Existing table PartitionBy is used"]));
    assert_eq!(
        dataset(&server, "SELECT count(*) FROM semi").await,
        json!([[8]])
    );
    let form = Form::new().part("data", file_part("x.csv", "a,b\n1,2\n3,4\n".into()));
    let (s, body) = post_form(&server, "/imp?name=semi&overwrite=true&fmt=json", form).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        dataset(&server, "SELECT * FROM semi").await,
        json!([[1, 2], [3, 4]])
    );

    // create=false against a missing table: nothing is created.
    let form = Form::new().part("data", file_part("x.csv", SENSORS.into()));
    let (s, body) = post_form(&server, "/imp?name=missing&create=false&fmt=json", form).await;
    assert_eq!(
        (s, body.as_str()),
        (400, r#"{"status":"table does not exist [table=missing]"}"#)
    );
    assert!(!table_exists(&server, "missing").await);

    // atomicity=abort: the bad row fails the request and nothing is written.
    let form = Form::new()
        .text("schema", r#"[{"name":"temperature","type":"DOUBLE"}]"#)
        .part("data", file_part("x.csv", SENSORS.into()));
    let (s, body) = post_form(&server, "/imp?name=strict&atomicity=abort&fmt=json", form).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("line=4"), "{body}");
    assert!(!table_exists(&server, "strict").await);

    // skipLev keeps rows with extra values; without it they are rejected.
    let extra = "a,b\n1,2\n3,4,5\n";
    for (flag, rows) in [("false", 1), ("true", 2)] {
        let form = Form::new().part("data", file_part("x.csv", extra.into()));
        let path = format!("/imp?name=lev{flag}&skipLev={flag}&fmt=json");
        let (s, body) = post_form(&server, &path, form).await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["rowsImported"], rows, "{body}");
    }

    // Compressed bodies (gzip and zstd), a tab-separated file.
    let tsv = SENSORS.replace(',', "\t").replace("bad", "22.5");
    let zst = zstd::stream::encode_all(tsv.as_bytes(), 3).unwrap();
    for (name, bytes) in [("g.tsv.gz", gzip(tsv.as_bytes())), ("z.tsv.zst", zst)] {
        let form = Form::new().part("data", file_part(name, bytes));
        let (s, body) =
            post_form(&server, "/imp?fmt=json&timestamp=ts&partitionBy=HOUR", form).await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["rowsImported"], 4, "{body}");
        let table = v["location"].as_str().unwrap().to_string();
        assert_eq!(
            dataset(
                &server,
                &format!("SELECT count(*), max(temperature) FROM {table}")
            )
            .await,
            json!([[4, 23.5]])
        );
    }

    // curl, as the documentation shows it.
    let dir = root.parent().unwrap();
    let file = dir.join("weather.csv");
    std::fs::write(&file, SENSORS.replace("bad", "19.0")).unwrap();
    let (s, body) = curl(&[
        "-F",
        &format!("data=@{}", file.display()),
        &server.url("/imp?fmt=json&timestamp=ts&partitionBy=MONTH"),
    ]);
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["location"].clone(), v["rowsImported"].clone()),
        (json!("weather"), json!(4))
    );
    assert_eq!(
        dataset(
            &server,
            "SELECT count(*) FROM weather WHERE ts >= '2024-01-02'"
        )
        .await,
        json!([[2]])
    );
}

#[tokio::test]
async fn imp_refuses_bad_uploads_without_writing() {
    let root = scratch("imp-bad").join("data");
    let server = Server::start_with(&root, &[("QDB_HTTP_MULTIPART_MAX_SIZE", "64k")]);
    let client = reqwest::Client::new();

    // No boundary.
    let resp = client
        .post(server.url("/imp?fmt=json&name=t1"))
        .header("Content-Type", "multipart/form-data")
        .body(SENSORS)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("boundary"));

    let cases: Vec<(&str, Form, u16, &str)> = vec![
        (
            "no data part",
            Form::new().part("file", file_part("a.csv", SENSORS.into())),
            400,
            "no 'data' part",
        ),
        (
            "unknown column in schema",
            Form::new()
                .text("schema", r#"[{"name":"nope","type":"INT"}]"#)
                .part("data", file_part("a.csv", SENSORS.into())),
            400,
            "not in the file [column=nope]",
        ),
        (
            "schema not JSON",
            Form::new()
                .text("schema", "{oops")
                .part("data", file_part("a.csv", SENSORS.into())),
            400,
            "schema is not valid JSON",
        ),
        (
            "truncated gzip",
            Form::new().part("data", {
                let g = gzip(SENSORS.repeat(20).as_bytes());
                file_part("a.csv.gz", g[..g.len() / 2].to_vec())
            }),
            400,
            "gzip stream is corrupt or truncated",
        ),
        (
            "gzip bomb",
            Form::new().part("data", file_part("a.csv.gz", gzip(&vec![b'1'; 8 << 20]))),
            413,
            "decompressed data exceeds the size limit",
        ),
        (
            "over the limit",
            Form::new().part(
                "data",
                file_part("a.csv", SENSORS.repeat(1000).into_bytes()),
            ),
            413,
            "upload exceeds the size limit",
        ),
    ];
    for (what, form, status, message) in cases {
        let (s, body) = post_form(&server, "/imp?fmt=json&name=t1", form).await;
        assert_eq!(s, status, "{what}: {body}");
        assert!(body.contains(message), "{what}: {body}");
        assert!(
            !table_exists(&server, "t1").await,
            "{what} created the table"
        );
    }
    // Scratch files of refused uploads are gone.
    let uploads = root.join("tmp").join("uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn arc_csv_import() {
    let root = scratch("arc").join("data");
    let server = Server::start_with(&root, &[("QDB_HTTP_MULTIPART_MAX_SIZE", "64k")]);
    let client = reqwest::Client::new();
    // Two metadata rows, tab-separated, epoch seconds, time column `ts`.
    let tsv = "exported by x\nunits: C\nts\ttemperature\tdevice\n1736899200\t21.5\td1\n1736902800\t22.5\td2\n1736906400\t23\td1\n1736906401\t24\td2\n";
    let form = Form::new().part("file", file_part("telemetry.tsv.gz", gzip(tsv.as_bytes())));
    let resp = client
        .post(server.url("/api/v1/import/csv?measurement=telemetry&time_column=ts&time_format=epoch_s&delimiter=%09&skip_rows=2"))
        .header("X-Arc-Database", "satellites")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    let r = &v["result"];
    assert_eq!(r["database"], "satellites");
    assert_eq!(r["measurement"], "telemetry");
    assert_eq!(r["rows_imported"], 4);
    assert_eq!(r["partitions_created"], 3);
    assert_eq!(r["time_range_min"], "2025-01-15T00:00:00Z");
    assert_eq!(r["time_range_max"], "2025-01-15T02:00:01Z");
    assert_eq!(r["columns"], json!(["time", "temperature", "device"]));
    assert!(r["duration_ms"].is_u64());
    assert_eq!(
        dataset(
            &server,
            "SELECT time, temperature FROM satellites.telemetry ORDER BY time LIMIT 1"
        )
        .await,
        json!([["2025-01-15T00:00:00.000000Z", 21.5]])
    );
    let ddl = dataset(&server, "SHOW CREATE TABLE satellites.telemetry").await;
    assert!(
        ddl[0][0].as_str().unwrap().contains("PARTITION BY HOUR"),
        "{ddl}"
    );
    // Three hour directories on disk.
    let hours = partition_dirs(&root.join("db").join("satellites").join("telemetry"));
    assert_eq!(hours.len(), 3, "{hours:?}");
    assert!(hours.contains(&"2025-01-15T01".to_string()), "{hours:?}");

    // Millisecond epochs into the same measurement with `db` and curl.
    let dir = root.parent().unwrap();
    let file = dir.join("more.csv");
    std::fs::write(&file, "time,temperature,device\n1736913600000,30,d3\n").unwrap();
    let (s, body) = curl(&[
        "-H",
        "X-Arc-Database: satellites",
        "-F",
        &format!("file=@{}", file.display()),
        &server.url("/api/v1/import/csv?measurement=telemetry&time_format=epoch_ms"),
    ]);
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        dataset(
            &server,
            "SELECT count(*), max(time) FROM satellites.telemetry"
        )
        .await,
        json!([[5, "2025-01-15T04:00:00.000000Z"]])
    );

    // No time_format: the unit of integer times follows their size
    // (nanoseconds here, as InfluxDB writes them).
    let resp = client
        .post(server.url("/api/v1/import/csv?measurement=ns&db=satellites"))
        .multipart(Form::new().part(
            "file",
            file_part(
                "ns.csv",
                b"time,v\n1736899200000000000,1\n1736899200500000000,2\n".to_vec(),
            ),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        dataset(&server, "SELECT max(time) FROM satellites.ns").await,
        json!([["2025-01-15T00:00:00.500000000Z"]])
    );

    // Missing database, measurement, file; too large; a bad time format.
    let form = || Form::new().part("file", file_part("a.csv", b"time,x\n1,2\n".to_vec()));
    for (url, db, status, message) in [
        (
            "/api/v1/import/csv?measurement=m",
            None,
            400,
            "database is required",
        ),
        (
            "/api/v1/import/csv",
            Some("d"),
            400,
            "measurement is required",
        ),
        (
            "/api/v1/import/csv?measurement=m&time_format=iso",
            Some("d"),
            400,
            "invalid time_format",
        ),
    ] {
        let mut req = client.post(server.url(url)).multipart(form());
        if let Some(db) = db {
            req = req.header("X-Arc-Database", db);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{url}");
        assert!(resp.text().await.unwrap().contains(message), "{url}");
    }
    let resp = client
        .post(server.url("/api/v1/import/csv?measurement=m&db=d"))
        .multipart(Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("file is required"));
    let big = format!("time,x\n{}", "1736899200000000,1\n".repeat(10_000));
    let resp = client
        .post(server.url("/api/v1/import/csv?measurement=big&db=d"))
        .multipart(Form::new().part("file", file_part("big.csv", big.into_bytes())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(
        dataset(
            &server,
            "SELECT count(*) FROM sys.tables WHERE table_name = 'big'"
        )
        .await,
        json!([[0]])
    );
}

/// A Parquet file as InfluxDB would take it: time (ns), a double, a tag.
fn parquet_file(path: &Path, rows: i64, with_time: bool) {
    let mut fields = vec![
        Field::new("usage", DataType::Float64, true),
        Field::new("host", DataType::Utf8, true),
    ];
    let base = 1_706_745_600_000_000_000i64; // 2024-02-01
    let mut columns: Vec<datafusion::arrow::array::ArrayRef> = vec![
        Arc::new(Float64Array::from_iter_values(
            (0..rows).map(|i| i as f64 * 0.5),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("h{}", i % 3)),
        )),
    ];
    if with_time {
        fields.insert(
            0,
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        );
        columns.insert(
            0,
            Arc::new(TimestampNanosecondArray::from_iter_values(
                (0..rows).map(|i| base + i * 3_600_000_000_000),
            )),
        );
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

async fn bulk_post(server: &Server, token: Option<&str>, form: Form) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(server.url("/api/v3/enterprise/import"))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn bulk_jobs(server: &Server) -> Vec<Value> {
    reqwest::Client::new()
        .get(server.url("/api/v3/enterprise/import"))
        .bearer_auth("operator")
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

fn bulk_form(file: &Path, table: &str, metadata: Option<&str>) -> Form {
    let mut f = Form::new()
        .text("database", "public")
        .text("table", table.to_string())
        .part(
            "file_bytes",
            Part::bytes(std::fs::read(file).unwrap()).file_name("cpu.parquet"),
        );
    if let Some(m) = metadata {
        f = f.text("column_metadata", m.to_string());
    }
    f
}

/// The Parquet file the bulk tests upload (48 rows) and a server with the
/// token `operator`, scheduler poll `poll_ms`, and the table `cpu`.
async fn bulk_server(
    name: &str,
    poll_ms: &str,
) -> (
    Server,
    std::path::PathBuf,
    std::path::PathBuf,
    tokio_postgres::Client,
) {
    let root = scratch(name).join("data");
    let pq = root.parent().unwrap().join("cpu.parquet");
    parquet_file(&pq, 48, true);
    let server = Server::start_with(
        &root,
        &[
            ("QDB_HTTP_AUTH_TOKEN", "operator"),
            ("QDB_HTTP_BULK_IMPORT_POLL_MS", poll_ms),
        ],
    );
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE cpu (time TIMESTAMP, usage DOUBLE, host SYMBOL) TIMESTAMP(time) PARTITION BY DAY")
        .await
        .unwrap();
    (server, root, pq, client)
}

/// Waits until the job `id` has ended; returns its record.
async fn bulk_job_done(server: &Server, id: &Value) -> Value {
    eventually(
        "the job to be applied",
        Duration::from_secs(60),
        || async move {
            let jobs = bulk_jobs(server).await;
            let j = jobs
                .iter()
                .find(|j| j["upload_uuid"] == *id)
                .cloned()
                .expect("job kept");
            (j["status"] == "completed" || j["status"] == "errored").then_some(j)
        },
    )
    .await
}

#[tokio::test]
async fn bulk_import_needs_the_token() {
    // Without a configured token the endpoints refuse.
    let root = scratch("bulk-notoken").join("data");
    let pq = root.parent().unwrap().join("cpu.parquet");
    parquet_file(&pq, 48, true);
    let server = Server::start(&root);
    let (s, v) = bulk_post(&server, None, bulk_form(&pq, "cpu", None)).await;
    assert_eq!(s, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("http.auth.token"));
    drop(server);
    let (server, _root, pq, _client) = bulk_server("bulk-token", "3600000").await;
    // Token missing, then wrong.
    let (s, _) = bulk_post(&server, None, bulk_form(&pq, "cpu", None)).await;
    assert_eq!(s, 401);
    let (s, _) = bulk_post(&server, Some("wrong"), bulk_form(&pq, "cpu", None)).await;
    assert_eq!(s, 403);
    let resp = reqwest::get(server.url("/api/v3/enterprise/import"))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // The token guards every route, uploads included.
    let http = reqwest::Client::new();
    for (post, path) in [
        (false, "/exec?query=select%201"),
        (false, "/exp?query=select%201"),
        (true, "/imp?name=guarded"),
        (true, "/api/v1/import/csv?measurement=guarded&db=d"),
    ] {
        for (token, status) in [(None, 401), (Some("wrong"), 403), (Some("operator"), 200)] {
            let mut req = if post {
                let part = if path.starts_with("/imp") {
                    "data"
                } else {
                    "file"
                };
                let csv = b"time,x\n2024-01-01T00:00:00.000000Z,1\n".to_vec();
                http.post(server.url(path))
                    .multipart(Form::new().part(part, file_part("a.csv", csv)))
            } else {
                http.get(server.url(path))
            };
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), status, "{path} with {token:?}");
        }
    }
}

/// A scheduler that does not run yet: the job stays staged across a
/// restart, then is applied.
#[tokio::test]
async fn bulk_job_staged_survives_a_restart() {
    let (server, root, pq, client) = bulk_server("bulk-staged", "3600000").await;
    let (s, job) = bulk_post(&server, Some("operator"), bulk_form(&pq, "cpu", None)).await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(job["status"], "staged");
    assert_eq!(job["row_count"], 48);
    assert_eq!(job["filename"], "cpu.parquet");
    assert_eq!(job["min_timestamp_ns"], 1_706_745_600_000_000_000i64);
    assert_eq!(
        job["max_timestamp_ns"],
        1_706_745_600_000_000_000i64 + 47 * 3_600_000_000_000
    );
    assert_eq!(job["size_bytes"], std::fs::metadata(&pq).unwrap().len());
    assert_eq!(job["iox_parquet"], false);
    for key in [
        "upload_uuid",
        "db_id",
        "table_id",
        "created_at",
        "last_updated_at",
    ] {
        assert!(!job[key].is_null(), "{key} in {job}");
    }
    assert!(job.get("started_at").is_some() && job.get("completed_at").is_some());
    assert!(job.get("last_message").is_some());
    assert_eq!(scalar(&client, "SELECT count(*) FROM cpu").await, "0");
    drop(client);

    let server = {
        assert!(server.stop().success());
        Server::start_with(
            &root,
            &[
                ("QDB_HTTP_AUTH_TOKEN", "operator"),
                ("QDB_HTTP_BULK_IMPORT_POLL_MS", "50"),
            ],
        )
    };
    let done = bulk_job_done(&server, &job["upload_uuid"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["started_at"].as_i64().unwrap() <= done["completed_at"].as_i64().unwrap());
    let client = server.client().await;
    assert_eq!(scalar(&client, "SELECT count(*) FROM cpu").await, "48");
    assert_eq!(
        scalar(&client, "SELECT count(DISTINCT host) FROM cpu").await,
        "3"
    );
    assert_eq!(
        scalar(&client, "SELECT max(time) FROM cpu").await,
        "2024-02-02 23:00:00.000000"
    );
}

#[tokio::test]
async fn bulk_job_maps_columns_by_metadata() {
    let (server, _root, pq, client) = bulk_server("bulk-rename", "50").await;
    // column_metadata renames: usage -> load.
    client
        .batch_execute("CREATE TABLE cpu2 (time TIMESTAMP, load DOUBLE, host VARCHAR) TIMESTAMP(time) PARTITION BY DAY")
        .await
        .unwrap();
    let (s, job) = bulk_post(
        &server,
        Some("operator"),
        bulk_form(&pq, "cpu2", Some(r#"{"usage": "load"}"#)),
    )
    .await;
    assert_eq!(s, 200, "{job}");
    eventually("the renamed job's rows", Duration::from_secs(60), || {
        let client = &client;
        async move { (scalar(client, "SELECT count(*) FROM cpu2").await == "48").then_some(()) }
    })
    .await;
    assert_eq!(scalar(&client, "SELECT sum(load) FROM cpu2").await, "564.0");
}

#[tokio::test]
async fn bulk_refusals_write_nothing() {
    let (server, root, pq, client) = bulk_server("bulk-refusals", "50").await;
    let dir = root.parent().unwrap().to_path_buf();
    // Refusals, each with its status; nothing reaches the table.
    let empty = dir.join("empty.parquet");
    parquet_file(&empty, 0, true);
    let no_time = dir.join("notime.parquet");
    parquet_file(&no_time, 5, false);
    let truncated = dir.join("trunc.parquet");
    let bytes = std::fs::read(&pq).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let csv = dir.join("data.parquet");
    std::fs::write(&csv, SENSORS).unwrap();
    let zero = dir.join("zero.parquet");
    std::fs::write(&zero, b"").unwrap();
    client
        .batch_execute("CREATE TABLE cpu3 (time TIMESTAMP, usage TIMESTAMP, host VARCHAR) TIMESTAMP(time) PARTITION BY DAY")
        .await
        .unwrap();
    let cases: Vec<(&str, Form, u16, &str)> = vec![
        (
            "empty",
            bulk_form(&empty, "cpu", None),
            400,
            "empty Parquet file",
        ),
        (
            "no bytes",
            bulk_form(&zero, "cpu", None),
            400,
            "empty Parquet file",
        ),
        (
            "truncated",
            bulk_form(&truncated, "cpu", None),
            400,
            "invalid Parquet file",
        ),
        (
            "not parquet",
            bulk_form(&csv, "cpu", None),
            400,
            "invalid Parquet file",
        ),
        (
            "metadata not JSON",
            bulk_form(&pq, "cpu", Some("{nope")),
            400,
            "malformed column_metadata",
        ),
        (
            "metadata names a missing column",
            bulk_form(&pq, "cpu", Some(r#"{"cpu_pct": "usage"}"#)),
            400,
            "not in the file [column=cpu_pct]",
        ),
        (
            "mapping to a missing table column",
            bulk_form(&pq, "cpu", Some(r#"{"usage": "nope"}"#)),
            400,
            "has no column 'nope'",
        ),
        (
            "no time column",
            bulk_form(&no_time, "cpu", None),
            400,
            "missing time column",
        ),
        (
            "type mismatch",
            bulk_form(&pq, "cpu3", None),
            400,
            "column type mismatch",
        ),
        (
            "unknown table",
            bulk_form(&pq, "nope", None),
            404,
            "table does not exist",
        ),
        (
            "unknown database",
            Form::new()
                .text("database", "nodb")
                .text("table", "cpu")
                .part(
                    "file_bytes",
                    Part::bytes(bytes.clone()).file_name("cpu.parquet"),
                ),
            404,
            "schema does not exist",
        ),
        (
            "missing file_bytes",
            Form::new().text("database", "public").text("table", "cpu"),
            400,
            "missing file_bytes",
        ),
        (
            "missing table",
            Form::new().text("database", "public").part(
                "file_bytes",
                Part::bytes(bytes.clone()).file_name("cpu.parquet"),
            ),
            400,
            "missing table",
        ),
    ];
    let jobs_before = bulk_jobs(&server).await.len();
    for (what, form, status, message) in cases {
        let (s, v) = bulk_post(&server, Some("operator"), form).await;
        assert_eq!(s, status, "{what}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(message),
            "{what}: {v}"
        );
    }
    let resp = reqwest::Client::new()
        .post(server.url("/api/v3/enterprise/import"))
        .bearer_auth("operator")
        .header("Content-Type", "multipart/form-data")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400, "no boundary");
    assert_eq!(bulk_jobs(&server).await.len(), jobs_before);
    assert_eq!(scalar(&client, "SELECT count(*) FROM cpu").await, "0");
    assert_eq!(scalar(&client, "SELECT count(*) FROM cpu3").await, "0");
}

/// Listing with curl, and a crash after a job's commit but before its
/// status was written: the restart finds the job's files in the table and
/// does not import it twice.
#[tokio::test]
async fn bulk_job_committed_before_its_status_is_recovered() {
    let (server, root, pq, client) = bulk_server("bulk-recovery", "50").await;
    let (s, job) = bulk_post(&server, Some("operator"), bulk_form(&pq, "cpu", None)).await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(
        bulk_job_done(&server, &job["upload_uuid"]).await["status"],
        "completed"
    );
    // curl lists the jobs with the token.
    let (s, body) = curl(&[
        "-H",
        "Authorization: Bearer operator",
        &server.url("/api/v3/enterprise/import"),
    ]);
    assert_eq!(s, 200);
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 1);
    assert!(list.iter().all(|j| j["status"] == "completed"), "{body}");

    // A crash after the commit but before the status write: the restart
    // finds the job's files in the table and does not import it twice.
    drop(client);
    assert!(server.stop().success());
    let jobs_file = root.join("bulk").join("jobs.json");
    let mut jobs: Vec<Value> = serde_json::from_slice(&std::fs::read(&jobs_file).unwrap()).unwrap();
    jobs[0]["status"] = json!("importing");
    jobs[0]["completed_at"] = Value::Null;
    std::fs::write(&jobs_file, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let server = Server::start_with(
        &root,
        &[
            ("QDB_HTTP_AUTH_TOKEN", "operator"),
            ("QDB_HTTP_BULK_IMPORT_POLL_MS", "50"),
        ],
    );
    // Start-up recognises the job by its files: completed, not run again.
    let list = eventually(
        "the recovered job's status",
        Duration::from_secs(30),
        || {
            let server = &server;
            async move {
                let list = bulk_jobs(server).await;
                (list[0]["status"] != "importing").then_some(list)
            }
        },
    )
    .await;
    assert_eq!(list[0]["status"], "completed", "{list:?}");
    assert!(
        list[0]["last_message"]
            .as_str()
            .unwrap()
            .contains("recovered")
    );
    let client = server.client().await;
    assert_eq!(scalar(&client, "SELECT count(*) FROM cpu").await, "48");
}

/// A server with the table the COPY FROM STDIN tests write into.
async fn stdin_server(name: &str) -> (Server, std::path::PathBuf, tokio_postgres::Client) {
    let root = scratch(name).join("data");
    let server = Server::start(&root);
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (ts TIMESTAMP, name VARCHAR, v DOUBLE, n INT) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .unwrap();
    (server, root, client)
}

/// Six rows through COPY FROM STDIN in CSV and text formats, with a
/// header split across messages, a column list, NULL and DELIMITER.
async fn seed_through_stdin(client: &tokio_postgres::Client) {
    // CSV with a header, in pieces that split records.
    let n = copy_in(
        client,
        "COPY t FROM STDIN WITH (FORMAT csv, HEADER true)",
        &[
            b"ts,name,v,n\n2024-01-01T00:00:00.000000Z,a,1.5,1\n2024-01-0",
            b"2T00:00:00.000000Z,\"b,\"\"c\"\"\",2.5,\n2024-01-03T00:00:00.000000Z,,3.5,3\n",
        ],
    )
    .await;
    assert_eq!(n.unwrap(), 3);

    // Text format: tab, \N, escapes; a column list in another order.
    let n = copy_in(
        client,
        "COPY t (n, ts, name) FROM STDIN",
        &[b"4\t2024-01-04T00:00:00.000000Z\tx\\ty\n\\N\t2024-01-05T00:00:00.000000Z\t\\N\n"],
    )
    .await;
    assert_eq!(n.unwrap(), 2);

    // NULL and DELIMITER options in CSV.
    let n = copy_in(
        client,
        "COPY t FROM STDIN (FORMAT csv, DELIMITER ';', NULL 'NA')",
        &[b"2024-01-06T00:00:00.000000Z;NA;6.5;NA\n"],
    )
    .await;
    assert_eq!(n.unwrap(), 1);
}

#[tokio::test]
async fn copy_from_stdin_csv_and_text_formats() {
    let (_server, _root, client) = stdin_server("stdin-formats").await;
    seed_through_stdin(&client).await;
    let rows = client
        .query("SELECT name, v, n FROM t ORDER BY ts", &[])
        .await
        .unwrap();
    let got: Vec<(Option<String>, Option<f64>, Option<i32>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("a".into()), Some(1.5), Some(1)),
            (Some("b,\"c\"".into()), Some(2.5), None),
            (None, Some(3.5), Some(3)),
            (Some("x\ty".into()), None, Some(4)),
            (None, None, None),
            (None, Some(6.5), None),
        ]
    );
}

#[tokio::test]
async fn copy_from_stdin_bad_row_fails_the_whole_copy() {
    let (_server, _root, client) = stdin_server("stdin-bad").await;
    // A bad value fails the COPY, naming the line; nothing is added.
    let two = b"2024-01-07T00:00:00.000000Z,ok,1,1\n2024-01-08T00:00:00.000000Z,bad,x,1\n";
    let err = copy_in(&client, "COPY t FROM STDIN (FORMAT csv)", &[two])
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("server error");
    assert_eq!(db.code().code(), "22P02");
    assert!(db.message().contains("line=2"), "{}", db.message());
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "0");
    // ON_ERROR ignore keeps the good row.
    let n = copy_in(
        &client,
        "COPY t FROM STDIN (FORMAT csv, ON_ERROR ignore)",
        &[two],
    )
    .await;
    assert_eq!(n.unwrap(), 1);
}

#[tokio::test]
async fn copy_from_stdin_abandoned_changes_nothing() {
    let (server, root, client) = stdin_server("stdin-abandoned").await;
    // CopyFail (a dropped sink) leaves the table unchanged.
    {
        let sink = client
            .copy_in::<_, bytes::Bytes>("COPY t FROM STDIN (FORMAT csv)")
            .await
            .unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(
            b"2024-01-09T00:00:00.000000Z,gone,1,1\n",
        ))
        .await
        .unwrap();
    }
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "0");

    // A connection that drops mid-COPY leaves it unchanged too.
    let conn = format!(
        "host={} port={} user=admin password=quest dbname=qdb",
        server.pg.ip(),
        server.pg.port()
    );
    let (other, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    let sink = other
        .copy_in::<_, bytes::Bytes>("COPY t FROM STDIN (FORMAT csv)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"2024-01-10T00:00:00.000000Z,gone,1,1\n",
    ))
    .await
    .unwrap();
    task.abort();
    let _ = task.await;
    drop(other);
    // The server noticed once it removed the spool of the dropped copy.
    let uploads = root.join("tmp").join("uploads");
    eventually(
        "the dropped copy's spool to go",
        Duration::from_secs(30),
        || {
            let uploads = &uploads;
            async move {
                let left = std::fs::read_dir(uploads).map_or(0, |d| d.count());
                (left == 0).then_some(())
            }
        },
    )
    .await;
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "0");
}

#[tokio::test]
async fn copy_from_stdin_refusals_keep_the_connection() {
    let (_server, _root, client) = stdin_server("stdin-refused").await;
    // Unknown table; an unknown format; a quote that is the delimiter.
    for (sql, code) in [
        ("COPY t FROM STDIN (FORMAT json)", "0A000"),
        ("COPY t FROM STDIN (FORMAT csv, QUOTE ',')", "22023"),
        ("COPY nope FROM STDIN", "42P01"),
    ] {
        match client.copy_in::<_, bytes::Bytes>(sql).await {
            Ok(_) => panic!("{sql} was accepted"),
            Err(e) => assert_eq!(
                e.as_db_error().map(|d| d.code().code()),
                Some(code),
                "{sql}: {e:?}"
            ),
        }
        // The connection stays usable.
        assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "0");
    }
}

#[tokio::test]
async fn copy_to_stdout_csv_and_text() {
    let (_server, _root, client) = stdin_server("stdout").await;
    seed_through_stdin(&client).await;
    // COPY TO STDOUT, CSV with a header and text.
    let stream = client
        .copy_out("COPY (SELECT ts, name, n FROM t WHERE ts < '2024-01-03' ORDER BY ts) TO STDOUT WITH (FORMAT csv, HEADER)")
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(stream).await.unwrap();
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    assert_eq!(
        text,
        "ts,name,n\n2024-01-01 00:00:00,a,1\n2024-01-02 00:00:00,\"b,\"\"c\"\"\",\n"
    );
    let stream = client.copy_out("COPY t TO STDOUT").await.unwrap();
    let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(stream).await.unwrap();
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    assert!(
        text.contains("2024-01-04 00:00:00\tx\\ty\t\\N\t4\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 6);
}

#[tokio::test]
async fn psql_copy_both_ways() {
    let (server, root, _client) = stdin_server("stdin-psql").await;
    // psql's \copy, both directions.
    let dir = root.parent().unwrap();
    let input = dir.join("in.csv");
    std::fs::write(
        &input,
        "ts,name,v,n\r\n2024-02-01T00:00:00.000000Z,psql,9.5,9\r\n",
    )
    .unwrap();
    let out = dir.join("out.csv");
    let psql = |cmd: &str| {
        let o = std::process::Command::new("psql")
            .args([
                "-h",
                &server.pg.ip().to_string(),
                "-p",
                &server.pg.port().to_string(),
            ])
            .args([
                "-U",
                "admin",
                "-d",
                "qdb",
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                cmd,
            ])
            .env("PGPASSWORD", "quest")
            .output()
            .expect("psql is installed");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (ok, text) = psql(&format!(
        "\\copy t from '{}' with (format csv, header)",
        input.display()
    ));
    assert!(ok && text.contains("COPY 1"), "{text}");
    let (ok, text) = psql(&format!(
        "\\copy (select name, n from t where name = 'psql') to '{}' csv",
        out.display()
    ));
    assert!(ok, "{text}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "psql,9\n");
    let (ok, text) = psql("\\copy t from stdin");
    assert!(ok && text.contains("COPY 0"), "{text}");
}

#[tokio::test]
async fn copy_from_stdin_column_list_with_header() {
    let (_server, _root, client) = stdin_server("stdin-columns").await;
    // A column list with HEADER: the header line is skipped, columns map
    // by the list, and error lines are the client's own line numbers.
    let n = copy_in(
        &client,
        "COPY t (name, ts) FROM STDIN (FORMAT csv, HEADER)",
        &[b"anything,here\nlisted,2024-03-01T00:00:00.000000Z\n"],
    )
    .await;
    assert_eq!(n.unwrap(), 1);
    assert_eq!(
        scalar(&client, "SELECT name FROM t WHERE ts = '2024-03-01'").await,
        "listed"
    );
    let err = copy_in(
        &client,
        "COPY t (n, ts) FROM STDIN (FORMAT csv)",
        &[b"1,2024-03-02T00:00:00.000000Z\nx,2024-03-03T00:00:00.000000Z\n"],
    )
    .await
    .unwrap_err();
    let message = err
        .as_db_error()
        .expect("server error")
        .message()
        .to_string();
    assert!(message.contains("line=2"), "{message}");
}

#[tokio::test]
async fn copy_reads_compressed_files() {
    let root = scratch("copy-gz").join("data");
    let server = Server::start(&root);
    let import = root.join("import");
    std::fs::create_dir_all(&import).unwrap();
    let csv = SENSORS.replace("bad", "22.5");
    std::fs::write(import.join("s.csv.gz"), gzip(csv.as_bytes())).unwrap();
    std::fs::write(
        import.join("s.csv.zst"),
        zstd::stream::encode_all(csv.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let broken = gzip(csv.repeat(50).as_bytes());
    std::fs::write(import.join("broken.csv.gz"), &broken[..broken.len() / 2]).unwrap();
    let client = server.client().await;
    for (table, file) in [
        ("g", "s.csv.gz"),
        ("z", "s.csv.zst"),
        ("b", "broken.csv.gz"),
    ] {
        let id = scalar(
            &client,
            &format!("COPY {table} FROM '{file}' WITH HEADER true TIMESTAMP 'ts' PARTITION BY DAY"),
        )
        .await;
        let (status, message) = eventually("the import to end", Duration::from_secs(60), || {
            let client = &client;
            let id = &id;
            async move {
                let rows = client
                    .query(
                        "SELECT status, message FROM sys.text_import_log WHERE id = $1 AND phase IS NULL AND status <> 'started'",
                        &[id],
                    )
                    .await
                    .unwrap();
                let r = rows.first()?;
                Some((r.get::<_, String>(0), r.get::<_, Option<String>>(1)))
            }
        })
        .await;
        if table == "b" {
            assert_eq!(status, "failed");
            assert!(
                message
                    .unwrap()
                    .contains("gzip stream is corrupt or truncated")
            );
            assert_eq!(
                scalar(
                    &client,
                    "SELECT count(*) FROM sys.tables WHERE table_name = 'b'"
                )
                .await,
                "0"
            );
        } else {
            assert_eq!(status, "finished", "{message:?}");
            assert_eq!(
                scalar(&client, &format!("SELECT count(*) FROM {table}")).await,
                "4"
            );
        }
    }
    // The decompressed copies are gone from the work root.
    let left: Vec<_> = std::fs::read_dir(root.join("tmp").join("import"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
