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

/// Names keep their case: a header's `windDir` is the column's name in
/// results (pgwire and `/exec`), SHOW CREATE TABLE and the Delta schema
/// delta-rs reads, and any spelling of it finds it.
#[tokio::test]
async fn names_keep_their_case() {
    let (server, import) = crate::copy::start("dialects-names", &[]);
    std::fs::write(
        import.join("wind.csv"),
        "ts,windDir,Temp\n2024-01-01T00:00:00Z,90,1.5\n2024-01-02T00:00:00Z,180,2.5\n",
    )
    .unwrap();
    let client = server.client().await;
    let id = crate::common::scalar(
        &client,
        "COPY wind FROM 'wind.csv' WITH TIMESTAMP 'ts' PARTITION BY DAY",
    )
    .await;
    let (status, message, ..) = crate::copy::wait_final(&client, &id).await;
    assert_eq!(status, "finished", "{message:?}");

    let rows = client
        .query("SELECT WINDDIR, temp FROM wind ORDER BY ts", &[])
        .await
        .unwrap();
    let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["windDir", "Temp"]);
    assert_eq!(rows[1].get::<_, i32>(0), 180);

    let url = server.url(&format!(
        "/exec?query={}",
        crate::common::enc("SELECT \"winddir\" FROM wind")
    ));
    let body: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(body["columns"][0]["name"], "windDir", "{body}");

    let ddl = crate::common::scalar(&client, "SHOW CREATE TABLE wind").await;
    assert!(ddl.contains("windDir") && ddl.contains("Temp"), "{ddl}");

    let schema = python(
        "import os; from deltalake import DeltaTable\nprint(','.join(f.name for f in DeltaTable(os.environ['T']).schema().fields))",
        &[(
            "T",
            server.root.join("db/public/wind").display().to_string(),
        )],
    );
    assert_eq!(schema, "ts,windDir,Temp");
}
