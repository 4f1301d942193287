//! Results stream: the server holds a few record batches of a result, not
//! the result, whichever way it leaves (psql, `/exp`, COPY TO STDOUT).

use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;

use crate::common::{
    Server, eventually, peak_rss_anon_kib, rss_anon_kib, scalar, scratch, succeeded,
};

/// Rows in the table the memory tests read: at about 100 bytes a row in
/// memory, a gathered result would be hundreds of MiB.
const ROWS: u64 = 2_000_000;

/// What a result may add to the server's RssAnon (the bound).
const BOUND_KIB: u64 = 64 * 1024;

async fn big_table(server: &Server) {
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE big (ts TIMESTAMP, v DOUBLE, n LONG, s VARCHAR) TIMESTAMP(ts) PARTITION BY DAY",
        )
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO big SELECT to_timestamp_micros(value * 1000000), value * 1.5, value, 'row number ' || value FROM generate_series(1, {ROWS})"
        ))
        .await
        .unwrap();
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM big").await,
        ROWS.to_string()
    );
}

fn psql(server: &Server, sql: &str) -> std::process::Output {
    Command::new("psql")
        .args(["-h", &server.pg.ip().to_string()])
        .args(["-p", &server.pg.port().to_string()])
        .args([
            "-U",
            "admin",
            "-d",
            "qdb",
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", sql])
        .env("PGPASSWORD", "quest")
        .stderr(Stdio::piped())
        .output()
        .expect("psql is installed")
}

/// `SELECT *` over psql, `/exp` and COPY TO STDOUT each deliver every row
/// while the server's RssAnon stays within 64 MiB of its peak while
/// reading a tenth of the rows.
#[tokio::test]
async fn results_stream_with_bounded_server_memory() {
    let root = scratch("stream-memory").join("data");
    // Decoded columns kept for later scans are bounded by their own key,
    // set small here: what is measured is what a result holds.
    let server = Server::start_with(&root, &[("QDB_QUERY_CACHE_SIZE", "16m")]);
    big_table(&server).await;
    let pid = server.pid();
    // The baseline is the peak of a tenth of the rows read the same way:
    // what the server holds for any query (and the allocator keeps after
    // the INSERT) is in both, and a server that held the whole result
    // would grow by about ten times that tenth beyond it.
    let (small, idle) = peak_rss_anon_kib(pid, || {
        psql(
            &server,
            &format!("SELECT * FROM big WHERE n <= {}", ROWS / 10),
        )
    });
    assert!(small.status.success());
    let idle = idle.max(rss_anon_kib(pid));

    // Every row over psql, and the peak stays within the bound.
    let through_psql = |label: &str, sql: &str| {
        let (out, peak) = peak_rss_anon_kib(pid, || psql(&server, sql));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.stdout.iter().filter(|b| **b == b'\n').count() as u64,
            ROWS
        );
        eprintln!("{label}: RssAnon {idle} -> {peak} KiB");
        assert!(
            peak < idle + BOUND_KIB,
            "{label}: RssAnon {idle} -> {peak} KiB"
        );
    };
    through_psql("psql SELECT *", "SELECT * FROM big");
    through_psql("COPY TO STDOUT", "COPY big TO STDOUT");

    let url = server.url("/exp?query=SELECT%20*%20FROM%20big");
    let (lines, peak) = peak_rss_anon_kib(pid, || {
        let out = Command::new("curl")
            .args(["-sf", &url])
            .output()
            .expect("curl is installed");
        assert!(out.status.success());
        out.stdout.iter().filter(|b| **b == b'\n').count() as u64
    });
    assert_eq!(lines, ROWS + 1, "a header line and every row");
    assert!(
        peak < idle + BOUND_KIB,
        "/exp: RssAnon {idle} -> {peak} KiB"
    );
}

/// The extended protocol with a row limit per Execute (JDBC's fetch size,
/// here tokio-postgres's portal): each Execute answers PortalSuspended
/// until the rows run out, and the rows come in order, exactly once.
#[tokio::test]
async fn portals_fetch_in_pieces() {
    let root = scratch("stream-portal").join("data");
    let server = Server::start(&root);
    let mut client = server.client().await;
    let tx = client.transaction().await.unwrap();
    let stmt = tx
        .prepare("SELECT value FROM generate_series(1, 10000) ORDER BY value")
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 3000).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 3000);
        seen.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    }
    assert_eq!(seen, (1..=10000).collect::<Vec<i64>>());
    tx.commit().await.unwrap();
}

/// A client that stops reading and goes away mid-result stops the query:
/// the server's CPU time stops growing.
#[tokio::test]
async fn a_disconnect_stops_the_query() {
    let root = scratch("stream-disconnect").join("data");
    let server = Server::start(&root);
    let (client, connection) = server.client_and_connection().await;
    // Ten billion rows: hours, unless it stops.
    let rows = client
        .query_raw(
            "SELECT a.value FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
            std::iter::empty::<i64>(),
        )
        .await
        .unwrap();
    let first: Vec<_> = rows.take(10).collect().await;
    assert_eq!(first.len(), 10);
    connection.abort();
    drop(client);
    let pid = server.pid();
    let cpu = move || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // utime + stime, in clock ticks (fields 14 and 15 of the line).
        fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
    };
    // Idle: no CPU tick spent over 20 polls in a row (200 ms; a busy
    // server spends one every 10 ms).
    let (mut last, mut quiet) = (cpu(), 0);
    eventually(
        "the server to stop working",
        Duration::from_secs(20),
        || {
            let now = cpu();
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
            let idle = quiet >= 20;
            async move { idle.then_some(()) }
        },
    )
    .await;
}

/// `query.memory.limit`: a sort that outgrows it spills under the work root
/// and answers in full; a hash join that cannot spill fails with 53200
/// naming the key; the server goes on serving.
#[tokio::test]
async fn query_memory_limit_spills_or_fails_clearly() {
    let root = scratch("stream-memory-limit").join("data");
    let server = Server::start_with(&root, &[("QDB_QUERY_MEMORY_LIMIT", "32m")]);
    big_table(&server).await;
    // The sort holds over 60 MB of keys and rows: twice the limit.
    let out = psql(&server, "SELECT n FROM big ORDER BY s DESC");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("999999"),
        "'row number 999999' sorts last"
    );
    assert_eq!(text.lines().count() as u64, ROWS);
    let client = server.client().await;
    let err = client
        .simple_query("SELECT count(*) FROM big a JOIN big b ON a.s = b.s")
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "53200", "{db:?}");
    assert!(
        db.message().contains("query.memory.limit"),
        "{}",
        db.message()
    );
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM big").await,
        ROWS.to_string()
    );
}

/// `query.memory.limit` bounds what a query grows the whole process by,
/// within a constant: an aggregation of 2M groups under an 8 MiB limit
/// spills and answers, and RssAnon grows by less than the limit plus
/// 48 MiB (before the allocator was set up for it, the same query grew
/// the server by about 100 MiB whatever the limit). `/metrics` shows the
/// live heap it peaked at beside it.
#[tokio::test]
async fn query_memory_limit_bounds_the_process() {
    let root = scratch("stream-memory-bound").join("data");
    let server = Server::start_with(
        &root,
        &[
            ("QDB_QUERY_MEMORY_LIMIT", "8m"),
            ("QDB_QUERY_CACHE_SIZE", "0"),
        ],
    );
    big_table(&server).await;
    let pid = server.pid();
    let idle = rss_anon_kib(pid);
    let (out, peak) = peak_rss_anon_kib(pid, || {
        psql(
            &server,
            "SELECT count(*) FROM (SELECT v, s FROM big GROUP BY v, s) g",
        )
    });
    assert_eq!(succeeded(&out), ROWS.to_string());
    let spill = root.join("tmp/query");
    assert!(spill.is_dir(), "the aggregation spilled under {spill:?}");
    eprintln!("GROUP BY of {ROWS} groups at 8m: RssAnon {idle} -> {peak} KiB");
    assert!(
        peak < idle + (8 + 48) * 1024,
        "RssAnon {idle} -> {peak} KiB"
    );
    let live = server
        .metric("sluice_heap_live_bytes")
        .await
        .expect("heap gauge");
    let heap_peak = server
        .metric("sluice_heap_peak_bytes")
        .await
        .expect("peak gauge");
    assert!(live > 0.0 && heap_peak >= live, "{live} {heap_peak}");
}
