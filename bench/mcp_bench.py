"""The MCP server's and the column search's latency, against a real `tdb serve`.

    .venv/bin/python bench/mcp_bench.py get [--requests 500]
        `get_source` through MCP over HTTP (a `tools/call` POST to /mcp, and the SDK's own client)
        against `GET /v1/sources/{id}`, interleaved in one run on one connection each; the bar
        is MCP p50 <= 2x GET p50.
    .venv/bin/python bench/mcp_bench.py columns --store sqlite|postgres [--sources 10000]
        `GET /v1/columns?name=customer_id` over N sources of 20 columns each (one in four has a
        `customer_id`), the store filled through its own repositories (snapshot appends keep
        the column index); the bar is p50 < 50 ms.

Requests are sequential (one client, one connection): the figures are latencies, not
throughput. Print p50/p90 in milliseconds and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from servers import Postgres, Server, secret_key, serving, tdb_server

# `servers` has put the repository on sys.path.
from domain.history import SchemaSnapshot, fingerprint
from domain.sources import Column, Source, SourceName

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9)]


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def report(name: str, samples: list[float]) -> float:
    p50, p90 = percentiles(samples)
    print(f"{name:<44} n={len(samples):<5} p50={p50:8.2f} ms  p90={p90:8.2f} ms", flush=True)
    return p50


def _read_token(server: Server) -> str:
    lines = [line.strip() for line in server.stdout.read_text().splitlines()]
    return [line for line in lines if line.startswith("tdbk_")][-1]


def bench_get(requests: int) -> int:
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(tdb_server(Path(tmp), f"sqlite:///{tmp}/tdb.sqlite3", None, 1)) as server,
    ):
        auth = {"Authorization": f"Bearer {_read_token(server)}"}
        body = {
            "name": "orders",
            "source_type": "postgres",
            "connection": {
                "host": "127.0.0.1",
                "dbname": "x",
                "user": "u",
                "table": "t",
                "password": "secret",
            },
        }
        with httpx.Client(base_url=server.base_url, headers=auth) as http:
            ident = http.post("/v1/sources", json=body).raise_for_status().json()["id"]
            call = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "get_source", "arguments": {"source_id": ident}},
            }

            def get() -> None:
                http.get(f"/v1/sources/{ident}").raise_for_status()

            def mcp() -> None:
                answer = http.post("/mcp", json=call, headers=MCP_HEADERS).raise_for_status()
                assert answer.json()["result"]["isError"] is False

            for _ in range(50):  # warm-up
                get()
                mcp()
            gets, mcps = [], []
            for _ in range(requests):
                gets.append(timed(get))
                mcps.append(timed(mcp))
        logged = _served_ms(server, 0)
        sdk = asyncio.run(_sdk_calls(server.base_url, auth, ident, requests))
        by_sdk = _served_ms(server, sum(len(v) for v in logged.values()))
    get_p50 = report("GET /v1/sources/{id}", gets)
    mcp_p50 = report("MCP tools/call get_source (POST /mcp)", mcps)
    sdk_p50 = report("MCP get_source via the SDK's Client", sdk)
    # The server's own time per request, from its access log (no client in it).
    report("  server: GET /v1/sources/{id}", logged.get("/v1/sources/{source_id}", [])[-requests:])
    report("  server: POST /mcp (tools/call)", logged.get("/mcp", [])[-requests:])
    report("  server: /mcp requests of the SDK's Client", by_sdk.get("/mcp", []))
    ratio, sdk_ratio = mcp_p50 / get_p50, sdk_p50 / get_p50
    print(f"MCP/GET p50 ratio: {ratio:.2f}  (bar: <= 2.00)  SDK/GET: {sdk_ratio:.2f}")
    return 0 if mcp_p50 <= 2 * get_p50 else 1


_LOGGED = re.compile(r"route=(\S+) status=\d+ duration_ms=([\d.]+)")


def _served_ms(server: Server, skip: int) -> dict[str, list[float]]:
    """The durations the server logged per route, after its first `skip` request lines."""
    found: dict[str, list[float]] = {}
    lines = [m for m in map(_LOGGED.search, server.stderr.read_text().splitlines()) if m]
    for match in lines[skip:]:
        found.setdefault(match.group(1), []).append(float(match.group(2)))
    return found


async def _sdk_calls(url: str, auth: dict[str, str], ident: str, requests: int) -> list[float]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    transport = streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(headers=auth))
    samples = []
    async with Client(transport) as client:
        for i in range(requests + 50):
            started = time.perf_counter()
            result = await client.call_tool("get_source", {"source_id": ident})
            assert not result.is_error
            if i >= 50:
                samples.append((time.perf_counter() - started) * 1000)
    return samples


def _columns(i: int, width: int) -> tuple[Column, ...]:
    names = [f"col_{i % 97}_{j}" for j in range(width)]
    if i % 4 == 0:
        names[3] = "customer_id"
    return tuple(Column(n, "integer" if j % 3 else "text", j % 2 == 0) for j, n in enumerate(names))


async def _fill(sources: Any, snapshots: Any, count: int, width: int, at_once: int) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    async def one(i: int) -> None:
        at = t0 + timedelta(seconds=i)
        source = Source(
            uuid4(), SourceName(f"src_{i:05d}"), "csv", {"path": f"s{i}.csv"}, "", (), "bench", at
        )
        await sources.add(source)
        columns = _columns(i, width)
        await snapshots.append(SchemaSnapshot(source.id, 1, fingerprint(columns), columns, at))

    for start in range(0, count, at_once):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + at_once))))


def fill_store(kind: str, url: str, count: int, width: int) -> None:
    started = time.perf_counter()
    repos: tuple[Any, Any]
    if kind == "sqlite":
        from adapters.storage.sqlite import (
            SqliteDatabase,
            SqliteSnapshotRepository,
            SqliteSourceRepository,
        )

        db: Any = SqliteDatabase(url.removeprefix("sqlite:///"))
        db.migrate()
        repos = SqliteSourceRepository(db), SqliteSnapshotRepository(db)
        at_once = 8
    else:
        from adapters.storage.postgres import (
            PostgresDatabase,
            PostgresSnapshotRepository,
            PostgresSourceRepository,
        )

        db = PostgresDatabase(url, max_size=8)
        repos = PostgresSourceRepository(db), PostgresSnapshotRepository(db)
        at_once = 16

    async def run() -> None:
        await db.upgrade()
        try:
            await _fill(repos[0], repos[1], count, width, at_once)
        finally:
            await db.release()

    asyncio.run(run())
    db.close()
    print(
        f"filled {count} sources x {width} columns in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def bench_columns(store: str, count: int, width: int, requests: int, pg_url: str) -> int:
    pg = Postgres(pg_url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            key = None
            if store == "sqlite":
                url = f"sqlite:///{tmp}/tdb.sqlite3"
            else:
                url, key = pg.store_url(), secret_key()
            fill_store(store, url, count, width)
            with serving(tdb_server(Path(tmp), url, key, 1)) as server:
                auth = {"Authorization": f"Bearer {_read_token(server)}"}
                with httpx.Client(base_url=server.base_url, headers=auth) as http:
                    first = http.get("/v1/columns?name=customer_id").raise_for_status().json()
                    assert len(first) == 100, len(first)
                    results = {}
                    # A leading `*` cannot seek the index: the last query reads all of it (every
                    # name, since no `*_id` column is an integer here), so it is sampled less.
                    for query, times in (
                        ("name=customer_id", requests),
                        ("name=customer_id&limit=1000", requests),
                        ("name=CUSTOMER*", requests),
                        ("name=*_id&type=integer", max(5, requests // 20)),
                    ):

                        def get(query: str = query) -> None:
                            http.get(f"/v1/columns?{query}").raise_for_status()

                        for _ in range(3):
                            get()
                        results[query] = report(
                            f"{store}: GET /v1/columns?{query}",
                            [timed(get) for _ in range(times)],
                        )
    finally:
        pg.drop_all()
    p50 = results["name=customer_id"]
    print(f"{store}: GET /v1/columns?name=customer_id p50 {p50:.2f} ms (bar: < 50 ms)")
    return 0 if p50 < 50 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    get = sub.add_parser("get")
    get.add_argument("--requests", type=int, default=500)
    columns = sub.add_parser("columns")
    columns.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    columns.add_argument("--sources", type=int, default=10_000)
    columns.add_argument("--columns", type=int, default=20)
    columns.add_argument("--requests", type=int, default=200)
    columns.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    if args.what == "get":
        return bench_get(args.requests)
    return bench_columns(args.store, args.sources, args.columns, args.requests, args.pg_url)


if __name__ == "__main__":
    sys.exit(main())
