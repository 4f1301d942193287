#!/usr/bin/env python3
"""SAMPLE BY, LATEST ON and ASOF JOIN benchmark: sluice's SAMPLE BY 1h against DuckDB's
time_bucket, LATEST ON against DuckDB's newest row per key (QUALIFY
row_number()), and ASOF JOIN against DuckDB's own, over the same Parquet files.

The job: the 10M-row weather table (imported from the CSV first, untimed,
100 day partitions) averaged per hour: `SELECT timestamp, avg(tempF) FROM
weather SAMPLE BY 1h` over HTTP /exec to a release server (timed from the
request to the last byte of the answer), against DuckDB running
`SELECT time_bucket(INTERVAL 1 hour, timestamp), avg(tempF) … GROUP BY 1
ORDER BY 1` over the table's own Parquet files (read_parquet of its
partition directories) in a fresh process. LATEST ON picks the newest row
per skyCover (7 text keys: only the newest files are read) and per
locationId (9,999 integer keys: the whole table). The ASOF JOIN matches
each row of the first day (a table filled from weather first, untimed) with
the newest row of the same skyCover at or before it. Both answers are compared
(row count and the sum of the last column).
Medians of --runs, the tools alternating.

Usage (from the repository root):
  python3 benches/sample_by.py                   # 10M rows, 5 runs
  python3 benches/sample_by.py --rows 1m --runs 1
  python3 benches/sample_by.py --binary /var/tmp/sluice-target/release/sluice
"""

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

_spec = importlib.util.spec_from_file_location("import_bench", Path(__file__).with_name("import.py"))
ib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ib)

CASES = {
    "hourly": ("SELECT timestamp, avg(tempF) FROM weather SAMPLE BY 1h",
               "SELECT time_bucket(INTERVAL 1 hour, timestamp) AS b, avg(tempF) FROM read_parquet('{glob}') GROUP BY b ORDER BY b"),
    "hourly_keyed": ("SELECT timestamp, skyCover, avg(tempF), max(windSpeed) FROM weather SAMPLE BY 1h",
                     "SELECT time_bucket(INTERVAL 1 hour, timestamp) AS b, skyCover, avg(tempF), max(windSpeed) FROM read_parquet('{glob}') GROUP BY b, skyCover ORDER BY b, skyCover"),
    "latest_text_keys": ("SELECT timestamp, skyCover, tempF FROM weather LATEST ON timestamp PARTITION BY skyCover",
                         "SELECT timestamp, skyCover, tempF FROM read_parquet('{glob}') QUALIFY row_number() OVER (PARTITION BY skyCover ORDER BY timestamp DESC) = 1"),
    "latest_int_keys": ("SELECT timestamp, locationId, tempF FROM weather LATEST ON timestamp PARTITION BY locationId",
                        "SELECT timestamp, locationId, tempF FROM read_parquet('{glob}') QUALIFY row_number() OVER (PARTITION BY locationId ORDER BY timestamp DESC) = 1"),
    # One day's rows (a table made by SETUP) each with the newest row of the
    # whole table of the same sky cover at or before it: DuckDB's own ASOF
    # JOIN (a NULL sky cover is a key of its own, as in QuestDB).
    "asof_join": ("SELECT d.timestamp, w.tempF FROM day1 d ASOF JOIN weather w ON (skyCover)",
                  "WITH w AS (SELECT * FROM read_parquet('{glob}')), d AS (SELECT * FROM w WHERE timestamp < '2010-01-02') "
                  "SELECT d.timestamp, w.tempF FROM d ASOF LEFT JOIN w ON d.skyCover IS NOT DISTINCT FROM w.skyCover AND d.timestamp >= w.timestamp"),
}

# Run once after the import, untimed.
SETUP = [
    "CREATE TABLE day1 (locationId INT, timestamp TIMESTAMP, skyCover SYMBOL, tempF DOUBLE) TIMESTAMP(timestamp) PARTITION BY DAY",
    "INSERT INTO day1 SELECT locationId, timestamp, skyCover, tempF FROM weather WHERE timestamp < '2010-01-02'",
]

DUCK = """
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("SET enable_progress_bar = false")
start = time.perf_counter()
rows = con.execute(sys.argv[1]).fetchall()
print(time.perf_counter() - start)
print(len(rows), sum(r[-1] or 0 for r in rows))
"""


def sluice_query(server, sql):
    url = f"{server.url}/exec?" + urllib.parse.urlencode({"query": sql})
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = json.loads(r.read())
    seconds = time.perf_counter() - start
    if "error" in body:
        raise SystemExit(f"{sql}: {body['error']}")
    rows = body["dataset"]
    return seconds, len(rows), sum(r[-1] or 0 for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10m")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--binary", type=Path)
    a = ap.parse_args()
    ib.ensure_module("duckdb")
    binary = a.binary or ib.build_sluice()
    csv = ib.data_file("weather", ib.SIZES[a.rows], 100)
    ib.OUT_DIR.mkdir(parents=True, exist_ok=True)
    server = ib.Server(binary, ib.fresh_dir("sluice"), csv.parent, 2)
    try:
        [[imp]] = server.sql(
            f"COPY weather FROM '{csv.name}' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY"
        )
        while not server.sql(
            f"SELECT 1 FROM sys.text_import_log WHERE id = '{imp}' AND phase IS NULL AND status = 'finished'"
        ):
            time.sleep(0.2)
        for sql in SETUP:
            server.sql(sql)
        glob = server.root / "db" / "public" / "weather" / "*" / "*.parquet"
        print(f"SAMPLE BY, LATEST ON and ASOF JOIN benchmark: {binary}, {ib.SIZES[a.rows]:,} weather rows, 100 days, {a.runs} runs")
        for name, (ours_sql, duck_sql) in CASES.items():
            ours, duck = [], []
            for _ in range(a.runs):
                ours.append(sluice_query(server, ours_sql))
                out = subprocess.run([sys.executable, "-c", DUCK, duck_sql.format(glob=glob)],
                                     check=True, stdout=subprocess.PIPE, text=True).stdout.split("\n")
                n, total = out[1].split()
                duck.append((float(out[0]), int(n), float(total)))
            s = statistics.median(r[0] for r in ours)
            d = statistics.median(r[0] for r in duck)
            same = ours[0][1] == duck[0][1] and abs(ours[0][2] - duck[0][2]) <= 1e-6 * max(1, abs(duck[0][2]))
            print(f"\n[{name}] {ours_sql}")
            print(f"  sluice  {s:6.3f} s  {ib.SIZES[a.rows] / s / 1e6:6.1f} M rows/s  ({ours[0][1]} rows)")
            print(f"  duckdb  {d:6.3f} s  {ib.SIZES[a.rows] / d / 1e6:6.1f} M rows/s  ({duck[0][1]} rows)")
            print(f"  ratio   sluice/duckdb {d / s:.2f}x; same answer: {same}")
    finally:
        server.stop()
        import shutil
        shutil.rmtree(ib.OUT_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
