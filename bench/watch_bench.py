"""Watches: how fast one worker starts 1,000 due checks, what they cost the API meanwhile, and
whether two replicas on one PostgreSQL store run each due check exactly once when one is killed.

    .venv/bin/python bench/watch_bench.py burst [--watches 1000]
    .venv/bin/python bench/watch_bench.py replicas [--watches 200 --interval 6 --lease 4]

`burst`: a `tdb serve` (SQLite, one worker, TDB_WATCH=off) registers N CSV sources and watches
them (all due at once); it is stopped and started again with the scheduler on, so that every
check is due when it starts. Reported: when the last check started, counted from the app's
startup, and the p50 of GET /v1/sources/{id} while the checks run against the same server idle
afterwards (the bar: the last start within 30 s, the p50 within 2x).

`replicas`: two `tdb serve` processes on one PostgreSQL store, N CSV sources watched at an
interval shortened for tests (`TDB_WATCH_MIN_INTERVAL`), one replica SIGKILLed halfway through a
cycle; runs until every watch has had three checks due after the kill. Reported from the
servers' `watch_check` log lines: checks run twice for one due time, and due times missed
(gaps in a watch's grid).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Postgres, Server, secret_key, tdb_server

LOG_ENV = {"TDB_LOG_FORMAT": "json", "TDB_ACCESS_LOG": "off"}


def log_events(server: Server, name: str) -> list[dict[str, Any]]:
    found = []
    for line in server.stderr.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            found.append(event)
    return found


def recorded_checks(server: Server) -> list[dict[str, Any]]:
    return [e for e in log_events(server, "watch_check") if e.get("recorded")]


def register_and_watch(
    base_url: str, token: str, data: Path, count: int, interval: int
) -> list[str]:
    """N CSV files and sources, each watched every `interval` seconds; their ids."""
    headers = {"Authorization": f"Bearer {token}"}

    def one(i: int) -> str:
        (data / f"s{i}.csv").write_text("id,customer,total,ordered_on\n1,ACME,19.90,2026-05-01\n")
        body = {"name": f"s{i}", "source_type": "csv", "connection": {"path": f"s{i}.csv"}}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            created = client.post("/v1/sources", json=body)
            created.raise_for_status()
            source_id: str = created.json()["id"]
            watched = client.put(
                f"/v1/sources/{source_id}/watch", json={"interval_seconds": interval}
            )
            watched.raise_for_status()
        return source_id

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def latencies(base_url: str, token: str, ids: list[str], until: Any) -> list[float]:
    """Seconds of each GET /v1/sources/{id}, one after another, until `until()` holds."""
    headers = {"Authorization": f"Bearer {token}"}
    found = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        i = 0
        while not until():
            start = time.perf_counter()
            client.get(f"/v1/sources/{ids[i % len(ids)]}").raise_for_status()
            found.append(time.perf_counter() - start)
            i += 1
    return found


def counted(n: int) -> Any:
    done = [0]

    def until() -> bool:
        done[0] += 1
        return done[0] > n

    return until


def burst(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tdb-watch-bench-") as tmp:
        workdir = Path(tmp)
        data = workdir / "data"
        data.mkdir()
        env = {**LOG_ENV, "TDB_CSV_ROOT": str(data)}
        url = f"sqlite:///{workdir / 'tdb.sqlite3'}"
        setup = tdb_server(workdir, url, None, workers=1)
        setup.env.update({**env, "TDB_WATCH": "off"})
        setup.start()
        try:
            token = setup.admin_token()
            assert token
            began = time.monotonic()
            ids = register_and_watch(setup.base_url, token, data, args.watches, 3600)
            print(f"registered and watched {len(ids)} sources in {time.monotonic() - began:.1f} s")
            idle_off = latencies(setup.base_url, token, ids, counted(args.samples))
        finally:
            setup.stop()
        server = tdb_server(workdir, url, None, workers=1)
        server.env.update(env)
        server.start()
        try:
            done = threading.Event()
            watcher = threading.Thread(target=wait_checks, args=(server, len(ids), done))
            watcher.start()
            busy = latencies(server.base_url, token, ids, done.is_set)
            watcher.join()
            idle = latencies(server.base_url, token, ids, counted(args.samples))
        finally:
            server.stop()
        report_burst(server, ids, busy, idle, idle_off)


def wait_checks(server: Server, count: int, done: threading.Event) -> None:
    deadline = time.monotonic() + 600
    while len(recorded_checks(server)) < count and time.monotonic() < deadline:
        time.sleep(0.25)
    done.set()


def report_burst(
    server: Server, ids: list[str], busy: list[float], idle: list[float], idle_off: list[float]
) -> None:
    (started,) = [
        datetime.fromisoformat(e["timestamp"])
        for e in log_events(server, "Application startup complete.")
    ]
    checks = recorded_checks(server)
    starts = sorted(
        datetime.fromisoformat(c["due_at"]).timestamp() + c["lateness_ms"] / 1000 for c in checks
    )
    outcomes = Counter(c["outcome"] for c in checks)
    first, last = starts[0] - started.timestamp(), starts[-1] - started.timestamp()
    p50_busy, p50_idle = statistics.median(busy), statistics.median(idle)
    print(f"checks recorded: {len(checks)} of {len(ids)} watches; outcomes {dict(outcomes)}")
    print(f"first check started {first:.2f} s after startup, the last {last:.2f} s (bar: 30 s)")
    print(
        f"GET /v1/sources/{{id}} p50: {p50_busy * 1000:.2f} ms during the checks ({len(busy)}"
        f" requests), {p50_idle * 1000:.2f} ms idle after ({len(idle)}), "
        f"{statistics.median(idle_off) * 1000:.2f} ms idle with TDB_WATCH=off before"
    )
    print(f"ratio busy/idle p50: {p50_busy / p50_idle:.2f}x (bar: 2x); load {os.getloadavg()}")


def replicas(args: argparse.Namespace) -> None:
    postgres = Postgres(args.postgres)
    try:
        with tempfile.TemporaryDirectory(prefix="tdb-watch-bench-") as tmp:
            run_replicas(args, postgres.store_url(), Path(tmp))
    finally:
        postgres.drop_all()


def run_replicas(args: argparse.Namespace, store_url: str, workdir: Path) -> None:
    data = workdir / "data"
    data.mkdir()
    key = secret_key()
    env = {
        **LOG_ENV,
        "TDB_CSV_ROOT": str(data),
        "TDB_WATCH_MIN_INTERVAL": "1",
        "TDB_WATCH_LEASE": str(args.lease),
        "TDB_CONNECT_TIMEOUT": str(max(0.5, args.lease - 1.75)),
    }
    servers = [tdb_server(workdir, store_url, key, workers=1) for _ in range(2)]
    for server in servers:
        server.env.update(env)
        server.start()
    try:
        token = next(t for t in (s.admin_token() for s in servers) if t)
        ids = register_and_watch(servers[0].base_url, token, data, args.watches, args.interval)
        began = time.monotonic()
        # Halfway through a cycle: each replica holds claims, some mid-check.
        time.sleep(args.interval * 1.5)
        killed = servers[0]
        assert killed.proc is not None
        os.killpg(killed.proc.pid, signal.SIGKILL)
        killed.proc.wait()
        killed_at = datetime.now().astimezone()
        print(f"replica {killed.port} SIGKILLed {time.monotonic() - began:.1f} s in")
        wait_cycles(servers, ids, 3, killed_at)
    finally:
        for server in servers:
            server.stop()
    report_replicas(servers, ids, args.interval)


def wait_cycles(servers: list[Server], ids: list[str], cycles: int, after: datetime) -> None:
    """Until every watch has had `cycles` checks due after `after` (the kill)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        per_watch = Counter(
            c["source_id"]
            for s in servers
            for c in recorded_checks(s)
            if datetime.fromisoformat(c["due_at"]) > after
        )
        if all(per_watch[i] >= cycles for i in ids):
            return
        time.sleep(0.5)
    raise RuntimeError("the watches did not complete their cycles within 10 minutes")


def report_replicas(servers: list[Server], ids: list[str], interval: int) -> None:
    checks = [c for s in servers for c in recorded_checks(s)]
    runs = Counter((c["source_id"], c["due_at"]) for c in checks)
    twice = sum(1 for n in runs.values() if n > 1)
    dues: dict[str, list[datetime]] = defaultdict(list)
    for source_id, due in runs:
        dues[source_id].append(datetime.fromisoformat(due))
    missed = 0
    for source_id in ids:
        grid = sorted(dues[source_id])
        steps = [(b - a).total_seconds() for a, b in pairwise(grid)]
        # After the first check, one interval and the offset; then one interval each.
        gaps = sum(round(step / interval) - 1 for step in steps[1:])
        gaps += 0 if steps and interval <= steps[0] < interval * 1.1 else 1
        if gaps:
            lateness = sorted(
                (c["due_at"][11:23], c["lateness_ms"])
                for c in checks
                if c["source_id"] == source_id
            )
            print(f"  missed {gaps} for {source_id}: steps {steps}; (due, lateness ms) {lateness}")
        missed += gaps
    survivor = servers[1]
    took_over = sum(1 for c in recorded_checks(survivor) if c["lateness_ms"] > 1000)
    per_server = {s.port: len(recorded_checks(s)) for s in servers}
    print(f"checks recorded: {len(checks)} ({per_server}); due times: {len(runs)}")
    print(f"run twice for one due time: {twice}; due times missed: {missed}")
    print(f"checks the survivor ran over a second late (taken over after the lease): {took_over}")
    print(f"load {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="scenario", required=True)
    one = sub.add_parser("burst")
    one.add_argument("--watches", type=int, default=1000)
    one.add_argument("--samples", type=int, default=500)
    two = sub.add_parser("replicas")
    two.add_argument("--watches", type=int, default=200)
    two.add_argument("--interval", type=int, default=6)
    two.add_argument("--lease", type=float, default=4)
    two.add_argument(
        "--postgres",
        default=os.environ.get(
            "TDB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    burst(args) if args.scenario == "burst" else replicas(args)


if __name__ == "__main__":
    main()
