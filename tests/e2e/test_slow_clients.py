"""Slow and excess clients against a real `tdb serve`: read deadlines and the connection cap."""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import TdbServer

# Far above the deadlines the tests set: a server without them keeps the socket open this long.
PATIENCE = 30.0


def _connect(server: TdbServer, stack: ExitStack, first: bytes) -> socket.socket:
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=5))
    sock.sendall(first)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; raises TimeoutError if it never does."""
    sock.settimeout(PATIENCE)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _env(tmp_path: Path, **limits: str) -> dict[str, str]:
    return {"TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'tdb.sqlite3'}", **limits}


def test_headers_that_never_finish_are_cut_at_the_deadline(serve: Any, tmp_path: Path) -> None:
    server: TdbServer = serve(_env(tmp_path, TDB_HEADER_TIMEOUT="1"))
    with ExitStack() as stack:
        sock = _connect(server, stack, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert _read_until_closed(sock) == b""
        # The server itself is fine.
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_body_that_never_finishes_is_cut_at_the_deadline(serve: Any, tmp_path: Path) -> None:
    server: TdbServer = serve(_env(tmp_path, TDB_BODY_TIMEOUT="1"))
    with ExitStack() as stack:
        sock = _connect(
            server,
            stack,
            b"POST /v1/sources HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"name":',
        )
        assert b" 500 " not in _read_until_closed(sock)
    assert "Traceback" not in server.stderr_path.read_text()


def test_beyond_the_cap_the_longest_waiting_connection_makes_room(
    serve: Any, tmp_path: Path
) -> None:
    server: TdbServer = serve(_env(tmp_path, TDB_MAX_CONNECTIONS="4"))
    with ExitStack() as stack:
        slow = [_connect(server, stack, b"GET /healthz HTTP/1.1\r\n") for _ in range(8)]
        # Each new connection took the place of the oldest idle one, and so does this one.
        response = httpx.get(f"{server.url}/healthz", timeout=5)
        assert response.status_code == 200
        assert _read_until_closed(slow[0]) == b""


def test_beyond_the_cap_with_every_connection_busy_a_new_one_is_refused_fast(
    serve: Any, tmp_path: Path
) -> None:
    server: TdbServer = serve(_env(tmp_path, TDB_MAX_CONNECTIONS="2"))
    token = server.admin_token()
    assert token
    with ExitStack() as stack:
        # Busy: the headers are in and the app waits for the body (within its deadline). The
        # server says so with "100 Continue" when the app starts reading it.
        for _ in range(2):
            busy = _connect(
                server,
                stack,
                b"POST /v1/sources HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\n"
                b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n",
            )
            assert busy.recv(100).startswith(b"HTTP/1.1 100 ")
        refused = _connect(server, stack, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = _read_until_closed(refused).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["reason"] == "too_many_connections"
