"""Builders shared by test modules: valid records, request bodies and checks of a response.

Test modules import what they share from here, never from one another.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from application.sources import RegisterSource, RegisterSourceCommand
from domain.keys import ALL_SCOPES, ApiKey, Principal, Scope
from domain.sources import Source, SourceName
from entrypoints.requests import RegisterSourceRequest
from tests.helpers import run

if TYPE_CHECKING:
    from litestar.testing import TestClient

    from tests.e2e.conftest import TdbServer
    from tests.unit.conftest import World

# --- records, as the stores keep them ----------------------------------------------------------

T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def make_source(name: str, **changes: object) -> Source:
    """A valid source, registered at T0 unless told otherwise."""
    fields: dict[str, object] = {
        "id": uuid4(),
        "name": SourceName(name),
        "source_type": "csv",
        "connection": {"path": f"{name}.csv"},
        "description": "",
        "tags": (),
        "registered_by": "tdbk_0123456789abcdef",
        "registered_at": T0,
    }
    fields.update(changes)
    return Source(**fields)  # type: ignore[arg-type]


def make_key(key_id: str, **changes: object) -> ApiKey:
    """A valid active key, created at T0 unless told otherwise."""
    fields: dict[str, object] = {
        "key_id": key_id,
        "name": f"key {key_id}",
        "scopes": ALL_SCOPES,
        "secret_hash": "ab" * 32,
        "created_at": T0,
    }
    fields.update(changes)
    return ApiKey(**fields)  # type: ignore[arg-type]


# --- use cases, on the in-memory world of tests/unit ----------------------------------------

ADMIN = Principal("tdbk_admin", ALL_SCOPES)
READER = Principal("tdbk_reader", {Scope.READ})
WRITER = Principal("tdbk_writer", {Scope.READ, Scope.WRITE})


def register(world: World, actor: Principal = ADMIN, verify: bool = False, **fields: Any) -> Source:
    """Register a source of the fake connector's `orders` table through the use case."""
    use_case = RegisterSource(world.sources, world.connectors, world.cipher, world.clock, world.ids)
    return run(use_case(registration(actor, verify, **fields)))


def registration(
    actor: Principal = ADMIN, verify: bool = False, **fields: Any
) -> RegisterSourceCommand:
    """The registration of a source of the fake connector's `orders` table, the fields given as
    a registration body is (decoded as every entrypoint decodes one)."""
    body: dict[str, Any] = {
        "name": "orders",
        "source_type": "fake",
        "connection": {"table": "orders", "password": "s3cret"},
    }
    body.update(fields)
    return RegisterSourceRequest.decode(body).command(actor, verify)


# --- the HTTP API ------------------------------------------------------------------------------

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PROBLEM = "application/problem+json"
RECORD_FIELDS = [
    "id",
    "name",
    "source_type",
    "connection",
    "description",
    "tags",
    "registered_by",
    "registered_at",
    "status",
    "version",
    "updated_at",
    "updated_by",
]
"""The API document's SourceRecord, in its order, then the fields the lifecycle adds."""

SEED_BODY: dict[str, Any] = {
    "name": "orders",
    "source_type": "postgres",
    "connection": {
        "host": "db.internal",
        "port": 5432,
        "dbname": "production",
        "user": "tdb_reader",
        "password": "s3cret",
        "table": "orders",
        "schema": "public",
    },
    "description": "Order records",
    "tags": ["production", "finance"],
}


def body(**changes: Any) -> dict[str, Any]:
    return {**SEED_BODY, **changes}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert "Traceback" not in response.text
    return problem


def post_source(
    client: TestClient[Any], headers: dict[str, str], name: str, **changes: Any
) -> dict[str, Any]:
    response = client.post("/v1/sources", json=body(name=name, **changes), headers=headers)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def auth_headers(server: TdbServer) -> dict[str, str]:
    """The admin token a real `tdb serve` printed at its first start, as request headers."""
    token = server.admin_token()
    assert token, server.stdout
    return {"Authorization": f"Bearer {token}"}
