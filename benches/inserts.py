#!/usr/bin/env python3
"""Small-write benchmark: single-row and 100-row INSERTs from 1, 8 and 32
connections, sluice against PostgreSQL 15 on the same machine, same run.

Each client is its own process with one psycopg 3 connection in autocommit
mode, inserting into a 3-column table (ts, id, v) for a fixed time:
  single: INSERT INTO bench VALUES (%s, %s, %s)   (psycopg binds the values)
  multi:  INSERT INTO bench VALUES (...), ... 100 rows, as one text
  direct: single, into a BYPASS WAL table on sluice (each INSERT its own
          Delta commit: the commit path's latency; not in the defaults)
Committed rows/s is the rows of acknowledged statements over the time;
p50/p99 are statement latencies as the client saw them. After each sluice
case the bench waits for the write-ahead log to be applied and reports
the Parquet files per partition; every case checks count(*) against the
acknowledged rows.

sluice: a release server (built here unless --binary), a WAL table
  (TIMESTAMP(ts) PARTITION BY DAY), default settings.
PostgreSQL: Debian's postgresql-15 (installed with apt if missing), a
  private cluster made by the bench (initdb, default settings: fsync and
  synchronous_commit on), on a local port, removed at the end.

Usage (from the repository root):
  python3 benches/inserts.py                 # all cases, 10 s each
  python3 benches/inserts.py --seconds 5 --clients 1,8
  python3 benches/inserts.py --binary target/release/sluice
  python3 benches/inserts.py --kinds direct --clients 1 --rounds 1
"""

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def log(msg):
    print(f"[inserts] {msg}", file=sys.stderr, flush=True)


def need(module, package=None):
    try:
        __import__(module)
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", package or module], check=True)


def build_sluice():
    log("cargo build --release --locked")
    out = subprocess.run(
        ["cargo", "build", "--release", "--locked", "--message-format=json"],
        cwd=REPO, check=True, stdout=subprocess.PIPE,
    ).stdout
    for line in out.decode().splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "sluice" \
                and "bin" in msg["target"]["kind"]:
            return Path(msg["executable"])
    raise SystemExit("cargo did not report the sluice binary")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sluice:
    name = "sluice"

    def __init__(self, binary, root):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--root", str(root)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, QDB_PG_NET_BIND_TO="127.0.0.1:0", QDB_HTTP_BIND_TO="127.0.0.1:0",
                     QDB_HTTP_MIN_NET_BIND_TO="127.0.0.1:0"),
        )
        self.port = None
        for line in self.proc.stdout:
            if line.startswith("pgwire listening on "):
                self.port = int(line.rsplit(":", 1)[1])
            if line.startswith("http listening on "):
                break
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.dsn = f"host=127.0.0.1 port={self.port} user=admin password=quest dbname=qdb"
        self.create = "CREATE TABLE {t} (ts TIMESTAMP, id INT, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY WAL"

    def settle(self, conn, table):
        """Waits for the log to be applied, then for the table to settle;
        returns Parquet files per partition at each point ("applied /
        settled"): while rows arrive compaction merges in tiers, and a few
        seconds after the last rows it merges each partition whole."""
        cur = conn.cursor()
        deadline = time.time() + 120
        while time.time() < deadline:
            cur.execute("SELECT pending_rows FROM sys.wal_tables WHERE table_name = %s", (table,))
            row = cur.fetchone()
            # (A BYPASS WAL table has no log to wait for.)
            if row is None or row[0] == 0:
                break
            time.sleep(0.05)
        count = ("SELECT count(*), sum(file_count) FROM sys.partitions WHERE table_name = %s")
        cur.execute(count, (table,))
        parts, files = cur.fetchone()
        if not parts:
            return "0"
        applied = files / parts
        deadline = time.time() + 20
        while files > parts and time.time() < deadline:
            time.sleep(0.2)
            cur.execute(count, (table,))
            parts, files = cur.fetchone()
        return f"{applied:.1f} / {files / parts:.1f}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


class Postgres:
    name = "PostgreSQL"

    def __init__(self):
        bindir = Path("/usr/lib/postgresql/15/bin")
        if not (bindir / "initdb").exists():
            log("apt-get install postgresql-15")
            subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql-15"], check=True,
                           stdout=subprocess.DEVNULL)
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-bench-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        run = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        subprocess.run(run + [str(bindir / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(data)],
                       check=True, stdout=subprocess.DEVNULL)
        self.port = free_port()
        subprocess.run(run + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(self.dir / "log"),
                              "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.stop_cmd = run + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        self.create = "CREATE TABLE {t} (ts timestamptz, id int, v double precision)"

    def settle(self, conn, table):
        return None

    def stop(self):
        subprocess.run(self.stop_cmd, check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def client(dsn, table, kind, worker, start_at, seconds, out):
    import psycopg
    conn = psycopg.connect(dsn, autocommit=True)
    cur = conn.cursor()
    single = f"INSERT INTO {table} VALUES (%s, %s, %s)"
    lat = []
    rows = 0
    n = 0
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        if kind in ("single", "direct"):
            ts = BASE + dt.timedelta(seconds=worker * 1_000_000 + n)
            cur.execute(single, (ts, worker, n * 0.5))
            k = 1
        else:
            values = ",".join(
                f"('{(BASE + dt.timedelta(seconds=worker * 1_000_000 + n + i)).isoformat()}', {worker}, {(n + i) * 0.5})"
                for i in range(100))
            cur.execute(f"INSERT INTO {table} VALUES {values}")
            k = 100
        lat.append(time.perf_counter() - t0)
        rows += k
        n += k
    conn.close()
    out.put((rows, lat))


def run_case(db, kind, clients, seconds, case):
    import psycopg
    table = f"bench_{case}"
    create = db.create.format(t=table)
    if kind == "direct" and db.name == "sluice":
        create = create.removesuffix(" WAL") + " BYPASS WAL"
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(create)
    out = mp.Queue()
    start_at = time.time() + 1.0
    procs = [mp.Process(target=client, args=(db.dsn, table, kind, w, start_at, seconds, out))
             for w in range(clients)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    rows = sum(r for r, _ in results)
    lat = sorted(x for _, ls in results for x in ls)
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        files = db.settle(conn, table)
        counted = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if counted != rows:
        raise SystemExit(f"{db.name} {kind} x{clients}: {counted} rows in the table, {rows} acknowledged")
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    return {
        "rows_per_s": rows / seconds, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
        "statements": len(lat), "files_per_partition": files,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", type=Path)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--kinds", default="single,multi")
    ap.add_argument("--rounds", type=int, default=3,
                    help="runs of each case per system, alternating sluice and PostgreSQL")
    args = ap.parse_args()
    need("psycopg", "psycopg[binary]")
    binary = args.binary or build_sluice()
    clients = [int(c) for c in args.clients.split(",")]
    kinds = args.kinds.split(",")
    root = Path(os.environ.get("SLUICE_BENCH_DIR", "/var/tmp/sluice-bench")) / "inserts"
    sluice, pg = Sluice(binary, root), Postgres()
    results = {}
    try:
        case = 0
        for kind in kinds:
            for c in clients:
                # Alternated, so a change in the VM's disk or CPU speed
                # during the run falls on both systems alike.
                for r in range(args.rounds):
                    for db in (sluice, pg):
                        case += 1
                        log(f"{db.name} {kind} x{c} (round {r + 1})")
                        results.setdefault((db.name, kind, c), []).append(
                            run_case(db, kind, c, args.seconds, case))
    finally:
        sluice.stop()
        pg.stop()
    print(f"\n{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {args.seconds:.0f} s per run, "
          f"{args.rounds} alternating runs per case (the median run shown; the ratio is "
          f"the median of the rounds' ratios), {os.cpu_count()} cores\n")
    print("| statement | clients | sluice rows/s | p50 / p99 ms | files per partition, applied / settled | "
          "PostgreSQL rows/s | p50 / p99 ms | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in kinds:
        for c in clients:
            ss, ps = results[("sluice", kind, c)], results[("PostgreSQL", kind, c)]
            ratio = statistics.median(a["rows_per_s"] / b["rows_per_s"] for a, b in zip(ss, ps))
            s = sorted(ss, key=lambda r: r["rows_per_s"])[len(ss) // 2]
            p = sorted(ps, key=lambda r: r["rows_per_s"])[len(ps) // 2]
            print(f"| {kind} | {c} | {s['rows_per_s']:,.0f} | {s['p50_ms']:.2f} / {s['p99_ms']:.2f} | "
                  f"{s['files_per_partition']} | {p['rows_per_s']:,.0f} | "
                  f"{p['p50_ms']:.2f} / {p['p99_ms']:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
