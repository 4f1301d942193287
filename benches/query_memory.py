#!/usr/bin/env python3
"""Query memory: what a query that outgrows `query.memory.limit` grows the
server process by, against DuckDB given the same memory_limit on the same
rows, in one run.

The job: the weather CSV (1M rows by default, 100 days) imported by COPY
(untimed), the query cache off; for each limit and query, a fresh server
(so nothing of an earlier query is in its footprint), the query sent once
over HTTP /exec. Measured: the growth of the server's RssAnon (sampled
every 2 ms, from the moment before the query), the growth of its live heap
(`sluice_heap_peak_bytes` in /metrics) and the wall time. DuckDB runs the
same SQL over the table's own Parquet files in a fresh process with
`SET memory_limit` to the same size and `threads=2`; its growth is its
peak RSS (getrusage) less its RSS before the query. Both answers are
compared.

Usage (from the repository root):
  python3 benches/query_memory.py --binary /var/tmp/sluice-target/release/sluice
  python3 benches/query_memory.py --rows 1000000 --limits 8m,32m,1g
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GEN = REPO.parent / "shared" / "tools" / "gen_csv.py"

QUERIES = {
    "count_distinct_4": "SELECT count(DISTINCT (locationId, skyCover, windDir, timestamp)) FROM weather",
    "group_by_6": "SELECT count(*) FROM (SELECT locationId, skyCover, windDir, windSpeed, tempF, dewpF "
                  "FROM weather GROUP BY 1, 2, 3, 4, 5, 6) g",
    "row_number": "SELECT max(rn) FROM (SELECT row_number() OVER (PARTITION BY locationId, skyCover "
                  "ORDER BY windSpeed, tempF) rn FROM weather) w",
}
# DuckDB's spelling where ours differs (its count(DISTINCT) takes a row).
DUCK = {
    "count_distinct_4": "SELECT count(DISTINCT (locationId, skyCover, windDir, timestamp)) FROM weather",
}
MIB = 1 << 20


def parse_size(s):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(s[:-1]) * units[s[-1].lower()] if s[-1].lower() in units else int(s)


def status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


class Sluice:
    def __init__(self, binary, root, limit):
        (root / "conf").mkdir(parents=True, exist_ok=True)
        (root / "conf" / "server.conf").write_text(
            "http.bind.to=127.0.0.1:9021\npg.net.bind.to=127.0.0.1:9022\n"
            "http.min.net.bind.to=127.0.0.1:9023\n"
            f"query.memory.limit={limit}\nquery.cache.size=0\n")
        self.proc = subprocess.Popen([binary, "--root", str(root)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                self.exec("SELECT 1")
                self.metric("sluice_heap_live_bytes")
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.02)

    def exec(self, sql):
        url = "http://127.0.0.1:9021/exec?" + urllib.parse.urlencode({"query": sql})
        try:
            return json.loads(urllib.request.urlopen(url, timeout=3600).read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def metric(self, name):
        text = urllib.request.urlopen("http://127.0.0.1:9023/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def run_sluice(binary, root, limit, sql):
    s = Sluice(binary, root, limit)
    try:
        pid = s.proc.pid
        base_rss, base_heap = status(pid, "RssAnon"), s.metric("sluice_heap_live_bytes")
        peak, done = [base_rss], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], status(pid, "RssAnon"))
                time.sleep(0.002)
        t = threading.Thread(target=sample)
        t.start()
        t0 = time.perf_counter()
        r = s.exec(sql)
        secs = time.perf_counter() - t0
        done.set()
        t.join()
        heap = s.metric("sluice_heap_peak_bytes") - base_heap
        answer = r["dataset"][0][0] if "dataset" in r else r.get("error")
        return (peak[0] - base_rss) / MIB, heap / MIB, secs, answer
    finally:
        s.stop()


DUCK_CHILD = r"""
import duckdb, resource, sys, time, json
rss = lambda: int([l for l in open('/proc/self/status') if l.startswith('RssAnon')][0].split()[1]) * 1024
con = duckdb.connect()
con.execute(f"SET memory_limit='{sys.argv[1]}'; SET threads=2; SET temp_directory='{sys.argv[3]}'")
con.execute(f"CREATE VIEW weather AS SELECT * FROM read_parquet('{sys.argv[2]}')")
before = rss()
t0 = time.perf_counter()
try:
    answer = con.execute(sys.argv[4]).fetchone()[0]
except Exception as e:
    answer = str(e).splitlines()[0]
secs = time.perf_counter() - t0
print(json.dumps([(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before) / (1 << 20), secs, answer]))
"""


def run_duckdb(glob, limit, sql, tmp):
    out = subprocess.run([sys.executable, "-c", DUCK_CHILD, f"{parse_size(limit) // MIB}MB", glob, tmp, sql],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--limits", default="8m,32m,1g")
    ap.add_argument("--queries", default=",".join(QUERIES))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sluice-qmem-"))
    root = work / "root"
    (root / "import").mkdir(parents=True)
    csv = root / "import" / "weather.csv"
    subprocess.run([sys.executable, str(GEN), "--rows", str(args.rows), "--days", "100", "--out", str(csv)],
                   check=True, stdout=subprocess.DEVNULL)
    s = Sluice(args.binary, root, "1g")
    s.exec("COPY weather FROM 'weather.csv' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY")
    while True:
        r = s.exec("SELECT status FROM sys.text_import_log ORDER BY ts DESC LIMIT 1")
        if r.get("dataset") and r["dataset"][0][0] in ("finished", "failed"):
            assert r["dataset"][0][0] == "finished", r
            break
        time.sleep(0.1)
    s.stop()
    glob = str(root / "db" / "public" / "weather" / "**" / "*.parquet")
    print(f"query memory: {args.binary}, weather {args.rows:,} rows, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'query':18} {'limit':>5} {'sluice RssAnon+':>15} {'heap+':>7} {'s':>6} "
          f"{'duckdb RSS+':>11} {'s':>6}  answers")
    for name in args.queries.split(","):
        for limit in args.limits.split(","):
            rss, heap, secs, answer = run_sluice(args.binary, root, limit, QUERIES[name])
            dtmp = work / "duck-tmp"
            d_rss, d_secs, d_answer = run_duckdb(glob, limit, DUCK.get(name, QUERIES[name]), str(dtmp))
            shutil.rmtree(dtmp, ignore_errors=True)
            same = "equal" if str(answer) == str(d_answer) else f"{answer} vs {d_answer}"
            print(f"{name:18} {limit:>5} {rss:>11.0f} MiB {heap:>3.0f} MiB {secs:>6.2f} "
                  f"{d_rss:>7.0f} MiB {d_secs:>6.2f}  {same}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
