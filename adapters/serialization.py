"""The one cattrs converter: every record into and out of the stores, and its one timestamp form.

Sources, API keys, events and schema snapshots all go through `to_row` and `from_row`. A row is
plain data: ids and timestamps as text, collections as lists. Columns a store keeps as JSON text
are encoded by `to_row(..., json_columns)`; reading back, the structure hooks accept a JSON
column either as its text (SQLite) or already decoded (PostgreSQL), and a timestamp as text in
any ISO 8601 form or as a datetime, so rows written by older versions still read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from cattrs.preconf.msgspec import make_converter

from domain.events import Action
from domain.keys import Scope
from domain.sources import Column, Source, SourceName

T = TypeVar("T")

# Without detailed validation: stored records are our own, and the plain hooks are twice as fast.
converter = make_converter(detailed_validation=False)

decode_json = msgspec.json.Decoder().decode
"""JSON text to plain data (msgspec: three times as fast as the json module, on every read)."""
_encode_json = msgspec.json.Encoder().encode


def encode_json(value: Any) -> str:
    """Plain data as compact JSON text (UTF-8 characters kept as they are)."""
    return _encode_json(value).decode()


def timestamp(value: datetime) -> str:
    """THE stored timestamp form: fixed-width ISO 8601 UTC with microseconds and `Z`, which
    sorts as text in time order (`2026-05-22T09:00:00.000000Z`)."""
    # isoformat pads years below 1000 to four digits; strftime("%Y") does not on glibc.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(value: str | datetime) -> datetime:
    """The aware UTC datetime for a stored timestamp: a datetime, or text in any ISO 8601 form
    (with `Z`, an offset, or none for UTC; with or without a fraction of a second)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is UTC:  # as stored: every row of a listing comes this way
        return parsed
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _uuid(value: str | UUID, _: object = None) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _json(value: Any) -> Any:
    # A JSON column comes back as text from SQLite and decoded from PostgreSQL.
    return decode_json(value) if isinstance(value, str | bytes) else value


# cattrs structures neither UUID nor (in this converter, from our text form) datetime: explicit.
converter.register_unstructure_hook(UUID, str)
converter.register_structure_hook(UUID, _uuid)
converter.register_unstructure_hook(datetime, timestamp)
converter.register_structure_hook(datetime, lambda value, _: parse_timestamp(value))
# Enums as their values: the database drivers bind plain text.
converter.register_unstructure_hook(Action, lambda action: action.value)
converter.register_unstructure_hook(SourceName, lambda name: name.value)
converter.register_structure_hook(SourceName, lambda value, _: SourceName(value))
# A source's connection is kept as it is: the entity copies it into a read-only mapping.
converter.register_unstructure_hook_func(
    lambda t: t == Mapping[str, Any], lambda mapping: dict(mapping)
)
converter.register_structure_hook_func(
    lambda t: t == Mapping[str, Any], lambda value, _: _json(value)
)
converter.register_unstructure_hook_func(lambda t: t == tuple[str, ...], list)
converter.register_structure_hook_func(
    lambda t: t == tuple[str, ...], lambda value, _: tuple(_json(value))
)
converter.register_unstructure_hook_func(
    lambda t: t == frozenset[Scope], lambda scopes: sorted(s.value for s in scopes)
)
converter.register_structure_hook_func(
    lambda t: t == frozenset[Scope], lambda value, _: frozenset(Scope(s) for s in _json(value))
)
converter.register_structure_hook_func(
    lambda t: t == tuple[Column, ...],
    lambda value, _: tuple(Column(c["name"], c["type"], c["nullable"]) for c in _json(value)),
)
# SQLite keeps booleans as 0 and 1; the preconf union passthrough would hand the int over as is.
converter.register_structure_hook_func(
    lambda t: t == bool | None, lambda value, _: None if value is None else bool(value)
)


def _source(row: Mapping[str, Any], _: object = None) -> Source:
    get = row.get
    return restored_source(
        (
            row["id"],
            row["name"],
            row["source_type"],
            row["connection"],
            row["description"],
            row["tags"],
            row["registered_by"],
            row["registered_at"],
            get("status"),
            get("version"),
            get("updated_at"),
            get("updated_by"),
        )
    )


def restored_source(values: Sequence[Any]) -> Source:
    """The source of a stored row's values, in the order of `Source`'s fields (the store's
    columns); the last four may be None (rows older than the fields)."""
    # Every GET reads one: built from the row's values, without the checks of a new source
    # (it passed them when it was stored), at a third of the generated hook's cost.
    (
        source_id,
        name,
        source_type,
        connection,
        description,
        tags,
        registered_by,
        registered_at,
        status,
        version,
        updated_at,
        updated_by,
    ) = values
    registered_at = parse_timestamp(registered_at)
    return Source.restored(
        id=_uuid(source_id),
        name=SourceName.restored(name),
        source_type=source_type,
        connection=_json(connection),
        description=description,
        tags=tuple(_json(tags)),
        registered_by=registered_by,
        registered_at=registered_at,
        status=status or "active",
        version=int(version or 1),
        updated_at=registered_at if updated_at is None else parse_timestamp(updated_at),
        updated_by=updated_by or registered_by,
    )


converter.register_structure_hook(Source, _source)


def to_row(record: object, json_columns: Collection[str] = ()) -> dict[str, Any]:
    """A record as a store row: plain data, with the named columns as JSON text."""
    row: dict[str, Any] = converter.unstructure(record)
    for column in json_columns:
        row[column] = encode_json(row[column])
    return row


def from_row(row: Mapping[str, Any], cls: type[T]) -> T:
    """The record of this class for a store row (made by `to_row`, or older: see the module)."""
    return converter.structure(row, cls)
