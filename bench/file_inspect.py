"""Parquet and JSON lines schema benchmark: big generated files, wall time and memory growth,
beside the CSV connector on a CSV file of the same size, in the same run.

Generates `--size-mb` (default 1024) MiB of Parquet, of JSON lines and of CSV in a temporary
directory, inspects each `--runs` times through its connector, reports the median wall time and
the memory the inspections added: for Parquet (read in this process, on a thread) the growth of
this process's resident set; for JSON lines and CSV (read in the connectors' worker process)
that worker's peak resident set. Deletes the files. Targets: Parquet under 50 ms and 50 MB;
JSON lines no slower than CSV.

    .venv/bin/python bench/file_inspect.py                 # 3 GiB in /tmp (check `df -h /tmp`)
    .venv/bin/python bench/file_inspect.py --size-mb 64 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from adapters.connectors.csv import WORKERS, CsvConnector
from adapters.connectors.jsonl import JsonLinesConnector
from adapters.connectors.parquet import ParquetConnector

sys.path.insert(0, str(Path(__file__).parent))
from csv_inspect import generate as generate_csv

PARQUET_MS, PARQUET_MB = 50, 50


def rss_mb(pid: int | str = "self") -> float:
    """The current resident set of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker_peak_mb() -> float:
    """The highest peak resident set of the connectors' idle worker processes."""
    peaks = []
    for worker in WORKERS._idle:
        for line in Path(f"/proc/{worker.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def records(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        at = start + timedelta(seconds=rng.randrange(10**8))
        row: dict[str, Any] = {
            "id": seed * count + i,
            "customer": f"Customer {rng.randrange(10**6)}, Ltd",
            "amount": rng.randrange(10**7) / 100,
            "paid": rng.choice((True, False, None)),
            "ordered_on": at.date().isoformat(),
            "ordered_at": at.isoformat(),
            "items": [rng.randrange(100) for _ in range(rng.randrange(4))],
            "address": {"zip": f"{rng.randrange(10**5):05d}", "city": "Springfield"},
        }
        if rng.random() < 0.2:
            del row["paid"]
        rows.append(row)
    return rows


def generate_jsonl(path: Path, size_mb: int) -> None:
    chunks = [
        ("\n".join(json.dumps(r) for r in records(4000, seed)) + "\n").encode() for seed in range(4)
    ]
    _repeat(path, chunks, size_mb)


def generate_parquet(path: Path, size_mb: int) -> None:
    table = pa.Table.from_pylist(records(200_000, 1))
    target = size_mb * 1024 * 1024
    with pq.ParquetWriter(path, table.schema, compression="none") as writer:
        while path.stat().st_size < target:
            writer.write_table(table, row_group_size=50_000)


def _repeat(path: Path, chunks: list[bytes], size_mb: int) -> None:
    target, written = size_mb * 1024 * 1024, 0
    with path.open("wb") as file:
        while written < target:
            chunk = chunks[(written // len(chunks[0])) % len(chunks)]
            file.write(chunk)
            written += len(chunk)


def timed(connector: Any, name: str, runs: int) -> tuple[list[float], list[Any]]:
    """Each inspection's wall time, all on one event loop (as in a server)."""

    async def inspections() -> tuple[list[float], list[Any]]:
        times, columns = [], []
        for _ in range(runs):
            started = time.perf_counter()
            columns = list(await connector.inspect({"path": name}))
            times.append(time.perf_counter() - started)
        return times, columns

    return asyncio.run(inspections())


def report(kind: str, size: int, times: list[float], memory: str, columns: list[Any]) -> None:
    print(
        f"{kind:<8} {size / 1024**2:6.0f} MiB: median {statistics.median(times) * 1000:6.1f} ms,"
        f" max {max(times) * 1000:6.1f} ms over {len(times)} runs; {memory}"
    )
    print(
        "         "
        + ", ".join(f"{c.name} {c.type}{'' if c.nullable else ' not null'}" for c in columns)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="each file's size in MiB")
    parser.add_argument("--runs", type=int, default=7, help="timed inspections of each (7)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a temp dir)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tdb-file-bench-", dir=args.dir))
    try:
        if shutil.disk_usage(root).free < 4 * args.size_mb * 1024 * 1024:
            print(f"not enough room in {root}; use a smaller --size-mb", file=sys.stderr)
            return 2
        started = time.perf_counter()
        generate_parquet(root / "big.parquet", args.size_mb)
        generate_jsonl(root / "big.jsonl", args.size_mb)
        generate_csv(root / "big.csv", args.size_mb)
        print(f"generated in {time.perf_counter() - started:.0f} s under {root}")
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

        parquet = ParquetConnector(root)
        asyncio.run(parquet.inspect({"path": "big.parquet"}))  # threads and imports warm
        before = rss_mb()
        times, columns = timed(parquet, "big.parquet", args.runs)
        growth = rss_mb() - before
        size = (root / "big.parquet").stat().st_size
        report("parquet", size, times, f"this process grew {growth:.1f} MB", columns)
        parquet_ok = statistics.median(times) * 1000 < PARQUET_MS and growth < PARQUET_MB

        medians = {}
        # A generous deadline for both: on a loaded machine, a slow run is a figure, not a failure.
        pair = (
            ("jsonl", JsonLinesConnector(root, timeout=60)),
            ("csv", CsvConnector(root, timeout=60)),
        )
        for kind, connector in pair:
            times, columns = timed(connector, f"big.{kind}", args.runs)
            size = (root / f"big.{kind}").stat().st_size
            report(kind, size, times, f"worker peak RSS {worker_peak_mb():.1f} MB", columns)
            medians[kind] = statistics.median(times)
        ratio = medians["jsonl"] / medians["csv"]
        print(f"jsonl takes {ratio:.2f}x the time of csv (target <= 1)")
        print(
            f"parquet: {'target met' if parquet_ok else 'TARGET MISSED'}"
            f" (< {PARQUET_MS} ms, < {PARQUET_MB} MB)"
        )
        print(f"jsonl: {'target met' if ratio <= 1 else 'TARGET MISSED'}")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
