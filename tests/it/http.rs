//! `/exec` and `/exp` with a real HTTP client.

use serde_json::{Value, json};

use crate::common::{Server, enc, scratch};

async fn exec(server: &Server, query: &str, extra: &str) -> (u16, Value, String) {
    let url = server.url(&format!("/exec?query={}{extra}", enc(query)));
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

#[tokio::test]
async fn exec_and_exp_speak_questdb() {
    let root = scratch("http").join("data");
    let server = Server::start(&root);
    let (s, v, _) = exec(&server, "CREATE TABLE weather (ts TIMESTAMP, city SYMBOL, temp DOUBLE) TIMESTAMP(ts) PARTITION BY DAY", "").await;
    assert_eq!((s, v), (200, json!({"ddl": "OK"})));
    let (s, v, _) = exec(
        &server,
        "INSERT INTO weather VALUES ('2024-01-02T00:00:00Z', 'Oslo', -3.5), ('2024-01-01T00:00:00Z', 'Rome', 12.0), ('2024-01-03T00:00:00Z', 'Nice', NULL)",
        "",
    )
    .await;
    assert_eq!((s, v), (200, json!({"dml": "OK"})));

    let (s, v, text) = exec(&server, "SELECT * FROM weather LIMIT -2", "&count=true").await;
    assert_eq!(s, 200);
    assert!(
        text.starts_with("{\"query\":"),
        "keys in QuestDB order: {text}"
    );
    assert_eq!(v["query"], "SELECT * FROM weather LIMIT -2");
    assert_eq!(
        v["columns"],
        json!([{"name": "ts", "type": "TIMESTAMP"}, {"name": "city", "type": "SYMBOL"}, {"name": "temp", "type": "DOUBLE"}])
    );
    assert_eq!(
        v["dataset"],
        json!([
            ["2024-01-02T00:00:00.000000Z", "Oslo", -3.5],
            ["2024-01-03T00:00:00.000000Z", "Nice", null]
        ])
    );
    assert_eq!(v["count"], 2);

    // limit parameter, nm, timings
    let (_, v, _) = exec(
        &server,
        "SELECT city FROM weather",
        "&limit=1,2&nm=true&count=true&timings=true",
    )
    .await;
    assert_eq!(v["dataset"], json!([["Oslo"]]));
    assert!(v.get("columns").is_none());
    assert_eq!(v["count"], 3);
    assert!(v["timings"]["execute"].is_number());

    // errors: 400 with position
    let (s, v, _) = exec(&server, "SELECT * FROM nope", "").await;
    assert_eq!(s, 400);
    assert_eq!(v["position"], 14);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("table does not exist"),
        "{v}"
    );
    assert_eq!(v["query"], "SELECT * FROM nope");
    let (s, v, _) = exec(&server, "SELECT city FROM weather WHERE", "").await;
    assert_eq!(s, 400);
    assert!(v["position"].as_u64().unwrap() > 0, "{v}");
    let (s, v, _) = exec(&server, "INSERT INTO sys.tables VALUES ('x')", "").await;
    assert_eq!(s, 403, "{v}");

    // /exp: CSV with a header
    let csv = reqwest::get(server.url(&format!(
        "/exp?query={}",
        enc("SELECT ts, city, temp FROM weather ORDER BY ts")
    )))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(
        csv,
        "\"ts\",\"city\",\"temp\"\n2024-01-01T00:00:00.000000Z,\"Rome\",12.0\n2024-01-02T00:00:00.000000Z,\"Oslo\",-3.5\n2024-01-03T00:00:00.000000Z,\"Nice\",\n"
    );
}

#[tokio::test]
async fn auth_token_guards_every_route() {
    let root = scratch("token").join("data");
    let server = Server::start_with(&root, &[("QDB_HTTP_AUTH_TOKEN", "s3cret")]);
    let client = reqwest::Client::new();
    let url = server.url("/exec?query=SELECT%201");
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        401
    );
    assert_eq!(
        client
            .get(&url)
            .header("Authorization", "Bearer nope")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    let ok = client
        .get(&url)
        .header("Authorization", "Bearer s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(
        client
            .get(server.url("/exp?query=SELECT%201"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

#[tokio::test]
async fn statement_timeout_header() {
    let root = scratch("timeout").join("data");
    let server = Server::start(&root);
    let query = "SELECT count(*) FROM generate_series(1, 2000000000) a";
    let resp = reqwest::Client::new()
        .get(server.url(&format!("/exec?query={}", enc(query))))
        .header("Statement-Timeout", "200")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("timed out"), "{v}");
}

/// `/exp?fmt=parquet`: one Parquet file, streamed a row group at a time,
/// that pyarrow and DuckDB read with our rows and values.
#[tokio::test]
async fn exp_streams_one_parquet_file() {
    let root = scratch("exp-parquet").join("data");
    let server = Server::start(&root);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (ts TIMESTAMP, city SYMBOL, v DOUBLE, n LONG) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO t SELECT to_timestamp_micros(1704067200000000 + i * 1000000), \
             CASE WHEN i % 3 = 0 THEN 'Rome' ELSE 'Oslo' END, i * 0.5, i \
             FROM generate_series(0, 199999) AS s(i)",
        )
        .await
        .unwrap();
    let want = crate::common::scalar(
        &client,
        "SELECT count(*) || '|' || sum(v) || '|' || sum(n) || '|' || count(DISTINCT city) FROM t",
    )
    .await;
    let response = reqwest::get(server.url(&format!(
        "/exp?fmt=parquet&query={}",
        enc("SELECT * FROM t")
    )))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    let bytes = response.bytes().await.unwrap();
    let file = root.join("out.parquet");
    std::fs::write(&file, &bytes).unwrap();
    let out = crate::common::python(
        r#"
import os, duckdb, pyarrow.parquet as pq, pyarrow.compute as pc
f = os.environ["FILE"]
meta = pq.ParquetFile(f).metadata
t = pq.read_table(f)
print(f"{t.num_rows}|{pc.sum(t['v']).as_py()}|{pc.sum(t['n']).as_py()}|{len(pc.unique(t['city']))}")
print("|".join(str(x) for x in duckdb.connect().execute(
    f"SELECT count(*), sum(v), sum(n), count(DISTINCT city) FROM read_parquet('{f}')").fetchall()[0]))
print(meta.num_row_groups)
"#,
        &[("FILE", file.display().to_string())],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], want, "pyarrow");
    assert_eq!(lines[1], want, "duckdb");
    // 200,000 rows in row groups of 65,536: four, sent as they were written.
    assert_eq!(lines[2], "4");
    assert!(server.stop().success());
}

/// `/exec` names result columns as QuestDB does: a constant by its text,
/// a function by its name (numbered when repeated); columns and aliases
/// keep theirs. Unknown functions answer a one-line error.
#[tokio::test]
async fn exec_names_columns_as_questdb() {
    let root = scratch("http-names").join("data");
    let server = Server::start(&root);
    exec(
        &server,
        "CREATE TABLE t (ts TIMESTAMP, x DOUBLE) TIMESTAMP(ts) PARTITION BY DAY",
        "",
    )
    .await;
    exec(
        &server,
        "INSERT INTO t VALUES ('2024-01-01T00:00:00Z', 1.5), ('2024-01-01T01:00:00Z', 2.5)",
        "",
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v, _) = exec(&server, "select 1", "").await;
    assert_eq!(s, 200);
    assert_eq!(names(&v), ["1"]);
    let (_, v, _) = exec(
        &server,
        "SELECT count(*), avg(x), max(x), avg(x * 2), x + 1 AS y FROM t GROUP BY x + 1",
        "",
    )
    .await;
    assert_eq!(names(&v), ["count", "avg", "max", "avg1", "y"], "{v}");
    let (_, v, _) = exec(&server, "SELECT ts, hour(ts) FROM t", "").await;
    assert_eq!(names(&v), ["ts", "hour"]);
    assert_eq!(
        v["dataset"],
        json!([
            ["2024-01-01T00:00:00.000000Z", 0],
            ["2024-01-01T01:00:00.000000Z", 1]
        ])
    );
    let (s, v, _) = exec(&server, "SELECT hourz(ts) FROM t", "").await;
    assert_eq!(s, 400);
    let error = v["error"].as_str().unwrap();
    assert!(!error.contains('\n') && error.contains("hourz"), "{error}");
}

/// An answer up to 64 KiB is read whole and sent with its length, so an
/// error after its first batch is still an error response; a longer one
/// streams in chunks.
#[tokio::test]
async fn exec_sends_small_answers_whole() {
    let root = scratch("http-whole").join("data");
    let server = Server::start(&root);
    let get = |q: &str| reqwest::get(server.url(&format!("/exec?query={}", enc(q))));

    let small = get("SELECT value FROM generate_series(1, 100)")
        .await
        .unwrap();
    assert_eq!(small.status().as_u16(), 200);
    assert!(
        small.headers().get("content-length").is_some(),
        "{:?}",
        small.headers()
    );
    let v: Value = serde_json::from_str(&small.text().await.unwrap()).unwrap();
    assert_eq!(v["count"], 100);

    let large = get("SELECT value FROM generate_series(1, 200000)")
        .await
        .unwrap();
    assert_eq!(large.status().as_u16(), 200);
    assert!(
        large.headers().get("content-length").is_none(),
        "{:?}",
        large.headers()
    );
    let v: Value = serde_json::from_str(&large.text().await.unwrap()).unwrap();
    assert_eq!(v["count"], 200000);
    assert_eq!(v["dataset"][199999], json!([200000]));

    // Row 9,000 is in the second batch (8,192 rows each): the first has
    // been read when it fails.
    let q = "SELECT CAST(CASE WHEN value = 9000 THEN 'a' ELSE '1' END AS INT) AS v FROM generate_series(1, 10000)";
    let (status, v, text) = exec(&server, q, "").await;
    assert_ne!(status, 200, "{text}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{text}");
    assert_eq!(v["query"], q);
}

/// Long runs of operators build trees as deep as they are long. At the
/// limit every shape plans and answers; past it the statement gets one
/// error with its position (54001), and the server stays up (it aborted
/// on a stack overflow at 5,000 `+` before the limit).
#[tokio::test]
async fn deep_expressions_answer_or_fail_cleanly() {
    let root = scratch("http-deep").join("data");
    let server = Server::start(&root);
    let (s, _, text) = exec(
        &server,
        "CREATE TABLE d AS (SELECT value AS x FROM generate_series(1, 600))",
        "",
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let ones = |n: usize, op: &str| vec!["1"; n + 1].join(op);
    let ors = (1..=500)
        .map(|i| format!("x = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let shapes = [
        (format!("SELECT {} AS v", ones(1000, "+")), json!([[1001]])),
        (
            format!("SELECT {} AS v", vec!["1 = 1"; 500].join(" AND ")),
            json!([[true]]),
        ),
        (
            format!("SELECT count(*) AS v FROM d WHERE {ors}"),
            json!([[500]]),
        ),
        (
            format!("SELECT length({}) AS v", vec!["'a'"; 1001].join(" || ")),
            json!([[1001]]),
        ),
        (
            format!("SELECT 7{} AS v", "::bigint".repeat(1000)),
            json!([[7]]),
        ),
        (
            format!(
                "SELECT count(*) AS v FROM ({})",
                vec!["SELECT 1 AS o"; 1000].join(" UNION ALL ")
            ),
            json!([[1000]]),
        ),
        (
            format!(
                "SELECT (({}) + {}) * 2 AS v",
                ones(499, "+"),
                ones(499, "+")
            ),
            json!([[2000]]),
        ),
    ];
    for (q, want) in &shapes {
        let (s, v, text) = exec(&server, q, "").await;
        assert_eq!(
            s,
            200,
            "{}…: {}",
            &q[..60],
            &text[text.len().saturating_sub(300)..]
        );
        assert_eq!(&v["dataset"], want, "{}…", &q[..60]);
    }
    for n in [1001, 5000] {
        let (status, v, _) = exec(&server, &format!("SELECT {}", ones(n, "+")), "").await;
        assert_eq!(status, 400, "{n} operators");
        let error = v["error"].as_str().unwrap();
        assert!(
            error.contains("nested too deeply") && error.contains("1000"),
            "{error}"
        );
        // The 1,001st operator: after "SELECT " and 1,001 "1+".
        assert_eq!(v["position"], json!(7 + 2 * 1000 + 1), "{n} operators");
    }
    let (s, v, _) = exec(&server, "SELECT 1 AS v", "").await;
    assert_eq!((s, &v["dataset"]), (200, &json!([[1]])), "the server is up");
}
