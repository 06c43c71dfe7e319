"""The OpenAPI document: complete, and the server never contradicts it (schemathesis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from litestar.testing import TestClient
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from domain.events import Action
from entrypoints.container import Container
from entrypoints.http.app import create_app

EXPECTED_STATUSES = {
    ("/v1/sources", "post"): {"201", "400", "401", "403", "409", "413", "422", "503"},
    ("/v1/sources", "get"): {"200", "400", "401", "403", "503"},
    ("/v1/sources/{source_id}", "get"): {"200", "400", "401", "403", "404", "503"},
    ("/v1/sources/{source_id}", "delete"): {"204", "400", "401", "403", "404", "412", "503"},
    ("/v1/sources/{source_id}", "patch"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "412",
        "413",
        "415",
        "422",
        "503",
    },
    ("/v1/sources/{source_id}/test", "post"): {"200", "400", "401", "403", "404", "503"},
    ("/v1/sources/test", "post"): {"200", "400", "401", "403", "413"},
    ("/v1/events", "get"): {"200", "400", "401", "403", "503"},
    ("/v1/sources/{source_id}/schema", "get"): {"200", "400", "401", "403", "404", "503"},
    ("/v1/sources/{source_id}/schema/history", "get"): {"200", "400", "401", "403", "404", "503"},
    ("/v1/keys", "post"): {"201", "400", "401", "403", "409", "413", "415", "503"},
    ("/v1/keys", "get"): {"200", "400", "401", "403", "503"},
    ("/v1/keys/{key_id}", "get"): {"200", "400", "401", "403", "404", "503"},
    ("/v1/keys/{key_id}", "delete"): {"204", "400", "401", "403", "404", "503"},
    ("/v1/keys/{key_id}/rotate", "post"): {
        "201",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "503",
    },
}


def test_the_document_names_the_bearer_scheme_and_every_status(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    assert document["components"]["securitySchemes"]["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `tdbk_<key_id>_<secret>`",
    }
    assert document["security"] == [{"BearerToken": []}]
    for (path, method), statuses in EXPECTED_STATUSES.items():
        operation = document["paths"][path][method]
        assert statuses <= set(operation["responses"]), (path, method)
        for status in statuses - {"200", "201", "204"}:
            content = operation["responses"][status]["content"]
            assert "application/problem+json" in content, (path, method, status)
    assert document["paths"]["/v1/sources"]["post"]["responses"]["201"]["headers"]["Location"]
    one = document["paths"]["/v1/sources/{source_id}"]
    assert one["get"]["responses"]["200"]["headers"]["ETag"]
    assert one["patch"]["responses"]["200"]["headers"]["ETag"]
    assert set(one["patch"]["requestBody"]["content"]) == {
        "application/merge-patch+json",
        "application/json",
    }
    for method in ("patch", "delete"):
        headers = {p["name"] for p in one[method]["parameters"] if p["in"] == "header"}
        assert "If-Match" in headers, method
    for path in ("/v1/sources", "/v1/sources/{source_id}"):
        method = "post" if path == "/v1/sources" else "patch"
        query = {p["name"] for p in document["paths"][path][method]["parameters"]}
        assert "verify" in query
    assert document["paths"]["/v1/events"]["get"]["responses"]["200"]["headers"]["Link"]
    assert document["paths"]["/healthz"]["get"]["security"] == [{}]


# Rules no schema can state, which the document gives in words: a cursor is one this server
# issued; a CSV path names a file under the CSV root, an encoding is one Python knows, a delimiter
# is one character other than a quote or a newline; a host is a name or an address (ASCII) that
# the outbound policy allows; a webhook's URL is https, or http to loopback, to a host the policy
# allows. A 400 naming only such fields is the server keeping such a rule.
UNSCHEMATIC = {
    "url",
    "cursor",
    "connection.path",
    "connection.encoding",
    "connection.delimiter",
    "connection.host",
}


def _unschematic_400(response: Any) -> bool:
    if response.status_code != 400:
        return False
    errors = response.json().get("errors") or [{"field": None}]
    return {error["field"] for error in errors} <= UNSCHEMATIC


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_the_server_never_contradicts_its_document(
    container: Container, make_token: Any, mode: GenerationMode
) -> None:
    """Generated requests for every operation, valid and invalid, with every check: no server
    error, valid input accepted, invalid input rejected, and no response (status, headers, body)
    that the document does not describe.

    A schema-valid request may still break a rule that no schema states (`UNSCHEMATIC`): its 400
    is checked like any response, but not held to be an acceptance. Connection tests and
    `verify=true` are left out: they would connect to generated hosts, and tests send traffic
    to loopback only (they have their own).
    """
    schema: schemathesis.BaseSchema = schemathesis.openapi.from_asgi(
        "/schema/openapi.json", create_app(container)
    )
    # Connection tests and `verify=true` connect to the generated host: tests reach only loopback.
    schema = schema.exclude(path_regex=r"/test$")
    headers = {"Authorization": f"Bearer {make_token()}"}

    @given(case=schema.as_strategy(mode))
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        if case.query and "verify" in case.query:
            # A negative case may be negative only through `verify`, which cannot be sent.
            if mode is GenerationMode.NEGATIVE:
                reject()
            del case.query["verify"]
        response = case.call(headers=headers)
        unschematic = mode is GenerationMode.POSITIVE and _unschematic_400(response)
        excluded = [positive_data_acceptance] if unschematic else []
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    check()


def test_the_registration_body_is_documented_per_connector(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    body = document["paths"]["/v1/sources"]["post"]["requestBody"]["content"]["application/json"]
    shapes = {s["properties"]["source_type"]["enum"][0]: s for s in body["schema"]["oneOf"]}
    assert set(shapes) == {"csv", "jsonl", "mysql", "parquet", "postgres"}
    postgres = shapes["postgres"]["properties"]["connection"]
    assert set(postgres["required"]) == {"host", "dbname", "user", "table"}
    assert postgres["properties"]["port"] == {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 65535,
        "default": 5432,
        "description": "The server's TCP port",
    }
    assert postgres["properties"]["host"] == {
        "type": "string",
        "minLength": 1,
        "description": "The server's host name or address",
    }
    assert "secret" in postgres["properties"]["password"]["description"]
    assert postgres["additionalProperties"] is False
    assert shapes["csv"]["properties"]["connection"]["required"] == ["path"]


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_served_document_is_valid_openapi_3_1(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in OpenAPIV31SpecValidator(document).iter_errors()
    ]
    assert errors == []


def test_every_error_response_is_a_problem(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    errors = 0
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (path, method, status)
    assert errors > 40


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    return schema


def test_ids_and_times_have_one_type_in_every_model(client: TestClient[Any]) -> None:
    schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]
    ids = {
        "SourceRecord": ["id"],
        "SourceListItem": ["id"],
        "SourceStampOut": ["id"],
        "SchemaOut": ["source_id"],
        "EventOut": ["id", "source_id"],
    }
    times = {
        "SourceRecord": ["registered_at", "updated_at"],
        "SourceListItem": ["registered_at"],
        "SourceStampOut": ["updated_at"],
        "EventOut": ["at"],
        "SchemaOut": ["inspected_at"],
        "SnapshotOut": ["observed_at"],
        "ConnectionCheckOut": ["checked_at"],
    }
    for kind, fields in (("uuid", ids), ("date-time", times)):
        for model, names in fields.items():
            for name in names:
                schema = schemas[model]["properties"][name]
                # An optional one (EventOut.source_id) is the same type or null.
                variants = schema.get("oneOf", [schema])
                formats = {v.get("format") for v in variants if v.get("type") != "null"}
                assert formats == {kind}, (model, name, schema)


def test_each_model_and_enum_is_one_component(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    # A merge patch's two media types name one model (a generator would make one per media type).
    for path in ("/v1/sources/{source_id}", "/v1/webhooks/{webhook_id}"):
        patch = document["paths"][path]["patch"]["requestBody"]["content"]
        refs = {media: content["schema"] for media, content in patch.items()}
        assert set(refs) == {"application/merge-patch+json", "application/json"}, path
        assert len({json.dumps(ref) for ref in refs.values()}) == 1, path
        assert "$ref" in next(iter(refs.values())), path
    text = json.dumps(document)
    assert text.count('"verify-full"') == 1
    actions = sorted(a.value for a in Action)
    events = document["paths"]["/v1/events"]["get"]
    action = next(p for p in events["parameters"] if p["name"] == "action")
    assert sorted(_resolve(document, action["schema"])["enum"]) == actions
    out = document["components"]["schemas"]["EventOut"]["properties"]["action"]
    assert sorted(_resolve(document, out)["enum"]) == actions
    assert action["schema"] == out == {"$ref": "#/components/schemas/Action"}


def test_query_parameters_have_their_plain_type(client: TestClient[Any]) -> None:
    """A query value is never null: no `oneOf [T, null]`, which one value can match twice."""
    document = client.get("/schema/openapi.json").json()
    queries = 0
    for path, method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                queries += 1
                schema = _resolve(document, parameter["schema"])
                assert "oneOf" not in schema, (path, method, parameter)
                assert "anyOf" not in schema, (path, method, parameter)
                assert "null" not in json.dumps(schema.get("type")), (path, method, parameter)
                for bound in ("minimum", "maximum"):
                    assert type(schema.get(bound, 0)) is int, (path, method, parameter)
    assert queries >= 10
    listing = document["paths"]["/v1/sources"]["get"]["parameters"]
    tag = next(p for p in listing if p["name"] == "tag")
    assert {k: v for k, v in tag["schema"].items() if k != "description"} == {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 100},
        "maxItems": 50,
    }
