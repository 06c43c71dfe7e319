"""Store writes of `last_used_at` under load: 200 concurrent clients using 10 keys for 60 s on one
`tdb serve` process; the bar is at most 10 writes per minute per process.

The server counts each key it writes in `tdb_key_use_writes_total` (its /metrics); this script
reads the counter once a second while the clients run, and prints the writes of each calendar
minute and of the whole run, with the requests served.

    .venv/bin/python bench/key_use_bench.py
    .venv/bin/python bench/key_use_bench.py --clients 200 --keys 10 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from key_load import load, make_keys, metric, p50_ms, served

WRITES = "tdb_key_use_writes_total"


async def _watch(
    server: object, until: float, minutes: Counter[int], batches: list[tuple[float, int]]
) -> None:
    seen = metric(server, WRITES)  # type: ignore[arg-type]
    while time.monotonic() < until:
        await asyncio.sleep(1)
        now = await asyncio.to_thread(metric, server, WRITES)  # type: ignore[arg-type]
        if now > seen:
            minutes[int(time.time()) // 60] += int(now - seen)
            batches.append((time.monotonic(), int(now - seen)))
            seen = now


def _most_in_a_minute(batches: list[tuple[float, int]]) -> int:
    """The most writes seen within any 60 s (a batch is seen up to a second after it is made:
    the window is 58 s, to be fair to the server)."""
    return max(
        (sum(n for t, n in batches if start <= t < start + 58) for start, _ in batches), default=0
    )


async def _run(args: argparse.Namespace, server: object, tokens: list[str]) -> None:
    minutes: Counter[int] = Counter()
    batches: list[tuple[float, int]] = []
    before = metric(server, WRITES)  # type: ignore[arg-type]
    url = f"{server.url}/v1/sources"  # type: ignore[attr-defined]
    watching = asyncio.create_task(
        _watch(server, time.monotonic() + args.seconds + 8, minutes, batches)
    )
    done, latencies, failures = await load(
        url, lambda i: tokens[i % len(tokens)], args.clients, args.seconds
    )
    await watching  # the last uses are flushed within TDB_KEY_USE_FLUSH (5 s)
    total = metric(server, WRITES) - before  # type: ignore[arg-type]
    print(f"requests: {done} in {args.seconds:.0f} s ({done / args.seconds:.0f}/s),"
          f" p50 {p50_ms(latencies):.1f} ms, non-200: {failures}")  # fmt: skip
    for minute, writes in sorted(minutes.items()):
        stamp = time.strftime("%H:%M", time.gmtime(minute * 60))
        print(f"  minute {stamp} UTC: {writes} last_used_at writes")
    calendar, sliding = max(minutes.values(), default=0), _most_in_a_minute(batches)
    worst = max(calendar, sliding)
    print(f"writes: {total:.0f} in the run and its flush; most in one calendar minute:"
          f" {calendar}, in any 60 s: {sliding}")  # fmt: skip
    verdict = "met" if worst <= 10 else "MISSED"
    print(f"bar: <= 10 writes per minute per process -> {worst} ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = {"TDB_DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}"}
        with served(workdir, env) as server:
            tokens = make_keys(workdir, env, args.keys)
            asyncio.run(_run(args, server, tokens))


if __name__ == "__main__":
    main()
