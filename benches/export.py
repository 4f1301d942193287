#!/usr/bin/env python3
"""Export benchmark: sluice COPY TO against DuckDB and Polars, same rows, same job.

The job, for all: a 10M-row weather table -> Snappy Parquet, either one
file per day (`daily`) or one file (`one`).
  sluice: COPY weather TO 'dir' WITH FORMAT PARQUET COMPRESSION_CODEC SNAPPY
          [PARTITION_BY NONE], over HTTP /exec to a release server whose
          table was imported from the CSV first (untimed); timed from the
          statement to the final row of sys.copy_export_log.
  DuckDB: a database whose table was loaded from the CSV ordered by the
          timestamp (untimed), then COPY (SELECT *, CAST(timestamp AS DATE)
          AS day FROM weather) TO dir (FORMAT parquet, PARTITION_BY (day)),
          or COPY weather TO 'file.parquet' (FORMAT parquet).
  Polars: scan_parquet of the same rows as one sorted Parquet file
          .with_columns(day).sink_parquet(PartitionBy(dir, key=day)), or
          .sink_parquet(file); compression snappy.
Throughput is the rows over the time; MB/s is the bytes written. Peak
RssAnon of the process (sluice: the server) over the export. Runs alternate
per tool; medians of --runs.

Usage (from the repository root):
  python3 benches/export.py                    # 10M rows, both cases, 3 runs
  python3 benches/export.py --rows 1m --runs 1 # a smoke test
  python3 benches/export.py --binary target/release/sluice
"""

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

# The import bench's server, memory sampler, data files and builds.
_spec = importlib.util.spec_from_file_location("import_bench", Path(__file__).with_name("import.py"))
ib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ib)

CASES = ("daily", "one")


def dir_bytes(path):
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


def sluice_export(server, case):
    out = ib.fresh_dir("sluice-out").name
    extra = " PARTITION_BY NONE" if case == "one" else ""
    mem = ib.MemorySampler(server.proc.pid)
    start = time.time()
    [[export_id]] = server.sql(
        f"COPY weather TO '{out}' WITH FORMAT PARQUET COMPRESSION_CODEC SNAPPY{extra}"
    )
    while True:
        time.sleep(0.1)
        final = server.sql(
            "SELECT status, message, num_exported_rows, ts FROM sys.copy_export_log "
            f"WHERE id = '{export_id}' AND phase IN ('none', 'success') AND status <> 'started'"
        )
        if final:
            break
    peak_anon, _ = mem.stop()
    status, message, rows, end = final[0]
    if status != "finished":
        raise SystemExit(f"export {export_id} ended {status}: {message}")
    seconds = datetime.fromisoformat(end).timestamp() - start
    return {"seconds": seconds, "peak_anon": peak_anon, "rows": rows,
            "bytes": dir_bytes(server.root / "export" / out)}


def peer(script, args):
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)],
                            stdout=subprocess.PIPE, text=True)
    mem = ib.MemorySampler(proc.pid)
    stdout, _ = proc.communicate()
    peak_anon, _ = mem.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{script.split()[1]} failed with exit code {proc.returncode}")
    return float(stdout.strip().splitlines()[-1]), peak_anon


DUCK_LOAD = """
import sys, duckdb
con = duckdb.connect(sys.argv[2])
con.execute(f"CREATE TABLE weather AS SELECT * FROM read_csv('{sys.argv[1]}') ORDER BY timestamp")
con.execute(f"COPY weather TO '{sys.argv[3]}' (FORMAT parquet)")
print(0)
"""

DUCK_EXPORT = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
start = time.perf_counter()
if sys.argv[3] == "daily":
    con.execute(f"COPY (SELECT *, CAST(timestamp AS DATE) AS day FROM weather) TO '{sys.argv[2]}' "
                "(FORMAT parquet, COMPRESSION snappy, PARTITION_BY (day))")
else:
    con.execute(f"COPY weather TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION snappy)")
print(time.perf_counter() - start)
"""

POLARS_EXPORT = """
import sys, time, polars as pl
start = time.perf_counter()
scan = pl.scan_parquet(sys.argv[1])
if sys.argv[3] == "daily":
    (scan.with_columns(pl.col("timestamp").dt.date().alias("day"))
         .sink_parquet(pl.PartitionBy(sys.argv[2], key="day"), compression="snappy"))
else:
    scan.sink_parquet(sys.argv[2], compression="snappy")
print(time.perf_counter() - start)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10m", help="1m or 10m")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--binary", type=Path, help="use this sluice binary, do not build")
    a = ap.parse_args()
    ib.ensure_module("duckdb")
    ib.ensure_module("polars")
    binary = a.binary or ib.build_sluice()
    csv = ib.data_file("weather", ib.SIZES[a.rows], 100)
    ib.OUT_DIR.mkdir(parents=True, exist_ok=True)
    try:
        run(a, binary, csv)
    finally:
        import shutil
        shutil.rmtree(ib.OUT_DIR, ignore_errors=True)


def run(a, binary, csv):
    rows = ib.SIZES[a.rows]
    ib.log("loading the table into sluice, DuckDB and a sorted Parquet file (untimed)")
    server = ib.Server(binary, ib.fresh_dir("sluice"), csv.parent, 2)
    [[imp]] = server.sql(
        f"COPY weather FROM '{csv.name}' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY"
    )
    while not server.sql(
        f"SELECT 1 FROM sys.text_import_log WHERE id = '{imp}' AND phase IS NULL AND status = 'finished'"
    ):
        time.sleep(0.2)
    [[count]] = server.sql("SELECT count(*) FROM weather")
    assert count == rows, count
    duck_db = ib.fresh_dir("duckdb-db").with_suffix(".duckdb")
    duck_db.parent.mkdir(parents=True, exist_ok=True)
    sorted_pq = duck_db.with_suffix(".parquet")
    peer(DUCK_LOAD, [csv, duck_db, sorted_pq])
    table_bytes = sum(f.stat().st_size for f in (server.root / "db").rglob("*.parquet"))
    print(f"sluice export benchmark: {binary}, {rows:,} weather rows over 100 days, "
          f"table {table_bytes / 1e6:,.0f} MB of Parquet, {a.runs} runs per tool")
    try:
        for case in a.cases.split(","):
            ours, duck, polar = [], [], []
            for _ in range(a.runs):
                r = sluice_export(server, case)
                assert r["rows"] == rows, r
                ours.append(r)
                out = ib.fresh_dir("duckdb-out")
                target = out if case == "daily" else out.with_suffix(".parquet")
                secs, anon = peer(DUCK_EXPORT, [duck_db, target, case])
                duck.append({"seconds": secs, "peak_anon": anon, "bytes": dir_bytes(target)})
                out = ib.fresh_dir("polars-out")
                target = out if case == "daily" else out.with_suffix(".parquet")
                secs, anon = peer(POLARS_EXPORT, [sorted_pq, target, case])
                polar.append({"seconds": secs, "peak_anon": anon, "bytes": dir_bytes(target)})
            print(f"\n[{case}] {'one file per day' if case == 'daily' else 'one file'}, Snappy")
            medians = {}
            for name, runs in (("sluice", ours), ("duckdb", duck), ("polars", polar)):
                s = statistics.median(r["seconds"] for r in runs)
                b = statistics.median(r["bytes"] for r in runs)
                m = max(r["peak_anon"] for r in runs)
                medians[name] = s
                print(f"  {name:8} {s:6.2f} s  {rows / s / 1e6:5.2f} M rows/s  "
                      f"{b / s / 1e6:6,.0f} MB/s written ({b / 1e6:,.0f} MB)  peak RssAnon {ib.mib(m)}")
            best = min(medians["duckdb"], medians["polars"])
            print(f"  ratio    sluice/duckdb {medians['duckdb'] / medians['sluice']:.2f}x, "
                  f"sluice/polars {medians['polars'] / medians['sluice']:.2f}x, "
                  f"against the best peer {best / medians['sluice']:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
