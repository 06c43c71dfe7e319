"""The scenarios of bench/http_bench.py: what each one needs in the store, how the store is
filled through the API, and how one scenario is measured on tdb and on the bare app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from driver import Run, register_body, run_wrk
from servers import Server


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    sources: int = 0  # sources the store must hold (list scenarios: exactly)
    bare_list_size: int | None = None  # the bare app's list length, for list scenarios
    single_connection: bool = False  # unloaded latency: one connection instead of --connections


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("get", "GET /v1/sources/{id}", sources=1),
        Scenario("list-1k", "GET /v1/sources, 1 000 sources", 1_000, 1_000),
        Scenario("list-10k", "GET /v1/sources, 10 000 sources", 10_000, 10_000),
        Scenario(
            "list-10k-1c", "GET /v1/sources, 10 000 sources, one connection", 10_000, 10_000, True
        ),
        Scenario("register", "POST /v1/sources (unique names)"),
        Scenario("schema", "GET /v1/sources/{id}/schema (live PostgreSQL table)", sources=1),
    )
}
MATRIX_SCENARIOS = ("get", "register")


# --- filling the store through the API --------------------------------------------------------


def register_many(
    base_url: str, token: str, bodies: list[dict[str, Any]], concurrency: int
) -> list[str]:
    """POST every body (concurrently); the new ids, in order. Any non-201 aborts the benchmark."""

    async def main() -> list[str]:
        ids: list[str] = [""] * len(bodies)
        todo = iter(range(len(bodies)))
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=60
        ) as client:

            async def worker() -> None:
                for i in todo:
                    response = await client.post("/v1/sources", json=bodies[i])
                    if response.status_code != 201:
                        raise RuntimeError(f"register gave {response.status_code}: {response.text}")
                    ids[i] = response.json()["id"]

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ids

    return asyncio.run(main())


LUA_FILL = r"""
wrk.headers["Content-Type"] = "application/json"
local body = [==[BODY_TEMPLATE]==]
local total, first = TOTAL, FIRST
sent, created, failed = 0, 0, 0

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- Exactly `total` POSTs; after them only health checks, until the bench stops wrk.
-- wrk calls request() once before sending anything, to check it (one thread: ours).
local checked = false
request = function()
  if not checked then
    checked = true
    return wrk.format("GET", "/healthz", nil, nil)
  end
  if sent < total then
    sent = sent + 1
    if sent == total then
      io.write("FILL_SENT\n")
      io.flush()
    end
    local name = string.format("fill-RUN_TOKEN-%06d", first + sent)
    return wrk.format("POST", "/v1/sources", nil, string.format(body, name))
  end
  return wrk.format("GET", "/healthz", nil, nil)
end

response = function(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status ~= 200 then
    failed = failed + 1
  end
  if created + failed == total then
    io.write("FILL_DONE\n")
    io.flush()
  end
end

done = function(summary, latency, requests)
  local c, f = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    f = f + t:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_FILL {"created": %d, "failed": %d, "socket_errors": %d}\n',
    c, f, e.connect + e.read + e.write + e.timeout))
end
"""


def fill_with_wrk(
    base_url: str, token: str, *, first: int, total: int, run: str, connections: int, tmp: Path
) -> dict[str, int]:
    """POST `total` new sources with wrk (a Python client would be the bottleneck).

    wrk stops once every POST has an answer, or a few seconds after the last one was sent (a
    request lost to a socket error never answers); the caller counts what the store holds.
    """
    script = tmp / "fill.lua"
    template = json.dumps(register_body("%s"))
    script.write_text(
        LUA_FILL.replace("BODY_TEMPLATE", template)
        .replace("TOTAL", str(total))
        .replace("FIRST", str(first))
        .replace("RUN_TOKEN", run)
    )
    argv = [
        "wrk",
        "-t1",
        f"-c{min(connections, total)}",
        "-d120s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        "-H",
        f"Authorization: Bearer {token}",
        f"{base_url}/v1/sources",
    ]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdout is not None
        summary = None
        timer = None
        for line in proc.stdout:
            if line.startswith("FILL_DONE"):
                proc.send_signal(signal.SIGINT)  # wrk then reports at once
            elif line.startswith("FILL_SENT"):
                timer = threading.Timer(5.0, proc.send_signal, (signal.SIGINT,))
                timer.start()
            elif line.startswith("BENCH_FILL "):
                summary = json.loads(line.removeprefix("BENCH_FILL "))
        if timer is not None:
            timer.cancel()
        proc.wait(timeout=30)
    if summary is None:
        raise RuntimeError("filling the store: wrk gave no summary")
    return summary


def count_sources(base_url: str, token: str) -> int:
    response = httpx.get(
        f"{base_url}/v1/sources", timeout=120, headers={"Authorization": f"Bearer {token}"}
    )
    response.raise_for_status()
    return len(response.json())


class Filler:
    """Keeps count of the sources a tdb server holds and tops it up to what a scenario needs."""

    def __init__(self, server: Server, token: str, concurrency: int, tmp: Path) -> None:
        self.server, self.token, self.concurrency, self.tmp = server, token, concurrency, tmp
        self.count = 0
        self.first_id: str | None = None
        self.run = secrets.token_hex(3)

    def add(self, bodies: list[dict[str, Any]]) -> list[str]:
        ids = register_many(self.server.base_url, self.token, bodies, self.concurrency)
        self.count += len(ids)
        self.first_id = self.first_id or ids[0]
        return ids

    def fill_to(self, n: int) -> None:
        missing = n - self.count
        if missing <= 0:
            return
        if missing < 100:
            self.add(
                [register_body(f"fill-{self.run}-{self.count + i:06d}") for i in range(missing)]
            )
            return
        started = time.monotonic()
        summary = fill_with_wrk(
            self.server.base_url,
            self.token,
            first=self.count,
            total=missing,
            run=self.run,
            connections=self.concurrency,
            tmp=self.tmp,
        )
        self.server.settle()
        if summary["failed"]:
            raise RuntimeError(f"filling the store: {summary}")
        self.count = count_sources(self.server.base_url, self.token)
        if self.count < n:  # requests lost to socket errors: the last few one by one
            lost, tag = n - self.count, secrets.token_hex(3)
            print(f"  {lost} registrations lost ({summary}): registering them again")
            self.add([register_body(f"fill-{self.run}-{tag}-{i:06d}") for i in range(lost)])
        took = time.monotonic() - started
        print(f"  registered {missing} sources in {took:.1f} s ({missing / took:.0f}/s)")


# --- measuring -------------------------------------------------------------------------------


def measure(
    scenario: Scenario,
    target: str,
    base_url: str,
    path: str,
    method: str,
    *,
    scripts: dict[str, Path],
    opts: argparse.Namespace,
    token: str | None,
    store: str,
    workers: int,
    settle: Server,
) -> Run:
    connections = 1 if scenario.single_connection else opts.connections
    threads = min(opts.threads, connections)
    url = base_url + path
    probe(url, method, token)
    cpu: tuple[float | None, float | None] = (None, None)
    for seconds in (opts.warmup, opts.duration):
        if seconds > 0:
            cpu = (settle.cpu_seconds(), None)
            out = run_wrk(
                url,
                scripts[method],
                duration=seconds,
                connections=connections,
                threads=threads,
                token=token,
            )
            cpu = (cpu[0], settle.cpu_seconds())
            settle.settle()
    seconds = out["duration_us"] / 1e6
    before, after = cpu
    errors = {k: int(out[k]) for k in ("connect", "read", "write", "status", "timeout") if out[k]}
    return Run(
        scenario=scenario.name,
        target=target,
        store=store,
        workers=workers,
        connections=connections,
        duration_s=round(seconds, 2),
        requests=int(out["requests"]),
        rps=out["requests"] / seconds if seconds else 0.0,
        p50_ms=out["p50_us"] / 1000,
        p99_ms=out["p99_us"] / 1000,
        mean_ms=out["mean_us"] / 1000,
        max_ms=out["max_us"] / 1000,
        errors=errors,
        cpu_us=(after - before) * 1e6 / out["requests"]
        if before is not None and after is not None and out["requests"]
        else None,
    )


def probe(url: str, method: str, token: str | None) -> None:
    """One request first: a benchmark of error responses measures nothing."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST":
        body = register_body(f"probe-{secrets.token_hex(6)}")
        response = httpx.post(url, json=body, headers=headers, timeout=30)
    else:
        response = httpx.get(url, headers=headers, timeout=30)
    if not response.is_success:
        raise RuntimeError(f"{method} {url} gave {response.status_code}: {response.text[:500]}")


def tdb_path(scenario: Scenario, filler: Filler, schema_id: str | None) -> tuple[str, str]:
    if scenario.name == "get":
        return "GET", f"/v1/sources/{filler.first_id}"
    if scenario.name == "schema":
        return "GET", f"/v1/sources/{schema_id}/schema"
    if scenario.name == "register":
        return "POST", "/v1/sources"
    return "GET", "/v1/sources"


def bare_path(scenario: Scenario) -> tuple[str, str]:
    from bare_app import SOURCE_ID  # bench/ is on sys.path when this script runs

    if scenario.name == "get":
        return "GET", f"/v1/sources/{SOURCE_ID}"
    if scenario.name == "schema":
        return "GET", f"/v1/sources/{SOURCE_ID}/schema"
    if scenario.name == "register":
        return "POST", "/v1/sources"
    return "GET", "/v1/sources"
