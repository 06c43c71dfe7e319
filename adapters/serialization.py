"""The one cattrs converter: entities to plain JSON-ready data and back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import cattrs

from domain.events import Action, Event
from domain.history import SchemaSnapshot
from domain.keys import ApiKey, Scope
from domain.sources import Column, Source, SourceName, SourceSummary

# Without detailed validation: stored records are our own, and the plain hooks are twice as fast.
converter = cattrs.Converter(detailed_validation=False)

# Sources are structured by hand (see `source_from_record`); only API keys go through cattrs
# both ways, so only the types they hold have structure hooks.
converter.register_unstructure_hook(UUID, str)


def timestamp(value: datetime) -> str:
    """A fixed-width ISO 8601 UTC timestamp with microseconds: sorts as text in time order."""
    # isoformat pads years below 1000 to four digits; strftime("%Y") does not on glibc.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(value: str | datetime) -> datetime:
    """The aware UTC datetime for a stored timestamp."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


converter.register_unstructure_hook(datetime, timestamp)
converter.register_structure_hook(datetime, lambda value, _: parse_timestamp(value))
converter.register_unstructure_hook(SourceName, lambda name: name.value)
converter.register_unstructure_hook_func(
    lambda t: t == Mapping[str, Any], lambda mapping: dict(mapping)
)
converter.register_unstructure_hook_func(
    lambda t: t == frozenset[Scope], lambda scopes: sorted(s.value for s in scopes)
)
converter.register_structure_hook_func(
    lambda t: t == frozenset[Scope], lambda value, _: frozenset(Scope(s) for s in value)
)


def source_to_record(source: Source) -> dict[str, Any]:
    """A source as plain data (str ids and timestamps, dict connection, list tags)."""
    record: dict[str, Any] = converter.unstructure(source)
    record["tags"] = list(source.tags)
    return record


def source_from_record(record: Mapping[str, Any]) -> Source:
    """The source for plain data made by `source_to_record` (or read back from a store)."""
    # By hand rather than through the converter: every read of a source comes this way, and the
    # direct call costs half of cattrs' generated hook. The entity's own checks still run.
    source_id = record["id"]
    return Source(
        id=source_id if isinstance(source_id, UUID) else UUID(source_id),
        name=SourceName(record["name"]),
        source_type=record["source_type"],
        connection=record["connection"],
        description=record["description"],
        tags=record["tags"],
        registered_by=record["registered_by"],
        registered_at=parse_timestamp(record["registered_at"]),
        status=record["status"],
        version=record["version"],
        updated_at=parse_timestamp(record["updated_at"]),
        updated_by=record["updated_by"],
    )


def summary_from_record(record: Mapping[str, Any]) -> SourceSummary:
    """The summary for the listing columns of a stored source."""
    source_id = record["id"]
    return SourceSummary(
        id=source_id if isinstance(source_id, UUID) else UUID(source_id),
        name=record["name"],
        source_type=record["source_type"],
        description=record["description"],
        tags=tuple(record["tags"]),
        registered_at=parse_timestamp(record["registered_at"]),
    )


def key_to_record(key: ApiKey) -> dict[str, Any]:
    """An API key as plain data."""
    record: dict[str, Any] = converter.unstructure(key)
    return record


def key_from_record(record: Mapping[str, Any]) -> ApiKey:
    """The API key for plain data made by `key_to_record`."""
    return converter.structure(dict(record), ApiKey)


def columns_to_json(columns: Sequence[Column]) -> str:
    """Columns as the JSON text the stores keep: `[{"name", "type", "nullable"}, ...]`."""
    return json.dumps(
        [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in columns],
        ensure_ascii=True,
    )


def snapshot_from_record(record: Mapping[str, Any]) -> SchemaSnapshot:
    """The snapshot for a stored row (`columns` as JSON text or already decoded)."""
    columns = record["columns"]
    if isinstance(columns, str | bytes):
        columns = json.loads(columns)
    source_id = record["source_id"]
    return SchemaSnapshot(
        source_id=source_id if isinstance(source_id, UUID) else UUID(source_id),
        sequence=int(record["sequence"]),
        fingerprint=record["fingerprint"],
        columns=tuple(Column(c["name"], c["type"], c["nullable"]) for c in columns),
        observed_at=parse_timestamp(record["observed_at"]),
    )


def event_to_record(event: Event) -> dict[str, Any]:
    """An event as plain data (str ids and timestamps, list of changed paths)."""
    return {
        "id": str(event.id),
        "at": timestamp(event.at),
        "actor": event.actor,
        "action": event.action.value,
        "source_id": None if event.source_id is None else str(event.source_id),
        "source_name": event.source_name,
        "key_id": event.key_id,
        "changed": list(event.changed),
        "breaking": event.breaking,
    }


def event_from_record(record: Mapping[str, Any]) -> Event:
    """The event for plain data made by `event_to_record` (or read back from a store)."""
    source_id = record["source_id"]
    breaking = record["breaking"]
    return Event(
        id=record["id"] if isinstance(record["id"], UUID) else UUID(record["id"]),
        at=parse_timestamp(record["at"]),
        actor=record["actor"],
        action=Action(record["action"]),
        source_id=source_id
        if source_id is None or isinstance(source_id, UUID)
        else UUID(source_id),
        source_name=record["source_name"],
        key_id=record["key_id"],
        changed=tuple(record["changed"]),
        breaking=None if breaking is None else bool(breaking),
    )
