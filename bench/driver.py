"""The wrk driver of the HTTP benchmarks: one run of wrk, its Lua scripts, its figures.

Shared by bench/http_bench.py and the other bench scripts (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bare_app import RECORD


@dataclass
class Run:
    """One wrk run against one server."""

    scenario: str
    target: str  # "tdb" or "bare"
    store: str
    workers: int
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)
    # The server's CPU time (every process of it) per request of the measured run, when known:
    # on a busy machine a steadier figure than the rate.
    cpu_us: float | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


# --- wrk -------------------------------------------------------------------------------------

LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, '
    .. '"mean_us": %.1f, "max_us": %.1f, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

# Names are unique per run, per wrk thread and per request, so every POST can be a 201.
LUA_REGISTER = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local run = "RUN_TOKEN"
local counter = 0
local body = [==[BODY_TEMPLATE]==]

local next_thread = 0
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  math.randomseed(os.time() + (tid or 0))
end

request = function()
  counter = counter + 1
  local name = string.format("bench-%s-%d-%d-%d", run, tid or 0, counter,
                             math.random(1, 1000000000))
  return wrk.format("POST", "/v1/sources", nil, string.format(body, name))
end
"""


# The registered sources' host: an address, so that tdb, which resolves a source's host when it
# registers one, sends no DNS query off the machine.
SOURCE_HOST = "127.0.0.1"


def register_body(name: str, **connection: Any) -> dict[str, Any]:
    """A postgres source as in the API document (a password, so reads decrypt a secret), at a
    loopback host unless `connection` names another."""
    body = {k: RECORD[k] for k in ("source_type", "description", "tags")}
    return {
        "name": name,
        **body,
        "connection": {**RECORD["connection"], "host": SOURCE_HOST, **connection},
    }


def write_lua(tmp: Path) -> dict[str, Path]:
    get = tmp / "get.lua"
    get.write_text(LUA_DONE)
    template = json.dumps(register_body("%s"))  # the name is the only `%s` in it
    register = tmp / "register.lua"
    register.write_text(
        LUA_REGISTER.replace("RUN_TOKEN", secrets.token_hex(4)).replace("BODY_TEMPLATE", template)
        + LUA_DONE
    )
    return {"GET": get, "POST": register}


def add_wrk_options(parser: argparse.ArgumentParser) -> None:
    """The options of every wrk run: how long, after how long a warm-up, how many connections
    and threads."""
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (5)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of warm-up before each (1)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")


def run_wrk(
    url: str,
    script: Path,
    *,
    duration: float,
    connections: int,
    threads: int,
    token: str | None,
) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
    ]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(
        f"wrk gave no summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
