"""Webhook delivery: at least once across SIGKILLs, throughput of one worker, latency from the act.

A receiver (asyncio, in this process, on 127.0.0.1) answers 204 to every POST and notes when each
`webhook-id` arrived and which source the body names. Acts are source registrations through the
API (`POST /v1/sources`, CSV sources over one file); each acknowledged registration (201) is one
`source.registered` event the endpoint must receive.

- `kill`: N acts sent one after another while the `tdb serve` sending them is SIGKILLed twice
  (after a third and two thirds of them) and started again on the same store. Every acknowledged
  act must reach the receiver: lost = acknowledged - received. Duplicates (one delivery received
  twice: its attempt was cut short by a kill) are counted.
- `throughput`: N deliveries queued while the sender is off (`TDB_WEBHOOKS=off`), then one
  worker with the sender on drains them: deliveries per second from the first to the last, and
  the server's CPU time per delivery (what one core of its own would give: a loaded machine
  lends the server less than a core).
- `latency`: acts spaced out on an idle server; the time from sending the act to the receiver
  holding its delivery, p50 and p95.

    .venv/bin/python bench/webhook_bench.py                       # all three, SQLite store
    .venv/bin/python bench/webhook_bench.py --store postgres      # a throwaway PostgreSQL store
    .venv/bin/python bench/webhook_bench.py --scenarios latency --acts 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Postgres, Server, secret_key, tdb_server

# For this bench only: a sender killed mid-attempt holds its leases this long (default 60 s).
LEASE = "3"


class Receiver:
    """An HTTP/1.1 keep-alive server that answers 204 and notes each delivery's arrival."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, str, float]] = []  # (webhook-id, source_id, time)
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        started.wait(10)
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=512)
        )
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                arrived = time.time()
                data = json.loads(body).get("data", {})
                with self.lock:
                    self.arrivals.append(
                        (headers.get("webhook-id", ""), str(data.get("source_id")), arrived)
                    )
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def snapshot(self) -> list[tuple[str, str, float]]:
        with self.lock:
            return list(self.arrivals)

    def wait_sources(self, expected: set[str], timeout: float) -> set[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = {source for _, source, _ in self.snapshot()}
            if expected <= got:
                return got
            time.sleep(0.05)
        return {source for _, source, _ in self.snapshot()}


class Bench:
    def __init__(self, workdir: Path, database_url: str, key: str | None) -> None:
        self.workdir, self.database_url, self.key = workdir, database_url, key
        (workdir / "data").mkdir(exist_ok=True)
        (workdir / "data" / "one.csv").write_text("id,total\n1,2.5\n")
        self.token = ""
        self.client = httpx.Client(timeout=30)
        self.names = iter(range(10**9))

    def server(self, **env: str) -> Server:
        server = tdb_server(self.workdir, self.database_url, self.key, workers=1)
        server.env.update({"TDB_CSV_ROOT": str(self.workdir / "data"), **env})
        server.env.update({"TDB_WEBHOOK_LEASE": LEASE, "TDB_ACCESS_LOG": "off"})
        server.start()
        self.token = self.token or server.admin_token() or ""
        return server

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def endpoint(self, server: Server, url: str) -> str:
        answer = self.client.post(
            f"{server.base_url}/v1/webhooks",
            json={"url": url, "events": ["source.registered"]},
            headers=self.headers,
        )
        answer.raise_for_status()
        return str(answer.json()["id"])

    def act(self, server: Server) -> str | None:
        """Register one source; its id if acknowledged (201), else None."""
        body = {
            "name": f"s{next(self.names)}-{os.getpid()}",
            "source_type": "csv",
            "connection": {"path": "one.csv"},
        }
        try:
            answer = self.client.post(
                f"{server.base_url}/v1/sources", json=body, headers=self.headers
            )
        except httpx.HTTPError:
            return None
        return str(answer.json()["id"]) if answer.status_code == 201 else None


def kill(server: Server) -> None:
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


def at_least_once(bench: Bench, receiver: Receiver, acts: int) -> dict[str, Any]:
    server = bench.server()
    bench.endpoint(server, receiver.url)
    acknowledged: set[str] = set()
    kills = 0
    started = time.monotonic()
    for i in range(acts):
        if i in (acts // 3, 2 * acts // 3):
            kill(server)  # mid-run: deliveries in flight and queued are cut off
            kills += 1
            server = bench.server()
        source = bench.act(server)
        if source is not None:
            acknowledged.add(source)
    got = receiver.wait_sources(acknowledged, timeout=120)
    server.stop()
    deliveries = Counter(webhook_id for webhook_id, _, _ in receiver.snapshot())
    return {
        "acts": acts,
        "acknowledged": len(acknowledged),
        "kills": kills,
        "received_unique": len(got & acknowledged),
        "lost": len(acknowledged - got),
        "duplicates": sum(n - 1 for n in deliveries.values()),
        "seconds": round(time.monotonic() - started, 1),
    }


def throughput(bench: Bench, receiver: Receiver, acts: int) -> dict[str, Any]:
    quiet = bench.server(TDB_WEBHOOKS="off")
    bench.endpoint(quiet, receiver.url)
    with ThreadPoolExecutor(8) as pool:
        acknowledged = {s for s in pool.map(lambda _: bench.act(quiet), range(acts)) if s}
    quiet.stop()
    before = len(receiver.snapshot())
    sender = bench.server()  # one worker, its sender on: it drains the queue
    cpu_before = sender.cpu_seconds() or 0.0
    receiver.wait_sources(acknowledged, timeout=120)
    cpu = (sender.cpu_seconds() or 0.0) - cpu_before
    sender.stop()
    times = sorted(t for _, source, t in receiver.snapshot()[before:] if source in acknowledged)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {
        "deliveries": len(times),
        "seconds": round(span, 3),
        "per_second": round((len(times) - 1) / span, 1) if span else None,
        # The server's own CPU per delivery: on a loaded machine, what it would do on one core.
        "cpu_ms_per_delivery": round(cpu * 1000 / max(len(times), 1), 2),
        "per_cpu_second": round(len(times) / cpu, 1) if cpu else None,
    }


def latency(bench: Bench, receiver: Receiver, acts: int) -> dict[str, Any]:
    server = bench.server()
    bench.endpoint(server, receiver.url)
    sent: dict[str, float] = {}
    for _ in range(acts):
        before = time.time()
        source = bench.act(server)
        if source is not None:
            sent[source] = before
        time.sleep(0.02)  # spaced out: the act, not a backlog, is measured
    receiver.wait_sources(set(sent), timeout=60)
    server.stop()
    arrived = {source: t for _, source, t in receiver.snapshot() if source in sent}
    delays = sorted((arrived[s] - sent[s]) * 1000 for s in arrived)
    return {
        "acts": len(sent),
        "p50_ms": round(statistics.median(delays), 1),
        "p95_ms": round(delays[int(len(delays) * 0.95) - 1], 1),
        "max_ms": round(delays[-1], 1),
    }


SCENARIOS = {"kill": at_least_once, "throughput": throughput, "latency": latency}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TDB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--scenarios", default="kill,throughput,latency")
    parser.add_argument("--acts", type=int, default=1000)
    parser.add_argument("--latency-acts", type=int, default=200)
    args = parser.parse_args()
    receiver = Receiver()
    results: dict[str, Any] = {"store": args.store, "load": os.getloadavg()[0]}
    postgres = Postgres(args.postgres_url) if args.store == "postgres" else None
    try:
        for name in args.scenarios.split(","):
            with tempfile.TemporaryDirectory(prefix="tdb-webhook-bench-") as tmp:
                workdir = Path(tmp)
                if postgres is not None:
                    bench = Bench(workdir, postgres.store_url(), secret_key())
                else:
                    bench = Bench(workdir, f"sqlite:///{workdir / 'tdb.sqlite3'}", None)
                acts = args.latency_acts if name == "latency" else args.acts
                results[name] = SCENARIOS[name](bench, receiver, acts)
                print(json.dumps({name: results[name]}), flush=True)
    finally:
        if postgres is not None:
            postgres.drop_all()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
