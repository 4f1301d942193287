//! Every CSV dialect class people bring (issue 28): each fixture loads by
//! COPY with the options that describe it and with none (detection, into a
//! new table and into an existing one), cell
//! for cell equal to the clean table, and sluice gets at least as many
//! cells right as DuckDB's `read_csv` sniffer on the same files.

use crate::common::python;

#[tokio::test]
async fn every_dialect_loads_with_options_and_by_detection() {
    let (server, import) = crate::copy::start("dialects", &[]);
    let out = python(
        include_str!("dialects.py"),
        &[
            ("PG_PORT", server.pg.port().to_string()),
            ("IMPORT_DIR", import.display().to_string()),
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).expect("the script's JSON");
    let (mut ours, mut duck, mut all) = (0, 0, 0);
    let mut wrong = Vec::new();
    for (name, e) in report.as_object().expect("an object") {
        let cells = e["cells"].as_u64().unwrap();
        for mode in ["explicit", "detected", "existing"] {
            if e[mode].as_u64() != Some(cells) {
                wrong.push(format!("{name} ({mode}): {e}"));
            }
        }
        ours += e["detected"].as_u64().unwrap();
        duck += e["duckdb"].as_u64().unwrap();
        all += cells;
        eprintln!(
            "{name:<26} sluice detected {:>3}/{cells}, explicit {:>3}/{cells}, into an existing table {:>3}/{cells}, DuckDB {:>3}/{cells} {}",
            e["detected"],
            e["explicit"],
            e["existing"],
            e["duckdb"],
            e.get("duckdb_error")
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
    }
    eprintln!("cells right: sluice {ours}/{all}, DuckDB {duck}/{all}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(ours >= duck, "sluice {ours} < DuckDB {duck} of {all}");
}
