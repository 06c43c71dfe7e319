"""The lifecycle over HTTP: PATCH with ETag and If-Match, connection tests, verify, the audit
trail; through Litestar's test client over a real SQLite store and real connectors."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from entrypoints.settings import Settings
from tests.builders import SEED_BODY, TIMESTAMP, assert_problem, body
from tests.integration.conftest import Token

MERGE_PATCH = "application/merge-patch+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def public(token: str) -> str:
    return "_".join(token.split("_")[:2])


def patch(
    client: TestClient[Any],
    source_id: str,
    changes: Any,
    headers: dict[str, str],
    content_type: str = MERGE_PATCH,
    query: str = "",
) -> Any:
    return client.patch(
        f"/v1/sources/{source_id}{query}",
        content=json.dumps(changes) if not isinstance(changes, str) else changes,
        headers={**headers, "Content-Type": content_type},
    )


@pytest.fixture
def source(client: TestClient[Any], admin: dict[str, str]) -> dict[str, Any]:
    response = client.post("/v1/sources", json=SEED_BODY, headers=admin)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    record: dict[str, Any] = response.json()
    return record


def test_a_new_source_is_at_version_1_updated_when_registered(source: dict[str, Any]) -> None:
    assert source["version"] == 1
    assert source["updated_at"] == source["registered_at"]
    assert source["updated_by"] == source["registered_by"]


def test_patch_merges_and_moves_the_version(
    client: TestClient[Any], make_token: Token, source: dict[str, Any]
) -> None:
    writer = make_token("sources:read", "sources:write")
    # A new port takes the password along only if it is sent again (or the key holds secrets).
    moved = {"port": 6543, "schema": None, "password": "s3cret"}
    response = patch(
        client,
        source["id"],
        {"description": "new", "tags": ["x"], "connection": moved},
        bearer(writer),
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    record = response.json()
    assert record["version"] == 2
    assert record["updated_by"] == public(writer)
    assert TIMESTAMP.match(record["updated_at"])
    assert record["registered_by"] == source["registered_by"]
    assert (record["description"], record["tags"]) == ("new", ["x"])
    assert record["connection"]["port"] == 6543
    assert record["connection"]["schema"] == "public"
    assert record["connection"]["password"] == "********"
    got = client.get(f"/v1/sources/{source['id']}", headers=bearer(writer))
    assert got.headers["etag"] == '"2"'
    assert got.json() == record


def test_sending_back_a_masked_record_keeps_the_secret(
    client: TestClient[Any], make_token: Token, admin: dict[str, str], source: dict[str, Any]
) -> None:
    reader = bearer(make_token("sources:read", "sources:write"))
    masked = client.get(f"/v1/sources/{source['id']}", headers=reader).json()
    # (A field that is no target of the connection: a new user would need the password again.)
    changes = {"connection": {**masked["connection"], "table": "other"}, "name": "renamed"}
    assert patch(client, source["id"], changes, reader, "application/json").status_code == 200
    clear = client.get(f"/v1/sources/{source['id']}", headers=admin).json()
    assert clear["connection"]["password"] == "s3cret"
    assert clear["connection"]["table"] == "other"


def test_a_patch_that_changes_nothing_keeps_the_version(
    client: TestClient[Any], admin: dict[str, str], source: dict[str, Any]
) -> None:
    for changes in ({}, {"name": "orders", "connection": {"password": "s3cret"}}):
        response = patch(client, source["id"], changes, admin)
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == '"1"'
        assert response.json()["updated_at"] == source["updated_at"]


def test_a_name_or_tags_spelled_in_nfd_change_nothing(
    client: TestClient[Any], make_token: Token, admin: dict[str, str]
) -> None:
    writer = bearer(make_token("sources:read", "sources:write"))
    created = client.post(
        "/v1/sources", json=body(name="caf\u00e9", tags=["r\u00e9sum\u00e9"]), headers=admin
    ).json()
    nfd = {"name": "cafe\u0301", "tags": ["re\u0301sume\u0301"]}
    for condition in ({"If-Match": '"1"'}, {"If-Match": '"1"'}, {}):
        same = patch(client, created["id"], nfd, {**writer, **condition})
        assert same.status_code == 200, same.text
        assert same.headers["etag"] == '"1"'
        assert (same.json()["name"], same.json()["tags"]) == ("caf\u00e9", ["r\u00e9sum\u00e9"])
    trail = events(client, admin, f"?source_id={created['id']}")
    assert [e["action"] for e in trail] == ["source.registered"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ('{"name": ', "body"),
        ("[1, 2]", "body"),
        ('"text"', "body"),
        ({"id": "x"}, "id"),
        ({"registered_at": "2020-01-01T00:00:00Z"}, "registered_at"),
        ({"version": 9}, "version"),
        ({"name": 5}, "name"),
        ({"tags": "x"}, "tags"),
        ({"description": ["x"]}, "description"),
        ({"connection": {"host": None}}, "connection.host"),
        ({"connection": {"nope": 1}}, "connection.nope"),
        ({"connection": {"port": "5432"}}, "connection.port"),
        ({"connection": "x"}, "connection"),
    ],
)
def test_bad_patches_are_400_naming_the_field_and_change_nothing(
    client: TestClient[Any], admin: dict[str, str], source: dict[str, Any], changes: Any, field: str
) -> None:
    problem = assert_problem(patch(client, source["id"], changes, admin), 400)
    assert field in [e["field"] for e in problem["errors"]]
    if field in ("id", "registered_at", "version"):
        assert "read-only" in problem["errors"][0]["message"]
    assert client.get(f"/v1/sources/{source['id']}", headers=admin).json() == {
        **source,
        "connection": {**source["connection"]},
    }


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_another_content_type_is_415(
    client: TestClient[Any], admin: dict[str, str], source: dict[str, Any], content_type: str
) -> None:
    assert_problem(patch(client, source["id"], {"description": "x"}, admin, content_type), 415)


def test_a_patch_over_64_kib_is_413(
    client: TestClient[Any], admin: dict[str, str], source: dict[str, Any]
) -> None:
    huge = {"description": "x" * (65 * 1024)}
    assert_problem(patch(client, source["id"], huge, admin), 413)


def test_a_taken_name_is_409_and_an_unknown_id_404(
    client: TestClient[Any], admin: dict[str, str], source: dict[str, Any]
) -> None:
    client.post("/v1/sources", json=body(name="other"), headers=admin)
    assert_problem(patch(client, source["id"], {"name": "other"}, admin), 409)
    for unknown in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        assert_problem(patch(client, unknown, {"description": "x"}, admin), 404)


def test_if_match_makes_patch_and_delete_conditional(
    client: TestClient[Any], admin: dict[str, str], source: dict[str, Any]
) -> None:
    sid = source["id"]
    first = patch(client, sid, {"description": "a"}, {**admin, "If-Match": '"1"'})
    assert first.status_code == 200, first.text
    stale = assert_problem(
        patch(client, sid, {"description": "b"}, {**admin, "If-Match": '"1"'}), 412
    )
    assert stale["current_version"] == 2
    assert client.get(f"/v1/sources/{sid}", headers=admin).json()["description"] == "a"
    assert patch(client, sid, {"description": "c"}, {**admin, "If-Match": "*"}).status_code == 200
    for bad in ("3", "W/3", "garbage"):
        problem = assert_problem(
            patch(client, sid, {"description": "d"}, {**admin, "If-Match": bad}), 400
        )
        assert problem["errors"][0]["field"] == "If-Match"
    # A weak tag never matches, even the current version's.
    for weak in ('W/"3"', 'W/"1", W/"3"'):
        weakly = patch(client, sid, {"description": "d"}, {**admin, "If-Match": weak})
        assert assert_problem(weakly, 412)["current_version"] == 3
        refused = client.delete(f"/v1/sources/{sid}", headers={**admin, "If-Match": weak})
        assert assert_problem(refused, 412)["current_version"] == 3
    gone = client.delete(f"/v1/sources/{sid}", headers={**admin, "If-Match": '"2"'})
    assert assert_problem(gone, 412)["current_version"] == 3
    assert_problem(client.delete(f"/v1/sources/{sid}", headers={**admin, "If-Match": "x"}), 400)
    assert (
        client.delete(f"/v1/sources/{sid}", headers={**admin, "If-Match": '"3"'}).status_code == 204
    )
    assert_problem(client.get(f"/v1/sources/{sid}", headers=admin), 404)


def test_patch_needs_the_write_scope(
    client: TestClient[Any], make_token: Token, source: dict[str, Any]
) -> None:
    reader = bearer(make_token("sources:read"))
    assert_problem(patch(client, source["id"], {"description": "x"}, reader), 403)
    assert_problem(patch(client, source["id"], {"description": "x"}, {}), 401)


# --- connection tests and verify ---------------------------------------------------------


def closed_port() -> int:
    """A loopback port nobody listens on (refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_postgres(port: int, **changes: Any) -> dict[str, Any]:
    connection = {"host": "127.0.0.1", "port": port, "dbname": "d", "user": "u", "table": "t"}
    return {"name": "local", "source_type": "postgres", "connection": {**connection, **changes}}


def assert_check(response: Any, ok: bool, reason: str | None) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert list(result) == ["ok", "reason", "detail", "elapsed_ms", "checked_at"]
    assert (result["ok"], result["reason"]) == (ok, reason)
    assert result["elapsed_ms"] >= 0
    assert TIMESTAMP.match(result["checked_at"])
    return result


def test_connection_tests_of_csv_sources(
    client: TestClient[Any], make_token: Token, admin: dict[str, str], settings: Settings
) -> None:
    Path(settings.csv_root, "a.csv").write_text("id,name\n1,x\n", encoding="utf-8")
    csv = {"name": "a", "source_type": "csv", "connection": {"path": "a.csv"}}
    saved = client.post("/v1/sources", json=csv, headers=admin).json()
    reader = bearer(make_token("sources:read"))
    assert_check(client.post(f"/v1/sources/{saved['id']}/test", headers=reader), True, None)
    Path(settings.csv_root, "a.csv").unlink()
    assert_check(
        client.post(f"/v1/sources/{saved['id']}/test", headers=reader), False, "file_not_found"
    )
    assert_problem(client.post("/v1/sources/test", json=csv, headers=reader), 403)
    missing = {"source_type": "csv", "connection": {"path": "b.csv"}}
    assert_check(
        client.post("/v1/sources/test", json=missing, headers=admin), False, "file_not_found"
    )
    assert_problem(
        client.post(
            "/v1/sources/test", json={**missing, "connection": {"path": "/etc"}}, headers=admin
        ),
        400,
    )
    assert_problem(
        client.post("/v1/sources/test", json={"source_type": "x", "connection": {}}, headers=admin),
        400,
    )
    assert_problem(
        client.post("/v1/sources/00000000-0000-0000-0000-000000000000/test", headers=admin), 404
    )
    # Nothing was stored by testing.
    assert [s["name"] for s in client.get("/v1/sources", headers=admin).json()] == ["a"]


def test_a_refused_postgres_connection_tests_unreachable_without_the_secret(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    candidate = local_postgres(closed_port(), password="hunter2")
    result = assert_check(
        client.post("/v1/sources/test", json=candidate, headers=admin), False, "unreachable"
    )
    assert "hunter2" not in json.dumps(result)


def test_verify_refuses_a_failing_source_with_422_and_stores_nothing(
    client: TestClient[Any], admin: dict[str, str], orders_table: dict[str, Any]
) -> None:
    failing = local_postgres(closed_port())
    problem = assert_problem(
        client.post("/v1/sources?verify=true", json=failing, headers=admin), 422
    )
    assert problem["reason"] == "unreachable"
    assert client.get("/v1/sources", headers=admin).json() == []
    good = {"name": "live", "source_type": "postgres", "connection": orders_table}
    created = client.post("/v1/sources?verify=true", json=good, headers=admin)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert_check(client.post(f"/v1/sources/{sid}/test", headers=admin), True, None)
    broken = patch(
        client, sid, {"connection": {"table": "no_such_table"}}, admin, query="?verify=true"
    )
    assert assert_problem(broken, 422)["reason"] == "table_not_found"
    assert client.get(f"/v1/sources/{sid}", headers=admin).json()["version"] == 1
    renamed = patch(client, sid, {"name": "live-2"}, admin, query="?verify=true")
    assert renamed.status_code == 200, renamed.text
    assert_problem(patch(client, sid, {}, admin, query="?verfy=true"), 400)


# --- a kept secret follows its target ----------------------------------------------------


@pytest.fixture
def listener() -> Any:
    """A loopback address and port that accepts connections and tells whether one came."""
    with socket.socket() as server:
        server.bind(("127.0.0.5", 0))
        server.listen(8)
        server.setblocking(False)

        def reached() -> bool:
            try:
                server.accept()[0].close()
            except BlockingIOError:
                return False
            return True

        yield server.getsockname()[1], reached


@pytest.mark.parametrize("query", ["", "?verify=true"])
@pytest.mark.parametrize("kept", [{}, {"password": "********"}])
def test_a_write_key_cannot_send_a_kept_password_to_a_new_target(
    client: TestClient[Any],
    make_token: Token,
    admin: dict[str, str],
    source: dict[str, Any],
    listener: Any,
    query: str,
    kept: dict[str, Any],
) -> None:
    port, reached = listener
    sid = source["id"]
    moved = {"connection": {"host": "127.0.0.5", "port": port, **kept}}
    for scopes in (("sources:write",), ("sources:read", "sources:write")):
        problem = assert_problem(
            patch(client, sid, moved, bearer(make_token(*scopes)), query=query), 400
        )
        assert [e["field"] for e in problem["errors"]] == ["connection.password"]
        assert "s3cret" not in json.dumps(problem)
    # Nothing stored, nothing recorded, nothing tested: no connection reached the new target.
    reader = bearer(make_token("sources:read"))
    assert client.get(f"/v1/sources/{sid}", headers=reader).json()["version"] == 1
    assert [e["action"] for e in events(client, admin, f"?source_id={sid}")] == [
        "source.registered"
    ]
    assert_check(client.post(f"/v1/sources/{sid}/test", headers=admin), False, "unreachable")
    assert not reached()


def test_a_new_target_keeps_the_password_if_sent_again_or_for_a_key_with_secrets(
    client: TestClient[Any], make_token: Token, admin: dict[str, str], source: dict[str, Any]
) -> None:
    sid = source["id"]
    writer = bearer(make_token("sources:write"))
    again = {"connection": {"user": "other", "password": "s3cret"}}
    assert patch(client, sid, again, writer).status_code == 200
    trusted = bearer(make_token("sources:write", "sources:secrets"))
    assert patch(client, sid, {"connection": {"dbname": "elsewhere"}}, trusted).status_code == 200
    # Other fields are no target: any writer changes them, the password staying.
    assert patch(client, sid, {"connection": {"table": "t2"}}, writer).status_code == 200
    clear = client.get(f"/v1/sources/{sid}", headers=admin).json()
    assert (clear["version"], clear["connection"]["password"]) == (4, "s3cret")
    assert (clear["connection"]["user"], clear["connection"]["dbname"]) == ("other", "elsewhere")


# --- the answer of a PATCH: as a GET by the same key --------------------------------------


@pytest.mark.parametrize("changes", [{}, {"description": "new"}])
def test_a_patch_answers_a_key_without_read_only_the_version(
    client: TestClient[Any],
    make_token: Token,
    admin: dict[str, str],
    source: dict[str, Any],
    changes: dict[str, Any],
) -> None:
    sid = source["id"]
    for scopes in (("sources:write", "sources:secrets"), ("sources:write",)):
        key = bearer(make_token(*scopes))
        assert_problem(client.get(f"/v1/sources/{sid}", headers=key), 403)
        response = patch(client, sid, changes, key)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert list(answer) == ["id", "version", "updated_at"]
        assert (answer["id"], response.headers["etag"]) == (sid, f'"{answer["version"]}"')
        assert TIMESTAMP.match(answer["updated_at"])
        assert "s3cret" not in response.text
    trail = [e["action"] for e in events(client, admin, f"?source_id={sid}")]
    assert "source.secrets_read" not in trail


def test_a_patch_shows_secrets_as_a_get_does_and_records_it(
    client: TestClient[Any], make_token: Token, admin: dict[str, str], source: dict[str, Any]
) -> None:
    sid = source["id"]
    trusted = bearer(make_token("sources:read", "sources:write", "sources:secrets"))
    shown = patch(client, sid, {}, trusted)
    assert shown.status_code == 200, shown.text
    assert shown.json() == client.get(f"/v1/sources/{sid}", headers=trusted).json()
    assert shown.json()["connection"]["password"] == "s3cret"
    masked = patch(
        client, sid, {"description": "x"}, bearer(make_token("sources:read", "sources:write"))
    )
    assert masked.json()["connection"]["password"] == "********"
    trail = events(client, admin, f"?source_id={sid}")
    assert [e["action"] for e in trail] == [
        "source.registered",
        "source.secrets_read",  # the PATCH
        "source.secrets_read",  # the GET
        "source.updated",
    ]
    assert trail[1]["changed"] == ["connection.password"]
    assert trail[1]["actor"] == trail[2]["actor"] != source["registered_by"]


# --- audit trail --------------------------------------------------------------------------


def events(
    client: TestClient[Any], headers: dict[str, str], query: str = ""
) -> list[dict[str, Any]]:
    response = client.get(f"/v1/events{query}", headers=headers)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_every_change_is_in_the_trail_with_paths_never_values(
    client: TestClient[Any], make_token: Token, admin: dict[str, str], source: dict[str, Any]
) -> None:
    sid = source["id"]
    patch(client, sid, {"connection": {"password": "n3w-s3cret"}, "tags": []}, admin)
    client.get(f"/v1/sources/{sid}", headers=admin)  # shows the password in clear
    client.get(f"/v1/sources/{sid}", headers=bearer(make_token("sources:read")))  # masked
    client.delete(f"/v1/sources/{sid}", headers=admin)
    trail = events(client, admin, f"?source_id={sid}")
    assert [e["action"] for e in trail] == [
        "source.registered",
        "source.updated",
        "source.secrets_read",  # the PATCH's answer showed the new password
        "source.secrets_read",
        "source.deleted",
    ]
    assert trail[1]["changed"] == ["tags", "connection.password"]
    assert {e["source_name"] for e in trail} == {"orders"}
    assert {e["actor"] for e in trail} == {source["registered_by"]}
    text = client.get("/v1/events", headers=admin).text
    assert "s3cret" not in text
    assert "n3w-s3cret" not in text
    assert list(trail[0]) == [
        "id",
        "at",
        "actor",
        "action",
        "source_id",
        "source_name",
        "key_id",
        "changed",
        "breaking",
        "reason",
        "webhook_id",
    ]


def test_events_need_the_audit_scope_which_a_key_without_scopes_has(
    client: TestClient[Any], make_token: Token
) -> None:
    assert_problem(
        client.get(
            "/v1/events",
            headers=bearer(make_token("sources:read", "sources:write", "sources:secrets")),
        ),
        403,
    )
    assert events(client, bearer(make_token("audit:read")))
    assert events(client, bearer(make_token()))


def test_events_filter_and_page_like_the_list(
    client: TestClient[Any], make_token: Token, admin: dict[str, str]
) -> None:
    other = bearer(make_token())
    for i in range(5):
        client.post("/v1/sources", json=body(name=f"s{i}"), headers=admin if i % 2 else other)
    everything = events(client, admin)
    assert [e["at"] for e in everything] == sorted(e["at"] for e in everything)
    mine = events(client, admin, f"?actor={public(admin['Authorization'].split()[1])}")
    assert [e["source_name"] for e in mine] == ["s1", "s3"]
    registered = events(client, admin, "?action=source.registered")
    assert len(registered) == 5
    assert events(client, admin, "?since=2999-01-01T00:00:00Z") == []
    assert len(events(client, admin, f"?since={everything[0]['at']}")) == len(everything)
    pages, url = [], "/v1/events?action=source.registered&limit=2"
    while url:
        response = client.get(url, headers=admin)
        pages.append(response.json())
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else ""
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e for p in pages for e in p] == registered
    for query in (
        "?action=nope",
        "?since=yesterday",
        "?source_id=x",
        "?limit=0",
        "?cursor=x",
        "?actors=x",
    ):
        assert_problem(client.get(f"/v1/events{query}", headers=admin), 400)
    assert_problem(client.delete("/v1/events", headers=admin), 405)
