"""The request bodies every entrypoint decodes: typed fields out, or a 400 naming the fields."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from application.sources import ABSENT, SourcePatch
from domain.errors import FieldError, InvalidInput
from entrypoints.requests import (
    READ_ONLY,
    ConnectionTestRequest,
    RegisterSourceRequest,
    decode_patch,
    update_command,
)
from tests.builders import ADMIN

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
BODY: dict[str, Any] = {
    "name": "orders",
    "source_type": "csv",
    "connection": {"path": "orders.csv"},
    "description": "Order records",
    "tags": ["finance"],
}
FIELDS = sorted(BODY)
TEST_BODY = {k: v for k, v in BODY.items() if k != "name"}


def _fields(caught: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [e.field for e in caught.value.errors]


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# --- registration ---------------------------------------------------------------------------


def test_a_registration_body_decodes_to_a_typed_command() -> None:
    command = RegisterSourceRequest.decode(BODY).command(ADMIN, verify=True)
    assert (command.name, command.source_type, command.description) == (
        "orders",
        "csv",
        "Order records",
    )
    assert command.tags == ("finance",)
    assert dict(command.connection) == {"path": "orders.csv"}
    assert (command.actor, command.verify) == (ADMIN, True)


def test_optional_fields_left_out_or_null_take_their_defaults() -> None:
    required = {k: BODY[k] for k in ("name", "source_type", "connection")}
    for body in (required, {**required, "description": None, "tags": None}):
        command = RegisterSourceRequest.decode(body).command(ADMIN)
        assert (command.description, command.tags) == ("", ())


@pytest.mark.parametrize("body", [[], None, 5, "text", [BODY]])
def test_a_body_that_is_not_an_object_is_named_by_its_root(body: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        RegisterSourceRequest.decode(body)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("body", "must be a JSON object")
    ]
    with pytest.raises(InvalidInput) as caught:
        RegisterSourceRequest.decode(body, root="file")
    assert _fields(caught) == ["file"]


def test_unknown_fields_then_missing_ones_are_named_together_in_order() -> None:
    with pytest.raises(InvalidInput) as caught:
        RegisterSourceRequest.decode({"zz": 1, "colour": 2, "tags": []})
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("colour", "is not a known field"),
        ("zz", "is not a known field"),
        ("connection", "is required"),
        ("name", "is required"),
        ("source_type", "is required"),
    ]


def test_every_field_of_the_wrong_type_is_named_at_once() -> None:
    body = {"name": 5, "source_type": None, "connection": [], "description": 1, "tags": [1, "a", 2]}
    with pytest.raises(InvalidInput) as caught:
        RegisterSourceRequest.decode(body)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("name", "must be a string"),
        ("description", "must be a string"),
        ("tags[0]", "must be a string of 1 to 100 characters"),
        ("tags[2]", "must be a string of 1 to 100 characters"),
        ("source_type", "must be a string"),
        ("connection", "must be an object"),
    ]


def test_rules_on_values_are_the_use_cases_not_the_decoders() -> None:
    # Well typed, however bad: a blank name, repeated tags, a connection its connector refuses.
    body = {**BODY, "name": " ", "tags": ["a", "a"], "connection": {"nope": [1]}}
    command = RegisterSourceRequest.decode(body).command(ADMIN)
    assert (command.name, command.tags, dict(command.connection)) == (
        " ",
        ("a", "a"),
        {"nope": [1]},
    )


@given(field=st.sampled_from(FIELDS), value=JSON)
@settings(max_examples=300)
def test_any_json_value_in_a_field_decodes_or_is_named(field: str, value: Any) -> None:
    typed = {
        "name": isinstance(value, str),
        "source_type": isinstance(value, str),
        "connection": isinstance(value, dict),
        "description": value is None or isinstance(value, str),
        "tags": value is None or _is_string_list(value),
    }
    body = {**BODY, field: value}
    if not typed[field]:
        with pytest.raises(InvalidInput) as caught:
            RegisterSourceRequest.decode(body)
        assert caught.value.errors
        assert all(e.field.startswith(field) for e in caught.value.errors), caught.value.errors
    else:
        command = RegisterSourceRequest.decode(body).command(ADMIN)
        assert isinstance(command.name, str)
        assert isinstance(command.tags, tuple)
        assert isinstance(command.description, str)


def _errors(decode: Any, body: Any) -> list[FieldError]:
    try:
        decode(body)
    except InvalidInput as invalid:
        return list(invalid.errors)
    return []


@given(body=JSON | st.dictionaries(st.sampled_from([*FIELDS, "id", "x"]), JSON))
@example(body={"[": None})  # an unknown field whose name looks like an item's
@settings(max_examples=300)
def test_any_json_value_as_a_body_decodes_or_names_its_fields(body: Any) -> None:
    for decode in (RegisterSourceRequest.decode, ConnectionTestRequest.decode, decode_patch):
        errors = _errors(decode, body)
        if not isinstance(body, dict):
            assert [e.field for e in errors] == ["body"]
        else:
            # A field the body has (`tags[0]`: an item of one), or one it lacks that is required.
            assert {_top_field(e.field, body) for e in errors} <= {*body, *FIELDS}


def _top_field(field: str, body: dict[str, Any]) -> str:
    """The body's field an error names: itself, or the field whose item (`tags[0]`) it is."""
    return field if field in body else re.sub(r"(\[\d+\])+$", "", field)


@given(
    name=st.text(),
    source_type=st.text(),
    connection=st.dictionaries(st.text(), JSON),
    description=st.none() | st.text(),
    tags=st.none() | st.lists(st.text()),
)
def test_well_typed_bodies_decode_to_what_they_hold(
    name: str,
    source_type: str,
    connection: dict[str, Any],
    description: str | None,
    tags: list[str] | None,
) -> None:
    body = {
        "name": name,
        "source_type": source_type,
        "connection": connection,
        "description": description,
        "tags": tags,
    }
    decoded = RegisterSourceRequest.decode(body)
    assert decoded == RegisterSourceRequest(
        name=name,
        source_type=source_type,
        connection=connection,
        description=description or "",
        tags=tuple(tags or ()),
    )
    tested = ConnectionTestRequest.decode(body).command(ADMIN)
    assert (tested.name, tested.description) == (name, description)
    assert tested.tags == (None if tags is None else tuple(tags))


# --- connection test ----------------------------------------------------------------------


def test_a_connection_test_body_may_leave_the_name_out_and_null_means_not_given() -> None:
    for body in (TEST_BODY, {**TEST_BODY, "name": None, "description": None, "tags": None}):
        command = ConnectionTestRequest.decode(body).command(ADMIN)
        assert command.source_type == "csv"
    assert (command.name, command.description, command.tags) == (None, None, None)
    with pytest.raises(InvalidInput) as caught:
        ConnectionTestRequest.decode({"name": "x", "extra": 1})
    assert _fields(caught) == ["extra", "connection", "source_type"]


# --- merge patch ----------------------------------------------------------------------------


def test_a_patch_keeps_absent_fields_apart_from_nulls() -> None:
    assert decode_patch({}) == SourcePatch()
    assert decode_patch({"description": None, "tags": None}) == SourcePatch(
        description=None, tags=None
    )
    patch = decode_patch({"name": "n", "tags": ["a"], "connection": {"port": None, "x": 1}})
    assert patch == SourcePatch(
        name="n", tags=("a",), connection={"port": None, "x": 1}, description=ABSENT
    )


def test_a_patch_names_read_only_and_unknown_fields_sorted() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_patch({"version": 2, "nope": 1, "id": "x", "name": 5})
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("id", "is read-only"),
        ("nope", "is not a known field"),
        ("version", "is read-only"),
    ]
    assert {"id", "source_type", "registered_at", "version", "updated_by"} <= READ_ONLY
    assert not READ_ONLY & {"name", "description", "tags", "connection"}


@pytest.mark.parametrize(
    ("patch", "errors"),
    [
        ({"name": None}, [("name", "is required")]),
        ({"connection": None}, [("connection", "is required")]),
        ({"connection": []}, [("connection", "must be an object")]),
        (
            {"name": 5, "tags": "x", "description": 1},
            [
                ("name", "must be a string"),
                ("description", "must be a string"),
                ("tags", "must be an array of strings"),
            ],
        ),
    ],
)
def test_a_patch_names_each_field_of_the_wrong_type(
    patch: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_patch(patch)
    assert [(e.field, e.message) for e in caught.value.errors] == errors


@given(field=st.sampled_from(["name", "description", "tags", "connection"]), value=JSON)
@settings(max_examples=300)
def test_any_json_value_in_a_patch_field_decodes_or_is_named(field: str, value: Any) -> None:
    typed = {
        "name": isinstance(value, str),
        "description": value is None or isinstance(value, str),
        "tags": value is None or _is_string_list(value),
        "connection": isinstance(value, dict),
    }
    if not typed[field]:
        errors = _errors(decode_patch, {field: value})
        assert errors
        assert all(e.field.startswith(field) for e in errors), errors
    else:
        patch = decode_patch({field: value})
        given_value = tuple(value) if field == "tags" and value is not None else value
        assert getattr(patch, field) == given_value
        others = [f for f in ("name", "description", "tags", "connection") if f != field]
        assert all(getattr(patch, f) is ABSENT for f in others)


def test_an_update_command_carries_the_decoded_patch() -> None:
    ident = uuid4()
    command = update_command(ADMIN, ident, {"description": "d"}, verify=True)
    assert (command.source_id, command.patch, command.verify) == (
        ident,
        SourcePatch(description="d"),
        True,
    )
    with pytest.raises(InvalidInput) as caught:
        update_command(ADMIN, ident, [1], root="file")
    assert _fields(caught) == ["file"]
