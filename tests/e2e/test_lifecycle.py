"""The lifecycle against real `tdb serve` processes: racing PATCHes, a crash mid-stream, the
audit trail of the CLI, and a connection test to a peer that never answers."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import TdbServer, run_tdb

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def _auth(server: TdbServer) -> dict[str, str]:
    token = server.admin_token()
    assert token, server.stdout
    return {"Authorization": f"Bearer {token}"}


def _register(http: httpx.Client, name: str, **connection: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "source_type": "postgres",
        "connection": {
            "host": "127.0.0.1",
            "dbname": "d",
            "user": "u",
            "password": "pw",
            "table": "t",
            **connection,
        },
    }
    response = http.post("/v1/sources", json=body)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def test_of_patches_racing_from_one_version_exactly_one_wins(
    serve: Any,
    store_env: dict[str, str],
) -> None:
    server: TdbServer = serve(store_env, workers=2)
    with httpx.Client(base_url=server.url, headers=_auth(server), timeout=30) as http:
        source = _register(http, "contested")

        def attempt(i: int) -> int:
            # A fresh connection each: the kernel spreads them over both workers.
            with httpx.Client(base_url=server.url, headers=http.headers, timeout=30) as own:
                return own.patch(
                    f"/v1/sources/{source['id']}",
                    content=f'{{"description": "writer {i}"}}',
                    headers={**MERGE_PATCH, "If-Match": '"1"'},
                ).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(attempt, range(24)))
        assert statuses.count(200) == 1, statuses
        assert statuses.count(412) == 23, statuses
        final = http.get(f"/v1/sources/{source['id']}")
        assert final.headers["etag"] == '"2"'
        winner = statuses.index(200)
        assert final.json()["description"] == f"writer {winner}"
        updates = http.get(
            "/v1/events", params={"source_id": source["id"], "action": "source.updated"}
        ).json()
        assert len(updates) == 1


def test_every_acknowledged_patch_survives_a_kill_with_its_event(
    serve: Any,
    store_env: dict[str, str],
) -> None:
    server: TdbServer = serve(store_env)
    headers = _auth(server)
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        source = _register(http, "streamed")
    acknowledged: list[int] = []
    enough = threading.Event()

    def stream() -> None:
        # Each PATCH names the version it expects and writes that version's number: the
        # record's description then always says which version it is.
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            for version in range(1, 5000):
                try:
                    response = http.patch(
                        f"/v1/sources/{source['id']}",
                        content=f'{{"description": "v{version + 1}"}}',
                        headers={**MERGE_PATCH, "If-Match": f'"{version}"'},
                    )
                except httpx.TransportError:
                    return
                assert response.status_code == 200, response.text
                acknowledged.append(response.json()["version"])
                if len(acknowledged) >= 40:
                    enough.set()

    writer = threading.Thread(target=stream)
    writer.start()
    assert enough.wait(timeout=60), "the PATCHes did not get going"
    server.kill()
    writer.join(timeout=30)

    restarted: TdbServer = serve(store_env)
    with httpx.Client(base_url=restarted.url, headers=headers, timeout=10) as http:
        record = http.get(f"/v1/sources/{source['id']}").json()
        assert record["version"] >= max(acknowledged)
        assert record["description"] == f"v{record['version']}"
        trail = http.get("/v1/events", params={"source_id": source["id"]}).json()
    actions = [e["action"] for e in trail if e["action"] != "source.secrets_read"]
    # One event per stored version: none missing for an acknowledged change, none extra.
    assert actions == ["source.registered"] + ["source.updated"] * (record["version"] - 1)


def test_keys_made_and_revoked_with_the_cli_are_in_the_trail(serve: Any, tmp_path: Path) -> None:
    env = {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.sqlite3'}"}
    server: TdbServer = serve(env)

    def cli(*args: str) -> str:
        return run_tdb(tmp_path, env, *args)

    token = cli("keys", "create", "--name", "etl", "--scope", "sources:read").splitlines()[-1]
    key_id = token.split("_")[1]
    cli("keys", "revoke", key_id)
    trail = httpx.get(f"{server.url}/v1/events", headers=_auth(server), timeout=10).json()
    keys = [(e["action"], e["actor"], e["key_id"]) for e in trail]
    admin_id = _auth(server)["Authorization"].split("_")[1]
    assert keys == [
        ("key.created", "tdb-cli", admin_id),
        ("key.created", "tdb-cli", key_id),
        ("key.revoked", "tdb-cli", key_id),
    ]
    assert token.split("_", 2)[2] not in str(trail)


def test_a_connection_test_to_a_silent_peer_answers_in_time_while_reads_go_on(
    serve: Any, tmp_path: Path
) -> None:
    env = {
        "TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'silent.sqlite3'}",
        "TDB_CONNECT_TIMEOUT": "1",
    }
    server: TdbServer = serve(env)
    headers = _auth(server)
    with (
        socket.socket() as silent,
        httpx.Client(base_url=server.url, headers=headers, timeout=30) as http,
    ):
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nothing ever answers them
        silent.settimeout(20)
        source = _register(http, "silent", port=silent.getsockname()[1])
        other = _register(http, "other")

        # Two at once: the connector keeps at most two connections per target.
        with ThreadPoolExecutor(max_workers=2) as pool:
            tests = [pool.submit(http.post, f"/v1/sources/{source['id']}/test") for _ in range(2)]
            # A connection reached the peer: the tests are now waiting on it.
            peer, _ = silent.accept()
            try:
                reads = [http.get(f"/v1/sources/{other['id']}").status_code for _ in range(10)]
                # Every read was answered while the tests were still waiting.
                assert not any(t.done() for t in tests)
                assert reads == [200] * 10
                answers = [t.result(timeout=30) for t in tests]
            finally:
                peer.close()
    for answer in answers:
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["ok"], result["reason"]) == (False, "timeout")
        # The bound: the connect timeout (1 s) plus a second, measured by the server.
        assert result["elapsed_ms"] < 2000
