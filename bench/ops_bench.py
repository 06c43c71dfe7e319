"""What operability costs: GET by id with the request log and metrics on, against both off.

Two figures, each from runs taken in this one invocation:

- **on/off**: requests per second of `GET /v1/sources/{id}` (a read-only key) on a `tdb serve`
  with the request log and the metrics on (the defaults), as a ratio of the same on a second
  `tdb serve` with `TDB_ACCESS_LOG=off TDB_METRICS=off`. Runs alternate (on, off, off, on, ...)
  and each pair gives a ratio, so that a drift of the machine's load hits both sides alike;
  the figure is the median of the pairs. Target: >= 0.9.
- **scraped/alone**: the same GETs on the "on" server while `--scrapers` clients (200) each
  scrape `/metrics` every `--scrape-interval` seconds, as a ratio of the GETs alone.

Run: `.venv/bin/python bench/ops_bench.py` (wrk installed; servers on loopback, stopped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_bench import (
    Server,
    register_body,
    register_many,
    run_wrk,
    serving,
    tdb_server,
    venv_bin,
    write_lua,
)

QUIET = {"TDB_ACCESS_LOG": "off", "TDB_METRICS": "off"}


def _server(workdir: Path, workers: int, env: dict[str, str]) -> Server:
    server = tdb_server(workdir, f"sqlite:///{workdir / 'ops.sqlite3'}", None, workers)
    server.env.update(env)
    return server


def _prepare(server: Server) -> tuple[str, str]:
    """One source to GET, and a read-only key: (url, token)."""
    admin = server.admin_token()
    assert admin, server.log_tail()
    body = register_body(f"ops-bench-{secrets.token_hex(4)}")
    (source_id,) = register_many(server.base_url, admin, [body], 1)
    # A key without `sources:secrets`: its GETs read only (a GET that shows a secret in clear
    # also writes an audit event, and the write's cost would drown the figure measured here).
    made = subprocess.run(
        [str(venv_bin() / "tdb"), "keys", "create", "--name", "reader", "--scope", "sources:read"],
        cwd=server.workdir,
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return f"{server.base_url}/v1/sources/{source_id}", made.stdout.strip().splitlines()[-1]


def _get_rps(
    server: Server, target: tuple[str, str], script: Path, args: argparse.Namespace
) -> dict[str, Any]:
    url, token = target
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


def _line(label: str, run: dict[str, Any]) -> str:
    return (
        f"{label}: {run['rps']:8.0f} req/s  p50 {run['p50_ms']:6.2f} ms"
        f"  p99 {run['p99_ms']:7.2f} ms  errors {run['errors']}"
    )


class Scrapers:
    """`count` clients scraping `/metrics` every `interval` seconds, on a thread of their own.

    Each is a bare keep-alive HTTP/1.1 connection (asyncio streams, no client library), so that
    the scrapers' own CPU takes as little as possible from the server and wrk.
    """

    def __init__(self, host: str, port: int, count: int, interval: float) -> None:
        self.host, self.port, self.count, self.interval = host, port, count, interval
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _scraper(self) -> None:
        loop = asyncio.get_running_loop()
        request = f"GET /metrics HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            while not self._stop.is_set():
                start = loop.time()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 200"):
                    self.failures += 1
                self.latencies.append(loop.time() - start)
                await asyncio.sleep(self.interval)
        finally:
            writer.close()

    async def _run(self) -> None:
        results = await asyncio.gather(
            *(self._scraper() for _ in range(self.count)), return_exceptions=True
        )
        self.failures += sum(isinstance(r, Exception) for r in results)

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
    parser.add_argument("--rounds", type=int, default=3, help="paired runs of each figure (3)")
    parser.add_argument("--scrapers", type=int, default=200, help="concurrent scrapers (200)")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds (1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tdb-ops-bench-") as tmp, ExitStack() as stack:
        script = write_lua(Path(tmp))["GET"]
        servers, targets = {}, {}
        for mode, env in (("on", {}), ("off", QUIET)):
            workdir = Path(tmp) / mode
            workdir.mkdir()
            servers[mode] = stack.enter_context(serving(_server(workdir, args.workers, env)))
            targets[mode] = _prepare(servers[mode])
            # Warm-up: the first requests of a process are slower.
            run_wrk(
                targets[mode][0],
                script,
                duration=args.warmup,
                connections=args.connections,
                threads=1,
                token=targets[mode][1],
            )

        print("GET by id, log+metrics on against both off (two servers, runs alternating):")
        ratios = []
        for round_ in range(args.rounds):
            order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
            runs = {m: _get_rps(servers[m], targets[m], script, args) for m in order}
            ratios.append(runs["on"]["rps"] / runs["off"]["rps"])
            for mode in order:
                print(_line(f"  round {round_ + 1} {mode:>3}", runs[mode]), flush=True)

        print(f"GET by id with {args.scrapers} scrapers against none (the 'on' server):")
        scrape_ratios, scrapes = [], []
        for round_ in range(args.rounds):
            quiet = _get_rps(servers["on"], targets["on"], script, args)
            port = servers["on"].port
            with Scrapers("127.0.0.1", port, args.scrapers, args.scrape_interval) as scrapers:
                scraped = _get_rps(servers["on"], targets["on"], script, args)
            scrape_ratios.append(scraped["rps"] / quiet["rps"])
            scrapes += scrapers.latencies
            print(_line(f"  round {round_ + 1} alone  ", quiet))
            print(
                _line(f"  round {round_ + 1} scraped", scraped)
                + f"  ({len(scrapers.latencies)} scrapes, {scrapers.failures} failed)",
                flush=True,
            )

    ratio = statistics.median(ratios)
    print(
        f"GET by id, log+metrics on / both off: median of {len(ratios)} paired runs"
        f" {ratio:.3f} ({', '.join(f'{r:.3f}' for r in ratios)});"
        f" {'meets' if ratio >= 0.9 else 'misses'} the 0.9 target"
    )
    print(
        f"GET by id under {args.scrapers} scrapers / alone: median"
        f" {statistics.median(scrape_ratios):.3f}"
        f" ({', '.join(f'{r:.3f}' for r in scrape_ratios)});"
        f" scrape latency median {statistics.median(scrapes) * 1000:.1f} ms,"
        f" p99 {statistics.quantiles(scrapes, n=100)[98] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
