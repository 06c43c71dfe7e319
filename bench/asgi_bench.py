"""In-process ASGI timing: tdb's app and the bare app, called directly, no server and no network.

The HTTP benchmark's ratios swing by ±10 % on a shared machine, because the server, the client
and the machine's other work share two cores. Calling each app's ASGI interface in a loop on one
thread takes all of that away and leaves the cost of the application itself: a steadier figure
for "how much does tdb add per request". Run: `.venv/bin/python bench/asgi_bench.py 2>/dev/null`
(each request writes its log line on stderr, as a server does; `TDB_ACCESS_LOG=off` and
`TDB_METRICS=off` take the request log and the metrics away).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bare_app

from application.sources import RegisterSourceCommand
from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.logs import configure_logging
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from tests.helpers import get_scope

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _time(app: App, path: str, headers: dict[str, str], n: int) -> float:
    """Microseconds per request, the median of five rounds of n."""
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    rounds = []
    for _ in range(6):
        start = time.perf_counter()
        for _ in range(n):
            await app(get_scope(path, headers), _receive, send)
        rounds.append((time.perf_counter() - start) / n * 1e6)
    assert set(statuses) == {200}, f"{path} answered {set(statuses)}"
    return statistics.median(rounds[1:])  # the first round warms up


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(database_url=f"sqlite:///{Path(tmp) / 'b.sqlite3'}")
        configure_logging(settings.log_format)
        container = build_container(settings)
        await container.upgrade_store()()
        source = await container.register_source()(
            RegisterSourceCommand(
                actor=OPERATOR,
                name="orders",
                source_type="postgres",
                connection={
                    "host": "127.0.0.1",
                    "dbname": "d",
                    "user": "u",
                    "password": "p",
                    "table": "t",
                },
                description="Order records",
                tags=("production", "finance"),
            )
        )
        token = (await container.create_api_key()("bench", (), OPERATOR)).token
        tdb = create_app(container)
        auth = {"authorization": f"Bearer {token}"}
        path = f"/v1/sources/{source.id}"
        tdb_us = await _time(tdb, path, auth, n)
        bare_us = await _time(bare_app.app, f"/v1/sources/{bare_app.SOURCE_ID}", {}, n)
        container.shutdown_resources()
    print(f"GET by id, in process: tdb {tdb_us:.1f} us, bare {bare_us:.1f} us per request")
    print(f"tdb adds {tdb_us - bare_us:.1f} us to the framework's {bare_us:.1f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="requests per round (5000)")
    asyncio.run(main(parser.parse_args().n))
