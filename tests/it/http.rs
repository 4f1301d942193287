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
