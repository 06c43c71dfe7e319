"""The servers the HTTP benchmarks measure: `tdb serve` and the bare app as subprocesses, and
throwaway PostgreSQL databases (through tests/helpers.py, as the tests make theirs).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
TOKEN_LINE = re.compile(r"^(tdbk_\S+)\s*$")

# tests/helpers.py: the free ports and throwaway databases the tests use.
sys.path.insert(0, str(REPO))
from tests.helpers import free_port, throwaway_database  # noqa: E402

# --- servers ---------------------------------------------------------------------------------


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
        self._databases = contextlib.ExitStack()

    def url_for(self, dbname: str) -> str:
        params = conninfo_to_dict(self.admin_url)
        params["dbname"] = dbname
        return make_conninfo(**params)

    def create(self, suffix: str = "") -> str:
        url = self._databases.enter_context(
            throwaway_database(self.admin_url, f"tdb_bench{suffix}")
        )
        name = urlsplit(url).path.lstrip("/")
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
        self._databases.close()
        self.created.clear()


def secret_key() -> str:
    from adapters.crypto import generate_key

    return generate_key().decode()
