//! The write-ahead log of small writes (issue 30): single-row INSERTs from
//! several connections are acknowledged once durable and visible at once;
//! `kill -9` in the middle of a stream loses no acknowledged row and
//! duplicates none; a torn record at the log's end is dropped; TRUNCATE,
//! RENAME and DROP order with rows not yet applied; the applied rows end
//! in few files, which delta-rs reads; a full disk (a small tmpfs) fails
//! the INSERT that needs a new segment and keeps every acknowledged row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{Server, column, eventually, scalar, scratch};

const TABLE: &str =
    "CREATE TABLE w (ts TIMESTAMP, client INT, n LONG) TIMESTAMP(ts) PARTITION BY DAY WAL";

/// A timestamp on 2024-01-`day`, `second` seconds after midnight.
fn at(day: i64, second: i64) -> String {
    format!(
        "2024-01-{day:02}T{:02}:{:02}:{:02}Z",
        second / 3600 % 24,
        second / 60 % 60,
        second % 60
    )
}

/// Every row of `w` as (client, n) with its count.
async fn rows(server: &Server) -> HashMap<(i64, i64), usize> {
    let client = server.client().await;
    let mut out = HashMap::new();
    for r in client
        .query("SELECT client::BIGINT, n FROM w", &[])
        .await
        .unwrap()
    {
        *out.entry((r.get::<_, i64>(0), r.get::<_, i64>(1)))
            .or_default() += 1;
    }
    out
}

/// The rows the server acknowledged, as (client, n).
type Acked = Arc<Mutex<Vec<(i64, i64)>>>;

/// `clients` connections insert single rows until `stop`; each records
/// the rows the server acknowledged.
fn writers(
    server: &Server,
    clients: i64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<tokio::task::JoinHandle<()>>, Acked) {
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
        let addr = server.pg;
        tasks.push(tokio::spawn(async move {
            let conn = format!(
                "host={} port={} user=admin password=quest dbname=qdb",
                addr.ip(),
                addr.port()
            );
            let Ok((client, connection)) =
                tokio_postgres::connect(&conn, tokio_postgres::NoTls).await
            else {
                return;
            };
            tokio::spawn(connection);
            let mut n = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sql = format!("INSERT INTO w VALUES ('{}', {c}, {n})", at(1 + n % 3, n));
                // A statement cut by the kill is neither acknowledged nor
                // recorded; the connection is gone after it.
                if client.batch_execute(&sql).await.is_err() {
                    return;
                }
                acked.lock().unwrap().push((c, n));
                n += 1;
            }
        }));
    }
    (tasks, acked)
}

#[tokio::test]
async fn kill9_during_inserts_loses_and_duplicates_nothing() {
    let root = scratch("wal-kill").join("data");
    let server = Server::start(&root);
    server.client().await.batch_execute(TABLE).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tasks, acked) = writers(&server, 8, Arc::clone(&stop));
    // Kill while every writer is mid-stream, after some applies happened.
    eventually("2000 acknowledged rows", Duration::from_secs(120), || {
        let n = acked.lock().unwrap().len();
        async move { (n >= 2000).then_some(()) }
    })
    .await;
    server.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    let server = Server::start(&root);
    let found = rows(&server).await;
    for key in &acked {
        assert_eq!(found.get(key), Some(&1), "acknowledged row {key:?}");
    }
    assert!(found.values().all(|&n| n == 1), "a row twice");
    // At most one unacknowledged row per writer (the one the kill cut).
    assert!(
        found.len() <= acked.len() + 8,
        "{} > {}",
        found.len(),
        acked.len()
    );
    // The log is applied after the restart: the rows end in Parquet.
    eventually("the log applied", Duration::from_secs(30), || {
        let s = &server;
        async move {
            let c = s.client().await;
            (scalar(
                &c,
                "SELECT pending_rows FROM sys.wal_tables WHERE table_name = 'w'",
            )
            .await
                == "0")
                .then_some(())
        }
    })
    .await;
    assert_eq!(rows(&server).await, found);
}

#[tokio::test]
async fn rows_are_visible_at_once_and_order_with_ddl() {
    let root = scratch("wal-visible").join("data");
    // No timed apply: the rows stay in the log until something applies it.
    let server = Server::start_with(&root, &[("QDB_CAIRO_WAL_APPLY_INTERVAL_MS", "0")]);
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute(TABLE).await.unwrap();
    for n in 0..5 {
        a.batch_execute(&format!(
            "INSERT INTO w VALUES ('2024-01-02T00:00:0{n}Z', 1, {n})"
        ))
        .await
        .unwrap();
        // Acknowledged, so the next statement on another connection sees it.
        assert_eq!(
            scalar(&b, "SELECT count(*) FROM w").await,
            (n + 1).to_string()
        );
    }
    assert_eq!(
        scalar(&b, "SELECT pending_records || '/' || pending_rows FROM sys.wal_tables WHERE table_name = 'w'").await,
        "5/5"
    );
    assert_eq!(
        scalar(
            &b,
            "SELECT row_count FROM sys.tables WHERE table_name = 'w'"
        )
        .await,
        "5"
    );
    // In timestamp order, with a row that sorts before the others.
    a.batch_execute("INSERT INTO w VALUES ('2024-01-01T00:00:00Z', 2, 99)")
        .await
        .unwrap();
    assert_eq!(
        column(&b, "SELECT n FROM w").await,
        ["99", "0", "1", "2", "3", "4"].map(|s| Some(s.to_string()))
    );
    assert_eq!(
        scalar(
            &b,
            "SELECT count(*) FROM w WHERE ts >= '2024-01-02T00:00:03Z'"
        )
        .await,
        "2"
    );
    // QuestDB's time-series SQL reads them too.
    assert_eq!(
        column(&b, "SELECT n FROM w LATEST ON ts PARTITION BY client").await,
        ["99", "4"].map(|s| Some(s.to_string()))
    );
    assert_eq!(
        column(&b, "SELECT count(*) FROM w SAMPLE BY 1d").await,
        ["1", "5"].map(|s| Some(s.to_string()))
    );

    // A restart replays the log; nothing was applied yet.
    let server = server.restart();
    let b = server.client().await;
    assert_eq!(scalar(&b, "SELECT sum(n) FROM w").await, "109");

    // RENAME applies the log first: the rows move with the table.
    b.batch_execute("RENAME TABLE w TO w2").await.unwrap();
    assert_eq!(scalar(&b, "SELECT count(*) FROM w2").await, "6");
    assert_eq!(
        scalar(
            &b,
            "SELECT pending_rows FROM sys.wal_tables WHERE table_name = 'w2'"
        )
        .await,
        "0"
    );
    b.batch_execute("RENAME TABLE w2 TO w").await.unwrap();

    // TRUNCATE removes the rows of the log too, for good.
    b.batch_execute("INSERT INTO w VALUES ('2024-01-03T00:00:00Z', 3, 1000)")
        .await
        .unwrap();
    b.batch_execute("TRUNCATE TABLE w").await.unwrap();
    assert_eq!(scalar(&b, "SELECT count(*) FROM w").await, "0");
    let server = server.restart();
    let b = server.client().await;
    assert_eq!(scalar(&b, "SELECT count(*) FROM w").await, "0");

    // DROP takes the log with it: a new table of the name starts empty.
    b.batch_execute("INSERT INTO w VALUES ('2024-01-03T00:00:00Z', 3, 1)")
        .await
        .unwrap();
    b.batch_execute("DROP TABLE w").await.unwrap();
    b.batch_execute(TABLE).await.unwrap();
    let server = server.restart();
    let b = server.client().await;
    assert_eq!(scalar(&b, "SELECT count(*) FROM w").await, "0");
}

#[tokio::test]
async fn a_torn_record_at_the_end_is_dropped() {
    let root = scratch("wal-torn").join("data");
    let server = Server::start_with(&root, &[("QDB_CAIRO_WAL_APPLY_INTERVAL_MS", "0")]);
    let c = server.client().await;
    c.batch_execute(TABLE).await.unwrap();
    for n in 0..3 {
        c.batch_execute(&format!(
            "INSERT INTO w VALUES ('2024-01-01T00:00:0{n}Z', 1, {n})"
        ))
        .await
        .unwrap();
    }
    server.kill9();
    // Half a record at the end, as a crash in the middle of a write leaves.
    let dir = root.join("wal").join("public").join("w");
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    let last = segments
        .iter()
        .rev()
        .find(|p| std::fs::read(p).unwrap().starts_with(b"SWL1"))
        .expect("a segment with records")
        .clone();
    // Segments are made of zeros that records overwrite: the records end
    // where the zeros begin.
    // A record: "SWL1", its payload's length, sequence number, CRC, payload.
    let mut bytes = std::fs::read(&last).unwrap();
    let mut end = 0;
    while bytes[end..].starts_with(b"SWL1") {
        let len = u32::from_le_bytes(bytes[end + 4..end + 8].try_into().unwrap()) as usize;
        end += 20 + len;
    }
    let tail = bytes[..40].to_vec();
    bytes[end..end + 40].copy_from_slice(&tail);
    std::fs::write(&last, bytes).unwrap();

    let server = Server::start_with(&root, &[("QDB_CAIRO_WAL_APPLY_INTERVAL_MS", "0")]);
    let c = server.client().await;
    assert_eq!(
        scalar(&c, "SELECT count(*) || '/' || sum(n) FROM w").await,
        "3/3"
    );
    // The torn record was cut off.
    assert_eq!(std::fs::metadata(&last).unwrap().len(), end as u64);
    // The log goes on after the cut.
    c.batch_execute("INSERT INTO w VALUES ('2024-01-01T00:00:09Z', 1, 9)")
        .await
        .unwrap();
    let server = server.restart();
    let c = server.client().await;
    assert_eq!(
        scalar(&c, "SELECT count(*) || '/' || sum(n) FROM w").await,
        "4/12"
    );
}

#[tokio::test]
async fn applied_rows_are_few_files_that_delta_rs_reads() {
    let root = scratch("wal-files").join("data");
    let server = Server::start_with(&root, &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let c = server.client().await;
    c.batch_execute(TABLE).await.unwrap();
    for n in 0..300 {
        c.batch_execute(&format!(
            "INSERT INTO w VALUES ('{}', 1, {n})",
            at(1, n * 60)
        ))
        .await
        .unwrap();
    }
    eventually("the log applied", Duration::from_secs(30), || {
        let c = &c;
        async move {
            (scalar(
                c,
                "SELECT pending_rows FROM sys.wal_tables WHERE table_name = 'w'",
            )
            .await
                == "0")
                .then_some(())
        }
    })
    .await;
    // 300 statements, a handful of applies: far fewer files than rows,
    // even with compaction off.
    let files: i64 = scalar(
        &c,
        "SELECT sum(file_count) FROM sys.partitions WHERE table_name = 'w'",
    )
    .await
    .parse()
    .unwrap();
    assert!(files < 30, "{files} files for 300 rows");
    let table_dir = root.join("db").join("public").join("w");
    let out = crate::common::python(
        "import os\nfrom deltalake import DeltaTable\nt = DeltaTable(os.environ['T']).to_pyarrow_table()\nprint(t.num_rows, sum(t.column('n').to_pylist()))",
        &[("T", table_dir.display().to_string())],
    );
    assert_eq!(out, format!("300 {}", (0..300).sum::<i64>()));
}

/// A small file system (tmpfs) mounted for one test, unmounted after.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn tmpfs(dir: &std::path::Path, size: &str) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(ok.success(), "mount tmpfs at {}", dir.display());
        Mounted(dir.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A full disk fails the statement that needs a new log segment, with an
/// error naming the cause; every acknowledged row stays, visible and
/// across `kill -9`; writes work again once space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_insert_and_keeps_every_acknowledged_row() {
    let mount = scratch("wal_full");
    let _fs = Mounted::tmpfs(&mount, "96m");
    let root = mount.join("data");
    // No apply while the disk fills: the log holds the rows.
    let env = [
        ("QDB_CAIRO_WAL_APPLY_INTERVAL_MS", "0"),
        ("QDB_CAIRO_WAL_APPLY_ROWS", "100000000"),
    ];
    let server = Server::start_with(&root, &env);
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE big (ts TIMESTAMP, n LONG, s VARCHAR) TIMESTAMP(ts) PARTITION BY DAY WAL",
    )
    .await
    .unwrap();
    let text = "x".repeat(1000);
    // 5,000 rows of about 1 KB: a 5 MB record.
    let statement = |k: i64| {
        let values: Vec<String> = (0..5_000)
            .map(|i| {
                format!(
                    "('{}', {}, '{text}')",
                    at(1, (k * 5_000 + i) % 86_400),
                    k * 5_000 + i
                )
            })
            .collect();
        format!("INSERT INTO big VALUES {}", values.join(","))
    };
    let mut acknowledged = 0i64;
    c.batch_execute(&statement(0)).await.unwrap();
    acknowledged += 5_000;
    // Fill what is left of the file system.
    let filler = mount.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    // Records go into the segment's space already reserved, then the next
    // segment cannot be made.
    let mut failure = None;
    for k in 1..10 {
        match c.batch_execute(&statement(k)).await {
            Ok(()) => acknowledged += 5_000,
            Err(e) => {
                failure = Some(
                    e.as_db_error()
                        .map(|d| d.message().to_string())
                        .unwrap_or_default(),
                );
                break;
            }
        }
    }
    let failure = failure.expect("an INSERT failed on the full disk");
    assert!(failure.contains("No space left on device"), "{failure}");
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM big").await,
        acknowledged.to_string()
    );
    // Space again: writes work.
    std::fs::remove_file(&filler).unwrap();
    c.batch_execute(&statement(20)).await.unwrap();
    acknowledged += 5_000;
    drop(c);
    server.kill9();
    let server = Server::start_with(&root, &env);
    let c = server.client().await;
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM big").await,
        acknowledged.to_string()
    );
    drop(c);
    server.stop();
}
