#!/usr/bin/env python3
"""Long run of the randomized tests: the lexer against the `csv` crate,
hostile bytes through the lexer, boundary_check, the text-format reader
and every decoder, the pattern compiler, the inference round trip and the
SQL front end (src/import/proptests.rs, src/sql/parser.rs).

`cargo test` runs them with proptest's default 256 cases each; this runs
them with many more, built with optimisations, and prints cases per second.

Usage (from the repository root):
  python3 benches/fuzz.py                 # 100000 cases per property
  python3 benches/fuzz.py --cases 1000000
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The property tests, by the module paths `cargo test` filters on.
FILTERS = ["import::proptests", "sql::parser::tests::any_text", "sql::parser::tests::grammar_words"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000, help="cases per property (default 100000)")
    args = ap.parse_args()
    env = dict(os.environ, PROPTEST_CASES=str(args.cases))
    print("building the library's tests with --release", file=sys.stderr, flush=True)
    subprocess.run(["cargo", "test", "--release", "--locked", "--lib", "--no-run"], cwd=REPO, check=True)
    total = 0.0
    for f in FILTERS:
        t = time.monotonic()
        out = subprocess.run(
            ["cargo", "test", "--release", "--locked", "--lib", f, "--", "--test-threads=2"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        secs = time.monotonic() - t
        total += secs
        passed = [l for l in out.stdout.splitlines() if l.startswith("test ") and l.endswith(" ok")]
        if out.returncode != 0:
            print(out.stdout)
            raise SystemExit(f"{f}: FAILED after {secs:.1f} s")
        n = len(passed)
        print(f"{f}: {n} properties x {args.cases} cases in {secs:.1f} s "
              f"({n * args.cases / secs:,.0f} cases/s)")
    print(f"all passed in {total:.1f} s")


if __name__ == "__main__":
    main()
