"""Request ids and metrics through Litestar's test client (the log lines: tests/e2e)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from entrypoints.container import Container
from entrypoints.operator import OPERATOR
from tests.helpers import on_app
from tests.integration.conftest import Token


def _failures(cause: str) -> float:
    return REGISTRY.get_sample_value("tdb_auth_failures_total", {"cause": cause}) or 0.0


def test_each_401_is_counted_by_its_cause(
    client: TestClient[Any], container: Container, make_token: Token
) -> None:
    token = make_token()
    revoked = make_token()
    on_app(client, container.revoke_api_key(), revoked.split("_")[1], OPERATOR)
    before = {c: _failures(c) for c in ("missing", "malformed", "unknown", "revoked")}
    for authorization, cause in [
        (None, "missing"),
        ("Basic dXNlcjpwYXNz", "malformed"),
        ("Bearer not-a-token", "malformed"),
        (f"Bearer {token}x", "unknown"),
        ("Bearer tdbk_0000000000000000_nosuchkey", "unknown"),
        (f"Bearer {revoked}", "revoked"),
    ]:
        headers = {} if authorization is None else {"Authorization": authorization}
        assert client.get("/v1/sources", headers=headers).status_code == 401
        before[cause] += 1
        assert {c: _failures(c) for c in before} == before


@pytest.mark.parametrize(
    ("path", "route"),
    [
        pytest.param(f"/v1/sources/{uuid.uuid4()}", "/v1/sources/{source_id}", id="source"),
        pytest.param(
            f"/v1/sources/{uuid.uuid4()}/schema", "/v1/sources/{source_id}/schema", id="schema"
        ),
        pytest.param(f"/nothing/here/{uuid.uuid4()}", "unmatched", id="unmatched"),
    ],
)
def test_requests_are_counted_by_route_template_never_by_path(
    client: TestClient[Any], admin: dict[str, str], path: str, route: str
) -> None:
    labels = {"route": route, "method": "GET", "status": "404"}
    before = REGISTRY.get_sample_value("tdb_http_requests_total", labels) or 0.0
    response = client.get(path, headers=admin)
    assert response.status_code == 404
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert REGISTRY.get_sample_value("tdb_http_requests_total", labels) == before + 1
    assert path not in client.get("/metrics").text


def test_metrics_name_their_charset_once(client: TestClient[Any]) -> None:
    content_type = client.get("/metrics").headers["content-type"]
    assert content_type == "text/plain; version=1.0.0; charset=utf-8"
