//! Imports never change a value or die of one bad value; names never leave
//! the data root. One test per class of failure, each with the client that
//! found it (tokio-postgres, psycopg, questdb-rest, reqwest) and the data
//! checked by DuckDB reading our Parquet files where values matter.

use std::path::Path;

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::common::{column, copy_in, enc, python, scalar};
use crate::copy::{start, wait_final};

/// One DuckDB query over the Parquet files of `table`, as CSV lines.
fn duckdb(root: &Path, table: &str, select: &str) -> String {
    let files = root.join("db").join("public").join(table);
    python(
        r#"
import duckdb, os, sys
con = duckdb.connect()
con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{os.environ['FILES']}/*/*.parquet')")
for row in con.execute(os.environ['SELECT']).fetchall():
    print(','.join('NULL' if v is None else str(v) for v in row))
"#,
        &[
            ("FILES", files.display().to_string()),
            ("SELECT", select.to_string()),
        ],
    )
}

async fn copy_and_wait(
    client: &tokio_postgres::Client,
    sql: &str,
) -> (String, String, Option<String>, i64, i64, i64) {
    let id = scalar(client, sql).await;
    let (status, message, handled, imported, errors) = wait_final(client, &id).await;
    (id, status, message, handled, imported, errors)
}

async fn errors_of(client: &tokio_postgres::Client, id: &str) -> Vec<(i64, String, String)> {
    client
        .query(
            "select line, column_name, message from sys.text_import_errors where id = $1 order by line",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Class 1: inference never changes a value. Leading zeros and digits a
/// DOUBLE cannot hold make a column VARCHAR; mixed ISO timestamps are one
/// TIMESTAMP column; one outlier in twenty numbers is a row error, not a
/// VARCHAR column and not a changed value.
#[tokio::test]
async fn inference_keeps_every_value() {
    let (server, import) = start("correct-infer", &[]);
    let mut csv = String::from("ts,zip,big_id,price,qty,code\n");
    let stamps = [
        "2024-01-01 00:00:00",
        "2024-01-02T00:00:00.123456Z",
        "2024-01-03 10:00:00.5",
        "2024-01-04T23:59:59",
    ];
    for i in 0..20 {
        let price = if i == 7 {
            "n/a".to_string()
        } else {
            format!("{}.25", i)
        };
        // `code` holds a leading-zero value late in the column: the
        // whole column stays text.
        let code = if i == 15 {
            "0042".to_string()
        } else {
            format!("{}", 100 + i)
        };
        csv.push_str(&format!(
            "{},{:05},{}{:02},{price},{i},{code}\n",
            stamps[i % 4],
            [8123, 2139, 10001, 501][i % 4],
            "123456789012345678",
            i,
        ));
    }
    std::fs::write(import.join("infer.csv"), &csv).unwrap();
    let client = server.client().await;
    let (id, status, message, handled, imported, errors) = copy_and_wait(
        &client,
        "COPY infer FROM 'infer.csv' WITH HEADER true TIMESTAMP 'ts' PARTITION BY DAY",
    )
    .await;
    assert_eq!(status, "finished", "{message:?}");
    assert_eq!((handled, imported, errors), (20, 19, 1));
    let types: Vec<(String, String)> = client
        .query("SHOW COLUMNS FROM infer", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let ty = |c: &str| types.iter().find(|(n, _)| n == c).unwrap().1.clone();
    assert_eq!(ty("ts"), "TIMESTAMP");
    assert_eq!(ty("zip"), "VARCHAR");
    assert_eq!(ty("big_id"), "VARCHAR");
    assert_eq!(ty("price"), "DOUBLE");
    assert_eq!(ty("qty"), "INT");
    assert_eq!(ty("code"), "VARCHAR");
    let errs = errors_of(&client, &id).await;
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].0, errs[0].1.as_str()), (9, "price"));
    // DuckDB reads back exactly what the file says.
    let got = duckdb(
        &server.root,
        "infer",
        "SELECT strftime(ts, '%Y-%m-%d %H:%M:%S.%f'), zip, big_id, price, code FROM t ORDER BY qty LIMIT 4",
    );
    assert_eq!(
        got,
        "2024-01-01 00:00:00.000000,08123,12345678901234567800,0.25,100\n\
         2024-01-02 00:00:00.123456,02139,12345678901234567801,1.25,101\n\
         2024-01-03 10:00:00.500000,10001,12345678901234567802,2.25,102\n\
         2024-01-04 23:59:59.000000,00501,12345678901234567803,3.25,103"
    );
    assert_eq!(
        duckdb(&server.root, "infer", "SELECT code FROM t WHERE qty = 15"),
        "0042"
    );
}

/// Class 2: into an existing table one bad timestamp in the sample is one
/// rejected row (COPY and `/imp?atomicity=skipRow`), and ABORT names the
/// file, line, offset and column.
#[tokio::test]
async fn one_bad_value_fails_one_row() {
    let (server, import) = start("correct-badrow", &[]);
    let mut csv = String::from("timestamp,v\n");
    for i in 0..1000 {
        if i == 500 {
            csv.push_str("2020-13-45T99:00:00.000000Z,500\n");
        } else {
            csv.push_str(&format!(
                "2024-01-{:02}T{:02}:00:00.000000Z,{i}\n",
                1 + i / 100,
                i % 24
            ));
        }
    }
    std::fs::write(import.join("bad.csv"), &csv).unwrap();
    let client = server.client().await;
    for t in ["a", "b", "c"] {
        client
            .batch_execute(&format!(
                "CREATE TABLE {t} (timestamp TIMESTAMP, v INT) TIMESTAMP(timestamp) PARTITION BY DAY"
            ))
            .await
            .unwrap();
    }
    let (id, status, message, _, imported, errors) =
        copy_and_wait(&client, "COPY a FROM 'bad.csv' WITH HEADER true").await;
    assert_eq!(status, "finished", "{message:?}");
    assert_eq!((imported, errors), (999, 1));
    let errs = errors_of(&client, &id).await;
    assert_eq!((errs[0].0, errs[0].1.as_str()), (502, "timestamp"));
    assert!(errs[0].2.contains("could not parse timestamp"), "{errs:?}");

    // The same file through /imp with skipRow.
    let form = Form::new().part(
        "data",
        Part::bytes(csv.clone().into_bytes()).file_name("bad.csv"),
    );
    let resp = reqwest::Client::new()
        .post(server.url("/imp?name=b&atomicity=skipRow&fmt=json"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["rowsImported"], 999, "{body}");
    assert_eq!(body["rowsRejected"], 1, "{body}");

    // ABORT: the whole import fails, naming where.
    let (_, status, message, _, _, _) = copy_and_wait(
        &client,
        "COPY c FROM 'bad.csv' WITH HEADER true ON ERROR ABORT",
    )
    .await;
    assert_eq!(status, "failed");
    let message = message.unwrap();
    assert!(
        message.contains("bad syntax [file=bad.csv, line=502, offset=")
            && message.contains("column=timestamp"),
        "{message}"
    );
    assert_eq!(scalar(&client, "SELECT count(*) FROM c").await, "0");
}

/// Class 2: a NUL byte or invalid UTF-8 inside one field is a row error;
/// a file is refused as binary only when it is one.
#[tokio::test]
async fn stray_bytes_are_row_errors() {
    let (server, import) = start("correct-bytes", &[]);
    let mut data = b"ts,name\n".to_vec();
    for i in 0..20 {
        data.extend_from_slice(format!("2024-01-01T00:00:{i:02}.000000Z,").as_bytes());
        match i {
            4 => data.extend_from_slice(b"nul\0here"),
            9 => data.extend_from_slice(b"bad\xff\xfeutf8"),
            _ => data.extend_from_slice(format!("n{i}").as_bytes()),
        }
        data.push(b'\n');
    }
    std::fs::write(import.join("bytes.csv"), &data).unwrap();
    let mut parquet = b"PAR1".to_vec();
    parquet.extend_from_slice(&[0u8; 64]);
    std::fs::write(import.join("data.csv"), &parquet).unwrap();
    let client = server.client().await;
    let (id, status, message, _, imported, errors) = copy_and_wait(
        &client,
        "COPY bytes FROM 'bytes.csv' WITH HEADER true TIMESTAMP 'ts' PARTITION BY DAY",
    )
    .await;
    assert_eq!(status, "finished", "{message:?}");
    assert_eq!((imported, errors), (18, 2));
    let errs = errors_of(&client, &id).await;
    assert_eq!(errs[0].0, 6);
    assert_eq!(errs[0].1, "name");
    assert!(errs[0].2.contains("NUL byte"), "{errs:?}");
    assert_eq!(errs[1].0, 11);
    assert!(errs[1].2.contains("invalid UTF-8"), "{errs:?}");
    let (_, status, message, _, _, _) =
        copy_and_wait(&client, "COPY pq FROM 'data.csv' WITH HEADER true").await;
    assert_eq!(status, "failed");
    // Parquet's magic bytes send it to the Parquet reader, which names
    // the file it cannot read.
    let message = message.unwrap();
    assert!(
        message.contains("invalid Parquet file [file=data.csv]"),
        "{message}"
    );
}

/// Class 3: PostgreSQL's COPY options and NULL rules as clients send them;
/// timestamps of mixed precision in one COPY.
#[tokio::test]
async fn copy_from_stdin_follows_postgres() {
    let (server, _) = start("correct-stdin", &[]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE s (ts TIMESTAMP, name VARCHAR, n INT) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .unwrap();
    let n = copy_in(
        &client,
        "COPY s FROM STDIN WITH (FORMAT csv, DELIMITER ';', NULL 'NA', QUOTE '''')",
        &[b"2024-01-01 00:00:00;'it''s; here';1\n2024-01-01 00:00:01.5;NA;NA\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    let n = copy_in(
        &client,
        "COPY s FROM STDIN WITH (FORMAT csv, ESCAPE '\\')",
        &[b"2024-01-02 00:00:00.123456,\"say \\\"hi\\\" \\\\ bye\",2\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    // CSV: unquoted empty is NULL, quoted empty is the empty string.
    let n = copy_in(
        &client,
        "COPY s FROM STDIN WITH (FORMAT csv)",
        &[b"2024-01-03 00:00:00,,3\n2024-01-03 00:00:01,\"\",4\n2024-01-03 00:00:02,NULL,5\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    // Text: an empty field is the empty string, only \N is NULL.
    let n = copy_in(
        &client,
        "COPY s FROM STDIN",
        &[b"2024-01-04 00:00:00\t\t6\n2024-01-04 00:00:01\t\\N\t7\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    let rows = client
        .query(
            "SELECT CAST(ts AS VARCHAR) AS t, name, n FROM s ORDER BY ts",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, Option<String>, Option<i32>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want: Vec<(&str, Option<&str>, Option<i32>)> = vec![
        ("2024-01-01T00:00:00Z", Some("it's; here"), Some(1)),
        ("2024-01-01T00:00:01.500Z", None, None),
        (
            "2024-01-02T00:00:00.123456Z",
            Some("say \"hi\" \\ bye"),
            Some(2),
        ),
        ("2024-01-03T00:00:00Z", None, Some(3)),
        ("2024-01-03T00:00:01Z", Some(""), Some(4)),
        ("2024-01-03T00:00:02Z", Some("NULL"), Some(5)),
        ("2024-01-04T00:00:00Z", Some(""), Some(6)),
        ("2024-01-04T00:00:01Z", None, Some(7)),
    ];
    let want: Vec<(String, Option<String>, Option<i32>)> = want
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.map(str::to_string), c))
        .collect();
    assert_eq!(got, want);
}

/// Class 3: psycopg's `cursor.copy()` writes timestamps with fractional
/// digits only when they are non-zero; UUIDs arrive as `uuid.UUID` (OID
/// 2950) and TIMESTAMP_NS keeps its nanoseconds (as text, in the text and
/// binary formats).
#[tokio::test]
async fn psycopg_copy_and_types() {
    let (server, _) = start("correct-psycopg", &[]);
    let out = python(
        r#"
import datetime, os, uuid, psycopg
dsn = f"host=127.0.0.1 port={os.environ['PG_PORT']} user=admin password=quest dbname=qdb"
with psycopg.connect(dsn) as conn:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE m (ts TIMESTAMP, name VARCHAR, id UUID, ns TIMESTAMP_NS) TIMESTAMP(ts) PARTITION BY DAY")
        u = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        with cur.copy("COPY m (ts, name, id) FROM STDIN") as copy:
            copy.write_row((datetime.datetime(2024, 1, 1), "", u))
            copy.write_row((datetime.datetime(2024, 1, 2, 0, 0, 0, 123456), None, None))
        conn.commit()
        cur.execute("SELECT ts, name, id FROM m ORDER BY ts")
        rows = cur.fetchall()
        assert rows == [(datetime.datetime(2024, 1, 1), "", u),
                        (datetime.datetime(2024, 1, 2, 0, 0, 0, 123456), None, None)], rows
        assert cur.description[2].type_code == 2950, cur.description
        cur.execute("INSERT INTO m VALUES ('2024-01-03T00:00:00Z', 'n', NULL, '2024-01-03T00:00:00.123456789Z')")
        conn.commit()
        cur.execute("SELECT CAST(ns AS VARCHAR) FROM m WHERE name = 'n'")
        v = cur.fetchone()[0]
        assert ".123456789" in v, v
        # What drivers ask on connect, and psycopg's nested transactions
        # (SAVEPOINT / RELEASE) around statements.
        cur.execute("select pg_catalog.version(), current_schema(), current_database()")
        v, schema, db = cur.fetchone()
        assert v.startswith("PostgreSQL 16.6 "), v
        assert (schema, db) == ("public", "qdb"), (schema, db)
        with conn.transaction():
            with conn.transaction():
                cur.execute("SELECT count(*) FROM m")
                assert cur.fetchone()[0] == 3
        # The column itself arrives as text in both formats, all digits kept.
        cur.execute("SELECT ns FROM m WHERE name = 'n'")
        assert cur.fetchone()[0] == "2024-01-03 00:00:00.123456789"
        cur.execute("SELECT ns FROM m WHERE name = 'n'", binary=True)
        assert cur.fetchone()[0] == "2024-01-03 00:00:00.123456789"
print("ok")
"#,
        &[("PG_PORT", server.pg.port().to_string())],
    );
    assert_eq!(out, "ok");
    // Over pgwire in text (simple query) and /exec, all nine digits.
    let client = server.client().await;
    assert_eq!(
        column(&client, "SELECT ns FROM m WHERE name = 'n'").await,
        vec![Some("2024-01-03 00:00:00.123456789".to_string())]
    );
    let v: Value = reqwest::get(server.url(&format!(
        "/exec?query={}",
        enc("SELECT ns FROM m WHERE name = 'n'")
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["dataset"][0][0], "2024-01-03T00:00:00.123456789Z", "{v}");
}

/// Class 3: UUID is OID 2950 in the text and the binary result formats.
#[tokio::test]
async fn uuid_is_uuid_on_the_wire() {
    let (server, _) = start("correct-uuid", &[]);
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE u (ts TIMESTAMP, id UUID) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO u VALUES ('2024-01-01T00:00:00Z', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), ('2024-01-02T00:00:00Z', NULL)",
        )
        .await
        .unwrap();
    // The extended protocol: tokio-postgres asks for binary results.
    let rows = client
        .query("SELECT id FROM u ORDER BY ts", &[])
        .await
        .unwrap();
    assert_eq!(
        rows[0].columns()[0].type_(),
        &tokio_postgres::types::Type::UUID
    );
    let id: Option<uuid::Uuid> = rows[0].get(0);
    assert_eq!(
        id.unwrap().to_string(),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert_eq!(rows[1].get::<_, Option<uuid::Uuid>>(0), None);
    // The simple protocol: text.
    assert_eq!(
        column(&client, "SELECT id FROM u ORDER BY ts").await,
        vec![
            Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_string()),
            None
        ]
    );
}

/// Class 4: the questdb-rest client sends `data` before `schema`.
#[tokio::test]
async fn questdb_rest_sends_schema_last() {
    let (server, _) = start("correct-qdbrest", &[]);
    let out = python(
        r#"
import os, json
from questdb_rest import QuestDBClient
c = QuestDBClient(host="127.0.0.1", port=int(os.environ["HTTP_PORT"]))
csv = b"ts,sensor,temp\n2024-01-01T00:00:00.000000Z,s1,20.5\n2024-01-02T00:00:00.000000Z,s2,21.5\n"
import io
r = c.imp(data_file_obj=io.BytesIO(csv), data_file_name="sensors.csv",
          schema_json_str=json.dumps([{"name": "sensor", "type": "SYMBOL"}]),
          table_name="sensors", timestamp_col="ts", partition_by="DAY", fmt="json")
body = r.json()
assert body["status"] == "OK", body
types = {col["name"]: col["type"] for col in body["columns"]}
assert types["sensor"] == "SYMBOL", body
print(body["rowsImported"])
"#,
        &[("HTTP_PORT", server.http.port().to_string())],
    );
    assert_eq!(out, "2");
}

/// Class 5: hostile schema and table names, every way in: refused with
/// 42602 or 400, nothing created outside the root or half-made inside.
#[tokio::test]
async fn hostile_names_stay_inside_the_root() {
    let (server, import) = start("correct-names", &[]);
    std::fs::write(
        import.join("n.csv"),
        "ts,v\n2024-01-01T00:00:00.000000Z,1\n",
    )
    .unwrap();
    let outside = server.root.parent().unwrap().to_path_buf();
    let listing = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = walk(dir)
            .into_iter()
            .filter(|p| !p.contains("/wal") && !p.contains("/tmp"))
            .collect();
        v.sort();
        v
    };
    let before_outside: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let before_db = listing(&server.root.join("db"));
    let long = "x".repeat(200);
    let hostile = [
        "..",
        ".",
        "../x",
        "../../../x",
        "a/b",
        "a\\b",
        "/abs",
        "nul\u{0}byte",
        "tab\tname",
        "line\nbreak",
        ".hidden",
        "a..b",
        long.as_str(),
    ];
    let client = server.client().await;
    for name in hostile {
        let q = name.replace('"', "\"\"");
        for sql in [
            format!("CREATE SCHEMA \"{q}\""),
            format!("CREATE TABLE \"{q}\" (ts TIMESTAMP, v INT) TIMESTAMP(ts)"),
            format!("COPY \"{q}\" FROM 'n.csv' WITH HEADER true TIMESTAMP 'ts' PARTITION BY DAY"),
        ] {
            if name.contains('\0') {
                // The protocol cannot carry a NUL inside a statement.
                continue;
            }
            let e = client.simple_query(&sql).await.unwrap_err();
            assert_eq!(
                e.as_db_error().map(|d| d.code().code()),
                Some("42602"),
                "{sql:?}: {e:?}"
            );
        }
        let http = reqwest::Client::new();
        let form = || {
            Form::new().part(
                "data",
                Part::bytes(b"ts,v\n2024-01-01T00:00:00.000000Z,1\n".to_vec()).file_name("n.csv"),
            )
        };
        let resp = http
            .post(server.url(&format!("/imp?name={}", enc(name))))
            .multipart(form())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "/imp {name:?}");
        let arc = |db: &str, m: &str| {
            http.post(server.url(&format!(
                "/api/v1/import/csv?measurement={}&time_column=ts&db={}",
                enc(m),
                enc(db)
            )))
            .multipart(Form::new().part(
                "file",
                Part::bytes(b"ts,v\n2024-01-01T00:00:00.000000Z,1\n".to_vec()).file_name("n.csv"),
            ))
            .send()
        };
        assert_eq!(
            arc(name, "m").await.unwrap().status(),
            400,
            "arc db {name:?}"
        );
        assert_eq!(
            arc("fine", name).await.unwrap().status(),
            400,
            "arc measurement {name:?}"
        );
    }
    client
        .batch_execute("CREATE TABLE ok (ts TIMESTAMP, v INT) TIMESTAMP(ts)")
        .await
        .unwrap();
    let e = client
        .simple_query("RENAME TABLE ok TO \"../escaped\"")
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42602"));
    client.batch_execute("DROP TABLE ok").await.unwrap();
    let after_outside: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(before_outside, after_outside);
    // Nothing half-made inside: no schema `fine` was created for a bad
    // measurement, no table directories appeared.
    let after_db: Vec<String> = listing(&server.root.join("db"))
        .into_iter()
        .filter(|p| !p.contains(".dropped-"))
        .collect();
    assert_eq!(before_db, after_db);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.display().to_string());
            if p.is_dir() {
                out.extend(walk(&p));
            }
        }
    }
    out
}
