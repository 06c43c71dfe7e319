"""Real `tdb serve` processes on free loopback ports, started and stopped by each test."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from adapters.crypto import generate_key
from tests.helpers import free_port, running, throwaway_database

TOKEN = re.compile(r"^(tdbk_[0-9a-f]+_[A-Za-z0-9_-]+)$", re.MULTILINE)
START_TIMEOUT = 30.0


def tdb_executable() -> str:
    found = shutil.which("tdb", path=str(Path(sys.executable).parent))
    assert found, "the tdb command is not installed in this environment"
    return found


def run_tdb(cwd: Path, env: Mapping[str, str], *args: str) -> str:
    """What `tdb ARGS` prints, run as an operator would beside a server with these settings."""
    return subprocess.run(
        [tdb_executable(), *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


class TdbServer:
    """One `tdb serve` process; its output goes to files in `workdir`."""

    def __init__(self, workdir: Path, env: Mapping[str, str], workers: int = 1) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = workdir / f"serve-{self.port}.out"
        self.stderr_path = workdir / f"serve-{self.port}.err"
        # TMPDIR: what the server makes in the temp dir (its metrics directory) stays in the
        # test's own directory, even when a test kills it before it can clean up.
        self._env = {**os.environ, "TMPDIR": str(workdir), **env}
        self._workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> TdbServer:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    tdb_executable(),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self._workers),
                ],
                cwd=self.workdir,
                env=self._env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tdb serve exited early:\n{self.stderr_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling for readiness, bounded by the deadline above
        self.stop()
        raise RuntimeError(f"tdb serve did not answer within {START_TIMEOUT}s")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def admin_token(self) -> str | None:
        found = TOKEN.findall(self.stdout)
        return found[-1] if found else None

    def worker_pids(self) -> set[int]:
        """The pids of the server's worker processes (its children that multiprocessing spawned)."""
        assert self.process is not None
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        return {child for child in map(int, children.read_text().split()) if is_worker(child)}

    def kill(self) -> None:
        """SIGKILL the whole process group: the server and its workers, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def is_worker(pid: int) -> bool:
    """Whether `pid` is a live (not a zombie) process that multiprocessing spawned."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"spawn_main" in cmdline and running(pid)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """A factory of started servers; every one is stopped when the test ends."""
    servers: list[TdbServer] = []

    def start(
        env: Mapping[str, str] | None = None, workers: int = 1, workdir: Path | None = None
    ) -> TdbServer:
        server = TdbServer(workdir or tmp_path, env or {}, workers)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def postgres_store(postgres_admin_url: str) -> Iterator[dict[str, str]]:
    """The environment of a tdb whose store is a fresh PostgreSQL database, dropped afterwards."""
    with throwaway_database(postgres_admin_url, "tdb_e2e") as url:
        yield {"TDB_DATABASE_URL": url, "TDB_SECRET_KEY": generate_key().decode()}


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}"}
    env: dict[str, str] = request.getfixturevalue("postgres_store")
    return env
