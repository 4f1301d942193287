//! The PostgreSQL wire protocol with real clients.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::{Server, column, explain, partition_dirs, python, scalar, scratch};

const DAY: u64 = 86_400;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The issue's walk-through: create, insert over several days in random
/// order with bound parameters, read back in order, one directory per day
/// of sorted Parquet files with UTC timestamps.
#[tokio::test]
async fn weather_walkthrough_over_extended_protocol() {
    let root = scratch("walkthrough").join("data");
    let server = Server::start(&root);
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE weather (ts TIMESTAMP, city SYMBOL CAPACITY 256, temp DOUBLE, ok BOOLEAN) TIMESTAMP(ts) PARTITION BY DAY;")
        .await
        .unwrap();
    let base = 1_704_067_200; // 2024-01-01T00:00:00Z
    // Days 3, 0, 4, 1, 2 and hours out of order inside each day.
    let order = [3u64, 0, 4, 1, 2];
    let insert = client
        .prepare("INSERT INTO weather VALUES ($1, $2, $3, $4)")
        .await
        .unwrap();
    let mut n = 0;
    for d in order {
        for h in [7u64, 1, 13] {
            let ts = at(base + d * DAY + h * 3600);
            let city = ["London", "Paris", "Oslo"][(h % 3) as usize];
            let temp = d as f64 * 10.0 + h as f64;
            let rows = client
                .execute(&insert, &[&ts, &city, &temp, &(h % 2 == 1)])
                .await
                .unwrap();
            assert_eq!(rows, 1);
            n += 1;
        }
    }
    let rows = client
        .query(
            "SELECT ts, city, temp, ok FROM weather WHERE temp >= $1 ORDER BY ts",
            &[&0.0f64],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), n);
    let times: Vec<SystemTime> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "not in timestamp order"
    );
    assert_eq!(times[0], at(base + 3600));
    let first_temp: f64 = rows[0].get(2);
    assert_eq!(first_temp, 1.0);

    // Parameters in filters, typed results.
    let r = client
        .query_one(
            "SELECT count(*), max(temp) FROM weather WHERE ts >= $1 AND ts < $2",
            &[&at(base + DAY), &at(base + 2 * DAY)],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 3);
    assert_eq!(r.get::<_, f64>(1), 23.0);

    // One directory per day, each file sorted with UTC microsecond timestamps.
    // The rows are in day files once the write-ahead log is applied.
    crate::common::wal_applied(&client).await;
    let table_dir = root.join("db/public/weather");
    let days = partition_dirs(&table_dir);
    assert_eq!(
        days,
        [
            "2024-01-01",
            "2024-01-02",
            "2024-01-03",
            "2024-01-04",
            "2024-01-05"
        ]
    );
    for day in &days {
        for f in std::fs::read_dir(table_dir.join(day)).unwrap() {
            let f = f.unwrap().path();
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap()).unwrap();
            let schema = reader.schema().clone();
            assert_eq!(
                schema.field(0).data_type(),
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            );
            for batch in reader.build().unwrap() {
                let batch = batch.unwrap();
                let ts = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap();
                assert!(
                    ts.values().windows(2).all(|w| w[0] <= w[1]),
                    "{} not sorted",
                    f.display()
                );
            }
        }
    }

    // ORDER BY the designated timestamp needs no sort; a range reads one partition.
    let plan = explain(&client, "SELECT * FROM weather ORDER BY ts").await;
    assert!(!plan.contains("SortExec"), "{plan}");
    assert!(
        plan.contains("output_ordering=[ts@0 ASC NULLS LAST]"),
        "{plan}"
    );
    let plan = explain(
        &client,
        "SELECT * FROM weather WHERE ts >= '2024-01-02' AND ts < '2024-01-03'",
    )
    .await;
    assert!(plan.contains("2024-01-02/"), "{plan}");
    for other in ["2024-01-01/", "2024-01-03/", "2024-01-04/", "2024-01-05/"] {
        assert!(!plan.contains(other), "{other} not pruned: {plan}");
    }
}

#[tokio::test]
async fn errors_carry_sqlstate_and_position() {
    let root = scratch("errors").join("data");
    let server = Server::start(&root);
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (ts TIMESTAMP, qty SHORT) TIMESTAMP(ts) PARTITION BY DAY")
        .await
        .unwrap();

    let e = client
        .simple_query("SELECT * FROM t WHERE")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42601");
    assert!(db.position().is_some());

    let e = client
        .simple_query("SELECT * FROM missing")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42P01");
    assert!(db.message().contains("missing"), "{}", db.message());
    assert!(
        matches!(
            db.position(),
            Some(tokio_postgres::error::ErrorPosition::Original(15))
        ),
        "{:?}",
        db.position()
    );

    let e = client
        .simple_query("INSERT INTO t VALUES ('2024-01-01T00:00:00Z', 70000)")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "22P02");
    assert!(db.message().contains("qty"), "{}", db.message());
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "0");

    // Over the extended protocol the parameter is typed by its column (int2).
    let e = client
        .execute(
            "INSERT INTO t VALUES ($1, $2)",
            &[&SystemTime::now(), &70000i32],
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("serializing parameter 1"), "{e}");
    client
        .execute(
            "INSERT INTO t VALUES ($1, $2)",
            &[&SystemTime::now(), &7i16],
        )
        .await
        .unwrap();
    assert_eq!(scalar(&client, "SELECT qty FROM t").await, "7");

    // The connection is still usable after errors.
    assert_eq!(scalar(&client, "SELECT 1 + 1").await, "2");
}

#[tokio::test]
async fn logins_and_read_only_user() {
    let root = scratch("logins").join("data");
    let server = Server::start_with(
        &root,
        &[
            ("QDB_PG_READONLY_USER_ENABLED", "true"),
            ("QDB_PG_READONLY_USER", "reader"),
        ],
    );
    assert!(server.client_as("admin", "wrong").await.is_err());
    assert!(server.client_as("nobody", "quest").await.is_err());
    let admin = server.client().await;
    admin
        .batch_execute("CREATE TABLE r (v LONG); INSERT INTO r VALUES (1), (2);")
        .await
        .unwrap();
    let reader = server.client_as("reader", "quest").await.unwrap();
    assert_eq!(scalar(&reader, "SELECT sum(v) FROM r").await, "3");
    for write in [
        "INSERT INTO r VALUES (3)",
        "DROP TABLE r",
        "CREATE TABLE x (a INT)",
        "TRUNCATE TABLE r",
    ] {
        let e = reader.simple_query(write).await.unwrap_err();
        assert_eq!(e.code().unwrap().code(), "42501", "{write}");
    }
    assert_eq!(scalar(&admin, "SELECT count(*) FROM r").await, "2");
}

#[tokio::test]
async fn transactions_and_session_statements_are_accepted() {
    let root = scratch("session").join("data");
    let server = Server::start(&root);
    let mut client = server.client().await;
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("CREATE TABLE s (v INT)").await.unwrap();
    tx.execute("INSERT INTO s VALUES ($1)", &[&7i32])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    client
        .batch_execute("SET application_name = 'x'; SET extra_float_digits = 3")
        .await
        .unwrap();
    assert_eq!(
        scalar(&client, "SHOW transaction isolation level").await,
        "read committed"
    );
    assert_eq!(scalar(&client, "SELECT v FROM s").await, "7");
    let show = column(&client, "SHOW CREATE TABLE s").await;
    assert_eq!(
        show[0].as_deref(),
        Some("CREATE TABLE s ( \n\tv INT\n) PARTITION BY NONE BYPASS WAL;")
    );
}

/// psql itself, as a user would run it.
#[tokio::test]
async fn psql_smoke() {
    let root = scratch("psql").join("data");
    let server = Server::start(&root);
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            &server.pg.ip().to_string(),
            "-p",
            &server.pg.port().to_string(),
            "-U",
            "admin",
            "-v",
            "ON_ERROR_STOP=1",
            "-A",
            "-t",
        ])
        .args([
            "-c",
            "CREATE TABLE p (ts TIMESTAMP, v DOUBLE) TIMESTAMP(ts) PARTITION BY HOUR;",
        ])
        .args([
            "-c",
            "INSERT INTO p VALUES ('2024-01-01T02:00:00Z', 2.5), ('2024-01-01T01:00:00Z', 1.5);",
        ])
        .args(["-c", "SELECT v FROM p ORDER BY ts;"])
        .env("PGPASSWORD", "quest")
        .output()
        .expect("psql is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "psql failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1.5\n2.5"), "{stdout}");
    let bad = std::process::Command::new("psql")
        .args([
            "-h",
            &server.pg.ip().to_string(),
            "-p",
            &server.pg.port().to_string(),
            "-U",
            "admin",
            "-c",
            "SELECT * FROM nope",
        ])
        .env("PGPASSWORD", "quest")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("table does not exist"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// psycopg 3 (what Python users run): parameters, executemany, a
/// transaction block, typed results, `cursor.copy()` both ways.
#[tokio::test]
async fn psycopg_smoke() {
    let root = scratch("psycopg").join("data");
    let server = Server::start(&root);
    let script = r#"
import datetime, os, psycopg
dsn = f"host=127.0.0.1 port={os.environ['PG_PORT']} user=admin password=quest dbname=qdb"
with psycopg.connect(dsn) as conn:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE py (ts TIMESTAMP, name VARCHAR, v DOUBLE, n LONG) TIMESTAMP(ts) PARTITION BY DAY")
        cur.execute("INSERT INTO py VALUES (%s, %s, %s, %s)", (datetime.datetime(2024, 1, 2, 3, 4, 5), "a'b", 1.5, 7))
        cur.executemany("INSERT INTO py VALUES (%s, %s, %s, %s)",
                        [(datetime.datetime(2024, 1, 1, 0, 0, i), f"r{i}", i * 0.5, i) for i in range(3)])
        conn.commit()
        cur.execute("SELECT ts, name, v, n FROM py WHERE n >= %s ORDER BY ts", (1,))
        rows = cur.fetchall()
        assert rows[0] == (datetime.datetime(2024, 1, 1, 0, 0, 1), "r1", 0.5, 1), rows
        assert rows[-1] == (datetime.datetime(2024, 1, 2, 3, 4, 5), "a'b", 1.5, 7), rows
        try:
            cur.execute("SELECT * FROM nope")
            raise SystemExit("no error")
        except psycopg.errors.UndefinedTable:
            conn.rollback()
        cur.execute("SELECT count(*) FROM py")
        assert cur.fetchone() == (4,)
        # cursor.copy(): COPY FROM STDIN in text format, and TO STDOUT.
        with cur.copy("COPY py (ts, name, v, n) FROM STDIN") as copy:
            copy.write_row((datetime.datetime(2024, 1, 3), "copied\ttab", 2.5, 9))
            copy.write_row((datetime.datetime(2024, 1, 3, 1), None, None, 10))
        conn.commit()
        with cur.copy("COPY (SELECT name, v, n FROM py WHERE n >= 9 ORDER BY ts) TO STDOUT") as copy:
            rows = list(copy.rows())
        assert rows == [("copied\ttab", "2.5", "9"), (None, None, "10")], rows
print("psycopg ok")
"#;
    let out = python(script, &[("PG_PORT", server.pg.port().to_string())]);
    assert!(out.contains("psycopg ok"), "{out}");
}

/// psql's meta-commands that list relations, schemas and databases read
/// pg_catalog: `\dt`, `\dn`, `\l` (aligned-off, tuples-only output).
#[tokio::test]
async fn psql_meta_commands_list_the_catalog() {
    let root = scratch("psql-meta").join("data");
    let server = Server::start(&root);
    let run = |args: &[&str]| {
        let out = std::process::Command::new("psql")
            .args(["-h", &server.pg.ip().to_string()])
            .args(["-p", &server.pg.port().to_string()])
            .args(["-U", "admin", "-d", "qdb", "-X", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1"])
            .args(args)
            .env("PGPASSWORD", "quest")
            .output()
            .expect("psql is installed");
        assert!(
            out.status.success(),
            "psql {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    };
    run(&[
        "-c",
        "CREATE TABLE weather (ts TIMESTAMP, t DOUBLE) TIMESTAMP(ts) PARTITION BY DAY",
        "-c",
        "CREATE SCHEMA iot",
        "-c",
        "CREATE TABLE iot.sensors (ts TIMESTAMP, v INT) TIMESTAMP(ts)",
    ]);
    assert_eq!(run(&["-c", "\\dt"]), "public|weather|table|admin");
    assert_eq!(run(&["-c", "\\dt iot.*"]), "iot|sensors|table|admin");
    assert_eq!(run(&["-c", "\\dn"]), "iot|admin\npublic|admin\nsys|admin");
    // `\d t`: the columns with PostgreSQL's type names, the designated
    // timestamp NOT NULL; psql's other probes (policies, publications,
    // inheritance) find nothing instead of failing.
    assert_eq!(
        run(&["-c", "\\d weather"]),
        "ts|timestamp without time zone||not null|\nt|double precision|||"
    );
    assert_eq!(run(&["-c", "\\d"]), "public|weather|table|admin");
    let view = run(&["-c", "\\d sys.tables"]);
    assert!(
        view.starts_with("table_schema|text||not null|\ntable_name|text||not null|"),
        "{view}"
    );
    assert!(
        run(&["-c", "\\du"]).starts_with("admin|Superuser"),
        "\\du lists the one role"
    );
    assert_eq!(
        run(&["-c", "\\x", "-c", "SELECT 1 AS a, 'x' AS b"]),
        "Expanded display is on.\na|1\nb|x"
    );
    let dbs = run(&["-c", "\\l"]);
    assert!(dbs.starts_with("qdb|admin|UTF8|"), "{dbs}");
    // What connection poolers and drivers send between uses, with
    // PostgreSQL's tags.
    assert_eq!(
        run(&[
            "-c",
            "DISCARD ALL",
            "-c",
            "RESET ALL",
            "-c",
            "SET statement_timeout = 0"
        ]),
        "DISCARD ALL\nRESET\nSET"
    );
    // The catalog is live: a dropped table is gone from the next listing.
    run(&["-c", "DROP TABLE weather"]);
    assert_eq!(run(&["-c", "\\dt"]), "");
}

/// psycopg's `conn.cancel()` (a CancelRequest with the connection's key),
/// sent once `sys.query_activity` lists the long query, stops it with
/// 57014, and the connection stays usable.
#[tokio::test]
async fn cancel_request_stops_a_running_query() {
    let root = scratch("pg-cancel").join("data");
    let server = Server::start(&root);
    let script = r#"
import os, threading, time, psycopg
conn = psycopg.connect(f"host=127.0.0.1 port={os.environ['PG_PORT']} user=admin password=quest dbname=qdb", autocommit=True)
cur = conn.cursor()
watcher = psycopg.connect(f"host=127.0.0.1 port={os.environ['PG_PORT']} user=admin password=quest dbname=qdb", autocommit=True)
def cancel():
    # Once the query is seen running (in sys.query_activity), cancel it.
    seen = "SELECT count(*) FROM sys.query_activity WHERE query LIKE '%3000000%' AND query NOT LIKE '%query_activity%'"
    while watcher.execute(seen).fetchone()[0] == 0:
        pass
    conn.cancel()
threading.Thread(target=cancel).start()
t0 = time.time()
try:
    # Three billion rows: minutes of work, far past the cancel.
    cur.execute("SELECT count(*) FROM (SELECT a.value FROM generate_series(1, 3000000) a, generate_series(1, 1000) b) x")
    raise SystemExit("the query was not cancelled")
except psycopg.errors.QueryCanceled as e:
    assert e.sqlstate == "57014", e.sqlstate
took = time.time() - t0
assert took < 10, took
cur.execute("SELECT 41 + 1")
assert cur.fetchone() == (42,)
print(f"cancelled after {took:.1f} s")
"#;
    let out = python(script, &[("PG_PORT", server.pg.port().to_string())]);
    assert!(out.contains("cancelled after"), "{out}");
}

/// asyncpg: parameters in binary, `copy_records_to_table` (binary COPY FROM
/// STDIN) with every kind of value and NULL, read back exactly.
#[tokio::test]
async fn asyncpg_queries_and_binary_copy() {
    let root = scratch("asyncpg").join("data");
    let server = Server::start(&root);
    let script = r#"
import asyncio, datetime, io, os, uuid, asyncpg
async def main():
    c = await asyncpg.connect(f"postgresql://admin:quest@127.0.0.1:{os.environ['PG_PORT']}/qdb")
    await c.execute("CREATE TABLE a (ts TIMESTAMP, name VARCHAR, v DOUBLE, n INT, l LONG, ok BOOLEAN, id UUID, sym SYMBOL) TIMESTAMP(ts) PARTITION BY DAY")
    rows = [
        (datetime.datetime(2024, 1, 1, 0, 0, 0, 123456), "x,\"y\"", 1.5, 1, 2**40, True, uuid.UUID(int=5), "s1"),
        (datetime.datetime(2024, 1, 2), "", None, None, None, None, None, None),
    ]
    r = await c.copy_records_to_table("a", records=rows, columns=["ts", "name", "v", "n", "l", "ok", "id", "sym"])
    assert r == "COPY 2", r
    got = await c.fetch("SELECT ts, name, v, n, l, ok, id, sym FROM a WHERE ts >= $1 ORDER BY ts", datetime.datetime(2024, 1, 1))
    assert [tuple(g) for g in got] == rows, got
    buf = io.BytesIO()
    async def sink(chunk):
        buf.write(chunk)
    r = await c.copy_from_query("SELECT n, name FROM a ORDER BY ts", output=sink)
    assert r == "COPY 2", r
    assert buf.getvalue() == b'1\tx,"y"\n\\N\t\n', buf.getvalue()
    # Binary COPY out and back in: every type keeps its value.
    out = io.BytesIO()
    async def sink2(chunk):
        out.write(chunk)
    r = await c.copy_from_query("SELECT * FROM a", output=sink2, format="binary")
    assert r == "COPY 2", r
    assert out.getvalue().startswith(b"PGCOPY\n\xff\r\n\0") and out.getvalue().endswith(b"\xff\xff")
    await c.execute("CREATE TABLE a2 (ts TIMESTAMP, name VARCHAR, v DOUBLE, n INT, l LONG, ok BOOLEAN, id UUID, sym SYMBOL) TIMESTAMP(ts) PARTITION BY DAY")
    out.seek(0)
    r = await c.copy_to_table("a2", source=out, format="binary")
    assert r == "COPY 2", r
    again = await c.fetch("SELECT ts, name, v, n, l, ok, id, sym FROM a2 ORDER BY ts")
    assert [tuple(g) for g in again] == rows, again
    print("asyncpg ok")
asyncio.run(main())
"#;
    let out = python(script, &[("PG_PORT", server.pg.port().to_string())]);
    assert!(out.contains("asyncpg ok"), "{out}");
    // A binary stream cut inside a tuple fails the COPY and adds nothing.
    let client = server.client().await;
    let mut data = b"PGCOPY\n\xff\r\n\0".to_vec();
    data.extend_from_slice(&[0; 8]);
    data.extend_from_slice(&1i16.to_be_bytes());
    data.extend_from_slice(&8i32.to_be_bytes());
    data.extend_from_slice(&[0, 0, 0]);
    let err = crate::common::copy_in(&client, "COPY a (l) FROM STDIN (FORMAT binary)", &[&data])
        .await
        .unwrap_err();
    let message = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("invalid binary COPY data"), "{err:?}");
    assert_eq!(
        crate::common::scalar(&client, "SELECT count(*) FROM a").await,
        "2"
    );
}

/// SQLAlchemy 2 with psycopg, and pandas on top: the dialect's connect-time
/// probes (`version()`, `to_regtype`, pg_type), `read_sql` with
/// parameters, and `to_sql` creating a table in PostgreSQL's type names
/// (its existence check is an `= ANY (ARRAY[…])` over pg_class).
#[tokio::test]
async fn sqlalchemy_and_pandas() {
    let root = scratch("sqlalchemy").join("data");
    let server = Server::start(&root);
    let script = r#"
import datetime, os
import pandas as pd
import sqlalchemy as sa
e = sa.create_engine(f"postgresql+psycopg://admin:quest@127.0.0.1:{os.environ['PG_PORT']}/qdb")
with e.connect() as c:
    c.execute(sa.text("CREATE TABLE w (ts TIMESTAMP, city SYMBOL, temp DOUBLE) TIMESTAMP(ts) PARTITION BY DAY"))
    c.execute(sa.text("INSERT INTO w VALUES ('2024-01-01T00:00:00Z', 'Oslo', -3.5), ('2024-01-02T00:00:00Z', 'Rome', 12.25)"))
    c.commit()
    df = pd.read_sql(sa.text("SELECT ts, city, temp FROM w WHERE temp > :t ORDER BY ts"), c, params={"t": 0})
    assert df.to_dict("records") == [{"ts": pd.Timestamp("2024-01-02"), "city": "Rome", "temp": 12.25}], df
frame = pd.DataFrame({"ts": [datetime.datetime(2024, 1, 1, 0, 0, 0, 250000)], "v": [0.1], "name": ["a"], "n": [2**40]})
frame.to_sql("fromdf", e, index=False)
back = pd.read_sql("SELECT * FROM fromdf", e)
assert back.to_dict("records") == frame.to_dict("records"), back
with e.connect() as c:
    types = {r[0]: r[1] for r in c.execute(sa.text("SHOW COLUMNS FROM fromdf"))}
assert types == {"ts": "TIMESTAMP", "v": "DOUBLE", "name": "VARCHAR", "n": "LONG"}, types
# inspect(): what ORMs and migration tools read (pg_attribute, pg_attrdef,
# pg_constraint, pg_index, LIKE … ESCAPE '/' over pg_namespace).
i = sa.inspect(e)
cols = [(c["name"], str(c["type"]), c["nullable"]) for c in i.get_columns("w")]
assert cols == [("ts", "TIMESTAMP", False), ("city", "TEXT", True), ("temp", "DOUBLE PRECISION", True)], cols
assert i.get_pk_constraint("w")["constrained_columns"] == []
assert i.get_foreign_keys("w") == [] and i.get_indexes("w") == []
assert sorted(i.get_table_names()) == ["fromdf", "w"], i.get_table_names()
assert i.get_schema_names() == ["public", "sys"], i.get_schema_names()
# A second to_sql finds the table (pg_class) and appends.
frame.to_sql("fromdf", e, index=False, if_exists="append")
assert pd.read_sql("SELECT count(*) AS n FROM fromdf", e)["n"][0] == 2
print("sqlalchemy ok")
"#;
    let out = python(script, &[("PG_PORT", server.pg.port().to_string())]);
    assert!(out.contains("sqlalchemy ok"), "{out}");
}

/// The PostgreSQL JDBC driver from Debian's `libpostgresql-jdbc-java`:
/// prepared statements past `prepareThreshold`, a fetch size with
/// autocommit off, `DatabaseMetaData.getTables`, `getSchemas` and
/// `getColumns`,
/// `Statement.cancel()`
/// (`tests/it/jdbc/JdbcClient.java` asserts each).
#[tokio::test]
async fn jdbc_driver() {
    let root = scratch("jdbc").join("data");
    let server = Server::start(&root);
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/jdbc/JdbcClient.java");
    let out = std::process::Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar", program])
        .arg(server.pg.port().to_string())
        .output()
        .expect("java is installed");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("jdbc ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `SET statement_timeout` holds for the connection (psycopg): a longer
/// query fails with 57014 at the limit; SHOW and RESET follow it.
#[tokio::test]
async fn statement_timeout_per_connection() {
    let root = scratch("pg-timeout").join("data");
    let server = Server::start(&root);
    let script = r#"
import os, time, psycopg
dsn = f"host=127.0.0.1 port={os.environ['PG_PORT']} user=admin password=quest dbname=qdb"
conn = psycopg.connect(dsn, autocommit=True)
cur = conn.cursor()
cur.execute("SHOW statement_timeout")
default = cur.fetchone()[0]
cur.execute("SET statement_timeout = 300")
cur.execute("SHOW statement_timeout")
assert cur.fetchone() == ("300ms",)
t0 = time.time()
try:
    cur.execute("SELECT count(*) FROM (SELECT a.value FROM generate_series(1, 3000000) a, generate_series(1, 1000) b) x")
    raise SystemExit("no timeout")
except psycopg.errors.QueryCanceled as e:
    assert e.sqlstate == "57014"
assert time.time() - t0 < 5
cur.execute("SET SESSION statement_timeout TO '2s'")
cur.execute("SHOW statement_timeout")
assert cur.fetchone() == ("2000ms",)
# Another connection keeps the default.
other = psycopg.connect(dsn, autocommit=True).cursor()
other.execute("SHOW statement_timeout")
assert other.fetchone() == (default,)
cur.execute("RESET statement_timeout")
cur.execute("SHOW statement_timeout")
assert cur.fetchone() == (default,)
print("timeout ok")
"#;
    let out = python(script, &[("PG_PORT", server.pg.port().to_string())]);
    assert!(out.contains("timeout ok"), "{out}");
}
