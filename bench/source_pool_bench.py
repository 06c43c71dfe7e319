"""Source connections benchmark: schema through the pool, fresh connections, kills, a silent peer.

Starts real `tdb serve` processes on a temp SQLite store, a throwaway PostgreSQL database with
a `bench_orders` table, and measures with `wrk`:

1. `pooled`: GET /v1/sources/{id}/schema with the default pool;
2. `fresh`: the same with no connection kept (`TDB_SOURCE_POOL_IDLE_TIMEOUT=0`) and a per-target
   bound as wide as the inspection limit (`TDB_SOURCE_POOL_SIZE=16`): a fresh connection per
   request, as before pooling; `--rounds` of both, alternating, medians compared;
3. `kills`: `pooled` again while a thread terminates every pooled backend (`pg_terminate_backend`)
   several times during the run: no request may fail;
4. `alone`: a healthy source's schema, one request at a time;
5. `silent` and `flood`: the same while `--silent-clients` clients keep inspecting a source whose
   host (a listener on 127.0.0.1) accepts and never answers; in `silent` they wait as
   `Retry-After` asks before asking again, in `flood` they ask again at once.

Bars: pooled >= 10 x fresh (requests per second, same run), no failed request under kills,
healthy p50 < 100 ms during the silent load.

    .venv/bin/python bench/source_pool_bench.py
    .venv/bin/python bench/source_pool_bench.py --duration 5 --connections 8 --json pool.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from http_bench import (
    DEFAULT_PG_URL,
    LUA_DONE,
    Postgres,
    Server,
    register_body,
    run_wrk,
    serving,
    tdb_server,
    venv_bin,
)

POOL_OVER_FRESH_TARGET = 10.0
SILENT_P50_TARGET_MS = 100.0


def start(tmp: Path, name: str, env: dict[str, str]) -> Server:
    """A tdb server on its own SQLite store, with these extra settings."""
    workdir = tmp / name
    workdir.mkdir()
    server = tdb_server(workdir, f"sqlite:///{workdir / 'tdb.sqlite3'}", None, 1)
    server.env.update(env)
    return server


def register(server: Server, token: str, name: str, connection: dict[str, Any]) -> str:
    body = register_body(name, **connection)
    if "password" not in connection:
        del body["connection"]["password"]
    response = httpx.post(
        f"{server.base_url}/v1/sources",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["id"])


def wrk(
    server: Server, path: str, token: str, opts: argparse.Namespace, connections: int
) -> dict[str, Any]:
    """Warm up, then one measured wrk run: requests per second, latencies, failures."""
    script = Path(server.workdir) / "done.lua"
    script.write_text(LUA_DONE)
    url = server.base_url + path
    if opts.warmup > 0:
        run_wrk(url, script, duration=opts.warmup, connections=connections, threads=1, token=token)
        server.settle()
    out = run_wrk(
        url, script, duration=opts.duration, connections=connections, threads=1, token=token
    )
    server.settle()
    seconds = out["duration_us"] / 1e6
    failed = sum(int(out[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": int(out["requests"]),
        "rps": round(out["requests"] / seconds, 1),
        "p50_ms": round(out["p50_us"] / 1000, 2),
        "p99_ms": round(out["p99_us"] / 1000, 2),
        "failed": failed,
    }


def killer(admin_url: str, dbname: str, stop: threading.Event, every: float) -> list[int]:
    """Terminate every inspection backend on `dbname` each `every` seconds until stopped."""
    killed: list[int] = []

    def run() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            while not stop.wait(every):
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND application_name = 'tdb-inspect'",
                    (dbname,),
                ).fetchall()
                killed.append(len(rows))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    stop.thread = thread  # type: ignore[attr-defined]
    return killed


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections (the kernel does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        yield listener.getsockname()[1]


def healthy_latencies(server: Server, path: str, token: str, seconds: float) -> dict[str, Any]:
    """One request at a time for `seconds`: p50, p99, and what did not answer 200."""
    latencies: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            status = client.get(path).status_code
            latencies.append((time.perf_counter() - began) * 1000)
            failed += status != 200
    latencies.sort()
    return {
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "failed": failed,
    }


def silent_load(
    server: Server, path: str, token: str, clients: int, stop: threading.Event, polite: bool
) -> dict[str, int]:
    """`clients` clients inspecting the silent source until stopped: their answers, counted.

    A polite client waits as `Retry-After` asks before it asks again; an impolite one asks
    again at once (a closed loop: a flood of requests, each answered `busy` at once).
    """
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            while not stop.is_set():
                response = http.get(path)
                key = f"{response.status_code} {response.json().get('reason', '')}".strip()
                with lock:
                    statuses[key] = statuses.get(key, 0) + 1
                if polite and "retry-after" in response.headers:
                    stop.wait(float(response.headers["retry-after"]))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    stop.threads = threads  # type: ignore[attr-defined]
    return statuses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up before each (1)")
    p.add_argument(
        "--connections",
        type=int,
        default=8,
        help="wrk connections (8: the pool's 2 plus waiting room, so none is refused as busy)",
    )
    p.add_argument("--rounds", type=int, default=3, help="pooled/fresh rounds, alternating (3)")
    p.add_argument("--kill-every", type=float, default=1.0, help="seconds between kills (1)")
    p.add_argument("--silent-clients", type=int, default=50, help="clients on the silent peer")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL ({DEFAULT_PG_URL})")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    opts = p.parse_args(argv)
    if shutil.which("wrk") is None or not (venv_bin() / "tdb").exists():
        print("error: needs wrk and the venv's tdb (see bench/README.md)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tdb-pool-bench-"))
    pg = Postgres(opts.pg_url)
    results: dict[str, Any] = {}
    try:
        connection = pg.orders_table()
        with contextlib.ExitStack() as stack:
            pooled = stack.enter_context(serving(start(tmp, "pooled", {})))
            token = pooled.admin_token() or ""
            schema = f"/v1/sources/{register(pooled, token, 'orders', connection)}/schema"
            fresh = stack.enter_context(
                serving(
                    start(
                        tmp,
                        "fresh",
                        {"TDB_SOURCE_POOL_IDLE_TIMEOUT": "0", "TDB_SOURCE_POOL_SIZE": "16"},
                    )
                )
            )
            fresh_token = fresh.admin_token() or ""
            fresh_schema = (
                f"/v1/sources/{register(fresh, fresh_token, 'orders', connection)}/schema"
            )
            # Rounds alternate, so that a machine whose load drifts weighs on both alike.
            rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
            for n in range(opts.rounds):
                one = wrk(pooled, schema, token, opts, opts.connections)
                other = wrk(fresh, fresh_schema, fresh_token, opts, opts.connections)
                rounds.append((one, other))
                print(f"round {n + 1}: pooled {one}\n         fresh  {other}")
            fresh.stop()
            results["rounds"] = [{"pooled": a, "fresh": b} for a, b in rounds]
            results["pooled"] = {
                "rps": statistics.median(a["rps"] for a, _ in rounds),
                "failed": sum(a["failed"] for a, _ in rounds),
            }
            results["fresh"] = {
                "rps": statistics.median(b["rps"] for _, b in rounds),
                "failed": sum(b["failed"] for _, b in rounds),
            }

            stop = threading.Event()
            killed = killer(opts.pg_url, connection["dbname"], stop, opts.kill_every)
            results["kills"] = wrk(pooled, schema, token, opts, opts.connections)
            stop.set()
            stop.thread.join()  # type: ignore[attr-defined]
            results["kills"]["backends_killed"] = sum(killed)
            results["kills"]["kill_rounds"] = len(killed)
            print(f"kills:  {results['kills']}")

            results["alone"] = healthy_latencies(pooled, schema, token, opts.duration)
            print(f"alone:  {results['alone']}")
            with silent_listener() as port:
                silent_id = register(
                    pooled, token, "silent", {**connection, "host": "127.0.0.1", "port": port}
                )
                for polite, name in ((True, "silent"), (False, "flood")):
                    stop = threading.Event()
                    statuses = silent_load(
                        pooled,
                        f"/v1/sources/{silent_id}/schema",
                        token,
                        opts.silent_clients,
                        stop,
                        polite,
                    )
                    results[name] = healthy_latencies(pooled, schema, token, opts.duration)
                    stop.set()
                    for thread in stop.threads:  # type: ignore[attr-defined]
                        thread.join()
                    results[name]["silent_answers"] = statuses
                    pooled.settle()
                    print(f"{name}: {results[name]}")
    finally:
        pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = results["pooled"]["rps"] / max(results["fresh"]["rps"], 0.1)
    verdicts = {
        "pooled_over_fresh": round(ratio, 1),
        "pooled_over_fresh_met": ratio >= POOL_OVER_FRESH_TARGET,
        "no_failure_under_kills": results["kills"]["failed"] == 0
        and results["kills"]["backends_killed"] > 0,
        "healthy_p50_during_silent_load_met": results["silent"]["p50_ms"] < SILENT_P50_TARGET_MS
        and results["silent"]["failed"] == 0,
        "healthy_p50_during_silent_flood_met": results["flood"]["p50_ms"] < SILENT_P50_TARGET_MS
        and results["flood"]["failed"] == 0,
    }
    per_round = [
        round(r["pooled"]["rps"] / max(r["fresh"]["rps"], 0.1), 1) for r in results["rounds"]
    ]
    print(
        f"\npooled {results['pooled']['rps']} req/s vs fresh {results['fresh']['rps']} req/s"
        f" (medians of {opts.rounds} alternating rounds): x{ratio:.1f}"
        f" (target >= x{POOL_OVER_FRESH_TARGET:g}); per round {per_round}"
    )
    print(
        f"kills: {results['kills']['backends_killed']} backends killed in"
        f" {results['kills']['kill_rounds']} rounds, {results['kills']['failed']} failed"
        f" of {results['kills']['requests']} requests (target 0)"
    )
    print(
        f"healthy schema alone, one request at a time: p50 {results['alone']['p50_ms']} ms,"
        f" p99 {results['alone']['p99_ms']} ms"
    )
    for name, how in (("silent", "honouring Retry-After"), ("flood", "in a closed loop")):
        print(
            f"healthy schema during {opts.silent_clients} clients inspecting a silent peer {how}:"
            f" p50 {results[name]['p50_ms']} ms, p99 {results[name]['p99_ms']} ms,"
            f" {results[name]['failed']} failed (target p50 < {SILENT_P50_TARGET_MS:g} ms);"
            f" the silent source answered {results[name]['silent_answers']}"
        )
    print(f"verdicts: {verdicts}")
    if opts.json:
        opts.json.write_text(json.dumps({"results": results, "verdicts": verdicts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
