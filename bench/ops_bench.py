"""What operability costs: GET by id with the request log and metrics on, against both off.

Two figures, each from runs taken in this one invocation:

- **on/off**: requests per second of `GET /v1/sources/{id}` on a `tdb serve` with the request
  log and the metrics on (the defaults), as a ratio of the same on a `tdb serve` with
  `TDB_ACCESS_LOG=off TDB_METRICS=off`. The runs alternate (on, off, off, on, ...) so that a
  drift of the machine's load hits both sides alike. Target: >= 0.9.
- **scraped/quiet**: the same GETs while `--scrapers` clients (200) each scrape `/metrics`
  every `--scrape-interval` seconds, as a ratio of the GETs alone, on one server.

Run: `.venv/bin/python bench/ops_bench.py` (wrk installed; servers on loopback, stopped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_bench import Server, register_body, register_many, run_wrk, serving, tdb_server, write_lua

QUIET = {"TDB_ACCESS_LOG": "off", "TDB_METRICS": "off"}


def _server(workdir: Path, workers: int, env: dict[str, str]) -> Server:
    server = tdb_server(workdir, f"sqlite:///{workdir / 'ops.sqlite3'}", None, workers)
    server.env.update(env)
    return server


def _get_rps(server: Server, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    token = server.admin_token()
    assert token, server.log_tail()
    body = register_body(f"ops-bench-{secrets.token_hex(4)}")
    (source_id,) = register_many(server.base_url, token, [body], 1)
    url = f"{server.base_url}/v1/sources/{source_id}"
    run_wrk(url, script, duration=args.warmup, connections=args.connections, threads=1, token=token)
    server.settle()
    result = run_wrk(
        url, script, duration=args.duration, connections=args.connections, threads=1, token=token
    )
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "errors": errors,
    }


class Scrapers:
    """`count` clients scraping `/metrics` every `interval` seconds, on a thread of their own."""

    def __init__(self, url: str, count: int, interval: float) -> None:
        self.url, self.count, self.interval = url, count, interval
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.count, max_keepalive_connections=self.count)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def scrape() -> None:
                loop = asyncio.get_running_loop()
                while not self._stop.is_set():
                    start = loop.time()
                    try:
                        response = await client.get(self.url)
                        if response.status_code != 200:
                            self.failures += 1
                    except httpx.HTTPError:
                        self.failures += 1
                    self.latencies.append(loop.time() - start)
                    await asyncio.sleep(self.interval)

            await asyncio.gather(*(scrape() for _ in range(self.count)))

    def __enter__(self) -> Scrapers:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up (1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--workers", type=int, default=1, help="tdb serve --workers (1)")
    parser.add_argument("--rounds", type=int, default=2, help="on/off pairs (2)")
    parser.add_argument("--scrapers", type=int, default=200, help="concurrent scrapers (200)")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds (1)")
    args = parser.parse_args()

    runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="tdb-ops-bench-") as tmp:
        script = write_lua(Path(tmp))["GET"]
        for round_ in range(args.rounds):
            order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
            for mode in order:
                workdir = Path(tmp) / f"{mode}-{round_}"
                workdir.mkdir()
                env = QUIET if mode == "off" else {}
                with serving(_server(workdir, args.workers, env)) as server:
                    run = _get_rps(server, script, args)
                runs[mode].append(run)
                print(
                    f"round {round_ + 1} {mode:>3}: {run['rps']:8.0f} req/s"
                    f"  p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms"
                    f"  errors {run['errors']}",
                    flush=True,
                )

        workdir = Path(tmp) / "scraped"
        workdir.mkdir()
        with serving(_server(workdir, args.workers, {})) as server:
            quiet = _get_rps(server, script, args)
            server.settle()
            with Scrapers(f"{server.base_url}/metrics", args.scrapers, args.scrape_interval) as s:
                scraped = _get_rps(server, script, args)
            print(f"GETs alone:       {quiet['rps']:8.0f} req/s  p99 {quiet['p99_ms']:.2f} ms")
            print(
                f"GETs + {args.scrapers} scrapers: {scraped['rps']:8.0f} req/s"
                f"  p99 {scraped['p99_ms']:.2f} ms; {len(s.latencies)} scrapes,"
                f" median {statistics.median(s.latencies) * 1000:.1f} ms,"
                f" {s.failures} failed"
            )

    on = statistics.median(r["rps"] for r in runs["on"])
    off = statistics.median(r["rps"] for r in runs["off"])
    ratio = on / off
    print(
        f"GET by id, log+metrics on / both off: {on:.0f} / {off:.0f} = {ratio:.3f}"
        f" ({'meets' if ratio >= 0.9 else 'misses'} the 0.9 target)"
    )
    print(f"GET by id under {args.scrapers} scrapers / alone: {scraped['rps'] / quiet['rps']:.3f}")


if __name__ == "__main__":
    main()
