"""The webhook request bodies, decoded at the edge into the use cases' typed commands (the HTTP
API and the CLI both decode through here, so one input gets one answer either way).

Decoding checks the shape (an object, no unknown or read-only field, the required ones given,
each of its JSON type; null in an optional field means "not given", in a patch "back to the
default"); the rules on values are the domain's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from application.webhooks import PATCHABLE, EndpointFields
from domain.errors import FieldError, InvalidInput
from domain.webhooks import OVERLAP_DEFAULT

_FIELDS = ("url", "events", "breaking_only", "source_ids", "tags", "description")
READ_ONLY = frozenset(
    {"id", "enabled", "disabled_reason", "created_at", "created_by", "updated_at", "secret"}
)


def _object(value: object, known: frozenset[str], read_only: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput.single("body", "must be a JSON object")
    errors = [
        FieldError(str(name), "is read-only" if name in read_only else "is not a known field")
        for name in sorted(value, key=str)
        if name not in known
    ]
    if errors:
        raise InvalidInput(errors)
    return value


def _typed(name: str, value: Any, errors: list[FieldError]) -> Any:
    """The field's value in its type, or None after noting why it is not."""
    if name in ("url", "description"):
        if isinstance(value, str):
            return value
        errors.append(FieldError(name, "must be a string"))
    elif name in ("breaking_only", "enabled"):
        if isinstance(value, bool):
            return value
        errors.append(FieldError(name, "must be true or false"))
    elif name in ("events", "tags"):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        errors.append(FieldError(name, "must be an array of strings"))
    elif name == "source_ids":
        return _source_ids(value, errors)
    return None


def _source_ids(value: Any, errors: list[FieldError]) -> tuple[UUID, ...] | None:
    if not isinstance(value, list):
        errors.append(FieldError("source_ids", "must be an array of source ids"))
        return None
    ids = []
    for i, item in enumerate(value):
        try:
            ids.append(UUID(item) if isinstance(item, str) else UUID(int=-1))
        except ValueError:
            errors.append(FieldError(f"source_ids[{i}]", "must be a UUID"))
    return tuple(ids)


class WebhookCreateRequest:
    """Body of `POST /v1/webhooks`: `url` and `events` required; the rest optional."""

    __slots__ = ("fields",)

    def __init__(self, fields: EndpointFields) -> None:
        self.fields = fields

    @classmethod
    def decode(cls, value: object) -> WebhookCreateRequest:
        body = _object(value, frozenset(_FIELDS), READ_ONLY)
        errors = [
            FieldError(name, "is required") for name in ("url", "events") if body.get(name) is None
        ]
        typed = {
            name: _typed(name, body[name], errors) for name in _FIELDS if body.get(name) is not None
        }
        if errors:
            raise InvalidInput(errors)
        return cls(EndpointFields(**typed))


def decode_webhook_patch(value: object) -> dict[str, Any]:
    """A merge patch over an endpoint: the fields given, typed (null kept: "back to default")."""
    body = _object(value, frozenset(PATCHABLE), READ_ONLY)
    errors: list[FieldError] = []
    changes = {
        name: None if given is None else _typed(name, given, errors) for name, given in body.items()
    }
    if errors:
        raise InvalidInput(errors)
    return changes


class RotateRequest:
    """Body of `POST /v1/webhooks/{id}/rotate`: `overlap_seconds`, optional (86400)."""

    __slots__ = ("overlap_seconds",)

    def __init__(self, overlap_seconds: int) -> None:
        self.overlap_seconds = overlap_seconds

    @classmethod
    def decode(cls, value: object) -> RotateRequest:
        body = _object(value, frozenset({"overlap_seconds"}), frozenset())
        overlap = body.get("overlap_seconds")
        if overlap is None:
            return cls(OVERLAP_DEFAULT)
        if isinstance(overlap, bool) or not isinstance(overlap, int):
            raise InvalidInput.single("overlap_seconds", "must be an integer")
        return cls(overlap)


WEBHOOK_REQUEST_TYPES = (WebhookCreateRequest, RotateRequest)
