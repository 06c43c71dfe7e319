"""Instructions per GET by id in a real server, counted by valgrind: a figure load cannot move.

The wrk benchmarks measure requests per second, which on a shared two-core machine swing with
whatever else runs. This script serves tdb and the bare app as `bench/stack_bench.py` does
(same serving function, same stack, one worker, a key with `sources:read` only), each under
valgrind's cachegrind without cache simulation, and sends each the same number of GETs over
one keep-alive connection from this process. It runs every server twice, with `--low` and
`--high` requests, and divides the difference in instructions by the difference in requests:
start-up, warm-up and shutdown cancel out. A server that is CPU-bound answers in proportion to
the inverse of this figure, so bare/tdb instructions estimate tdb/bare requests per second.

    apt-get install -y valgrind
    .venv/bin/python bench/instructions.py                 # tdb and bare, fast stack
    .venv/bin/python bench/instructions.py --stacks fast,pure

Each server runs about fifty times slower under valgrind: expect a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import httpx
from bare_app import SOURCE_ID
from http_bench import Filler, Postgres, Server, make_store, start_tdb, tdb_server
from stack_bench import bare_server, read_key

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _under_valgrind(server: Server) -> Server:
    log = server.workdir / f"{server.name}-%p.cachegrind.log"
    server.argv = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        f"--log-file={log}",
        *server.argv,
    ]
    return server


def _stop(server: Server) -> None:
    # Server.stop gives 15 s before SIGKILL; under valgrind the shutdown takes longer, and a
    # killed valgrind writes no count.
    assert server.proc is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    server.proc.wait(timeout=300)


def _instructions(server: Server, path: str, token: str | None, requests: int) -> int:
    """Every instruction the server's processes ran, from start to exit, with `requests` GETs."""
    server = _under_valgrind(server)
    server.start(timeout=600)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=120) as client:
            for _ in range(requests):
                status = client.get(path).status_code
                if status != 200:
                    raise RuntimeError(f"{server.name} answered {status} to GET {path}")
    finally:
        _stop(server)
    logs = list(server.workdir.glob(f"{server.name}-*.cachegrind.log"))
    counts = [_REFS.search(p.read_text()) for p in logs]
    if not counts or not all(counts):
        raise RuntimeError(f"no instruction count in {logs}")
    return sum(int(m.group(1).replace(",", "")) for m in counts if m)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--low", type=int, default=100, help="GETs of the first run (100)")
    p.add_argument("--high", type=int, default=600, help="GETs of the second run (600)")
    p.add_argument("--stacks", default="fast", help="comma-separated: fast, pure (fast)")
    opts = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    stacks = [s.strip() for s in opts.stacks.split(",") if s.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="tdb-instructions-"))
    per_get: dict[str, float] = {}
    try:
        store = make_store("sqlite", tmp, Postgres("postgresql://unused"), 0)
        with contextlib.ExitStack() as stack:
            server, admin = start_tdb(stack, tmp, store, 1, None)
            filler = Filler(server, admin, 1, tmp)
            filler.fill_to(1)
            source_path = f"/v1/sources/{filler.first_id}"
        token = read_key(store, tmp)
        for stack_name in stacks:
            for kind in ("tdb", "bare"):
                counts = []
                for requests in (opts.low, opts.high):
                    if kind == "tdb":
                        server = tdb_server(tmp, store.url, None, 1)
                        server.argv += ["--stack", stack_name]
                        counts.append(_instructions(server, source_path, token, requests))
                    else:
                        server = bare_server(tmp, 1, stack_name)
                        path = f"/v1/sources/{SOURCE_ID}"
                        counts.append(_instructions(server, path, None, requests))
                label = f"{kind} {stack_name}"
                per_get[label] = (counts[1] - counts[0]) / (opts.high - opts.low)
                print(f"{label:10} {per_get[label]:>10,.0f} instructions per GET", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for stack_name in stacks:
        tdb, bare = per_get[f"tdb {stack_name}"], per_get[f"bare {stack_name}"]
        print(f"{stack_name}: bare/tdb instructions {bare / tdb:.1%} (estimates tdb/bare req/s)")
    if {"fast", "pure"} <= set(stacks):
        gain = per_get["tdb pure"] / per_get["tdb fast"]
        print(f"tdb pure/fast instructions {gain:.2f}x (estimates the fast stack's gain)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
