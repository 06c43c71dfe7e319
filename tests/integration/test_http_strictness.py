"""Malformed requests are client errors (4xx, problem+json), never a 500 nor a silent guess."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from tests.builders import SEED_BODY, assert_problem, post_source
from tests.integration.conftest import Token

JSON = {"Content-Type": "application/json"}


def _post(client: TestClient[Any], headers: dict[str, str], content: bytes, **extra: str) -> Any:
    return client.post("/v1/sources", content=content, headers={**headers, **extra})


# --- bodies -------------------------------------------------------------------------------


def test_invalid_utf8_inside_a_json_string_is_400(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    body = json.dumps({**SEED_BODY, "name": "@"}).encode().replace(b"@", b"\xff")
    problem = assert_problem(_post(client, admin, body, **JSON), 400)
    assert problem["errors"] == [{"field": "body", "message": "is not valid UTF-8"}]


_NOT_UTF8 = json.dumps({**SEED_BODY, "name": "@"}).encode().replace(b"@", b"\xff")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_NOT_UTF8, "is not valid UTF-8"),
        (b'{"\xff": 1}', "is not valid UTF-8"),
        (b"\xff", "is not valid UTF-8"),
        (b'{"name": "orders",', "is not valid JSON"),
        (b'{"name": "orders"} x', "is not valid JSON"),
    ],
)
def test_a_body_that_is_not_json_gets_one_400_on_every_route_that_takes_one(
    client: TestClient[Any], admin: dict[str, str], content: bytes, message: str
) -> None:
    source = client.post("/v1/sources", json=SEED_BODY, headers=admin).json()
    for method, url, kind in (
        ("POST", "/v1/sources", JSON),
        ("POST", "/v1/sources/test", JSON),
        ("PATCH", f"/v1/sources/{source['id']}", JSON),
        ("PATCH", f"/v1/sources/{source['id']}", {"Content-Type": "application/merge-patch+json"}),
    ):
        response = client.request(method, url, content=content, headers={**admin, **kind})
        problem = assert_problem(response, 400)
        assert problem["type"] == "urn:tdb:problem:invalid-input", (method, url)
        assert problem["errors"] == [{"field": "body", "message": message}], (method, url)
    assert client.get(f"/v1/sources/{source['id']}", headers=admin).json()["version"] == 1


# Every example is refused before it changes anything: one client serves them all.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    depth=st.integers(min_value=900, max_value=8_000),
    where=st.sampled_from(["description", "connection", "tags", "top"]),
    opener=st.sampled_from(["[", '{"a":']),
)
def test_deep_nesting_in_a_small_body_is_400(
    client: TestClient[Any], admin: dict[str, str], depth: int, where: str, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    if where == "top":
        content = nested
    else:
        content = json.dumps({**SEED_BODY, where: "@"}).replace('"@"', nested)
    assert len(content) < 64 * 1024
    assert_problem(_post(client, admin, content.encode(), **JSON), 400)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "garbage", "application/x-www-form-urlencoded", "application/jsonx",
     "application/json; charset=latin-1", "multipart/form-data; boundary=x"],
)  # fmt: skip
def test_a_body_not_sent_as_json_is_415(
    client: TestClient[Any], admin: dict[str, str], content_type: str | None
) -> None:
    headers = dict(admin) if content_type is None else {**admin, "Content-Type": content_type}
    response = client.post("/v1/sources", content=json.dumps(SEED_BODY).encode(), headers=headers)
    problem = assert_problem(response, 415)
    assert "application/json" in problem["detail"]
    assert client.get("/v1/sources", headers=admin).json() == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=UTF-8", "application/json;"]
)
def test_json_with_or_without_a_utf8_charset_is_accepted(
    client: TestClient[Any], admin: dict[str, str], content_type: str
) -> None:
    response = _post(
        client, admin, json.dumps(SEED_BODY).encode(), **{"Content-Type": content_type}
    )
    assert response.status_code == 201, response.text


# --- query strings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["limit=1&limit=2", "limit=1e3", "limit=+5", "limit=1.0", "limit= 5", "cursor=a&cursor=b",
     "source_type=csv&source_type=postgres", "name_prefix=a&name_prefix=b"],
)  # fmt: skip
def test_repeated_scalars_and_non_digit_integers_are_400(
    client: TestClient[Any], admin: dict[str, str], query: str
) -> None:
    problem = assert_problem(client.get(f"/v1/sources?{query}", headers=admin), 400)
    assert [e["field"] for e in problem["errors"]] == [query.partition("=")[0]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("tag=", "must be 1 to 100 characters long"),
        ("tag=a&tag=" + "x" * 101, "must be 1 to 100 characters long"),
        ("&".join(f"tag=t{i}" for i in range(51)), "may be given at most 50 times"),
    ],
)
def test_a_tag_filter_is_held_to_the_tags_bounds(
    client: TestClient[Any], admin: dict[str, str], query: str, message: str
) -> None:
    problem = assert_problem(client.get(f"/v1/sources?{query}", headers=admin), 400)
    assert problem["errors"] == [{"field": "tag", "message": message}]


def test_tag_may_repeat(client: TestClient[Any], admin: dict[str, str]) -> None:
    assert _post(client, admin, json.dumps(SEED_BODY).encode(), **JSON).status_code == 201
    found = client.get("/v1/sources?tag=production&tag=finance&limit=10", headers=admin)
    assert [s["name"] for s in found.json()] == ["orders"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ""), ("GET", "/schema"), ("POST", "/test"), ("DELETE", "")],
)
def test_an_unknown_query_parameter_is_400_on_every_route(
    client: TestClient[Any], admin: dict[str, str], method: str, path: str
) -> None:
    source = post_source(client, admin, "orders")
    response = client.request(method, f"/v1/sources/{source['id']}{path}?verfy=1", headers=admin)
    problem = assert_problem(response, 400)
    assert problem["errors"] == [{"field": "verfy", "message": "is not a known query parameter"}]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("/v1/sources?limit=abc", "must be an integer between 1 and 1000"),
        ("/v1/sources?limit=0", "must be an integer between 1 and 1000"),
        ("/v1/events?limit=abc", "must be an integer between 1 and 1000"),
        ("/v1/events?limit=1001", "must be an integer between 1 and 1000"),
        ("/v1/sources/{id}/schema/history?limit=x", "must be an integer between 1 and 1000"),
        ("/v1/sources/{id}?verify=yes", "must be true or false (or 1 or 0)"),
    ],
)
def test_a_bad_query_value_is_named_in_the_api_s_words(
    client: TestClient[Any], admin: dict[str, str], query: str, message: str
) -> None:
    source = post_source(client, admin, "orders")
    method = "PATCH" if "verify" in query else "GET"
    response = client.request(
        method, query.format(id=source["id"]), headers={**admin, **JSON}, content=b"{}"
    )
    problem = assert_problem(response, 400)
    field = query.rpartition("?")[2].partition("=")[0]
    assert problem["errors"] == [{"field": field, "message": message}]


def test_register_names_the_values_verify_takes(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    response = client.post("/v1/sources?verify=yes", json=SEED_BODY, headers=admin)
    problem = assert_problem(response, 400)
    message = "must be true or false (or 1 or 0)"
    assert problem["errors"] == [{"field": "verify", "message": message}]


# --- scopes -------------------------------------------------------------------------------


def test_a_403_names_the_scope_as_written(client: TestClient[Any], make_token: Token) -> None:
    reader = {"Authorization": f"Bearer {make_token('sources:read')}"}
    problem = assert_problem(client.post("/v1/sources", json=SEED_BODY, headers=reader), 403)
    assert problem["detail"] == "This API key lacks the scope sources:write."
    assert problem["required_scope"] == "sources:write"


@pytest.mark.parametrize("source_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_the_scope_is_checked_before_the_id_is_parsed(
    client: TestClient[Any], make_token: Token, source_id: str
) -> None:
    reader = {"Authorization": f"Bearer {make_token('sources:read')}"}
    writer = {"Authorization": f"Bearer {make_token('sources:write')}"}
    assert_problem(client.delete(f"/v1/sources/{source_id}", headers=reader), 403)
    assert_problem(client.get(f"/v1/sources/{source_id}", headers=writer), 403)
    assert_problem(client.get(f"/v1/sources/{source_id}/schema", headers=writer), 403)
    assert_problem(client.delete(f"/v1/sources/{source_id}", headers=writer), 404)


# --- the OpenAPI pages --------------------------------------------------------------------


def test_the_openapi_ui_loads_nothing_from_another_host(client: TestClient[Any]) -> None:
    for page in ("/schema", "/schema/swagger"):
        html = client.get(page).text
        assert "SwaggerUIBundle" in html
        assert "https://" not in html.split("spec:")[0]
        for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
            url = f"/schema/swagger/assets/{asset}"
            assert url in html
            response = client.get(url)
            assert response.status_code == 200
            assert len(response.content) > 10_000
    assert client.get("/schema/openapi.json").json()["openapi"].startswith("3.")


@pytest.mark.parametrize(
    "path",
    ["/schema/redoc", "/schema/elements", "/schema/rapidoc", "/schema/openapi.yaml",
     "/schema/nothing", "/schema/swagger/assets/../../../etc/passwd", "/schema/swagger/assets/x",
     "/nothing", "/v1/nothing"],
)  # fmt: skip
def test_every_404_is_problem_json(client: TestClient[Any], path: str) -> None:
    assert_problem(client.get(path), 404)


# --- names and tags -----------------------------------------------------------------------


def test_a_name_in_another_normal_form_is_the_same_name(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    first = client.post("/v1/sources", json={**SEED_BODY, "name": "caf\u00e9"}, headers=admin)
    assert first.status_code == 201
    again = client.post("/v1/sources", json={**SEED_BODY, "name": "cafe\u0301"}, headers=admin)
    assert_problem(again, 409)
    found = client.get("/v1/sources?name_prefix=cafe\u0301", headers=admin).json()
    assert [s["name"] for s in found] == ["caf\u00e9"]


@pytest.mark.parametrize(
    "changes",
    [{"name": "\u200b\u200b"}, {"name": "\u2800"}, {"name": "\u3164"}, {"name": "\ufeff \u00ad"},
     {"name": "invoice\u202egpj.exe"}, {"name": "a\u2066b"}, {"tags": ["a", "a"]},
     {"tags": ["t\x1b[2J"]}, {"tags": ["caf\u00e9", "cafe\u0301"]}],
)  # fmt: skip
def test_invisible_names_bidi_controls_and_bad_tags_are_400(
    client: TestClient[Any], admin: dict[str, str], changes: dict[str, Any]
) -> None:
    problem = assert_problem(
        client.post("/v1/sources", json={**SEED_BODY, **changes}, headers=admin), 400
    )
    assert problem["errors"][0]["field"].startswith(next(iter(changes)))
