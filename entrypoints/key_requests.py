"""The Keys API's bodies, decoded at the edge: their shape here, their rules in the use cases."""

from __future__ import annotations

from typing import Any

from domain.errors import FieldError, InvalidInput
from domain.keys import ROTATION_OVERLAP_DEFAULT, ROTATION_OVERLAP_MAX

_CREATE_FIELDS = frozenset({"name", "scopes", "expires_in_days"})


def _object(value: object, known: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput.single("body", "must be a JSON object")
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise InvalidInput([FieldError(k, "is not a known field") for k in unknown])
    return value


def _integer(value: object) -> bool:
    """An integer as JSON Schema has it: `3` or `3.0`, never `true`."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def create_key_fields(value: object) -> tuple[str, tuple[str, ...], int | None]:
    """`name`, `scopes` and `expires_in_days` of `POST /v1/keys` (null: not given), or
    `InvalidInput` naming every field of the wrong shape."""
    body = _object(value, _CREATE_FIELDS)
    errors = []
    name = body.get("name")
    if not isinstance(name, str):
        errors.append(FieldError("name", "is required" if name is None else "must be a string"))
    scopes = body.get("scopes") or []
    if not isinstance(scopes, list):
        errors.append(FieldError("scopes", "must be an array of scope names"))
        scopes = []
    errors += [
        FieldError(f"scopes[{i}]", "must be a string")
        for i, s in enumerate(scopes)
        if not isinstance(s, str)
    ]
    days = body.get("expires_in_days")
    if days is not None and not _integer(days):
        errors.append(FieldError("expires_in_days", "must be an integer or null"))
    if errors:
        raise InvalidInput(errors)
    return str(name), tuple(scopes), None if days is None else int(days)


def rotation_overlap(value: object) -> int:
    """`overlap_seconds` of a rotation's body (left out or null: the default); its bounds are
    the use case's to judge."""
    body = _object(value, frozenset({"overlap_seconds"}))
    overlap = body.get("overlap_seconds")
    if overlap is None:
        return int(ROTATION_OVERLAP_DEFAULT.total_seconds())
    most = int(ROTATION_OVERLAP_MAX.total_seconds())
    if not _integer(overlap) or not 0 <= overlap <= most:
        raise InvalidInput.single("overlap_seconds", f"must be an integer from 0 to {most}")
    return int(overlap)
