"""Attacks on a real `tdb serve`: requests a test client would tidy up before the app sees them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import TdbServer
from tests.helpers import unchunked


def _raw(server: TdbServer, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send bytes as they are; the status and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"\r\ntransfer-encoding: chunked" in head.lower():
        body = unchunked(body)
    return int(head.split()[1]), json.loads(body)


def test_two_authorization_headers_are_400(serve: Any) -> None:
    server: TdbServer = serve()
    token = server.admin_token()
    assert token, server.stdout
    good = (
        "GET /v1/sources HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: Bearer {token}\r\n"
    )
    assert _raw(server, f"{good}\r\n".encode())[0] == 200
    for second in (f"Bearer {token}", "Bearer tdbk_other_secret", "Basic eDp5"):
        status, problem = _raw(server, f"{good}Authorization: {second}\r\n\r\n".encode())
        assert status == 400
        assert problem["errors"] == [{"field": "Authorization", "message": "must be sent once"}]


def test_forty_inspections_of_a_wide_file_answer_and_health_answers_meanwhile(
    serve: Any, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "wide.csv").write_text(("," * 524_287 + "\n") * 2)
    server: TdbServer = serve()
    auth = {"Authorization": f"Bearer {server.admin_token()}"}
    body = {"name": "wide", "source_type": "csv", "connection": {"path": "wide.csv"}}
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
        source_id = http.post("/v1/sources", json=body).json()["id"]
        health: list[int] = []
        with ThreadPoolExecutor(41) as pool:
            answers = [pool.submit(http.get, f"/v1/sources/{source_id}/schema") for _ in range(40)]
            health.append(pool.submit(http.get, "/healthz").result().status_code)
            results = [answer.result() for answer in answers]
    assert health == [200]
    assert {(r.status_code, r.json()["reason"]) for r in results} == {(503, "too_many_columns")}
    assert max(len(r.content) for r in results) < 1000


def test_a_full_listing_many_slices_long_is_every_page_joined(
    serve: Any, store_env: dict[str, str]
) -> None:
    server: TdbServer = serve(store_env)
    auth = {"Authorization": f"Bearer {server.admin_token()}"}
    describe = "a source with a few words to say about itself " * 10
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:

        def register(i: int) -> int:
            body = {
                "name": f"source-{i:04d}",
                "source_type": "csv",
                "connection": {"path": f"f{i}.csv"},
                "description": describe,
                "tags": ["finance", f"batch-{i % 7}"],
            }
            return http.post("/v1/sources", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(register, range(500))) == {201}
        pages: list[Any] = []
        url: str | None = "/v1/sources?limit=100"
        while url is not None:
            page = http.get(url)
            pages += page.json()
            url = page.links.get("next", {}).get("url")
    # The whole listing on a raw socket: the server's own framing, as it leaves the process.
    request = (
        f"GET /v1/sources HTTP/1.1\r\nHost: tdb\r\nConnection: close\r\n"
        f"Authorization: {auth['Authorization']}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert lines[0] == "HTTP/1.1 200 OK"
    # Streamed a chunk of sources at a time (memory stays flat whatever the size), never paged.
    assert "link" not in headers
    assert headers["transfer-encoding"] == "chunked"
    content = unchunked(content)
    assert len(content) > 4 * 65536
    assert json.loads(content) == pages
    assert len(pages) == 500


def test_a_server_process_keeps_the_event_loop_from_waiting_on_the_gil(tmp_path: Path) -> None:
    # A full collection, which a big listing sets off now and then, holds the event loop for as
    # long as it walks the objects it watches: not the modules, the app and the container. A
    # thread that wants the GIL (the loop's, while a listing is made on another) waits 1 ms at
    # most, not Python's 5.
    env = {
        **os.environ,
        "TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'tdb.sqlite3'}",
        "TDB_CSV_ROOT": str(tmp_path),
    }
    code = (
        "import gc, sys, entrypoints.http.asgi;"
        " print(gc.get_freeze_count(), len(gc.get_objects()), sys.getswitchinterval())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    frozen, watched, switch = done.stdout.split()
    assert int(frozen) > 10 * int(watched)
    assert float(switch) <= 0.001
