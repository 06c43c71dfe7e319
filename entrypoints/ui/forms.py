"""HTML forms as the request bodies every entrypoint decodes: a form's text fields become the
JSON values the API takes, so the same decoder and the same use cases judge them and a form
shows the API's errors, field for field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.connections import ConnectionField

CONNECTION = "connection."


def tags(text: str) -> list[str]:
    """Tags typed one a line or separated by commas."""
    return [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()]


def _value(field: ConnectionField, text: str) -> Any:
    """The JSON value a connection field's text stands for; text that is not of the field's
    type is passed on as it is, for the connector to refuse with the API's message."""
    if field.type is int:
        try:
            return int(text.strip())
        except ValueError:
            return text
    if field.type is bool:
        return {"true": True, "false": False}.get(text, text)
    return text


def connection(
    fields: Sequence[ConnectionField], form: Mapping[str, Any], empty_is_null: bool
) -> dict[str, Any]:
    """The connection object of a form. A field left empty is not given (registering) or null,
    which returns it to its default (a merge patch)."""
    out: dict[str, Any] = {}
    for field in fields:
        text = form.get(CONNECTION + field.name)
        if text is None:
            continue
        if text == "" and not field.allow_empty:
            if empty_is_null:
                out[field.name] = None
            continue
        out[field.name] = _value(field, text)
    return out


def register_body(fields: Sequence[ConnectionField], form: Mapping[str, Any]) -> dict[str, Any]:
    """The registration body (`POST /v1/sources`) of the register form."""
    return {
        "name": form.get("name", ""),
        "source_type": form.get("source_type", ""),
        "description": form.get("description", ""),
        "tags": tags(form.get("tags", "")),
        "connection": connection(fields, form, empty_is_null=False),
    }


def patch_body(fields: Sequence[ConnectionField], form: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch (`PATCH /v1/sources/{id}`) of the edit form: every field as the form
    shows it (what was not changed changes nothing; a secret left as `********` keeps its
    value)."""
    return {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "tags": tags(form.get("tags", "")),
        "connection": connection(fields, form, empty_is_null=True),
    }


def shown(value: Any) -> str:
    """A connection value as a form field shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
