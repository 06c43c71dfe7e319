"""Two real `tdb serve` processes on one PostgreSQL store share the watches' due checks: each
due check runs once, and one killed mid-check leaves its claims to the other after the lease."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TdbServer

INTERVAL = 3
LEASE = 3
WAIT_SECONDS = 40


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that takes connections and never says a word (a stalled backend)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(256)
        yield listener.getsockname()[1]


def checks(server: TdbServer) -> list[dict[str, Any]]:
    """The checks the server recorded, from its JSON log lines (a killed one's last line may be
    cut short)."""
    found = []
    for line in server.stderr_path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "watch_check" and event.get("recorded"):
            found.append(event)
    return found


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def watched_sources(url: str, headers: dict[str, str], data: Path, silent_port: int) -> list[str]:
    """Eight CSV sources and three whose backend stalls, each watched; their ids."""
    bodies = []
    for i in range(8):
        (data / f"t{i}.csv").write_text("id,total\n1,2.5\n")
        bodies.append({"name": f"t{i}", "source_type": "csv", "connection": {"path": f"t{i}.csv"}})
    stalled = {"host": "127.0.0.1", "port": silent_port, "dbname": "d", "user": "u", "table": "t"}
    for i in range(3):  # checks that take their whole deadline: the kill lands mid-check
        bodies.append({"name": f"slow{i}", "source_type": "postgres", "connection": stalled})
    ids = []
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for body in bodies:
            created = client.post("/v1/sources", json=body)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
            put = client.put(f"/v1/sources/{ids[-1]}/watch", json={"interval_seconds": INTERVAL})
            assert put.status_code == 200, put.text
    return ids


def assert_on_grid(dues: list[datetime]) -> None:
    """No due time left out: the first step is one interval and the watch's offset (under
    10 %), then one interval each."""
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(dues)]
    assert INTERVAL <= steps[0] < INTERVAL * 1.1, steps
    assert steps[1:] == [INTERVAL] * (len(steps) - 1), steps


@pytest.mark.postgres
def test_each_due_check_runs_once_across_replicas_with_one_killed(
    serve: Any, tmp_path: Path, postgres_store: dict[str, str], silent_port: int
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {
        **postgres_store,
        "TDB_CSV_ROOT": str(data),
        "TDB_LOG_FORMAT": "json",
        "TDB_ACCESS_LOG": "off",
        "TDB_WATCH_MIN_INTERVAL": "1",
        "TDB_WATCH_LEASE": str(LEASE),
        "TDB_CONNECT_TIMEOUT": "1",
        # The stalled backend is on loopback, which the outbound policy refuses by default.
        "TDB_DENIED_NETWORKS": "",
    }
    with ThreadPoolExecutor(2) as starting:  # together: each start takes a while
        first, second = starting.map(lambda _: serve(env), range(2))
    tokens = [t for t in (first.admin_token(), second.admin_token()) if t]
    assert len(tokens) == 1  # one admin key, made by whichever came first
    headers = {"Authorization": f"Bearer {tokens[0]}"}
    ids = watched_sources(first.url, headers, data, silent_port)
    wait_for(lambda: checks(first) and checks(second), "both replicas run checks")
    wait_for(lambda: len(checks(first)) + len(checks(second)) >= len(ids), "a cycle")
    first.kill()
    killed_at = datetime.now().astimezone()

    def caught_up() -> bool:
        with httpx.Client(base_url=second.url, headers=headers, timeout=10) as client:
            watches = client.get("/v1/watches").json()
        after = killed_at + timedelta(seconds=LEASE + 1)
        checked = [w["last_checked_at"] for w in watches if w["last_checked_at"]]
        return len(checked) == len(ids) and all(
            datetime.fromisoformat(at) > after for at in checked
        )

    wait_for(caught_up, "the survivor runs every watch's checks past the lease")
    second.stop()
    recorded = checks(first) + checks(second)
    runs = Counter((c["source_id"], c["due_at"]) for c in recorded)
    assert [key for key, n in runs.items() if n > 1] == []
    for source_id in ids:
        assert_on_grid(sorted(datetime.fromisoformat(due) for s, due in runs if s == source_id))
    survivor = {(c["source_id"], c["due_at"]) for c in checks(second)}
    assert any(c["outcome"] == "failed" and c["reason"] == "timeout" for c in recorded)
    assert len(survivor) < len(runs)  # the killed replica had its share
