"""Authentication and scopes over HTTP: one 401 for every cause, 403 for a missing scope."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from entrypoints.container import Container
from entrypoints.operator import OPERATOR
from tests.builders import SEED_BODY, assert_problem
from tests.helpers import on_app
from tests.integration.conftest import Token

ROUTES = [
    ("POST", "/v1/sources"),
    ("GET", "/v1/sources"),
    ("GET", "/v1/sources/3f0e4b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
    ("GET", "/v1/sources/3f0e4b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b/schema"),
    ("DELETE", "/v1/sources/3f0e4b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
]


def _unauthorized_bodies(client: TestClient[Any], headers: dict[str, str]) -> list[Any]:
    bodies = []
    for method, path in ROUTES:
        response = client.request(
            method, path, headers=headers, json=SEED_BODY if method == "POST" else None
        )
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        # Every answer names its own request; apart from that, the bodies are the same.
        assert body.pop("request_id") == response.headers["x-request-id"]
        bodies.append(body)
    return bodies


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "Bearer tdbk_0000000000000000_unknownsecret",
        "Bearer tdbk_a b",
    ],
)
def test_every_cause_gets_the_same_401(
    client: TestClient[Any], authorization: str | None, make_token: Token
) -> None:
    # A key exists and works: the 401s below are not those of an empty store.
    working = {"Authorization": f"Bearer {make_token()}"}
    assert client.get("/v1/sources", headers=working).status_code == 200
    headers = {} if authorization is None else {"Authorization": authorization}
    reference = _unauthorized_bodies(client, {})
    assert _unauthorized_bodies(client, headers) == reference


def test_a_wrong_secret_and_a_revoked_key_get_the_same_401(
    client: TestClient[Any], container: Container, make_token: Token
) -> None:
    token = make_token()
    reference = _unauthorized_bodies(client, {})
    assert _unauthorized_bodies(client, {"Authorization": f"Bearer {token}x"}) == reference
    assert (
        client.get("/v1/sources", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    on_app(client, container.revoke_api_key(), token.split("_")[1], OPERATOR)
    assert _unauthorized_bodies(client, {"Authorization": f"Bearer {token}"}) == reference


def test_the_scheme_name_is_case_insensitive(client: TestClient[Any], make_token: Token) -> None:
    response = client.get("/v1/sources", headers={"Authorization": f"bearer {make_token()}"})
    assert response.status_code == 200


def test_a_read_only_key_reads_but_cannot_write(client: TestClient[Any], make_token: Token) -> None:
    admin = {"Authorization": f"Bearer {make_token()}"}
    reader = {"Authorization": f"Bearer {make_token('sources:read')}"}
    source_id = client.post("/v1/sources", json=SEED_BODY, headers=admin).json()["id"]
    problem = assert_problem(client.post("/v1/sources", json=SEED_BODY, headers=reader), 403)
    assert problem["required_scope"] == "sources:write"
    # The scope is checked before the body is read: a bad body still gets 403.
    assert_problem(client.post("/v1/sources", content=b"{", headers=reader), 403)
    assert_problem(client.delete(f"/v1/sources/{source_id}", headers=reader), 403)
    assert client.get(f"/v1/sources/{source_id}", headers=reader).status_code == 200
    assert client.get("/v1/sources", headers=reader).status_code == 200


def test_a_write_only_key_cannot_read(client: TestClient[Any], make_token: Token) -> None:
    writer = {"Authorization": f"Bearer {make_token('sources:write')}"}
    created = client.post("/v1/sources", json=SEED_BODY, headers=writer)
    assert created.status_code == 201
    assert created.json()["connection"]["password"] == "********"
    assert_problem(client.get("/v1/sources", headers=writer), 403)
    assert_problem(client.get(f"/v1/sources/{created.json()['id']}", headers=writer), 403)
    assert client.delete(f"/v1/sources/{created.json()['id']}", headers=writer).status_code == 204


def test_secrets_in_clear_only_with_the_secrets_scope(
    client: TestClient[Any], make_token: Token
) -> None:
    admin = {"Authorization": f"Bearer {make_token()}"}
    reader = {"Authorization": f"Bearer {make_token('sources:read')}"}
    revealer = {"Authorization": f"Bearer {make_token('sources:read', 'sources:secrets')}"}
    source_id = client.post("/v1/sources", json=SEED_BODY, headers=admin).json()["id"]
    assert (
        client.get(f"/v1/sources/{source_id}", headers=reader).json()["connection"]["password"]
        == "********"
    )
    assert (
        client.get(f"/v1/sources/{source_id}", headers=revealer).json()["connection"]["password"]
        == "s3cret"
    )


def test_registered_by_is_the_public_part_of_the_token(
    client: TestClient[Any], make_token: Token
) -> None:
    token = make_token()
    record = client.post(
        "/v1/sources", json=SEED_BODY, headers={"Authorization": f"Bearer {token}"}
    ).json()
    prefix, key_id, secret = token.split("_", 2)
    assert record["registered_by"] == f"{prefix}_{key_id}"
    assert secret not in record["registered_by"]
