"""Several processes, one registry: races, crashes and store outages against real `tdb serve`s."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from adapters.crypto import generate_key
from domain.sources import MASK
from tests.builders import auth_headers
from tests.e2e.conftest import TdbServer, is_worker, run_tdb, tdb_executable
from tests.e2e.pg_cluster import ThrowawayCluster

SOURCE = {
    "source_type": "postgres",
    "connection": {"host": "db", "dbname": "d", "user": "u", "password": "pw", "table": "t"},
}


def test_concurrent_registrations_of_one_name_give_exactly_one_201(
    serve: Any, store_env: dict[str, str]
) -> None:
    server: TdbServer = serve(store_env, workers=2)
    headers = auth_headers(server)
    body = {**SOURCE, "name": "contested"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:

        def attempt(_: int) -> int:
            return http.post("/v1/sources", json=body).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(attempt, range(32)))
        assert statuses.count(201) == 1, statuses
        assert statuses.count(409) == 31, statuses
        assert [s["name"] for s in http.get("/v1/sources").json()] == ["contested"]


def test_a_source_registered_on_one_worker_is_visible_on_every_worker(
    serve: Any, store_env: dict[str, str]
) -> None:
    server: TdbServer = serve(store_env, workers=2)
    headers = auth_headers(server)
    # New connections are spread over the workers by the kernel: many of them reach both.
    created = httpx.post(
        f"{server.url}/v1/sources", json={**SOURCE, "name": "seen"}, headers=headers
    )
    assert created.status_code == 201
    for _ in range(20):
        with httpx.Client(headers=headers, timeout=10) as fresh:
            response = fresh.get(f"{server.url}/v1/sources/{created.json()['id']}")
            assert response.status_code == 200


def test_nothing_acknowledged_is_lost_when_the_server_is_killed(
    serve: Any, store_env: dict[str, str], tmp_path: Path
) -> None:
    server: TdbServer = serve(store_env, workers=2)
    headers = auth_headers(server)
    acknowledged: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def stream(writer: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            for i in range(2000):
                if stop.is_set():
                    return
                name = f"w{writer}-{i:04}"
                try:
                    response = http.post("/v1/sources", json={**SOURCE, "name": name})
                except httpx.TransportError:
                    return
                if response.status_code == 201:
                    with lock:
                        acknowledged.append(name)
                        if len(acknowledged) >= 60:
                            enough.set()

    writers = [threading.Thread(target=stream, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    assert enough.wait(timeout=60), "registrations did not get going"
    server.kill()
    stop.set()
    for writer in writers:
        writer.join(timeout=30)

    restarted: TdbServer = serve(store_env)
    names = [s["name"] for s in httpx.get(f"{restarted.url}/v1/sources", headers=headers).json()]
    assert len(names) == len(set(names))
    assert set(acknowledged) <= set(names)


@pytest.fixture
def cluster(postgres_admin_url: str) -> Iterator[ThrowawayCluster]:
    """A PostgreSQL cluster of this test's own (fails under CI, like postgres_admin_url)."""
    cluster = ThrowawayCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def test_a_store_outage_is_503_and_tdb_recovers_by_itself(
    serve: Any, cluster: ThrowawayCluster
) -> None:
    env = {
        "TDB_DATABASE_URL": cluster.url,
        "TDB_SECRET_KEY": generate_key().decode(),
        "TDB_STORE_TIMEOUT": "2",
    }
    server: TdbServer = serve(env, workers=2)
    headers = auth_headers(server)
    with httpx.Client(base_url=server.url, headers=headers, timeout=15) as http:
        before = [
            http.post("/v1/sources", json={**SOURCE, "name": f"s{i}"}).json()["id"]
            for i in range(3)
        ]

        cluster.stop()
        for request in (
            lambda: http.get("/v1/sources"),
            lambda: http.get(f"/v1/sources/{before[0]}"),
            lambda: http.post("/v1/sources", json={**SOURCE, "name": "during"}),
            lambda: http.get("/readyz"),
        ):
            response = request()
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["reason"] == "store_unavailable"
        assert http.get("/healthz").status_code == 200

        cluster.start()
        for _ in range(300):  # bounded: the pool reconnects within seconds
            if http.get("/readyz").status_code == 200:
                break
            time.sleep(0.1)
        assert http.get("/readyz").status_code == 200
        assert [s["id"] for s in http.get("/v1/sources").json()] == before
        assert http.post("/v1/sources", json={**SOURCE, "name": "after"}).status_code == 201
    # The outage and the recovery are events in the log, not a line per failed request.
    log = server.stderr_path.read_text()
    assert 1 <= log.count("store_unavailable ") < 4, log
    assert "store_recovered " in log


def test_reads_on_the_event_loop_are_503_in_an_outage_and_survive_killed_backends(
    serve: Any, cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    env = {
        "TDB_DATABASE_URL": cluster.url,
        "TDB_SECRET_KEY": generate_key().decode(),
        "TDB_STORE_TIMEOUT": "2",
        # The reader's token stays trusted through the outage: its GETs reach the store's lookup.
        "TDB_AUTH_CACHE_TTL": "600",
    }
    server: TdbServer = serve(env)
    reader_token = run_tdb(
        tmp_path, env, "keys", "create", "--name", "r", "--scope", "sources:read"
    ).splitlines()[-1]
    reader = {"Authorization": f"Bearer {reader_token}"}
    with httpx.Client(base_url=server.url, timeout=15) as http:
        admin = auth_headers(server)
        created = http.post("/v1/sources", json={**SOURCE, "name": "s"}, headers=admin)
        path = f"/v1/sources/{created.json()['id']}"
        record = http.get(path, headers=reader)
        assert record.status_code == 200, record.text
        assert record.json()["connection"]["password"] == MASK

        cluster.stop()
        for _ in range(3):
            response = http.get(path, headers=reader)
            assert response.status_code == 503, response.text
            assert response.json()["reason"] == "store_unavailable"

        cluster.start()
        for _ in range(300):  # bounded: the pools reconnect within seconds
            if http.get(path, headers=reader).status_code == 200:
                break
            time.sleep(0.1)
        assert http.get(path, headers=reader).json() == record.json()

        # Every backend the server holds dies, as in a restart that no request saw coming.
        with psycopg.connect(cluster.url, autocommit=True) as server_admin:
            killed = server_admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchall()
        assert killed
        for _ in range(5):
            response = http.get(path, headers=reader)
            assert response.status_code == 200, response.text
            assert response.json() == record.json()


def test_a_worker_that_dies_is_replaced(serve: Any, tmp_path: Path) -> None:
    server: TdbServer = serve(
        {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}"}, workers=2
    )
    headers = auth_headers(server)
    before = server.worker_pids()
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = server.worker_pids()
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.1)  # polling the supervisor, bounded by the deadline
    assert len(server.worker_pids()) == 2
    assert victim not in server.worker_pids()
    # The supervisor says so in its log, with the reason.
    while f"pid={victim} reason=exited" not in server.stderr_path.read_text():
        assert time.monotonic() < deadline, server.stderr_path.read_text()
        time.sleep(0.05)  # the line follows the new worker's start; bounded by the deadline
    assert "worker_replaced" in server.stderr_path.read_text()
    with httpx.Client(headers=headers, timeout=10) as http:
        for _ in range(10):
            assert http.get(f"{server.url}/v1/sources").status_code == 200


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_workers_exit_when_their_supervisor_is_killed(serve: Any, tmp_path: Path) -> None:
    server: TdbServer = serve(
        {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'o.sqlite3'}"}, workers=2
    )
    assert server.process is not None
    workers = server.worker_pids()
    assert len(workers) == 2
    try:
        # The supervisor alone, as the OOM killer or `kill -9 PID` would: not its group.
        server.process.kill()
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(is_worker(pid) for pid in workers) or _accepts(server.port):
            assert time.monotonic() < deadline, (
                [pid for pid in workers if is_worker(pid)],
                server.stderr_path.read_text(),
            )
            time.sleep(0.05)  # polling /proc and the port, bounded by the deadline
    finally:
        # Whatever is left of the server's process group (a worker that did not exit).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)


def test_a_second_server_does_not_start_beside_workers_on_their_port(
    serve: Any, tmp_path: Path
) -> None:
    env = {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}"}
    first: TdbServer = serve(env, workers=2)
    second = subprocess.Popen(
        [tdb_executable(), "serve", "--port", str(first.port), "--workers", "2"],
        env={**os.environ, "TMPDIR": str(tmp_path), **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = second.communicate(timeout=30)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
    assert second.returncode == 3, err
    assert b"cannot listen on 127.0.0.1" in err
    assert len(first.worker_pids()) == 2
    assert list(tmp_path.glob("tdb-metrics-*")), "the first server's figures were removed"
