#!/usr/bin/env python3
"""How long one durable append to a write-ahead log takes on this disk, by
the three ways a log can be made durable: pwrite then fdatasync, a write to
a file opened O_DSYNC, and (what sluice's log does) an O_DIRECT | O_DSYNC
write of the whole 4 KiB blocks that hold the record. The file is written
as zeros first, as sluice's segments are, so no write changes its size.

Usage: python3 benches/log_write.py [--dir /var/tmp] [--writes 3000] [--record 924]
Prints the median and 90th percentile per write, in microseconds, for each
way, three rounds (the VM's pace drifts: compare within a round).
"""

import argparse
import mmap
import os
import time
from pathlib import Path

BLOCK = 4096


def run(path, mode, writes, record):
    size = writes * record + 2 * BLOCK
    with open(path, "wb") as f:
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
    flags = os.O_RDWR
    if mode in ("O_DSYNC", "O_DIRECT|O_DSYNC"):
        flags |= os.O_DSYNC
    if mode == "O_DIRECT|O_DSYNC":
        flags |= os.O_DIRECT
    fd = os.open(path, flags)
    aligned = mmap.mmap(-1, 2 * BLOCK)  # page-aligned memory for O_DIRECT
    data = b"x" * record
    times, end = [], 0
    for _ in range(writes):
        start = time.perf_counter()
        if mode == "O_DIRECT|O_DSYNC":
            first = end // BLOCK * BLOCK
            at = end - first
            aligned[at:at + record] = data
            end += record
            length = (end - first + BLOCK - 1) // BLOCK * BLOCK
            os.pwritev(fd, [memoryview(aligned)[:length]], first)
            # Keep the last, partly filled block at the buffer's start.
            last = end // BLOCK * BLOCK
            if last != first:
                tail = end - last
                aligned[0:tail] = aligned[last - first:last - first + tail]
                aligned[tail:] = b"\0" * (len(aligned) - tail)
        else:
            os.pwrite(fd, data, end)
            end += record
            if mode == "pwrite+fdatasync":
                os.fdatasync(fd)
        times.append(time.perf_counter() - start)
    os.close(fd)
    os.unlink(path)
    times.sort()
    return times[len(times) // 2] * 1e6, times[int(len(times) * 0.9)] * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    ap.add_argument("--writes", type=int, default=3000)
    ap.add_argument("--record", type=int, default=924,
                    help="bytes per record (924: a 3-column single-row INSERT's record)")
    a = ap.parse_args()
    path = a.dir / f"sluice-log-write-{os.getpid()}.bin"
    for _ in range(3):
        cells = []
        for mode in ("pwrite+fdatasync", "O_DSYNC", "O_DIRECT|O_DSYNC"):
            p50, p90 = run(path, mode, a.writes, a.record)
            cells.append(f"{mode} {p50:.0f} / {p90:.0f} us")
        print("   ".join(cells))


if __name__ == "__main__":
    main()
