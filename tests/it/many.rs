//! COPY of several files: a glob and a directory under the copy root are
//! one import (one id, one Delta version), every file named in the phase
//! rows and in its error rows; columns in another order map by name,
//! different columns fail naming both files.

use crate::common::{column, scalar};
use crate::copy::{Reference, start, wait_final, weather_csv};

/// `n` weather files `day-NN.csv` of 1,000 rows over 2 days in `dir`; file
/// 7 ends with one line whose tempF is not a number.
fn files(dir: &std::path::Path, n: usize) -> Vec<Reference> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let path = dir.join(format!("day-{i:02}.csv"));
            let r = weather_csv(&path, 1_000, 2, 100 + i as u64);
            if i == 7 {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                writeln!(f, "2010-01-01T12:00:00.000000Z,Shelbyville,warm,3,").unwrap();
            }
            r
        })
        .collect()
}

#[tokio::test]
async fn a_glob_and_a_directory_are_one_import() {
    let (server, import) = start("many-glob", &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let refs = files(&import.join("exports"), 20);
    let rows: u64 = refs.iter().map(|r| r.rows).sum();
    let temp: i64 = refs.iter().map(|r| r.temp_sum_milli).sum();
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY weather FROM 'exports/day-*.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    let (status, message, handled, imported, errors) = wait_final(&client, &id).await;
    assert_eq!(status, "finished", "{message:?}");
    assert_eq!(
        (handled, imported, errors),
        (rows as i64 + 1, rows as i64, 1)
    );
    let got = scalar(
        &client,
        "SELECT count(*) || '|' || cast(round(sum(tempF) * 1000) AS BIGINT) FROM weather",
    )
    .await;
    assert_eq!(got, format!("{rows}|{temp}"));
    // The bad line: its file, and its line in that file.
    let bad = scalar(
        &client,
        &format!("SELECT file || ':' || line FROM sys.text_import_errors WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(bad, format!("exports/day-07.csv:{}", refs[7].rows + 2));
    // Every file has its phase rows; the import's own rows name the glob.
    let named = column(
        &client,
        &format!("SELECT DISTINCT file FROM sys.text_import_log WHERE id = '{id}' AND phase = 'partition_import' ORDER BY file"),
    )
    .await;
    assert_eq!(named.len(), 20);
    assert_eq!(named[0].as_deref(), Some("exports/day-00.csv"));
    let own = scalar(
        &client,
        &format!("SELECT file FROM sys.text_import_log WHERE id = '{id}' AND phase IS NULL AND status = 'finished'"),
    )
    .await;
    assert_eq!(own, "exports/day-*.csv");
    // One commit: version 0 of the new table holds every file.
    let dir = server.root.join("db/public/weather");
    let commits = crate::common::delta_actions(&dir)
        .iter()
        .filter(|a| a.get("commitInfo").is_some())
        .count();
    assert_eq!(commits, 1);

    // A directory: every file below it, into an existing table (FORCE:
    // the table has loaded these files).
    let id = scalar(
        &client,
        "COPY weather FROM 'exports/' WITH HEADER true FORCE true",
    )
    .await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM weather").await,
        (2 * rows).to_string()
    );
    let commits = crate::common::delta_actions(&dir)
        .iter()
        .filter(|a| a.get("commitInfo").is_some())
        .count();
    assert_eq!(commits, 2);

    // Columns in another order map by name.
    let reorder = import.join("reorder");
    std::fs::create_dir_all(&reorder).unwrap();
    std::fs::write(
        reorder.join("a.csv"),
        "timestamp,city,tempF\n2011-01-01T00:00:00.000000Z,A,1.5\n",
    )
    .unwrap();
    std::fs::write(
        reorder.join("b.csv"),
        "tempF,timestamp,city\n2.5,2011-01-02T00:00:00.000000Z,B\n",
    )
    .unwrap();
    let id = scalar(
        &client,
        "COPY r FROM 'reorder/*.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    assert_eq!(
        scalar(
            &client,
            "SELECT string_agg(city || '=' || tempF, ',' ORDER BY timestamp) FROM r"
        )
        .await,
        "A=1.5,B=2.5"
    );

    // Different columns: the import fails naming both files; no table.
    std::fs::write(
        reorder.join("c.csv"),
        "timestamp,town,tempF\n2011-01-03T00:00:00.000000Z,C,3.5\n",
    )
    .unwrap();
    let id = scalar(
        &client,
        "COPY r2 FROM 'reorder/' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    let (status, message, ..) = wait_final(&client, &id).await;
    assert_eq!(status, "failed");
    let message = message.unwrap();
    assert!(
        message.contains("reorder/c.csv") && message.contains("reorder/a.csv"),
        "{message}"
    );
    let err = client.simple_query("SELECT * FROM r2").await.unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("does not exist")
    );

    // A glob matching nothing, or leading outside the root, is refused.
    for (sql, want) in [
        ("COPY x FROM 'exports/none-*.csv'", "no file matches"),
        ("COPY x FROM '../*.csv'", "not allowed"),
    ] {
        let err = client.simple_query(sql).await.unwrap_err();
        let message = err.as_db_error().unwrap().message().to_string();
        assert!(message.contains(want), "{sql}: {message}");
    }
    assert!(server.stop().success());
}

/// The load ledger: a re-run skips the files the table loaded (each
/// logged as skipped), a new or changed file is loaded, FORCE loads all
/// again; delta-rs sees the record as Delta `txn` actions.
#[tokio::test]
async fn a_rerun_skips_what_the_table_loaded() {
    let (server, import) = start("many-ledger", &[("QDB_CAIRO_COMPACTION_INTERVAL_MS", "0")]);
    let dir = import.join("daily");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rows = 0;
    for i in 0..3 {
        rows += weather_csv(&dir.join(format!("d{i}.csv")), 500, 2, 7 + i).rows;
    }
    let client = server.client().await;
    let copy = "COPY w FROM 'daily/' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY";
    let count = || async { scalar(&client, "SELECT count(*) FROM w").await };
    let id = scalar(&client, copy).await;
    assert_eq!(wait_final(&client, &id).await.0, "finished");
    assert_eq!(count().await, rows.to_string());
    let d0_before = std::fs::metadata(dir.join("d0.csv")).unwrap().len();

    // The same files again: nothing loaded, each file logged as skipped.
    let again = scalar(&client, copy).await;
    let (status, message, _, imported, _) = wait_final(&client, &again).await;
    assert_eq!((status.as_str(), imported), ("finished", 0));
    assert!(message.unwrap().contains("skipped 3 of 3 files"));
    let skipped = column(
        &client,
        &format!(
            "SELECT message FROM sys.text_import_log WHERE id = '{again}' AND status = 'skipped'"
        ),
    )
    .await;
    assert_eq!(skipped.len(), 3);
    assert_eq!(
        skipped[0].as_deref(),
        Some("the table loaded this file before")
    );
    assert_eq!(count().await, rows.to_string());

    // A new file and a changed one are loaded; the other two are not.
    let added = weather_csv(&dir.join("d3.csv"), 200, 2, 99).rows;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("d0.csv"))
            .unwrap();
        writeln!(f, "2010-01-01T05:00:00.000000Z,Shelbyville,1.0,2,").unwrap();
    }
    let id3 = scalar(&client, copy).await;
    let (status, message, _, imported, _) = wait_final(&client, &id3).await;
    assert_eq!(status, "finished");
    assert!(message.unwrap().contains("skipped 2 of 4 files"));
    let d0 = weather_csv_rows(&dir.join("d0.csv"));
    assert_eq!(imported as u64, added + d0);

    // A single file: skipped too, and FORCE loads it again.
    let one = "COPY w FROM 'daily/d1.csv' WITH HEADER true";
    let id4 = scalar(&client, one).await;
    let (_, message, _, imported, _) = wait_final(&client, &id4).await;
    assert_eq!(imported, 0);
    assert!(message.unwrap().contains("WITH FORCE true"));
    let before: u64 = count().await.parse().unwrap();
    let id5 = scalar(&client, &format!("{one} FORCE true")).await;
    let (_, _, _, imported, _) = wait_final(&client, &id5).await;
    assert_eq!(imported, 500);
    assert_eq!(count().await, (before + 500).to_string());

    // sys.copy_history lists what each import loaded or skipped, by id:
    // per file its rows, size and ledger fingerprint.
    let history = column(
        &client,
        "SELECT id || ' ' || table_name || ' ' || file || ' ' || status || ' ' || rows_imported || ' ' || size          FROM sys.copy_history ORDER BY ts, file",
    )
    .await;
    let size = |f: &str| std::fs::metadata(dir.join(f)).unwrap().len();
    let history: Vec<String> = history.into_iter().flatten().collect();
    let (d0_now, d1, d2, d3) = (
        size("d0.csv"),
        size("d1.csv"),
        size("d2.csv"),
        size("d3.csv"),
    );
    let expected: Vec<String> = [
        (&id, "d0", "finished", 500, d0_before),
        (&id, "d1", "finished", 500, d1),
        (&id, "d2", "finished", 500, d2),
        (&again, "d0", "skipped", 0, d0_before),
        (&again, "d1", "skipped", 0, d1),
        (&again, "d2", "skipped", 0, d2),
        (&id3, "d0", "finished", d0, d0_now),
        (&id3, "d1", "skipped", 0, d1),
        (&id3, "d2", "skipped", 0, d2),
        (&id3, "d3", "finished", added, d3),
        (&id4, "d1", "skipped", 0, d1),
        (&id5, "d1", "finished", 500, d1),
    ]
    .iter()
    .map(|(id, f, status, rows, bytes)| format!("{id} w daily/{f}.csv {status} {rows} {bytes}"))
    .collect();
    assert_eq!(history, expected);
    let fingerprints = scalar(
        &client,
        "SELECT count(DISTINCT fingerprint) FROM sys.copy_history WHERE fingerprint LIKE 'sluice-load-%'",
    )
    .await;
    // d0 (twice: it changed), d1, d2, d3.
    assert_eq!(fingerprints, "5");

    // The record is Delta's own: a `txn` action per file loaded.
    let txns = crate::common::delta_actions(&server.root.join("db/public/w"))
        .iter()
        .filter(|a| a.get("txn").is_some())
        .count();
    // d0, d1, d2, then d0 (changed) and d3, then d1 forced.
    assert_eq!(txns, 6);

    // After TRUNCATE the table holds none of them: all four load again.
    client.batch_execute("TRUNCATE TABLE w").await.unwrap();
    let id6 = scalar(&client, copy).await;
    let (status, message, _, imported, _) = wait_final(&client, &id6).await;
    assert_eq!((status.as_str(), message), ("finished", None));
    assert_eq!(imported as u64, d0 + 2 * 500 + added);
    assert!(server.stop().success());
}

/// Data rows of a CSV file with a header.
fn weather_csv_rows(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path).unwrap().lines().count() as u64 - 1
}

/// CANCEL while the second file of a glob is imported: the first file's
/// rows are not committed either; no table, no scratch.
#[tokio::test]
async fn cancel_of_a_glob_commits_nothing() {
    let (server, import) = start("many-cancel", &[("QDB_CAIRO_SQL_COPY_WORKER_COUNT", "1")]);
    let dir = import.join("parts");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..4 {
        weather_csv(&dir.join(format!("p{i}.csv")), 300_000, 60, 40 + i);
    }
    let client = server.client().await;
    let id = scalar(
        &client,
        "COPY g FROM 'parts/*.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY",
    )
    .await;
    crate::common::eventually("the second file", std::time::Duration::from_secs(120), || {
        let client = &client;
        let id = &id;
        async move {
            let n = scalar(
                client,
                &format!("SELECT count(*) FROM sys.text_import_log WHERE id = '{id}' AND file = 'parts/p1.csv'"),
            )
            .await;
            (n != "0").then_some(())
        }
    })
    .await;
    client
        .simple_query(&format!("COPY '{id}' CANCEL"))
        .await
        .unwrap();
    let (status, ..) = wait_final(&client, &id).await;
    assert_eq!(status, "cancelled");
    assert!(client.simple_query("SELECT * FROM g").await.is_err());
    assert!(!server.root.join("tmp/import").join(&id).exists());
    let leftovers: Vec<_> = std::fs::read_dir(server.root.join("db/public"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        scalar(
            &client,
            &format!("SELECT count(*) FROM sys.copy_history WHERE id = '{id}'")
        )
        .await,
        "0"
    );
}
