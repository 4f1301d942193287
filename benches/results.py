#!/usr/bin/env python3
"""Result streaming and compaction benchmark against a release server.

Streaming: a weather table of --rows rows (imported by COPY) is read whole
three ways, each a fresh client process:
  psql      `SELECT * FROM weather` (psql -o /dev/null)
  /exp      curl of `/exp?query=SELECT * FROM weather`
  COPY      psql `COPY weather TO STDOUT`
For each: the server's RssAnon before and its peak during the read
(sampled every 10 ms), and the wall time. Time to first row is measured
with psycopg (`cursor.stream`, `copy` blocks) and curl's time to first
byte, so it is what a client sees, not what the server logs.

Compaction: --inserts single-row INSERTs from 8 psycopg connections into a
day-partitioned table, first with compaction off (files per partition and
the median `count(*)` latency of 20 queries), then after a restart with
compaction on (time until each partition is down to two files or fewer,
and the latency again), next to the same latency on the COPY table.

Usage (from the repository root):
  python3 benches/results.py                       # 10M rows, 10,000 inserts
  python3 benches/results.py --rows 1000000 --inserts 2000
"""

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("import_bench", HERE / "import.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
log = bench.log


class PgServer:
    """A release sluice server with pgwire and HTTP on ephemeral ports."""

    def __init__(self, binary, root, copy_root, compaction_ms, fresh):
        if fresh:
            shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        conf = root / "server.conf"
        conf.write_text(
            "http.bind.to=127.0.0.1:0\n"
            "http.min.enabled=false\n"
            "pg.net.bind.to=127.0.0.1:0\n"
            f"cairo.sql.copy.root={copy_root}\n"
            "query.timeout.sec=0\n"
            f"cairo.compaction.interval.ms={compaction_ms}\n"
        )
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--root", str(root), "--conf", str(conf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.http = self.pg = None
        for line in self.proc.stdout:
            if line.startswith("http listening on "):
                self.http = "http://" + line.split()[-1]
            if line.startswith("pgwire listening on "):
                self.pg = line.split()[-1]
            if self.http and self.pg:
                break
        if not (self.http and self.pg):
            raise SystemExit("the server did not start")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        host, port = self.pg.rsplit(":", 1)
        self.dsn = f"host={host} port={port} user=admin password=quest dbname=qdb"
        self.host, self.port = host, port

    def connect(self):
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)

    def psql(self, *args, stdout=subprocess.DEVNULL):
        return subprocess.run(
            ["psql", "-h", self.host, "-p", self.port, "-U", "admin", "-d", "qdb", "-X",
             "-v", "ON_ERROR_STOP=1", *args],
            env={**os.environ, "PGPASSWORD": "quest"},
            stdout=stdout,
            check=True,
        )

    def rss_anon(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def timed_read(server, what, run):
    idle = server.rss_anon()
    mem = bench.MemorySampler(server.proc.pid)
    t0 = time.monotonic()
    run()
    took = time.monotonic() - t0
    peak, _ = mem.stop()
    return {"path": what, "seconds": took, "idle_mib": idle / 2**20,
            "growth_mib": max(0, peak - idle) / 2**20}


def first_row_seconds(server):
    """(pgwire, COPY) time to the first row, as psycopg sees it."""
    conn = server.connect()
    t0 = time.monotonic()
    with conn.cursor() as cur:
        for _ in cur.stream("SELECT * FROM weather"):
            pg = time.monotonic() - t0
            break
    conn.close()
    conn = server.connect()
    t0 = time.monotonic()
    with conn.cursor() as cur, cur.copy("COPY weather TO STDOUT") as copy:
        for _ in copy:
            cp = time.monotonic() - t0
            break
    conn.close()
    return pg, cp


def streaming(server, rows):
    results = []
    results.append(timed_read(server, "psql SELECT *", lambda: server.psql(
        "-A", "-t", "-o", "/dev/null", "-c", "SELECT * FROM weather")))
    curl = {}

    def exp():
        out = subprocess.run(
            ["curl", "-sf", "-o", "/dev/null", "-w", "%{time_starttransfer} %{size_download}",
             f"{server.http}/exp?query=SELECT%20*%20FROM%20weather"],
            check=True, capture_output=True, text=True,
        ).stdout.split()
        curl["first"], curl["bytes"] = float(out[0]), int(out[1])

    results.append(timed_read(server, "/exp", exp))
    results.append(timed_read(server, "COPY TO STDOUT", lambda: server.psql(
        "-c", "COPY weather TO STDOUT")))
    pg_first, copy_first = first_row_seconds(server)
    results[0]["first_s"] = pg_first
    results[1]["first_s"] = curl["first"]
    results[2]["first_s"] = copy_first
    print(f"\n## Streaming {rows:,} rows (server RssAnon, wall time, time to first row)\n")
    print("| path | total s | rows/s | first row s | RssAnon idle MiB | growth MiB |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['path']} | {r['seconds']:.2f} | {rows / r['seconds']:,.0f} | "
              f"{r['first_s']:.3f} | {r['idle_mib']:.0f} | {r['growth_mib']:.1f} |")


def count_latency(server, table, n=20):
    conn = server.connect()
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        times.append(time.monotonic() - t0)
    conn.close()
    return statistics.median(times) * 1000


def files_per_partition(server):
    conn = server.connect()
    rows = conn.execute(
        "SELECT file_count FROM sys.partitions WHERE table_name = 'ins'").fetchall()
    conn.close()
    return [r[0] for r in rows]


def inserts(server, total, clients=8):
    conn = server.connect()
    conn.execute("CREATE TABLE ins (ts TIMESTAMP, v LONG) TIMESTAMP(ts) PARTITION BY DAY")
    conn.close()
    per = total // clients

    def work(c):
        conn = server.connect()
        for i in range(per):
            # Two days of minutes: two partitions.
            second = ((c * per + i) * 17) % 172800
            conn.execute(
                f"INSERT INTO ins VALUES (to_timestamp_micros({second}000000 + 1704067200000000), 1)")
        conn.close()

    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * clients, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--inserts", type=int, default=10_000)
    args = ap.parse_args()
    bench.ensure_module("psycopg")
    binary = bench.build_sluice()
    csv = bench.data_file("weather", args.rows, 100)
    root = bench.BENCH_DIR / "results-root"

    server = PgServer(binary, root, csv.parent, 0, fresh=True)
    conn = server.connect()
    [import_id] = conn.execute(
        f"COPY weather FROM '{csv.name}' WITH HEADER true TIMESTAMP 'timestamp' "
        "PARTITION BY DAY").fetchone()
    while not conn.execute(
        "SELECT 1 FROM sys.text_import_log WHERE id = %s AND phase IS NULL "
        "AND status <> 'started'", (import_id,)).fetchall():
        time.sleep(0.5)
    n = conn.execute("SELECT count(*) FROM weather").fetchone()[0]
    conn.close()
    if n != args.rows:
        raise SystemExit(f"imported {n} rows of {args.rows}")
    streaming(server, args.rows)

    done, took = inserts(server, args.inserts)
    before_files = files_per_partition(server)
    before_ms = count_latency(server, "ins")
    copy_ms = count_latency(server, "weather")
    server.stop()

    server = PgServer(binary, root, csv.parent, 1000, fresh=False)
    t0 = time.monotonic()
    while True:
        files = files_per_partition(server)
        if files and all(f <= 2 for f in files):
            break
        time.sleep(0.1)
    compacted_s = time.monotonic() - t0
    after_ms = count_latency(server, "ins")
    conn = server.connect()
    total = conn.execute("SELECT count(*), sum(v) FROM ins").fetchone()
    conn.close()
    server.stop()
    if total != (done, done):
        raise SystemExit(f"after compaction: {total}, expected {done} rows")
    print(f"\n## {done:,} single-row INSERTs from 8 clients ({done / took:,.0f} INSERTs/s)\n")
    print("| state | files per partition | count(*) median ms |")
    print("|---|---|---|")
    print(f"| before compaction | {', '.join(map(str, before_files))} | {before_ms:.1f} |")
    print(f"| after compaction ({compacted_s:.1f} s after start) | "
          f"{', '.join(map(str, files))} | {after_ms:.1f} |")
    print(f"| COPY table, {args.rows:,} rows | - | {copy_ms:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
