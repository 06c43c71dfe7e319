"""What the key benchmarks share: a real `tdb serve` on a temp SQLite store, keys made with the
CLI, and many concurrent clients looping over requests (httpx, one event loop)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.conftest import TdbServer

_TOKEN = re.compile(r"^(tdbk_[0-9a-f]+_[A-Za-z0-9_-]+)$", re.MULTILINE)


def tdb(workdir: Path, env: Mapping[str, str], *args: str) -> str:
    found = shutil.which("tdb", path=str(Path(sys.executable).parent))
    assert found, "run with the project's venv python"
    return subprocess.run(
        [found, *args],
        env={**os.environ, **env},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def make_keys(workdir: Path, env: Mapping[str, str], count: int) -> list[str]:
    """Tokens of `count` new keys with `sources:read`."""
    return [
        _TOKEN.findall(tdb(workdir, env, "keys", "create", "--name", f"bench-{n}", "--scope",
                           "sources:read"))[-1]
        for n in range(count)
    ]  # fmt: skip


@contextmanager
def served(workdir: Path, env: Mapping[str, str]) -> Iterator[TdbServer]:
    server = TdbServer(workdir, {"TDB_ACCESS_LOG": "off", **env}).start()
    try:
        yield server
    finally:
        server.stop()


def metric(server: TdbServer, name: str) -> float:
    """The sum of a counter's samples in the server's /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def load(
    url: str, tokens: Callable[[int], str], clients: int, seconds: float
) -> tuple[int, list[float], int]:
    """`clients` loops of `GET url` for `seconds`, client i using `tokens(i)`: how many requests,
    the latency of each in seconds, and how many answered other than 200."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        deadline = time.monotonic() + seconds

        async def loop(i: int) -> None:
            nonlocal failures
            headers = {"Authorization": f"Bearer {tokens(i)}"}
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.get(url, headers=headers)
                latencies.append(time.perf_counter() - started)
                failures += response.status_code != 200

        await asyncio.gather(*(loop(i) for i in range(clients)))
    return len(latencies), latencies, failures


def p50_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000 if latencies else float("nan")
