"""CSV schema benchmark: inspect a large generated file; wall time and peak memory.

Generates a CSV file of `--size-mb` (default 1024) in a temporary directory, inspects it
`--runs` times through `CsvConnector`, reports the wall time of each run and the peak memory
(process peak RSS, and the peak of Python allocations during one inspect under tracemalloc),
then deletes the file. Targets: under 0.5 s and under 100 MB peak RSS, whatever the size.

    .venv/bin/python bench/csv_inspect.py                 # 1 GiB (check `df -h /tmp` first)
    .venv/bin/python bench/csv_inspect.py --size-mb 64 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.connectors.csv import CsvConnector

HEADER = "id,customer,amount,ratio,paid,zip,ordered_on,ordered_at,shipped_at,note\n"
TARGET_SECONDS = 0.5
TARGET_RSS_MB = 100


def block(rows: int, seed: int) -> str:
    """Rows of every inferred type, some missing values, quoted fields with commas and newlines."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    lines = []
    for i in range(rows):
        at = start + timedelta(seconds=rng.randrange(10**8))
        lines.append(
            ",".join(
                (
                    str(seed * rows + i),
                    f'"Customer {rng.randrange(10**6)}, Ltd"',
                    f"{rng.randrange(10**7) / 100:.2f}",
                    f"{rng.random():e}",
                    rng.choice(("true", "false", "")),
                    f"{rng.randrange(10**5):05d}",
                    at.date().isoformat(),
                    at.replace(tzinfo=None).isoformat(sep=" "),
                    at.isoformat() if rng.random() > 0.1 else "NA",
                    '"first line\nsecond line"' if i % 7 == 0 else "plain note",
                )
            )
        )
    return "\n".join(lines) + "\n"


def generate(path: Path, size_mb: int) -> float:
    """Write about `size_mb` MiB of CSV, one 1 MiB block at a time (bounded memory)."""
    started = time.perf_counter()
    target = size_mb * 1024 * 1024
    chunks = [block(7000, seed).encode() for seed in range(4)]
    written = 0
    with path.open("wb") as file:
        file.write(HEADER.encode())
        while written < target:
            chunk = chunks[(written // len(chunks[0])) % len(chunks)]
            file.write(chunk)
            written += len(chunk)
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (1024)")
    parser.add_argument("--runs", type=int, default=5, help="timed inspections (5)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a temp dir)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tdb-csv-bench-", dir=args.dir))
    try:
        free_mb = shutil.disk_usage(root).free // (1024 * 1024)
        if free_mb < args.size_mb * 2:
            print(f"only {free_mb} MiB free in {root}; use a smaller --size-mb", file=sys.stderr)
            return 2
        path = root / "big.csv"
        seconds = generate(path, args.size_mb)
        size = path.stat().st_size
        print(f"generated {size / 1024**2:.0f} MiB in {seconds:.1f} s: {path}")
        rss_before = peak_rss_mb()

        connector = CsvConnector(root)
        times, columns = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            columns = list(asyncio.run(connector.inspect({"path": path.name})))
            times.append(time.perf_counter() - started)
        rss_after = peak_rss_mb()

        tracemalloc.start()
        asyncio.run(connector.inspect({"path": path.name}))
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        for column in columns:
            print(f"  {column.name:<12} {column.type:<28} nullable={column.nullable}")
        print(
            f"inspect wall time: first {times[0] * 1000:.0f} ms, median"
            f" {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
            f" over {len(times)} runs (target < {TARGET_SECONDS * 1000:.0f} ms)"
        )
        print(
            f"peak RSS: {rss_after:.1f} MB for the whole process ({rss_before:.1f} MB before"
            f" inspecting; target < {TARGET_RSS_MB} MB); Python allocations during one"
            f" inspect peak at {traced_peak / 1024**2:.1f} MB"
        )
        met = max(times) < TARGET_SECONDS and rss_after < TARGET_RSS_MB
        print("targets met" if met else "TARGETS MISSED")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
