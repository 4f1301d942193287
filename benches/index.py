#!/usr/bin/env python3
"""Indexed SYMBOL lookup benchmark: `WHERE order_id = 'x'` on a table whose
order ids are spread over time (so min/max statistics skip nothing), before
and after `ALTER TABLE … ADD INDEX` (Parquet bloom filters), and DuckDB
reading the same Parquet files (the table's live files, from its Delta log
via delta-rs) in the same run.

Reports the row groups the scan kept after statistics and after bloom
filters (EXPLAIN ANALYZE), the median latency of the lookup over psycopg
(prepared, 20 runs, each a different id present once), the time ADD INDEX
took and the table's bytes before and after.

Usage (from the repository root):
  python3 benches/index.py                   # 4M rows over 10 days
  python3 benches/index.py --rows 1000000 --binary target/release/sluice
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inserts import Sluice, build_sluice, log, need  # noqa: E402


def lookups(run, ids):
    times = []
    for i in ids:
        t = time.perf_counter()
        n = run(i)
        times.append((time.perf_counter() - t) * 1000)
        assert n == 1, (i, n)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--binary")
    args = ap.parse_args()
    need("psycopg", "psycopg[binary]")
    need("duckdb")
    need("deltalake")
    import duckdb
    import psycopg
    from deltalake import DeltaTable

    binary = Path(args.binary) if args.binary else build_sluice()
    root = Path(tempfile.mkdtemp(prefix="sluice-bench-index-"))
    server = Sluice(binary, root)
    n = args.rows
    step = 10 * 86_400_000_000 // n
    # 7919 is prime and does not divide n: the ids are a permutation, spread
    # over the whole time range.
    ids = [f"o{(k * 7919) % n:09d}" for k in range(1, n, n // 20)][:20]
    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            log(f"loading {n:,} rows")
            conn.execute(
                "CREATE TABLE trades (ts TIMESTAMP, symbol SYMBOL, order_id SYMBOL, price DOUBLE) "
                "TIMESTAMP(ts) PARTITION BY DAY BYPASS WAL")
            conn.execute(
                f"INSERT INTO trades SELECT to_timestamp_micros(1704067200000000 + x * {step}), "
                f"'S' || (x % 10), 'o' || lpad(((x * 7919) % {n})::varchar, 9, '0'), x * 0.01 "
                f"FROM generate_series(0, {n - 1}) AS g(x)")
            q = "SELECT count(*) FROM trades WHERE order_id = %s"

            def ours(i):
                return conn.execute(q, (i,), prepare=True).fetchone()[0]

            def analyze():
                plan = "\n".join(r[1] for r in conn.execute(
                    f"EXPLAIN ANALYZE SELECT count(*) FROM trades WHERE order_id = '{ids[0]}'"))
                stats = re.search(r"row_groups_pruned_statistics=([^,\]]+)", plan).group(1)
                bloom = re.search(r"row_groups_pruned_bloom_filter=([^,\]]+)", plan).group(1)
                return stats, bloom

            def size():
                return conn.execute(
                    "SELECT sum(bytes) FROM sys.partitions WHERE table_name = 'trades'"
                ).fetchone()[0]

            before = (lookups(ours, ids), analyze(), size())
            t = time.perf_counter()
            conn.execute("ALTER TABLE trades ALTER COLUMN order_id ADD INDEX")
            add_index = time.perf_counter() - t
            after = (lookups(ours, ids), analyze(), size())
        files = DeltaTable(str(root / "db/public/trades")).file_uris()
        duck = duckdb.connect()
        duck.execute(f"CREATE VIEW trades AS SELECT * FROM read_parquet({files!r})")

        def theirs(i):
            return duck.execute(
                "SELECT count(*) FROM trades WHERE order_id = ?", [i]).fetchone()[0]

        duck_ms = lookups(theirs, ids)
    finally:
        server.stop()
    print(f"index lookup, {n:,} rows, 10 daily partitions, {len(files)} files, "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    print("| | row groups after statistics | after bloom filters | lookup p50 | table bytes |")
    print("|---|---|---|---|---|")
    for name, (ms, (stats, bloom), b) in [("no index", before), ("INDEX", after)]:
        print(f"| sluice, {name} | {stats} | {bloom} | {ms:.2f} ms | {b:,} |")
    print(f"| DuckDB {duckdb.__version__}, same files | | | {duck_ms:.2f} ms | |")
    print(f"ADD INDEX took {add_index:.2f} s; ratio to DuckDB with the index: "
          f"{duck_ms / after[0]:.2f}x")


if __name__ == "__main__":
    main()
