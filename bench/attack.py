"""Attack scenarios against a real `tdb serve`, each printed with its bar.

1. wide CSV: 40 concurrent inspections of a CSV of two lines of 1,048,576 commas. Bars: the
   server's RSS < 300 MB, `/healthz` < 100 ms, every answer within the bound (connect timeout
   plus a second).
2. slow clients: ~20,000 connections with no key that send a request line, then one header line
   every 5 s (reconnecting when cut). Bars: `/healthz` < 1 s throughout, the log grows < 1 MB.
3. silent backend: 50 concurrent inspections of a postgres source whose host is a listener on
   127.0.0.1 that accepts and never answers. Bar: a healthy source's schema p50 < 100 ms.
4. listing load: 10 concurrent full listings of 10,000 sources. Bars: `/healthz` p99 < 50 ms,
   and (separately, one connection, no other load) a full listing's p50 < 100 ms.

Every byte goes to loopback addresses; every loop is bounded in time and count. Run with the
project's venv (wrk is needed to fill the store for 4):

    .venv/bin/python bench/attack.py                    # all four
    .venv/bin/python bench/attack.py --points 2 --slow-clients 5000 --slow-seconds 20
    .venv/bin/python bench/attack.py --points 4 --store postgres   # tdb on a PostgreSQL store
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from http_bench import (
    Filler,
    Postgres,
    Server,
    secret_key,
    serving,
    tdb_server,
)

WIDE_COLUMNS = 1_048_576
SLOW_CHILD_CONNECTIONS = 5_000  # per child process: below its open-files limit


# --- probes ----------------------------------------------------------------------------------


class Prober:
    """Times `GET /healthz` on a fresh connection every `every` seconds, on its own thread."""

    def __init__(self, base_url: str, every: float = 0.05, timeout: float = 10.0) -> None:
        self.base_url, self.every, self.timeout = base_url, every, timeout
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        host, _, port = self.base_url.removeprefix("http://").partition(":")
        request = b"GET /healthz HTTP/1.1\r\nHost: tdb\r\nConnection: close\r\n\r\n"
        while not self._stop.is_set():
            # A raw socket, new each time (the accept is part of the answer): an HTTP client
            # library would add its own milliseconds to every figure.
            started = time.perf_counter()
            try:
                with socket.create_connection((host, int(port)), timeout=self.timeout) as sock:
                    sock.sendall(request)
                    answer = b""
                    while chunk := sock.recv(4096):
                        answer += chunk
                ok = answer.startswith(b"HTTP/1.1 200 ")
            except OSError:
                ok = False
            took = time.perf_counter() - started
            if ok:
                self.latencies.append(took)
            else:
                self.failures += 1
            self._stop.wait(max(0.0, self.every - took))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def summary(self) -> str:
        if not self.latencies:
            return f"no answer ({self.failures} failures)"
        return (
            f"{len(self.latencies)} probes, p50 {pct(self.latencies, 50) * 1000:.1f} ms, "
            f"p99 {pct(self.latencies, 99) * 1000:.1f} ms, max {max(self.latencies) * 1000:.1f} ms,"
            f" {self.failures} failed"
        )


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class RssSampler:
    """The largest total RSS of the server's process group, sampled every 50 ms."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        assert self.server.proc is not None
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[2]) == self.server.proc.pid:
                    total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def concurrently(
    base_url: str, token: str, path: str, n: int, timeout: float
) -> list[tuple[int, float]]:
    """n concurrent GETs of path; (status or 0 for a transport error, seconds) for each."""

    async def main() -> list[tuple[int, float]]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=timeout
        ) as client:

            async def one() -> tuple[int, float]:
                started = time.perf_counter()
                try:
                    status = (await client.get(path)).status_code
                except httpx.HTTPError:
                    status = 0
                return status, time.perf_counter() - started

            return list(await asyncio.gather(*(one() for _ in range(n))))

    return asyncio.run(main())


def statuses(results: list[tuple[int, float]]) -> str:
    counts: dict[int, int] = {}
    for status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n}x {s or 'transport error'}" for s, n in sorted(counts.items()))


def register(base_url: str, token: str, body: dict[str, Any]) -> str:
    response = httpx.post(
        f"{base_url}/v1/sources",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"register gave {response.status_code}: {response.text}")
    return str(response.json()["id"])


# --- 1. wide CSV -----------------------------------------------------------------------------


def wide_csv(server: Server, token: str, csv_root: Path, bound: float) -> bool:
    path = csv_root / "wide.csv"
    line = "," * WIDE_COLUMNS + "\n"
    path.write_text(line + line)
    source_id = register(
        server.base_url,
        token,
        {
            "name": f"wide-{secrets.token_hex(3)}",
            "source_type": "csv",
            "connection": {"path": "wide.csv"},
        },
    )
    with RssSampler(server) as rss, Prober(server.base_url) as probe:
        before = rss.peak
        results = concurrently(
            server.base_url, token, f"/v1/sources/{source_id}/schema", 40, timeout=60
        )
    slowest = max(t for _, t in results)
    mb = rss.peak / 2**20
    healthz_max = max(probe.latencies, default=float("inf"))
    ok = mb < 300 and healthz_max < 0.1 and slowest <= bound and not probe.failures
    print("\n[1] 40 concurrent inspections of a CSV of two lines of 1,048,576 commas")
    print(
        f"    answers: {statuses(results)}; slowest {slowest:.2f} s (bound {bound:.1f} s)"
        f"  {verdict(slowest <= bound)}"
    )
    print(
        f"    server RSS: {before / 2**20:.0f} MB before, peak {mb:.0f} MB (< 300 MB)"
        f"  {verdict(mb < 300)}"
    )
    print(
        f"    /healthz: {probe.summary()} (max < 100 ms)"
        f"  {verdict(healthz_max < 0.1 and not probe.failures)}"
    )
    return ok


# --- 2. slow clients -------------------------------------------------------------------------

SLOW_CHILD = r"""
import asyncio, json, os, resource, socket, sys, time
# On a real attack the clients run elsewhere: here they must not take the server's CPU.
os.nice(19)
host, source = sys.argv[1], sys.argv[5]
port, count, seconds = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
stats = {"opened": 0, "cut": 0, "refused": 0, "failed_connects": 0, "peak_open": 0}
open_now = 0
deadline = time.monotonic() + seconds

async def client(delay):
    global open_now
    await asyncio.sleep(delay)
    while time.monotonic() < deadline:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT: share ports
        sock.bind((source, 0))
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), 10)
            reader, writer = await asyncio.open_connection(sock=sock)
        except (OSError, asyncio.TimeoutError):
            sock.close()
            stats["failed_connects"] += 1
            await asyncio.sleep(1)
            continue
        stats["opened"] += 1
        open_now += 1
        stats["peak_open"] = max(stats["peak_open"], open_now)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\n")
            while time.monotonic() < deadline:
                try:
                    data = await asyncio.wait_for(reader.read(4096), 5)
                except asyncio.TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")  # one header line every 5 s
                    await writer.drain()
                    continue
                if b" 503 " in data:
                    stats["refused"] += 1
                else:
                    stats["cut"] += 1
                break
        except OSError:
            stats["cut"] += 1
        finally:
            open_now -= 1
            writer.close()
        await asyncio.sleep(1)  # then come back, as an attacker would

async def main():
    # Opened over the first few seconds, not in one burst.
    await asyncio.gather(*(client(i * 3.0 / count) for i in range(count)))

asyncio.run(main())
print(json.dumps(stats))
"""


def slow_clients(server: Server, total: int, seconds: float) -> bool:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    children = max(1, -(-total // SLOW_CHILD_CONNECTIONS))
    per_child = -(-total // children)
    log_before = server.stderr.stat().st_size + server.stdout.stat().st_size
    print(
        f"\n[2] {children * per_child} slow clients for {seconds:.0f} s "
        f"(open-files limit here: soft {soft}, hard {hard})"
    )
    procs = []
    with Prober(server.base_url, every=0.1, timeout=10) as probe:
        for i in range(children):
            # Several loopback source addresses, so the attack never uses up one address's ports.
            source = f"127.0.0.{2 + i % 200}"
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        SLOW_CHILD,
                        "127.0.0.1",
                        str(server.port),
                        str(per_child),
                        str(seconds),
                        source,
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = [p.communicate(timeout=seconds + 60)[0] for p in procs]
    stats: dict[str, int] = {}
    for out in outputs:
        for key, value in json.loads(out.strip().splitlines()[-1]).items():
            stats[key] = stats.get(key, 0) + value
    log_growth = server.stderr.stat().st_size + server.stdout.stat().st_size - log_before
    healthz_max = max(probe.latencies, default=float("inf"))
    ok = healthz_max < 1.0 and not probe.failures and log_growth < 2**20
    print(f"    attackers: {json.dumps(stats)}")
    print(
        f"    /healthz: {probe.summary()} (max < 1 s)"
        f"  {verdict(healthz_max < 1.0 and not probe.failures)}"
    )
    print(f"    log grew by {log_growth / 1024:.1f} KiB (< 1 MiB)  {verdict(log_growth < 2**20)}")
    return ok


# --- 3. silent backend -----------------------------------------------------------------------


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts every connection and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for sock in held:
            sock.close()
        listener.close()


def silent_backend(server: Server, token: str, pg: Postgres) -> bool:
    healthy = pg.orders_table()
    healthy_id = register(
        server.base_url,
        token,
        {
            "name": f"healthy-{secrets.token_hex(3)}",
            "source_type": "postgres",
            "connection": healthy,
        },
    )
    with silent_listener() as port:
        silent_id = register(
            server.base_url,
            token,
            {
                "name": f"silent-{secrets.token_hex(3)}",
                "source_type": "postgres",
                "connection": {
                    "host": "127.0.0.1",
                    "port": port,
                    "dbname": "d",
                    "user": "u",
                    "table": "t",
                },
            },
        )
        latencies: list[float] = []
        done = threading.Event()
        results: list[tuple[int, float]] = []

        def attack() -> None:
            results.extend(
                concurrently(server.base_url, token, f"/v1/sources/{silent_id}/schema", 50, 30)
            )
            done.set()

        thread = threading.Thread(target=attack)
        thread.start()
        headers = {"Authorization": f"Bearer {token}"}
        healthy_statuses: dict[int, int] = {}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            time.sleep(0.5)  # let the 50 inspections take their slots first
            while not done.is_set() and len(latencies) < 500:
                started = time.perf_counter()
                status = client.get(f"/v1/sources/{healthy_id}/schema").status_code
                latencies.append(time.perf_counter() - started)
                healthy_statuses[status] = healthy_statuses.get(status, 0) + 1
        thread.join()
    p50 = pct(latencies, 50) if latencies else float("inf")
    print("\n[3] 50 concurrent inspections of a source whose host never answers")
    print(
        f"    silent source answers: {statuses(results)}; slowest "
        f"{max(t for _, t in results):.2f} s"
    )
    print(
        f"    healthy schema meanwhile: {len(latencies)} requests {healthy_statuses}, "
        f"p50 {p50 * 1000:.1f} ms (< 100 ms)  {verdict(p50 < 0.1)}"
    )
    return p50 < 0.1


# --- 4. listing load -------------------------------------------------------------------------


def listing_load(server: Server, token: str, tmp: Path, seconds: float) -> bool:
    filler = Filler(server, token, 32, tmp)
    filler.count = len(
        httpx.get(
            f"{server.base_url}/v1/sources",
            timeout=120,
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    )
    filler.fill_to(10_000)
    headers = {"Authorization": f"Bearer {token}"}
    single: list[float] = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        count = len(client.get("/v1/sources").json())
        for _ in range(20):
            # Timed to the last byte, not to the client's JSON decoding.
            started = time.perf_counter()
            client.get("/v1/sources").raise_for_status()
            single.append(time.perf_counter() - started)
    # The same, each time just after a change: the listing is read and encoded anew.
    fresh: list[float] = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        for i in range(5):
            body = {
                "name": f"change-{secrets.token_hex(4)}-{i}",
                "source_type": "csv",
                "connection": {"path": "x.csv"},
            }
            created = client.post("/v1/sources", json=body)
            started = time.perf_counter()
            client.get("/v1/sources").raise_for_status()
            fresh.append(time.perf_counter() - started)
            client.delete(f"/v1/sources/{created.json()['id']}")
    # The load comes from wrk, a process of its own: Python clients reading 10 listings at once
    # would hold this process's GIL and slow the probe down, not the server.
    with Prober(server.base_url, every=0.02, timeout=10) as probe:
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                "-c10",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-H",
                f"Authorization: Bearer {token}",
                f"{server.base_url}/v1/sources",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    requests = re.search(r"(\d+) requests in", done.stdout)
    listed = [int(requests.group(1)) if requests else 0]
    p99 = pct(probe.latencies, 99) if probe.latencies else float("inf")
    p50_single = statistics.median(single)
    print(f"\n[4] {count} sources")
    print(
        f"    one connection, no other load: full listing p50 {p50_single * 1000:.1f} ms "
        f"(< 100 ms)  {verdict(p50_single < 0.1)}"
    )
    print(
        "    (the first listing after a change, read and encoded anew: p50 "
        f"{statistics.median(fresh) * 1000:.1f} ms)"
    )
    print(
        f"    10 concurrent full listings for {seconds:.0f} s ({listed[0]} answered): "
        f"/healthz {probe.summary()} (p99 < 50 ms)  {verdict(p99 < 0.05 and not probe.failures)}"
    )
    return p99 < 0.05 and p50_single < 0.1


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", default="1,2,3,4", help="which scenarios (1,2,3,4)")
    p.add_argument("--slow-clients", type=int, default=20_000)
    p.add_argument("--slow-seconds", type=float, default=30.0)
    p.add_argument("--listing-seconds", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="tdb's store: a temp SQLite file, or a throwaway database on --pg-url",
    )
    opts = p.parse_args(argv)
    points = {int(x) for x in opts.points.split(",") if x.strip()}
    if 4 in points and shutil.which("wrk") is None:
        print("error: scenario 4 fills the store with wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tdb-attack-"))
    csv_root = tmp / "data"
    csv_root.mkdir()
    pg = Postgres(opts.pg_url)
    store_url, key = f"sqlite:///{tmp / 'tdb.sqlite3'}", None
    if opts.store == "postgres":
        store_url, key = pg.store_url(), secret_key()
    server = tdb_server(tmp, store_url, key, opts.workers)
    server.env["TDB_CSV_ROOT"] = str(csv_root)
    connect_timeout = float(server.env.get("TDB_CONNECT_TIMEOUT", "5"))
    results: dict[int, bool] = {}
    scenarios: dict[int, Callable[[], bool]] = {}
    print(f"tdb serve --workers {opts.workers} on a {opts.store} store")
    try:
        with serving(server):
            token = server.admin_token()
            assert token, "tdb printed no admin token"
            scenarios = {
                1: lambda: wide_csv(server, token, csv_root, connect_timeout + 1),
                2: lambda: slow_clients(server, opts.slow_clients, opts.slow_seconds),
                3: lambda: silent_backend(server, token, pg),
                4: lambda: listing_load(server, token, tmp, opts.listing_seconds),
            }
            for point in sorted(points):
                results[point] = scenarios[point]()
                server.settle()
    finally:
        if pg.created:
            pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n" + "  ".join(f"[{k}] {verdict(v)}" for k, v in sorted(results.items())))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
