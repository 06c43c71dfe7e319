"""Slow and excess clients against a real `tdb serve`: read deadlines and the connection cap."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import TdbServer
from tests.helpers import unchunked

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


# Linux's TCP_INFO starts with the socket's state; TCP_CLOSE once the peer has reset it.
TCP_CLOSE = 7
# About 5.6 KB each in a listing: 11 MB in all, more than twice what the kernel may buffer.
SOURCES = 2000


def _big_listing(server: TdbServer, token: str) -> bytes:
    """Registers sources until the full listing outgrows what the kernel buffers between the
    server and a client (4 MiB at most here): the request that fetches it."""
    tags = [f"{i:02d}-" + "t" * 97 for i in range(50)]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:

        def register(i: int) -> int:
            body = {
                "name": f"wide-{i:04d}",
                "source_type": "csv",
                "connection": {"path": f"f{i}.csv"},
                "description": "d" * 500,
                "tags": tags,
            }
            return http.post("/v1/sources", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(register, range(SOURCES))) == {201}
    return (
        f"GET /v1/sources HTTP/1.1\r\nHost: tdb\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


def _small_window(stack: ExitStack, server: TdbServer) -> socket.socket:
    """A connection whose receive buffer holds 64 KiB at most: the server waits on its reads."""
    sock = stack.enter_context(socket.socket())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(PATIENCE)
    sock.connect(("127.0.0.1", server.port))
    return sock


def test_an_answer_left_unread_is_dropped_at_the_deadline_and_one_read_slowly_is_not(
    serve: Any, tmp_path: Path
) -> None:
    server: TdbServer = serve(_env(tmp_path, TDB_SEND_TIMEOUT="3"))
    token = server.admin_token()
    assert token
    request = _big_listing(server, token)
    with ExitStack() as stack:
        unread = _small_window(stack, server)
        unread.sendall(request)
        slow = _small_window(stack, server)
        slow.sendall(request)
        # The slow client reads 64 KiB at a time, 2 MB/s at most, for longer than the deadline
        # (9 MB at most of the 11), then the rest: it gets all of it. (The server's kernel lets
        # it write again only once about a third of its send buffer, up to 4 MiB, has been
        # read: some 0.7 s at this pace, a quarter of the deadline.)
        began, answer = time.monotonic(), b""
        while time.monotonic() - began < 4:
            answer += slow.recv(65536)
            time.sleep(0.03)  # the client's own pace, not a wait for anything
        head, _, body = answer.partition(b"\r\n\r\n")
        headers = dict(h.lower().split(b": ", 1) for h in head.split(b"\r\n")[1:])
        # The whole listing is streamed a chunk of sources at a time: read to its last chunk.
        assert headers[b"transfer-encoding"] == b"chunked"
        while not body.endswith(b"\r\n0\r\n\r\n"):
            chunk = slow.recv(1 << 20)
            assert chunk, "the server closed a connection that was reading"
            body += chunk
        content = unchunked(body)
        assert len(content) > 8 << 20
        assert len(json.loads(content)) == SOURCES
        # The other one never read: the server dropped it (a reset), within the deadline and a
        # sweep. The client's kernel says so without a byte being read.
        deadline = time.monotonic() + PATIENCE
        while unread.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != TCP_CLOSE:
            assert time.monotonic() < deadline, "the unread answer was never dropped"
            time.sleep(0.05)  # polling the socket's state, bounded by the deadline above
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert "Traceback" not in server.stderr_path.read_text()
