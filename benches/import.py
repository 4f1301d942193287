#!/usr/bin/env python3
"""Import benchmark: sluice COPY against DuckDB and Polars, same CSV, same job.

The job, for all: CSV -> day-partitioned Parquet sorted by the timestamp.
  sluice: COPY <t> FROM '<file>' WITH HEADER true TIMESTAMP 'timestamp'
          PARTITION BY DAY, sent over HTTP /exec to a release server, timed
          from the statement to the final row of sys.text_import_log; its
          CPU time is the server's utime + stime over the import.
  DuckDB: COPY (SELECT *, CAST(timestamp AS DATE) AS day FROM read_csv(f)
          ORDER BY timestamp) TO dir (FORMAT parquet, PARTITION_BY (day)).
  Polars: scan_csv(f, try_parse_dates) .sort(timestamp) .with_columns(day)
          .sink_parquet(PartitionBy(dir, key=day)).
The ratio is sluice's throughput over the best of DuckDB and Polars. The
`s3` case imports into a table on a local S3 server (moto_server, started
by the bench) and is compared with `main` (tables on local disk). The
parse floor (benches/parse_floor.rs, built with `cargo bench --no-run`)
tokenises every field, converts all columns to typed vectors and sorts a
(timestamp, row) permutation on 2 threads, writing nothing: sluice's CPU
time is compared with its CPU time.

Every run writes to its own fresh directory, kept until the bench ends
(see OUT_DIR). Every run starts a fresh process (server or DuckDB) so its VmHWM is the
peak of that one import; RssAnon (anonymous memory: the mapped CSV's page
cache is not in it) is sampled every 10 ms. Runs are interleaved per case,
the page cache is warmed first, medians are reported. The floor is one
`wc -l` over the file.

Usage (from the repository root):
  python3 benches/import.py            # all cases, 1M and 10M rows, 3 runs
  python3 benches/import.py --quick    # 1M rows, 1 run each (a smoke test)
  python3 benches/import.py --cases main --sizes 10m --runs 5
  python3 benches/import.py --binary NEW --baseline OLD   # A/B two builds, alternating
  python3 benches/import.py --cases main,s3 --sizes 10m   # tables on local disk and on S3
  python3 benches/import.py --cases main,glob10 --sizes 10m   # one file against a glob of 10

Data: CSVs are generated with ../shared/tools/gen_csv.py (or $SLUICE_GEN_CSV)
into $SLUICE_BENCH_DIR (default /var/tmp/sluice-bench) unless they exist.
$SLUICE_BENCH_WEATHER / $SLUICE_BENCH_TRADES name existing files to use
instead of generated ones (then --sizes does not apply to that shape).
numpy, duckdb and polars are installed with pip if missing.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("SLUICE_BENCH_DIR", "/var/tmp/sluice-bench"))
GEN_CSV = Path(os.environ.get("SLUICE_GEN_CSV", REPO.parent / "shared/tools/gen_csv.py"))
SIZES = {"1m": 1_000_000, "10m": 10_000_000, "30m": 30_000_000}
# Every run writes below its own fresh directory here, and nothing is
# deleted until the bench ends: on this VM's ext4 (no journal) creating a
# file soon after thousands were deleted makes the kernel's inode allocator
# skip every inode freed in the last 60 to 300 s, which cost the 3,653-day
# case seconds of system time that measured the previous run's clean-up
# (perf: 28 % of the samples in __ext4_new_inode), for every tool alike.
OUT_DIR = BENCH_DIR / "out"
_runs = iter(range(1, 1_000_000))


def fresh_dir(tool):
    return OUT_DIR / f"{next(_runs):04d}-{tool}"

# name -> (shape, days, workers, table)
CASES = {
    "main": ("weather", 100, 2, "weather"),
    # The main case with the table on S3 (a local moto_server), the CSV on
    # local disk; DuckDB and Polars write to local disk as in "main".
    "s3": ("weather", 100, 2, "weather"),
    # The main case's rows split into 10 files (each with the header),
    # imported with one glob by all three tools.
    "glob10": ("weather", 100, 2, "weather"),
    # The main case's rows as one Parquet file (written by DuckDB from the
    # CSV, timestamps as TIMESTAMP): COPY reads Parquet, DuckDB and Polars
    # read_parquet/scan_parquet, the same job otherwise.
    "parquet": ("weather", 100, 2, "weather"),
    "workers1": ("weather", 100, 1, "weather"),
    "many": ("weather", 3653, 2, "weather"),
    "trades": ("trades", 100, 2, "trades"),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ensure_module(name):
    try:
        __import__(name)
    except ImportError:
        log(f"installing {name} with pip")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", name], check=True
        )


def build_sluice():
    """Builds the release binary and returns its path."""
    log("cargo build --release --locked")
    out = subprocess.run(
        ["cargo", "build", "--release", "--locked", "--message-format=json"],
        cwd=REPO,
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    for line in out.decode().splitlines():
        msg = json.loads(line)
        if (
            msg.get("reason") == "compiler-artifact"
            and msg["target"]["name"] == "sluice"
            and "bin" in msg["target"]["kind"]
        ):
            return Path(msg["executable"])
    raise SystemExit("cargo did not report the sluice binary")


def build_floor():
    """Builds the parse-floor program and returns its path."""
    out = subprocess.run(
        ["cargo", "bench", "--locked", "--bench", "parse_floor", "--no-run",
         "--message-format=json"],
        cwd=REPO, check=True, stdout=subprocess.PIPE,
    ).stdout
    for line in out.decode().splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "parse_floor":
            return Path(msg["executable"])
    raise SystemExit("cargo did not report the parse_floor binary")


def parse_floor(binary, csv):
    """The best of two runs: (wall seconds, CPU seconds)."""
    best = None
    for _ in range(2):
        out = subprocess.run([str(binary), str(csv), "timestamp", "2"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out)
        if best is None or r["wall"] < best[0]:
            best = (r["wall"], r["cpu"])
    return best


def cpu_seconds(pid):
    """utime + stime of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def data_file(shape, rows, days):
    env = os.environ.get(f"SLUICE_BENCH_{shape.upper()}")
    if env:
        return Path(env)
    path = BENCH_DIR / f"{shape}-{rows}-{days}d.csv"
    if not path.exists():
        ensure_module("numpy")
        log(f"generating {path}")
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable, str(GEN_CSV), "--rows", str(rows), "--days", str(days),
                "--shape", shape, "--out", str(path),
            ],
            check=True,
        )
    return path


class MemorySampler:
    """Samples RssAnon and reads VmHWM of one process until stopped."""

    def __init__(self, pid):
        self.pid = pid
        self.peak_anon = 0
        self.hwm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        self.peak_anon = max(self.peak_anon, int(line.split()[1]) * 1024)
                    elif line.startswith("VmHWM:"):
                        self.hwm = max(self.hwm, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            pass

    def _run(self):
        while not self._stop.is_set():
            self._read()
            time.sleep(0.01)

    def stop(self):
        self._read()
        self._stop.set()
        self._thread.join()
        return self.peak_anon, self.hwm


class Moto:
    """A local S3-compatible server (moto_server) with bucket `bench`."""

    def __init__(self):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(600):
            try:
                req = urllib.request.Request(f"{self.endpoint}/bench", method="PUT")
                urllib.request.urlopen(req, timeout=5).read()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise SystemExit("moto_server did not start")

    def env(self):
        return {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Server:
    """A release sluice server on a fresh data root, HTTP only (and
    pgwire with `pg`: its address in `pg_addr`); with `s3`, its tables live
    in the moto server's bucket."""

    def __init__(self, binary, root, copy_root, workers, s3=None, pg=False):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        conf = root / "server.conf"
        tables = f"cairo.root=s3://bench/{root.name}\n" if s3 else ""
        conf.write_text(
            "http.bind.to=127.0.0.1:0\n"
            "http.min.enabled=false\n"
            + ("pg.net.bind.to=127.0.0.1:0\n" if pg else "pg.enabled=false\n") +
            f"cairo.sql.copy.root={copy_root}\n"
            f"cairo.sql.copy.worker.count={workers}\n"
            "query.timeout.sec=600\n" + tables
        )
        self.root = root
        env = dict(os.environ, **(s3.env() if s3 else {}))
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--root", str(root), "--conf", str(conf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.url = None
        self.pg_addr = None
        for line in self.proc.stdout:
            if line.startswith("pgwire listening on "):
                self.pg_addr = line.split()[-1]
            if line.startswith("http listening on "):
                self.url = "http://" + line.split()[-1]
                break
        if self.url is None:
            raise SystemExit("the server did not start")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def sql(self, query):
        url = f"{self.url}/exec?" + urllib.parse.urlencode({"query": query})
        try:
            with urllib.request.urlopen(url, timeout=600) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
        if "error" in body:
            raise RuntimeError(f"{query}: {body['error']}")
        return body.get("dataset", [])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def split_file(csv, parts):
    """`csv` cut into `parts` files of whole lines, each with the header,
    in a directory next to it; returns the glob naming them (relative to
    the CSV's directory)."""
    out = csv.parent / f"{csv.stem}-split{parts}"
    if not out.exists():
        log(f"splitting {csv} into {parts} files")
        tmp = out.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        size = csv.stat().st_size
        with open(csv, "rb") as f:
            header = f.readline()
            for i in range(parts):
                with open(tmp / f"part-{i:02d}.csv", "wb") as w:
                    w.write(header)
                    goal = size * (i + 1) // parts
                    while f.tell() < goal or i == parts - 1:
                        chunk = f.readlines(1 << 20)
                        if not chunk:
                            break
                        w.writelines(chunk)
        tmp.rename(out)
    return f"{out.name}/part-*.csv"


def sluice_run(binary, csv, table, workers, rows, s3=None, source=None):
    root = fresh_dir("sluice")
    server = Server(binary, root, csv.parent, workers, s3)
    mem = MemorySampler(server.proc.pid)
    try:
        # Wall clock, to compare with the log's timestamps (same machine).
        cpu_before = cpu_seconds(server.proc.pid)
        start = time.time()
        [[import_id]] = server.sql(
            f"COPY {table} FROM '{source or csv.name}' WITH HEADER true TIMESTAMP 'timestamp' "
            "PARTITION BY DAY"
        )
        while True:
            # Polling is a query on a 2-core machine that is busy
            # importing, so it is rare; the time comes from the log row.
            time.sleep(0.2)
            final = server.sql(
                "SELECT status, message, rows_imported, errors, ts FROM sys.text_import_log "
                f"WHERE id = '{import_id}' AND phase IS NULL AND status <> 'started'"
            )
            if final:
                break
        peak_anon, hwm = mem.stop()
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        status, message, imported, errors, end = final[0]
        elapsed = datetime.fromisoformat(end).timestamp() - start
        if status != "finished" or imported != rows or errors != 0:
            raise SystemExit(
                f"import {import_id} ended {status} ({message}): "
                f"{imported} rows imported of {rows}, {errors} errors"
            )
        # Summed over the files of a glob, whose phases repeat per file.
        phases, opened = {}, {}
        for phase, status, ts in server.sql(
            "SELECT phase, status, ts FROM sys.text_import_log "
            f"WHERE id = '{import_id}' AND phase IS NOT NULL ORDER BY ts"
        ):
            ts = datetime.fromisoformat(ts).timestamp()
            if status == "started":
                opened[phase] = ts
            else:
                phases[phase] = phases.get(phase, 0.0) + ts - opened.pop(phase)
        [[count]] = server.sql(f"SELECT count(*) FROM {table}")
        if count != rows:
            raise SystemExit(f"table {table} has {count} rows, expected {rows}")
        return {
            "seconds": elapsed,
            "cpu": cpu,
            "peak_anon": peak_anon,
            "hwm": hwm,
            "phases": phases,
            "server": server,
        }
    except BaseException:
        mem.stop()
        server.stop()
        raise


DUCK_SCRIPT = """
import sys, time, duckdb
con = duckdb.connect()
start = time.perf_counter()
con.execute(sys.argv[1])
print(time.perf_counter() - start)
"""


def to_parquet(csv):
    """The CSV as one Parquet file next to it (DuckDB writes it once)."""
    out = csv.with_suffix(".parquet")
    if not out.exists():
        log(f"writing {out}")
        tmp = out.with_suffix(".tmp")
        subprocess.run(
            [sys.executable, "-c", DUCK_SCRIPT,
             f"COPY (SELECT * FROM read_csv('{csv}')) TO '{tmp}' (FORMAT parquet)"],
            check=True, stdout=subprocess.DEVNULL,
        )
        tmp.rename(out)
    return out


def duckdb_run(csv):
    out = fresh_dir("duckdb")
    reader = "read_parquet" if str(csv).endswith(".parquet") else "read_csv"
    query = (
        f"COPY (SELECT *, CAST(timestamp AS DATE) AS day FROM {reader}('{csv}') "
        f"ORDER BY timestamp) TO '{out}' (FORMAT parquet, PARTITION_BY (day))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", DUCK_SCRIPT, query], stdout=subprocess.PIPE, text=True
    )
    mem = MemorySampler(proc.pid)
    stdout, _ = proc.communicate()
    peak_anon, hwm = mem.stop()
    if proc.returncode != 0:
        raise SystemExit(f"duckdb failed with exit code {proc.returncode}")
    seconds = float(stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "peak_anon": peak_anon, "hwm": hwm}


POLARS_SCRIPT = """
import sys, time, polars as pl
start = time.perf_counter()
src = sys.argv[1]
scan = pl.scan_parquet(src) if src.endswith(".parquet") else pl.scan_csv(src, try_parse_dates=True)
(scan.sort("timestamp")
   .with_columns(pl.col("timestamp").dt.date().alias("day"))
   .sink_parquet(pl.PartitionBy(sys.argv[2], key="day")))
print(time.perf_counter() - start)
"""


def polars_run(csv):
    out = fresh_dir("polars")
    proc = subprocess.Popen(
        [sys.executable, "-c", POLARS_SCRIPT, str(csv), str(out)], stdout=subprocess.PIPE, text=True
    )
    mem = MemorySampler(proc.pid)
    stdout, _ = proc.communicate()
    peak_anon, hwm = mem.stop()
    if proc.returncode != 0:
        raise SystemExit(f"polars failed with exit code {proc.returncode}")
    seconds = float(stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "peak_anon": peak_anon, "hwm": hwm}


def floor_seconds(csv):
    best = None
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(["wc", "-l", str(csv)], check=True, stdout=subprocess.DEVNULL)
        t = time.perf_counter() - start
        best = t if best is None else min(best, t)
    return best


def mib(n):
    return f"{n / 2**20:,.0f} MiB"


def summary(name, runs, size, rows):
    secs = statistics.median(r["seconds"] for r in runs)
    anon = max(r["peak_anon"] for r in runs)
    hwm = max(r["hwm"] for r in runs)
    print(
        f"  {name:<8} median {secs:7.2f} s  {size / 1e6 / secs:8.1f} MB/s  "
        f"{rows / secs / 1e6:6.2f} M rows/s  peak RssAnon {mib(anon):>10}  "
        f"VmHWM {mib(hwm):>10}   runs: " + ", ".join(f"{r['seconds']:.2f}" for r in runs)
    )
    return secs, anon


def query_side(server, table):
    """The query targets: a count/avg over the table and a pruned range scan."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        [[count, avg]] = server.sql(f"SELECT count(*), avg(tempF) FROM {table}")
        times.append(time.perf_counter() - start)
    print(
        f"  query    SELECT count(*), avg(tempF): {count} rows, avg {avg:.6f}, "
        f"median {statistics.median(times) * 1000:.0f} ms (HTTP round trip included)"
    )
    [[days]] = server.sql(
        f"SELECT count(DISTINCT cast(timestamp AS DATE)) FROM {table} "
        "WHERE timestamp >= '2010-02-01' AND timestamp < '2010-03-01'"
    )
    plan = server.sql(
        f"EXPLAIN ANALYZE SELECT count(*) FROM {table} "
        "WHERE timestamp >= '2010-02-01' AND timestamp < '2010-03-01'"
    )
    text = "\n".join(str(cell) for row in plan for cell in row)
    scans = [line.strip() for line in text.splitlines() if "DataSourceExec" in line]
    [[files]] = server.sql(f"SELECT sum(file_count) FROM sys.partitions WHERE table_name = '{table}'")
    print(
        f"  range    EXPLAIN ANALYZE, timestamp in February 2010 ({days} days with rows); "
        f"the table has {files} files"
    )
    for line in scans:
        metrics = dict(
            m.split("=", 1) for m in line.split("metrics=[", 1)[1].rstrip("]").split(", ") if "=" in m
        )
        print(
            "           DataSourceExec: "
            + ", ".join(
                f"{k}={metrics.get(k)}"
                for k in ("files_opened", "files_ranges_pruned_statistics", "output_rows", "bytes_scanned")
            )
        )


def main():
    try:
        bench()
    finally:
        shutil.rmtree(OUT_DIR, ignore_errors=True)


def bench():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma list of " + ", ".join(CASES))
    ap.add_argument("--sizes", default="1m,10m", help="comma list of 1m, 10m")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1m rows, one run of each case")
    ap.add_argument("--no-duckdb", action="store_true", help="run neither DuckDB nor Polars")
    ap.add_argument("--binary", type=Path, help="use this sluice binary, do not build")
    ap.add_argument("--floor-binary", type=Path, help="use this parse_floor binary, do not build")
    ap.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the parse floor (building it with `cargo bench` rebuilds the dependencies)",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        help="also run this (earlier) sluice binary, alternating with --binary, and report the ratio",
    )
    a = ap.parse_args()
    if a.quick:
        a.sizes, a.runs = "1m", 1
    if not a.no_duckdb:
        ensure_module("duckdb")
        ensure_module("polars")
    binary = a.binary or build_sluice()
    floor_binary = None if a.no_floor else (a.floor_binary or build_floor())
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(OUT_DIR, ignore_errors=True)  # a crashed bench's
    cpus = os.cpu_count()
    print(f"sluice import benchmark: {binary}, {cpus} cores, {a.runs} runs per tool")
    results = {}
    moto = Moto() if "s3" in a.cases.split(",") else None
    try:
        run_cases(a, binary, floor_binary, results, moto)
    finally:
        if moto:
            moto.stop()
    if "main 10m" in results and "workers1 10m" in results:
        speedup = results["workers1 10m"]["seconds"] / results["main 10m"]["seconds"]
        print(f"\nworkers=2 vs workers=1 on the 10M weather file: {speedup:.2f}x")
    if "main 10m" in results and "main 1m" in results:
        grow = results["main 10m"]["peak_anon"] / max(results["main 1m"]["peak_anon"], 1)
        print(f"peak RssAnon 10M / 1M rows: {grow:.2f}x")


def run_cases(a, binary, floor_binary, results, moto):
    for size_name in a.sizes.split(","):
        for case in a.cases.split(","):
            shape, days, workers, table = CASES[case]
            if case == "workers1" and size_name != "10m" and "10m" in a.sizes:
                continue
            rows = SIZES[size_name]
            csv = data_file(shape, rows, days)
            size = csv.stat().st_size
            with open(csv, "rb") as f:
                rows = sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 24), b"")) - 1
            floor = floor_seconds(csv)
            print(
                f"\n[{case} {size_name}] {csv.name}: {size / 1e6:,.0f} MB, {rows:,} rows, "
                f"{days} days, PARTITION BY DAY, cairo.sql.copy.worker.count={workers}"
            )
            print(f"  floor    wc -l {floor:.2f} s ({size / 1e6 / floor:,.0f} MB/s)")
            pcpu = None
            if floor_binary:
                pwall, pcpu = parse_floor(floor_binary, csv)
                print(f"  parse    floor program {pwall:.2f} s wall, {pcpu:.2f} s CPU (2 threads)")
            ours, duck, polar, base = [], [], [], []
            source = split_file(csv, 10) if case == "glob10" else None
            if case == "parquet":
                source = to_parquet(csv).name
            peer_input = csv.parent / source if source else csv
            if case == "glob10":
                print(f"  input    {source}: 10 files of the same rows, one glob for every tool")
            elif case == "parquet":
                mb = (csv.parent / source).stat().st_size / 1e6
                print(f"  input    {source}: the same rows as Parquet, {mb:,.0f} MB")
            for i in range(a.runs):
                s3 = moto if case == "s3" else None
                if a.baseline:
                    b = sluice_run(a.baseline, csv, table, workers, rows, s3, source)
                    b["server"].stop()
                    del b["server"]
                    base.append(b)
                r = sluice_run(binary, csv, table, workers, rows, s3, source)
                last = i == a.runs - 1
                if last and shape == "weather" and case != "workers1":
                    query_side(r["server"], table)
                r["server"].stop()
                del r["server"]
                ours.append(r)
                if not a.no_duckdb and case != "workers1":
                    duck.append(duckdb_run(peer_input))
                    polar.append(polars_run(peer_input))
            secs, anon = summary("sluice", ours, size, rows)
            cpu = statistics.median(r["cpu"] for r in ours)
            if pcpu:
                print(f"  cpu      sluice {cpu:.2f} s CPU, {cpu / pcpu:.2f}x the parse floor's")
            else:
                print(f"  cpu      sluice {cpu:.2f} s CPU")
            phases = {p: statistics.median(r["phases"][p] for r in ours) for p in ours[0]["phases"]}
            print("  phases   " + ", ".join(f"{p} {s:.2f} s" for p, s in phases.items()))
            entry = {"seconds": secs, "peak_anon": anon, "bytes": size, "rows": rows}
            if base:
                bsecs, _ = summary("baseline", base, size, rows)
                print(f"  baseline {a.baseline}: this build takes {secs / bsecs:.3f}x its time")
            if duck:
                dsecs, _ = summary("duckdb", duck, size, rows)
                psecs, _ = summary("polars", polar, size, rows)
                best = min(dsecs, psecs)
                print(
                    f"  ratio    sluice/duckdb {dsecs / secs:.2f}x, sluice/polars {psecs / secs:.2f}x, "
                    f"against the best peer {best / secs:.2f}x"
                )
                entry["duckdb_seconds"] = dsecs
                entry["polars_seconds"] = psecs
            results[f"{case} {size_name}"] = entry
            if case == "parquet":
                mb = (csv.parent / source).stat().st_size / 1e6
                print(f"  parquet  sluice read {mb / secs:,.0f} MB/s of Parquet, {rows / secs / 1e6:.2f} M rows/s")
            if case == "glob10" and f"main {size_name}" in results:
                one = results[f"main {size_name}"]["seconds"]
                print(f"  glob     10 files take {secs / one:.2f}x the time of one file")
            if case == "s3" and f"main {size_name}" in results:
                local = results[f"main {size_name}"]["seconds"]
                print(f"  s3       tables on S3 take {secs / local:.2f}x the time of tables on local disk")


if __name__ == "__main__":
    main()
