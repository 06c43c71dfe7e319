"""HTTP benchmark: a real `tdb serve` against a bare Litestar app (the framework ceiling).

Both run under uvicorn with the same worker count; `wrk` drives each scenario for a fixed time
and the tdb/bare ratio of requests per second is what to watch. Run with the project's venv:

    .venv/bin/python bench/http_bench.py --duration 3
    .venv/bin/python bench/http_bench.py --store postgres --workers 2 --scenarios get,register
    .venv/bin/python bench/http_bench.py --matrix          # {sqlite, postgres} x {1, 2 workers}

See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from bare_app import RECORD
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN_LINE = re.compile(r"^(tdbk_\S+)\s*$")

# The targets this benchmark reports against.
LIST_10K_P50_TARGET_MS = 150.0
GET_RATIO_TARGET = 0.60


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


def register_body(name: str, **connection: Any) -> dict[str, Any]:
    """A postgres source as in the API document (a password, so reads decrypt a secret)."""
    body = {k: RECORD[k] for k in ("source_type", "description", "tags")}
    return {"name": name, **body, "connection": {**RECORD["connection"], **connection}}


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


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess in its own process group; output goes to files in `workdir`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int):
        self.name, self.argv, self.env, self.workdir, self.port = name, argv, env, workdir, port
        self.base_url = f"http://127.0.0.1:{port}"
        self.stdout = workdir / f"{name}.stdout"
        self.stderr = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not answer /healthz in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float | None:
        """CPU time of every process in the server's group (Linux /proc), else None."""
        assert self.proc is not None
        ticks, found = 0, False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[2]) == self.proc.pid:  # pgrp: the server's own session
                    ticks += int(fields[11]) + int(fields[12])  # utime + stime
                    found = True
        return ticks / os.sysconf("SC_CLK_TCK") if found else None

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until the backlog a wrk run leaves behind is served (the server idles).

        wrk stops sending at the deadline, but requests already accepted (running on the
        server's threads) still run and would slow the next measurement down.
        """
        deadline = time.monotonic() + timeout
        before = self.cpu_seconds()
        if before is None:  # no /proc: a quick health answer is the best sign we have
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.base_url}/healthz", timeout=timeout)
            time.sleep(1.0)
            return
        while time.monotonic() < deadline:
            time.sleep(0.25)
            after = self.cpu_seconds() or 0.0
            if after - before < 0.25 * 0.05:  # under 5 % of a core
                break
            before = after

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.stdout, self.stderr):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def admin_token(self) -> str | None:
        tokens = [
            m.group(1)
            for line in self.stdout.read_text(errors="replace").splitlines()
            if (m := TOKEN_LINE.match(line))
        ]
        return tokens[-1] if tokens else None


@contextlib.contextmanager
def serving(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


def venv_bin() -> Path:
    here = Path(sys.executable).parent
    return here if (here / "tdb").exists() else REPO / ".venv" / "bin"


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # the token line must reach the file before uvicorn starts
    return env


def tdb_server(workdir: Path, database_url: str, secret_key: str | None, workers: int) -> Server:
    env = base_env()
    env["TDB_DATABASE_URL"] = database_url
    if secret_key:
        env["TDB_SECRET_KEY"] = secret_key
    else:
        env.pop("TDB_SECRET_KEY", None)
    port = free_port()
    argv = [
        str(venv_bin() / "tdb"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server(f"tdb-{port}", argv, env, workdir, port)


def bare_server(workdir: Path, workers: int, list_size: int) -> Server:
    env = base_env()
    env["BARE_LIST_SIZE"] = str(list_size)
    port = free_port()
    # Served by the very function `tdb serve` uses: same workers, sockets and uvicorn options.
    env["PYTHONPATH"] = str(BENCH)
    launch = (
        "import sys; from entrypoints.http.serving import serve; "
        "serve('bare_app:app', '127.0.0.1', int(sys.argv[1]), int(sys.argv[2]))"
    )
    argv = [str(venv_bin() / "python"), "-c", launch, str(port), str(workers)]
    return Server(f"bare-{port}", argv, env, workdir, port)


# --- PostgreSQL throwaway databases ----------------------------------------------------------


class Postgres:
    """Creates throwaway databases on the server of `admin_url` and drops them all at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def url_for(self, dbname: str) -> str:
        params = conninfo_to_dict(self.admin_url)
        params["dbname"] = dbname
        return make_conninfo(**params)

    def create(self, suffix: str = "") -> str:
        name = f"tdb_bench_{secrets.token_hex(4)}{suffix}"
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return name

    def store_url(self) -> str:
        """A fresh database for a tdb store, as a postgresql:// URL."""
        params = conninfo_to_dict(self.admin_url)
        dbname = self.create("_store")
        auth = params.get("user", "postgres")
        if params.get("password"):
            auth += f":{params['password']}"
        return (
            f"postgresql://{auth}@{params.get('host', '127.0.0.1')}:"
            f"{params.get('port', 5432)}/{dbname}"
        )

    def orders_table(self) -> dict[str, Any]:
        """A database with a `bench_orders` table; the connection fields a source needs for it."""
        dbname = self.create()
        with psycopg.connect(self.url_for(dbname), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE public.bench_orders (id serial PRIMARY KEY,"
                " customer_id integer NOT NULL, total numeric(12, 2), status varchar(20),"
                " created_at timestamp without time zone DEFAULT now())"
            )
        params = conninfo_to_dict(self.admin_url)
        connection: dict[str, Any] = {
            "host": params.get("host", "127.0.0.1"),
            "port": int(params.get("port", 5432)),
            "dbname": dbname,
            "user": params.get("user", "postgres"),
            "table": "bench_orders",
            "schema": "public",
        }
        if params.get("password"):
            connection["password"] = params["password"]
        return connection

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            for name in reversed(self.created):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self.created.clear()


def secret_key() -> str:
    from adapters.crypto import generate_key

    return generate_key().decode()


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
    for seconds in (opts.warmup, opts.duration):
        if seconds > 0:
            out = run_wrk(
                url,
                scripts[method],
                duration=seconds,
                connections=connections,
                threads=threads,
                token=token,
            )
            settle.settle()
    seconds = out["duration_us"] / 1e6
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


def fmt_errors(run: Run) -> str:
    return ",".join(f"{k}={v}" for k, v in run.errors.items()) or "0"


def print_pair(scenario: Scenario, tdb: Run, bare: Run) -> None:
    print(
        f"\n== {scenario.name}: {scenario.title}  [{tdb.connections} conn, "
        f"{tdb.workers} worker(s), store {tdb.store}]"
    )
    print(f"   {'':6} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}  errors")
    for run in (tdb, bare):
        print(
            f"   {run.target:6} {run.rps:10.1f} {run.p50_ms:9.2f} {run.p99_ms:9.2f}  "
            f"{fmt_errors(run)}"
        )
    print(f"   tdb/bare req/s: {ratio(tdb, bare):.1%}")
    for run in (tdb, bare):
        if too_few(run):
            print(
                f"   note: {run.target} completed {run.requests} requests on {run.connections} "
                "connections: its figures are not reliable, run longer (--duration)"
            )


def too_few(run: Run) -> bool:
    return run.requests < 2 * run.connections


def ratio(tdb: Run, bare: Run) -> float:
    return tdb.rps / bare.rps if bare.rps else 0.0


def print_summary(pairs: list[tuple[Run, Run]], matrix: bool) -> None:
    head = f"{'scenario':12} "
    if matrix:
        head += f"{'store':8} {'wrk':>3} "
    head += (
        f"{'tdb req/s':>10} {'p50 ms':>8} {'p99 ms':>8} | {'bare req/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} | {'tdb/bare':>8}"
    )
    print("\n" + head)
    print("-" * len(head))
    for tdb, bare in pairs:
        row = f"{tdb.scenario:12} "
        if matrix:
            row += f"{tdb.store:8} {tdb.workers:>3} "
        row += (
            f"{tdb.rps:10.1f} {tdb.p50_ms:8.2f} {tdb.p99_ms:8.2f} | {bare.rps:10.1f} "
            f"{bare.p50_ms:8.2f} {bare.p99_ms:8.2f} | {ratio(tdb, bare):8.1%}"
        )
        if too_few(tdb) or too_few(bare):
            row += "  (too few requests: see the note above)"
        if tdb.error_count or bare.error_count:
            row += f"  errors tdb {fmt_errors(tdb)} bare {fmt_errors(bare)}"
        print(row)


def check_targets(pairs: list[tuple[Run, Run]]) -> dict[str, Any]:
    by_name = {tdb.scenario: (tdb, bare) for tdb, bare in pairs}
    verdicts: dict[str, Any] = {}
    print()
    for name in ("list-10k-1c", "list-10k"):
        if name in by_name:
            tdb, _ = by_name[name]
            ok = tdb.p50_ms < LIST_10K_P50_TARGET_MS
            verdicts["list_10k_p50_ms"] = {
                "scenario": name,
                "value": tdb.p50_ms,
                "target": f"< {LIST_10K_P50_TARGET_MS}",
                "ok": ok,
            }
            print(
                f"target list-10k p50 < {LIST_10K_P50_TARGET_MS:.0f} ms ({name}, "
                f"{tdb.connections} conn): {tdb.p50_ms:.1f} ms  {'PASS' if ok else 'FAIL'}"
            )
            if name == "list-10k-1c" and "list-10k" in by_name:
                loaded = by_name["list-10k"][0]
                print(f"  (under load, {loaded.connections} conn: p50 {loaded.p50_ms:.1f} ms)")
            break
    if "get" in by_name:
        tdb, bare = by_name["get"]
        value = ratio(tdb, bare)
        ok = value >= GET_RATIO_TARGET
        verdicts["get_ratio"] = {"value": value, "target": f">= {GET_RATIO_TARGET}", "ok": ok}
        print(
            f"target GET by id >= {GET_RATIO_TARGET:.0%} of bare: {value:.1%}  "
            f"{'PASS' if ok else 'FAIL'}"
        )
    return verdicts


# --- the two modes ---------------------------------------------------------------------------


@dataclass
class Store:
    kind: str  # sqlite or postgres
    url: str
    secret_key: str | None = None


def make_store(kind: str, tmp: Path, pg: Postgres, n: int) -> Store:
    if kind == "sqlite":
        return Store("sqlite", f"sqlite:///{tmp / f'tdb-{n}.sqlite3'}")
    return Store("postgres", pg.store_url(), secret_key())


def start_tdb(
    stack: contextlib.ExitStack, tmp: Path, store: Store, workers: int, token: str | None
) -> tuple[Server, str]:
    server = stack.enter_context(serving(tdb_server(tmp, store.url, store.secret_key, workers)))
    token = token or server.admin_token()
    if not token:
        raise RuntimeError("tdb printed no admin token (the store already had a key): pass --token")
    return server, token


def run_scenarios(
    opts: argparse.Namespace, tmp: Path, pg: Postgres, scripts: dict[str, Path]
) -> list[tuple[Run, Run]]:
    names = [n for n in SCENARIOS if n in opts.scenarios]  # the canonical order: lists first
    if opts.database_url:
        store = Store(
            "postgres" if opts.database_url.startswith("postgres") else "sqlite",
            opts.database_url,
            os.environ.get("TDB_SECRET_KEY") or None,
        )
        if store.kind == "postgres" and not store.secret_key:
            store.secret_key = secret_key()
    else:
        store = make_store(opts.store, tmp, pg, 0)
    print(f"tdb store: {store.kind} ({store.url}), workers {opts.workers}")
    pairs = []
    with contextlib.ExitStack() as stack:
        tdb, token = start_tdb(stack, tmp, store, opts.workers, opts.token)
        filler = Filler(tdb, token, opts.connections, tmp)
        schema_id = None
        filler.fill_to(1)  # GET by id reads this one: a postgres source with a password
        if "schema" in names:
            connection = pg.orders_table()
            body = register_body(f"bench-orders-{filler.run}", **connection)
            if "password" not in connection:
                del body["connection"]["password"]
            schema_id = filler.add([body])[0]
        bare: Server | None = None
        bare_size = 0
        for name in names:
            scenario = SCENARIOS[name]
            filler.fill_to(scenario.sources)
            if scenario.bare_list_size and filler.count != scenario.sources:
                print(f"  note: the store holds {filler.count} sources, not {scenario.sources}")
            size = scenario.bare_list_size or bare_size or 1_000
            if bare is None or size != bare_size:
                if bare is not None:
                    bare.stop()
                bare = stack.enter_context(serving(bare_server(tmp, opts.workers, size)))
                bare_size = size
            method, path = tdb_path(scenario, filler, schema_id)
            tdb_run = measure(
                scenario,
                "tdb",
                tdb.base_url,
                path,
                method,
                token=token,
                scripts=scripts,
                opts=opts,
                store=store.kind,
                workers=opts.workers,
                settle=tdb,
            )
            method, path = bare_path(scenario)
            bare_run = measure(
                scenario,
                "bare",
                bare.base_url,
                path,
                method,
                token=None,
                scripts=scripts,
                opts=opts,
                store=store.kind,
                workers=opts.workers,
                settle=bare,
            )
            print_pair(scenario, tdb_run, bare_run)
            if scenario.name == "register":
                filler.count += tdb_run.requests  # roughly: the warm-up added more
            pairs.append((tdb_run, bare_run))
    return pairs


def run_matrix(
    opts: argparse.Namespace, tmp: Path, pg: Postgres, scripts: dict[str, Path]
) -> list[tuple[Run, Run]]:
    names = [n for n in MATRIX_SCENARIOS if n in opts.scenarios] or list(MATRIX_SCENARIOS)
    pairs = []
    n = 0
    for workers in (1, 2):
        bare_runs: dict[str, Run] = {}
        with serving(bare_server(tmp, workers, 1_000)) as bare:
            for name in names:
                method, path = bare_path(SCENARIOS[name])
                bare_runs[name] = measure(
                    SCENARIOS[name],
                    "bare",
                    bare.base_url,
                    path,
                    method,
                    token=None,
                    scripts=scripts,
                    opts=opts,
                    store="-",
                    workers=workers,
                    settle=bare,
                )
        for kind in ("sqlite", "postgres"):
            n += 1
            store = make_store(kind, tmp, pg, n)
            print(f"tdb: store {kind}, {workers} worker(s)")
            with contextlib.ExitStack() as stack:
                tdb, token = start_tdb(stack, tmp, store, workers, None)
                filler = Filler(tdb, token, opts.connections, tmp)
                filler.fill_to(1)
                for name in names:
                    scenario = SCENARIOS[name]
                    method, path = tdb_path(scenario, filler, None)
                    tdb_run = measure(
                        scenario,
                        "tdb",
                        tdb.base_url,
                        path,
                        method,
                        token=token,
                        scripts=scripts,
                        opts=opts,
                        store=kind,
                        workers=workers,
                        settle=tdb,
                    )
                    print_pair(scenario, tdb_run, bare_runs[name])
                    pairs.append((tdb_run, bare_runs[name]))
    order = {name: i for i, name in enumerate(names)}
    pairs.sort(key=lambda p: (order[p[0].scenario], p[0].store, p[0].workers))
    return pairs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up before each (1)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers, tdb and bare alike (1)")
    p.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="tdb's store: a temp SQLite file, or a throwaway database on --pg-url",
    )
    p.add_argument(
        "--database-url",
        help="tdb's store as given (postgresql://... gets a generated TDB_SECRET_KEY "
        "unless one is set); overrides --store. It fills up with bench sources.",
    )
    p.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help=f"PostgreSQL server for throwaway databases ({DEFAULT_PG_URL})",
    )
    p.add_argument("--token", help="an admin token, when the store given already has keys")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)}",
    )
    p.add_argument(
        "--matrix",
        action="store_true",
        help="register and GET by id for {sqlite, postgres} x {1, 2 workers}",
    )
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    opts = p.parse_args(argv)
    opts.scenarios = [s.strip() for s in opts.scenarios.split(",") if s.strip()]
    unknown = sorted(set(opts.scenarios) - set(SCENARIOS))
    if unknown:
        p.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "error: wrk is not installed. Install it (Debian/Ubuntu: `apt-get install -y wrk`, "
            "macOS: `brew install wrk`) and run again.",
            file=sys.stderr,
        )
        return 2
    if not (venv_bin() / "tdb").exists():
        print(
            f"error: no tdb executable in {venv_bin()}: run `pip install -e .` in the venv",
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, str(BENCH))
    load = os.getloadavg()
    print(
        f"tdb HTTP bench: {opts.duration:g} s per run (+{opts.warmup:g} s warm-up), "
        f"{opts.connections} connections, {opts.threads} wrk thread(s); "
        f"{os.cpu_count()} CPUs, load {load[0]:.2f}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="tdb-bench-"))
    pg = Postgres(opts.pg_url)
    started = time.monotonic()
    try:
        scripts = write_lua(tmp)
        if opts.matrix:
            pairs = run_matrix(opts, tmp, pg, scripts)
        else:
            pairs = run_scenarios(opts, tmp, pg, scripts)
    finally:
        if pg.created:
            pg.drop_all()
        if opts.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_summary(pairs, opts.matrix)
    verdicts = {} if opts.matrix else check_targets(pairs)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {
                    "config": {
                        k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()
                    },
                    "results": [asdict(r) for pair in pairs for r in pair],
                    "ratios": [
                        {
                            "scenario": t.scenario,
                            "store": t.store,
                            "workers": t.workers,
                            "tdb_over_bare_rps": ratio(t, b),
                        }
                        for t, b in pairs
                    ],
                    "targets": verdicts,
                },
                indent=2,
            )
        )
        print(f"wrote {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
