#!/usr/bin/env python3
"""TSBS devops (cpu-only) benchmark: TSBS's QuestDB query types over HTTP
/exec to a release sluice server, against DuckDB in-process on the same rows.

The data has TSBS's cpu-only shape: one row per host every 10 s, 10 tag
columns (hostname, region, datacenter, rack, os, arch, team, service,
service_version, service_environment) and 10 metrics (usage_user …
usage_guest_nice, 0 to 100), made by a seeded generator of our own
(hash-based, so the same options give the same file) and written as one CSV
by DuckDB. sluice imports it with COPY (PARTITION BY DAY, untimed); DuckDB
loads the same CSV into an in-memory table (untimed). sluice's table has
TSBS's QuestDB schema: tags are SYMBOL columns (QuestDB makes a line
protocol tag a SYMBOL), metrics DOUBLE.

Each query type is the SQL TSBS's QuestDB generator writes
(cmd/tsbs_generate_queries/databases/questdb/devops.go), with random hosts
and times (seeded), beside DuckDB's equivalent (time_bucket for SAMPLE BY,
QUALIFY row_number() for LATEST BY). Every answer is compared (rows sorted,
floats to a relative 1e-9, timestamps as text); a difference stops the
bench. sluice is timed from the request to the last byte on one kept-alive
HTTP connection; DuckDB from execute() to fetchall() in this process. The
table prints per type the median of --runs of each, and DuckDB's median
divided by sluice's (above 1: sluice is faster).

Usage (from the repository root):
  python3 benches/tsbs.py                       # 100 hosts, 3 days, 20 runs
  python3 benches/tsbs.py --hosts 10 --days 1 --runs 5
  python3 benches/tsbs.py --binary /var/tmp/sluice-target/release/sluice
  python3 benches/tsbs.py --repeat 300 --runs 10   # plus one query's fixed cost
"""

import argparse
import datetime as dt
import http.client
import importlib.util
import json
import math
import random
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

_spec = importlib.util.spec_from_file_location("import_bench", Path(__file__).with_name("import.py"))
ib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ib)

METRICS = ["usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
           "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"]
TAGS = ["region", "datacenter", "rack", "os", "arch", "team", "service",
        "service_version", "service_environment"]
START = dt.datetime(2016, 1, 1, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)


def generate(path, hosts, days):
    """The cpu-only CSV: rows in time order, every host at every 10 s."""
    import duckdb
    steps = days * 86_400 // 10
    tags = ", ".join(f"'{t}_' || (hash(h, {k}) % {3 + k}) AS {t}" for k, t in enumerate(TAGS))
    metrics = ", ".join(
        f"round((hash(s, h, {k}) % 100000) / 1000.0, 3) AS {m}" for k, m in enumerate(METRICS))
    duckdb.connect().execute(f"""
        COPY (
          SELECT 'host_' || h AS hostname, {tags}, {metrics},
                 strftime(TIMESTAMP '2016-01-01' + to_seconds(s * 10), '%Y-%m-%dT%H:%M:%S.%fZ') AS timestamp
          FROM range({steps}) t(s), range({hosts}) u(h)
          ORDER BY s, h
        ) TO '{path}' (HEADER, DELIMITER ',')""")


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Queries:
    """TSBS's QuestDB SQL and DuckDB's equivalent for each query type."""

    def __init__(self, hosts, days, seed):
        self.hosts = hosts
        self.end = START + dt.timedelta(days=days)
        self.rng = random.Random(seed)

    def window(self, length):
        span = int((self.end - START - length).total_seconds())
        start = START + dt.timedelta(seconds=self.rng.randrange(0, span + 1, 60))
        return iso(start), iso(start + length)

    def pick_hosts(self, n):
        return ", ".join(f"'host_{h}'" for h in self.rng.sample(range(self.hosts), n))

    def single_groupby(self, metrics, nhosts, hours):
        lo, hi = self.window(hours * HOUR)
        hosts = self.pick_hosts(nhosts)
        aggs = ", ".join(f"max({m}) AS max_{m}" for m in METRICS[:metrics])
        ours = (f"SELECT timestamp, {aggs} FROM cpu WHERE hostname IN ({hosts}) "
                f"AND timestamp >= '{lo}' AND timestamp < '{hi}' SAMPLE BY 1m")
        duck = (f"SELECT time_bucket(INTERVAL 1 minute, timestamp) AS timestamp, {aggs} FROM cpu "
                f"WHERE hostname IN ({hosts}) AND timestamp >= '{lo}' AND timestamp < '{hi}' "
                f"GROUP BY 1 ORDER BY 1")
        return ours, duck

    def cpu_max_all(self, nhosts):
        lo, hi = self.window(8 * HOUR)
        hosts = self.pick_hosts(nhosts)
        aggs = ", ".join(f"max({m}) AS max_{m}" for m in METRICS)
        ours = (f"SELECT hour(timestamp) AS hour, {aggs} FROM cpu WHERE hostname IN ({hosts}) "
                f"AND timestamp >= '{lo}' AND timestamp < '{hi}' SAMPLE BY 1h")
        duck = (f"SELECT hour(b) AS hour, {aggs} FROM (SELECT time_bucket(INTERVAL 1 hour, timestamp) AS b, * "
                f"FROM cpu WHERE hostname IN ({hosts}) AND timestamp >= '{lo}' AND timestamp < '{hi}') "
                f"GROUP BY b ORDER BY b")
        return ours, duck

    def double_groupby(self, metrics):
        lo, hi = self.window(12 * HOUR)
        aggs = ", ".join(f"avg({m}) AS avg_{m}" for m in METRICS[:metrics])
        ours = (f"SELECT timestamp, hostname, {aggs} FROM cpu WHERE timestamp >= '{lo}' "
                f"AND timestamp < '{hi}' SAMPLE BY 1h GROUP BY timestamp, hostname")
        duck = (f"SELECT time_bucket(INTERVAL 1 hour, timestamp) AS timestamp, hostname, {aggs} FROM cpu "
                f"WHERE timestamp >= '{lo}' AND timestamp < '{hi}' GROUP BY 1, 2 ORDER BY 1, 2")
        return ours, duck

    def high_cpu(self, nhosts):
        lo, hi = self.window(12 * HOUR)
        hosts = f"AND hostname IN ({self.pick_hosts(nhosts)}) " if nhosts else ""
        ours = (f"SELECT * FROM cpu WHERE usage_user > 90.0 {hosts}"
                f"AND timestamp >= '{lo}' AND timestamp < '{hi}'")
        return ours, ours + " ORDER BY timestamp"

    def groupby_orderby_limit(self):
        _, hi = self.window(HOUR)
        ours = (f"SELECT timestamp AS minute, max(usage_user) FROM cpu "
                f"WHERE timestamp < '{hi}' SAMPLE BY 1m LIMIT 5")
        duck = (f"SELECT time_bucket(INTERVAL 1 minute, timestamp) AS minute, max(usage_user) FROM cpu "
                f"WHERE timestamp < '{hi}' GROUP BY 1 ORDER BY 1 LIMIT 5")
        return ours, duck

    def lastpoint(self):
        return ("SELECT * FROM cpu latest by hostname",
                "SELECT * FROM cpu QUALIFY row_number() OVER (PARTITION BY hostname ORDER BY timestamp DESC) = 1")

    def types(self):
        return {
            "single-groupby-1-1-1": lambda: self.single_groupby(1, 1, 1),
            "single-groupby-1-1-12": lambda: self.single_groupby(1, 1, 12),
            "single-groupby-1-8-1": lambda: self.single_groupby(1, 8, 1),
            "single-groupby-5-1-1": lambda: self.single_groupby(5, 1, 1),
            "single-groupby-5-1-12": lambda: self.single_groupby(5, 1, 12),
            "single-groupby-5-8-1": lambda: self.single_groupby(5, 8, 1),
            "cpu-max-all-1": lambda: self.cpu_max_all(1),
            "cpu-max-all-8": lambda: self.cpu_max_all(8),
            "double-groupby-1": lambda: self.double_groupby(1),
            "double-groupby-5": lambda: self.double_groupby(5),
            "double-groupby-all": lambda: self.double_groupby(10),
            "high-cpu-1": lambda: self.high_cpu(1),
            "high-cpu-all": lambda: self.high_cpu(0),
            "groupby-orderby-limit": self.groupby_orderby_limit,
            "lastpoint": self.lastpoint,
        }


class Exec:
    """QuestDB's /exec on one kept-alive connection."""

    def __init__(self, url):
        self.conn = http.client.HTTPConnection(urllib.parse.urlparse(url).netloc, timeout=600)

    def run(self, sql):
        start = time.perf_counter()
        self.conn.request("GET", "/exec?" + urllib.parse.urlencode({"query": sql}))
        body = self.conn.getresponse().read()
        seconds = time.perf_counter() - start
        answer = json.loads(body)
        if "error" in answer:
            raise SystemExit(f"sluice: {sql}\n  {answer['error']}")
        return seconds, answer


def norm_value(v):
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return v


def norm(rows):
    """Rows in one order: by their non-float values, then floats rounded."""
    rows = [tuple(norm_value(v) for v in r) for r in rows]
    return sorted(rows, key=lambda r: repr(tuple(round(v, 6) if isinstance(v, float) else v for v in r)))


def same(a, b):
    """Equal rows, floats to a relative 1e-9 (sums in another order differ
    in the last digits)."""
    a, b = norm(a), norm(b)
    return len(a) == len(b) and all(
        len(x) == len(y) and all(
            math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12) if isinstance(u, float) and isinstance(v, float)
            else u == v for u, v in zip(x, y))
        for x, y in zip(a, b))


def select_1_pgwire(addr, n):
    """`select 1` as a prepared statement over pgwire (psycopg's extended
    protocol), timed from execute() to fetchall(): each time in seconds."""
    try:
        import psycopg
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "psycopg[binary]"], check=True)
        import psycopg
    host, port = addr.rsplit(":", 1)
    times = []
    with psycopg.connect(host=host, port=int(port), user="admin", password="quest", dbname="qdb",
                         autocommit=True) as conn:
        cur = conn.cursor()
        for _ in range(n):
            start = time.perf_counter()
            cur.execute("select 1", prepare=True)
            cur.fetchall()
            times.append(time.perf_counter() - start)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--binary", type=Path)
    ap.add_argument("--repeat", type=int, default=0,
                    help="also run one single-groupby-1-1-1 query (one host, one hour) this many "
                         "times and print its fastest and median time: a query's fixed cost")
    a = ap.parse_args()
    ib.ensure_module("duckdb")
    import duckdb
    binary = a.binary or ib.build_sluice()
    data = ib.BENCH_DIR / "tsbs"
    data.mkdir(parents=True, exist_ok=True)
    csv = data / f"cpu-{a.hosts}h-{a.days}d.csv"
    if not csv.exists():
        ib.log(f"generating {csv}")
        generate(csv, a.hosts, a.days)
    rows = a.hosts * a.days * 8640
    ib.OUT_DIR.mkdir(parents=True, exist_ok=True)
    server = ib.Server(binary, ib.fresh_dir("sluice"), data, 2, pg=True)
    try:
        # TSBS's QuestDB loader sends InfluxDB line protocol, whose tags
        # QuestDB makes SYMBOL columns: the same schema here.
        columns = ", ".join(["hostname SYMBOL"] + [f"{t} SYMBOL" for t in TAGS] +
                            [f"{m} DOUBLE" for m in METRICS] + ["timestamp TIMESTAMP"])
        server.sql(f"CREATE TABLE cpu ({columns}) TIMESTAMP(timestamp) PARTITION BY DAY")
        [[imp]] = server.sql(
            f"COPY cpu FROM '{csv.name}' WITH HEADER true TIMESTAMP 'timestamp' PARTITION BY DAY")
        while not server.sql(
                f"SELECT 1 FROM sys.text_import_log WHERE id = '{imp}' AND phase IS NULL AND status = 'finished'"):
            time.sleep(0.2)
        duck = duckdb.connect()
        duck.execute("SET TimeZone = 'UTC'")
        duck.execute(f"CREATE TABLE cpu AS SELECT * FROM read_csv('{csv}', header = true, "
                     f"types = {{'timestamp': 'TIMESTAMP'}})")
        ex = Exec(server.url)
        fixed = [ex.run("select 1")[0] for _ in range(200)]
        fixed_pg = select_1_pgwire(server.pg_addr, 200)
        print(f"TSBS devops cpu-only: {binary}, {a.hosts} hosts x {a.days} days = {rows:,} rows, "
              f"{a.runs} runs per type, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
        print(f"select 1 over /exec (kept alive): median {statistics.median(fixed) * 1e3:.3f} ms of 200; "
              f"over pgwire (psycopg, prepared): median {statistics.median(fixed_pg) * 1e3:.3f} ms of 200")
        print(f"{'query type':24} {'sluice ms':>10} {'duckdb ms':>10} {'ratio':>7}  rows")
        queries = Queries(a.hosts, a.days, a.seed)
        if a.repeat:
            one, _ = queries.types()["single-groupby-1-1-1"]()
            times = [ex.run(one)[0] for _ in range(a.repeat)]
            print(f"one single-groupby-1-1-1 query x {a.repeat}: fastest {min(times) * 1e3:.3f} ms, "
                  f"median {statistics.median(times) * 1e3:.3f} ms")
        ratios = []
        for name, make in queries.types().items():
            ours_t, duck_t, nrows = [], [], 0
            for _ in range(a.runs):
                ours_sql, duck_sql = make()
                s, answer = ex.run(ours_sql)
                start = time.perf_counter()
                expected = duck.execute(duck_sql).fetchall()
                d = time.perf_counter() - start
                got = answer["dataset"]
                if not same(got, expected):
                    raise SystemExit(f"different answers for {name}:\n  sluice: {ours_sql}\n  duckdb: {duck_sql}\n"
                                     f"  sluice {len(got)} rows, duckdb {len(expected)} rows\n"
                                     f"  first sluice {norm(got)[:2]}\n  first duckdb {norm(expected)[:2]}")
                if name.startswith("high-cpu"):
                    ts = [r[-1] for r in got]
                    if ts != sorted(ts):
                        raise SystemExit(f"{name}: sluice's rows are not in timestamp order")
                ours_t.append(s)
                duck_t.append(d)
                nrows = len(got)
            s, d = statistics.median(ours_t), statistics.median(duck_t)
            ratios.append(d / s)
            print(f"{name:24} {s * 1e3:10.2f} {d * 1e3:10.2f} {d / s:7.2f}  {nrows}")
        print(f"all answers equal; ratio duckdb/sluice: min {min(ratios):.2f}, "
              f"geometric mean {math.exp(statistics.mean(math.log(r) for r in ratios)):.2f}")
    finally:
        server.stop()
        import shutil
        shutil.rmtree(ib.OUT_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
