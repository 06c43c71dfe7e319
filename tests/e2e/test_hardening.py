"""Attacks on a real `tdb serve`: requests a test client would tidy up before the app sees them."""

from __future__ import annotations

import json
import socket
from typing import Any

from tests.e2e.conftest import TdbServer


def _raw(server: TdbServer, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send bytes as they are; the status and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
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
