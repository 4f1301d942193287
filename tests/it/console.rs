//! The Web Console (issue 29) in a real browser: Debian's Chromium driven
//! by Playwright for Python (`console.py`) against two real servers, one
//! open and one with `http.auth.token`. The script asserts on the page;
//! this side makes the files it imports and checks what it reports.
//! `SLUICE_CONSOLE_SHOTS=1` copies its screenshots to `docs/console/`.

use std::fmt::Write as _;
use std::path::Path;

use crate::common::{Server, python, scratch};

/// `rows` readings a minute apart from 2024-01-01 over four stations: a
/// daily temperature cycle (so a chart of it has a shape) and wind.
fn readings(path: &Path, rows: usize) {
    let mut out = String::with_capacity(rows * 48);
    out.push_str("ts,station,temp,wind\n");
    for i in 0..rows {
        let (day, minute) = (i / 1440, i % 1440);
        let (month, date) = if day < 31 {
            (1, day + 1)
        } else {
            (2, (day - 31) % 28 + 1)
        };
        let hours = minute as f64 / 60.0;
        let temp = 12.0
            + 7.0 * ((hours - 9.0) / 24.0 * std::f64::consts::TAU).sin()
            + (i % 7) as f64 * 0.3;
        let _ = writeln!(
            out,
            "2024-{month:02}-{date:02}T{:02}:{:02}:00.000000Z,st{},{temp:.1},{}",
            minute / 60,
            minute % 60,
            i % 4,
            (i * 13) % 30
        );
    }
    std::fs::write(path, out).unwrap();
}

#[tokio::test]
async fn console_in_chromium() {
    let root = scratch("console");
    let data = root.join("files");
    std::fs::create_dir_all(&data).unwrap();
    readings(&data.join("readings.csv"), 50_000);
    readings(&data.join("big.csv"), 3_000_000);
    // Twenty rows, one of them with a word where the numbers are.
    let mut bad = String::from("ts,n\n");
    for h in 0..20 {
        let n = if h == 7 {
            "oops".to_string()
        } else {
            h.to_string()
        };
        let _ = writeln!(bad, "2024-01-01T{h:02}:00:00Z,{n}");
    }
    std::fs::write(data.join("bad.csv"), bad).unwrap();
    let shots = root.join("shots");
    std::fs::create_dir_all(&shots).unwrap();

    let open = Server::start(&root.join("open"));
    let locked = Server::start_with(&root.join("locked"), &[("QDB_HTTP_AUTH_TOKEN", "c0nsole")]);
    let made = reqwest::Client::new()
        .get(locked.url("/exec?query=CREATE%20TABLE%20secret_table%20(a%20INT)"))
        .bearer_auth("c0nsole")
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success());

    let (out, peak_kib) = crate::common::peak_rss_anon_kib(open.pid(), || {
        python(
            include_str!("console.py"),
            &[
                ("BASE", open.url("")),
                ("TOKEN_BASE", locked.url("")),
                ("TOKEN", "c0nsole".to_string()),
                ("DATA", data.display().to_string()),
                ("SHOT_DIR", shots.display().to_string()),
            ],
        )
    });
    let report: serde_json::Value = serde_json::from_str(&out).expect("the script's JSON");
    // The 135 MB upload of big.csv is spooled to disk, not held.
    eprintln!(
        "console: {report}, server peak RssAnon {} MiB",
        peak_kib / 1024
    );
    assert_eq!(report["import"], 50_000);
    let heap = report["heap_mb"].as_array().unwrap();
    assert!(heap[1].as_f64().unwrap() < 60.0, "{report}");

    for view in [
        "query",
        "import-preview",
        "import-done",
        "chart",
        "error",
        "jobs",
        "token",
    ] {
        let shot = shots.join(format!("{view}.png"));
        assert!(
            std::fs::metadata(&shot)
                .map(|m| m.len() > 10_000)
                .unwrap_or(false),
            "{view}"
        );
    }
    if std::env::var_os("SLUICE_CONSOLE_SHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::create_dir_all(&docs).unwrap();
        for entry in std::fs::read_dir(&shots).unwrap().flatten() {
            std::fs::copy(entry.path(), docs.join(entry.file_name())).unwrap();
        }
    }
}
