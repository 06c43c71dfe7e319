"""The Keys API over HTTP: create, list, show, revoke, rotate; no escalation for any scope; names
held by one key; lifetimes under TDB_KEY_MAX_DAYS; last use kept to the minute."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.keys import ALL_SCOPES, Scope
from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from tests.builders import assert_problem
from tests.helpers import on_app
from tests.integration.conftest import Token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(client: TestClient[Any], headers: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/keys", headers=headers, json=body)


def test_a_key_is_made_shown_listed_and_revoked(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    made = _create(client, admin, name="ci", scopes=["sources:read"], expires_in_days=90)
    assert made.status_code == 201, made.text
    key = made.json()
    assert made.headers["location"] == f"/v1/keys/{key['key_id']}"
    assert key["key_id"].startswith("tdbk_")
    assert key["token"].startswith(key["key_id"] + "_")
    assert (key["scopes"], key["rotated_from"], key["revoked_at"]) == (["sources:read"], None, None)
    assert key["created_by"].startswith("tdbk_")
    created = datetime.fromisoformat(key["created_at"])
    assert datetime.fromisoformat(key["expires_at"]) - created == timedelta(days=90)
    token = key.pop("token")
    assert client.get("/v1/sources", headers=_bearer(token)).status_code == 200
    shown = client.get(f"/v1/keys/{key['key_id']}", headers=admin).json()
    assert "token" not in shown
    assert token not in str(client.get("/v1/keys", headers=admin).json())
    assert shown["last_used_at"] is None or shown["last_used_at"].endswith(":00Z")
    assert client.delete(f"/v1/keys/{key['key_id']}", headers=admin).status_code == 204
    assert_problem(client.get("/v1/sources", headers=_bearer(token)), 401)
    revoked = client.get(f"/v1/keys/{key['key_id']}", headers=admin).json()
    assert revoked["revoked_at"] is not None
    assert_problem(client.get("/v1/keys/tdbk_0000000000000000", headers=admin), 404)
    actions = [e["action"] for e in client.get("/v1/events", headers=admin).json()]
    assert actions.count("key.created") >= 2
    assert actions.count("key.revoked") == 1


def test_a_name_is_held_by_one_key_over_http(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    assert _create(client, admin, name="ci").status_code == 201
    taken = _create(client, admin, name="ci", scopes=["sources:read"])
    assert_problem(taken, 409)
    assert taken.json()["type"].endswith("duplicate-key-name")


@pytest.mark.parametrize("scope", sorted(ALL_SCOPES))
def test_a_key_never_grants_a_scope_it_lacks(
    client: TestClient[Any], make_token: Token, scope: Scope
) -> None:
    held = ALL_SCOPES - {scope} if scope is Scope.KEYS else (ALL_SCOPES - {scope}) | {Scope.KEYS}
    others = sorted(s.value for s in held)
    maker = _bearer(make_token(*others, name="maker"))
    if scope is Scope.KEYS:
        # Without keys:manage no key route answers at all.
        assert_problem(_create(client, maker, name="x", scopes=["sources:read"]), 403)
        return
    refused = _create(client, maker, name="more", scopes=[scope.value])
    assert_problem(refused, 403)
    assert refused.json()["required_scope"] == scope.value
    assert_problem(_create(client, maker, name="every"), 403)  # none named: every scope
    assert _create(client, maker, name="less", scopes=others).status_code == 201
    holder = _create(client, _bearer(make_token(name="admin")), name="holder", scopes=[scope.value])
    rotated = client.post(f"/v1/keys/{holder.json()['key_id']}/rotate", headers=maker, json={})
    assert_problem(rotated, 403)


def test_rotation_overlaps_then_ends_the_old_key(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    old = _create(client, admin, name="ci", scopes=["sources:read"], expires_in_days=30).json()
    url = f"/v1/keys/{old['key_id']}/rotate"
    rotated = client.post(url, headers=admin, json={"overlap_seconds": 3600})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert (new["name"], new["scopes"], new["rotated_from"]) == (
        "ci",
        ["sources:read"],
        old["key_id"],
    )
    lifetime = datetime.fromisoformat(new["expires_at"]) - datetime.fromisoformat(new["created_at"])
    assert lifetime == timedelta(days=30)
    old_now = client.get(f"/v1/keys/{old['key_id']}", headers=admin).json()
    ends = datetime.fromisoformat(old_now["expires_at"])
    assert ends - datetime.fromisoformat(new["created_at"]) <= timedelta(hours=1)
    for token in (old["token"], new["token"]):  # both work within the overlap
        assert client.get("/v1/sources", headers=_bearer(token)).status_code == 200
    assert_problem(client.post(url, headers=admin, json={}), 409)  # rotated once only
    for body in ({"overlap_seconds": 604801}, {"overlap_seconds": -1}, {"overlap_seconds": "1"}):
        assert_problem(
            client.post(f"/v1/keys/{new['key_id']}/rotate", headers=admin, json=body), 400
        )
    assert_problem(
        client.post(f"/v1/keys/{new['key_id']}/rotate", headers=admin, json={"x": 1}), 400
    )
    # No body at all: the default overlap; an overlap of 0 ends the old key at once.
    again = client.post(f"/v1/keys/{new['key_id']}/rotate", headers=admin)
    assert again.status_code == 201
    last = client.post(
        f"/v1/keys/{again.json()['key_id']}/rotate", headers=admin, json={"overlap_seconds": 0}
    )
    assert last.status_code == 201
    assert_problem(client.get("/v1/sources", headers=_bearer(again.json()["token"])), 401)
    actions = [e["action"] for e in client.get("/v1/events", headers=admin).json()]
    assert actions.count("key.rotated") == 3


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["name"]),
        ({"name": 3}, ["name"]),
        ({"name": "x", "scopes": "sources:read"}, ["scopes"]),
        ({"name": "x", "scopes": ["nope"]}, ["scopes"]),
        ({"name": "x", "expires_in_days": 0}, ["expires_in_days"]),
        ({"name": "x", "expires_in_days": 10**30}, ["expires_in_days"]),
        ({"name": "x", "expires_in_days": 1.5}, ["expires_in_days"]),
        ({"name": "x", "id": 1}, ["id"]),
        ({"name": " "}, ["name"]),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    client: TestClient[Any], admin: dict[str, str], body: dict[str, Any], fields: list[str]
) -> None:
    refused = _create(client, admin, **body)
    assert_problem(refused, 400)
    assert [e["field"] for e in refused.json()["errors"]] == fields


def test_the_longest_lifetime_is_the_servers(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'k.sqlite3'}", key_max_days=30)
    container: Container = build_container(settings)
    try:
        with TestClient(create_app(container)) as client:
            issued = on_app(client, container.create_api_key(), "admin", (), OPERATOR, 30)
            admin = _bearer(issued.token)
            for days in (None, 31):
                assert_problem(_create(client, admin, name=f"k{days}", expires_in_days=days), 400)
            assert _create(client, admin, name="k30", expires_in_days=30).status_code == 201
    finally:
        container.shutdown_resources()


def test_last_use_is_written_behind_to_the_minute(
    container: Container, client: TestClient[Any], make_token: Token
) -> None:
    token = make_token(name="used")
    key_id = token.split("_")[1]
    uses = container.key_uses()
    first_minute = int(time.time()) // 60
    for _ in range(20):
        assert client.get("/v1/sources", headers=_bearer(token)).status_code == 200
    on_app(client, uses.flush)
    minutes = int(time.time()) // 60 - first_minute + 1
    # Twenty requests of one key: one write per minute they spanned, whoever flushed it.
    assert 1 <= uses.writes <= minutes
    shown = client.get(f"/v1/keys/tdbk_{key_id}", headers=_bearer(token)).json()
    assert shown["last_used_at"].endswith(":00Z")
