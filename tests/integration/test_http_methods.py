"""HEAD wherever GET is, OPTIONS naming every method, and a client that leaves mid-body."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from litestar.testing import TestClient

from entrypoints.container import Container
from entrypoints.http.app import create_app

SOURCE = {
    "name": "orders",
    "source_type": "postgres",
    "connection": {"host": "db", "dbname": "d", "user": "u", "password": "pw", "table": "t"},
}


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/sources", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/v1/sources/{id}", {"GET", "HEAD", "DELETE", "OPTIONS"}),
        ("/v1/sources/{id}/schema", {"GET", "HEAD", "OPTIONS"}),
        ("/healthz", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_options_lists_every_method_of_the_path(
    client: TestClient[Any], admin: dict[str, str], path: str, allowed: set[str]
) -> None:
    source_id = client.post("/v1/sources", json=SOURCE, headers=admin).json()["id"]
    response = client.options(path.format(id=source_id))
    assert response.status_code == 204
    assert set(response.headers["allow"].split(", ")) >= allowed


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/v1/sources", "/v1/sources/{id}"])
def test_head_answers_as_get_does_without_the_body(
    client: TestClient[Any], admin: dict[str, str], path: str
) -> None:
    source_id = client.post("/v1/sources", json=SOURCE, headers=admin).json()["id"]
    url = path.format(id=source_id)
    get = client.get(url, headers=admin)
    head = client.head(url, headers=admin)
    assert (head.status_code, head.content) == (get.status_code, b"")
    assert head.headers["content-type"] == get.headers["content-type"]
    # The whole listing is streamed: no length is known before its last chunk, for HEAD either.
    assert head.headers.get("content-length") == get.headers.get("content-length")
    if url != "/v1/sources":
        assert head.headers["content-length"] == str(len(get.content))


def test_head_needs_the_key_a_get_needs(client: TestClient[Any], admin: dict[str, str]) -> None:
    source_id = client.post("/v1/sources", json=SOURCE, headers=admin).json()["id"]
    head = client.head(f"/v1/sources/{source_id}")
    assert head.status_code == 401
    assert head.headers["www-authenticate"] == "Bearer"


def test_a_client_leaving_mid_body_is_no_server_error(
    container: Container, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(container)
    body = b'{"name": "orders", "source_type": '
    events = iter(
        [
            {"type": "http.request", "body": body, "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> Any:
        return next(events)

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/sources",
        "raw_path": b"/v1/sources",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"tdb"),
            (b"content-type", b"application/json"),
            (b"content-length", b"200"),
            *[(k.lower().encode(), v.encode()) for k, v in admin.items()],
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    with caplog.at_level(logging.DEBUG):
        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] < 500
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "client disconnected" in caplog.text
