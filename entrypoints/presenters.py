"""The JSON shapes of tdb's API, which every entrypoint reads and writes (they are also what the
OpenAPI document shows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from domain import sources
from domain.columns import ColumnMatch
from domain.connections import ConnectionCheck
from domain.events import Action, Event
from domain.history import ColumnChange, HistoryEntry
from domain.keys import ApiKey, public_id
from domain.sources import Column, Source, SourceSchema, SourceStamp

TIMESTAMP_DESCRIPTION = "RFC 3339 UTC timestamp, e.g. 2026-05-22T09:00:00Z"
# A time as `api_time` makes it: msgspec writes it as `2026-05-22T09:00:00Z` (UTC, whole
# seconds), the text `api_timestamp` gives, and the document says `format: date-time`.
Timestamp = Annotated[datetime, Meta(description=TIMESTAMP_DESCRIPTION)]


def api_time(value: datetime) -> datetime:
    """The time as the API shows it: in UTC, to the second (msgspec writes it with a `Z`)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(microsecond=0)


_encode_json = msgspec.json.encode


def api_timestamp(value: datetime) -> str:
    """The API's timestamp form, as in the API document: `2026-05-22T09:00:00Z`."""
    # Every GET shows two. msgspec writes an aware UTC time in C as `"2026-05-22T09:00:00Z"`
    # or with a fraction (`...:00.303Z`): its first 19 characters are the date and the time to
    # the second, the year padded to four digits. Eight times as fast as isoformat (which
    # strftime's %Y, unpadded on glibc, is not even an option for).
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return _encode_json(value)[1:20].decode() + "Z"


class SourceRecord(msgspec.Struct):
    """A full source record, connection included."""

    id: UUID
    name: str
    source_type: str
    connection: dict[str, Any]
    description: str
    tags: list[str]
    registered_by: str
    registered_at: Timestamp
    status: str
    version: Annotated[int, Meta(ge=1, description="1 at registration, +1 at each change")]
    updated_at: Timestamp
    updated_by: str

    @classmethod
    def of(cls, source: Source) -> SourceRecord:
        return cls(
            id=source.id,
            name=source.name.value,
            source_type=source.source_type,
            connection=dict(source.connection),
            description=source.description,
            tags=list(source.tags),
            registered_by=source.registered_by,
            registered_at=api_time(source.registered_at),
            status=source.status,
            version=source.version,
            updated_at=api_time(source.updated_at),
            updated_by=source.updated_by,
        )


class SourceStampOut(msgspec.Struct):
    """A change's answer to a key that may not read sources: which source, its version, since
    when."""

    id: UUID
    version: Annotated[int, Meta(ge=1, description="1 at registration, +1 at each change")]
    updated_at: Timestamp

    @classmethod
    def of(cls, stamp: SourceStamp) -> SourceStampOut:
        return cls(id=stamp.id, version=stamp.version, updated_at=api_time(stamp.updated_at))


def change_out(answer: Source | SourceStamp) -> SourceRecord | SourceStampOut:
    """A change's answer: the record as the actor may read it, or only its version."""
    if isinstance(answer, SourceStamp):
        return SourceStampOut.of(answer)
    return SourceRecord.of(answer)


class SourceListItem(msgspec.Struct):
    """A source in a listing: no connection details."""

    # A listing shapes thousands of these: the id and the time stay objects, which msgspec
    # writes in C as the same text (`2026-05-22T09:00:00Z`: UTC, whole seconds).
    id: UUID
    name: str
    source_type: str
    description: str
    tags: list[str]
    registered_at: Timestamp

    @classmethod
    def of(cls, source: sources.SourceSummary) -> SourceListItem:
        return cls(
            id=source.id,
            name=source.name,
            source_type=source.source_type,
            description=source.description,
            tags=list(source.tags),
            registered_at=api_time(source.registered_at),
        )


class ColumnOut(msgspec.Struct, omit_defaults=True):
    """One live column."""

    name: str
    type: str
    nullable: bool | None = None

    @classmethod
    def of(cls, column: Column) -> ColumnOut:
        return cls(column.name, column.type, column.nullable)


class ColumnMatchOut(msgspec.Struct):
    """A column of a source's newest snapshot that a search matched."""

    source_id: UUID
    source_name: str
    source_type: str
    column: ColumnOut
    observed_at: Annotated[
        datetime, Meta(description="When the snapshot holding the column was taken (UTC)")
    ]

    @classmethod
    def of(cls, match: ColumnMatch) -> ColumnMatchOut:
        return cls(
            source_id=match.source_id,
            source_name=match.source_name,
            source_type=match.source_type,
            column=ColumnOut.of(match.column),
            observed_at=api_time(match.observed_at),
        )


Fingerprint = Annotated[
    str,
    Meta(
        pattern="^sha256:[0-9a-f]{64}$",
        description="SHA-256 of the ordered columns (name, type, nullable): equal columns, equal"
        " fingerprint",
    ),
]


class SchemaOut(msgspec.Struct):
    """The live schema of a source."""

    source_id: UUID
    source_name: str
    columns: list[ColumnOut]
    inspected_at: Timestamp
    fingerprint: Fingerprint

    @classmethod
    def of(cls, schema: SourceSchema) -> SchemaOut:
        return cls(
            source_id=schema.source_id,
            source_name=schema.source_name,
            columns=[ColumnOut.of(c) for c in schema.columns],
            inspected_at=api_time(schema.inspected_at),
            fingerprint=schema.fingerprint,
        )


class ColumnChangeOut(msgspec.Struct):
    """One change to one column against the snapshot before."""

    column: str
    change: Literal["added", "removed", "type_changed", "nullability_changed", "moved"]
    before: ColumnOut | None
    after: ColumnOut | None
    breaking: Annotated[bool, Meta(description="removed, type_changed, or nullable false to true")]

    @classmethod
    def of(cls, change: ColumnChange) -> ColumnChangeOut:
        return cls(
            column=change.column,
            change=change.change.value,
            before=ColumnOut.of(change.before) if change.before is not None else None,
            after=ColumnOut.of(change.after) if change.after is not None else None,
            breaking=change.breaking,
        )


class SnapshotOut(msgspec.Struct):
    """A source's columns as an inspection saw them, and what changed since the one before."""

    fingerprint: Fingerprint
    observed_at: Timestamp
    columns: list[ColumnOut]
    breaking: bool
    changes: list[ColumnChangeOut]

    @classmethod
    def of(cls, entry: HistoryEntry) -> SnapshotOut:
        return cls(
            fingerprint=entry.snapshot.fingerprint,
            observed_at=api_time(entry.snapshot.observed_at),
            columns=[ColumnOut.of(c) for c in entry.snapshot.columns],
            breaking=entry.breaking,
            changes=[ColumnChangeOut.of(c) for c in entry.changes],
        )


class ConnectionCheckOut(msgspec.Struct):
    """The answer of a connection test (200 whatever the backend says)."""

    ok: Annotated[bool, Meta(description="Whether the schema would answer now")]
    reason: Annotated[
        str | None, Meta(description="Why not, as for the schema: timeout, auth_failed, ...")
    ]
    detail: str
    elapsed_ms: Annotated[float, Meta(ge=0)]
    checked_at: Timestamp

    @classmethod
    def of(cls, check: ConnectionCheck) -> ConnectionCheckOut:
        return cls(
            ok=check.ok,
            reason=check.reason,
            detail=check.detail,
            elapsed_ms=check.elapsed_ms,
            checked_at=api_time(check.checked_at),
        )


class EventOut(msgspec.Struct):
    """One event of the audit trail."""

    id: UUID
    at: Timestamp
    actor: Annotated[str, Meta(description="tdbk_<key_id>, or tdb-cli for the local operator")]
    action: Action
    source_id: UUID | None
    source_name: str | None
    key_id: str | None
    changed: Annotated[list[str], Meta(description="Field paths such as connection.password")]
    breaking: bool | None = None
    reason: Annotated[
        str | None, Meta(description="Only for source.check_failed: why the check failed")
    ] = None
    webhook_id: UUID | None = None

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(
            id=event.id,
            at=api_time(event.at),
            actor=event.actor,
            action=event.action,
            source_id=event.source_id,
            source_name=event.source_name,
            key_id=event.key_id,
            changed=list(event.changed),
            breaking=event.breaking,
            reason=event.reason,
            webhook_id=event.webhook_id,
        )


class FieldProblem(msgspec.Struct):
    """One invalid input field."""

    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str = ""
    reason: str | None = None
    errors: list[FieldProblem] | None = None
    available_types: list[str] | None = None
    required_scope: str | None = None
    current_version: int | None = None
    # The request's id (its X-Request-ID), also in the server's log lines about it.
    request_id: str | None = None


class Health(msgspec.Struct):
    """Liveness or readiness."""

    status: str


class KeyOut(msgspec.Struct):
    """An API key, never its secret."""

    key_id: Annotated[str, Meta(description="tdbk_<id>: the public part of the key's tokens")]
    name: str
    scopes: list[str]
    created_at: Timestamp
    created_by: Annotated[str, Meta(description="tdbk_<key_id>, oidc:<sub>, or tdb-cli")]
    expires_at: Annotated[datetime | None, Meta(description="null: never")]
    last_used_at: Annotated[datetime | None, Meta(description="Kept to the minute")]
    revoked_at: datetime | None
    rotated_from: Annotated[str | None, Meta(description="The key this one replaced")]

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        def shown(value: datetime | None) -> datetime | None:
            return None if value is None else api_time(value)

        return cls(
            key_id=public_id(key.key_id),
            name=key.name,
            scopes=sorted(s.value for s in key.scopes),
            created_at=api_time(key.created_at),
            created_by=key.created_by or "tdb-cli",
            expires_at=shown(key.expires_at),
            last_used_at=shown(key.last_used_at),
            revoked_at=shown(key.revoked_at),
            rotated_from=None if key.rotated_from is None else public_id(key.rotated_from),
        )


class IssuedKeyOut(KeyOut):
    """A new API key and its token: the only answer that ever shows the token."""

    token: Annotated[str, Meta(description="tdbk_<id>_<secret>: shown once, never again")] = ""

    @classmethod
    def issued(cls, key: ApiKey, token: str) -> IssuedKeyOut:
        return cls(**msgspec.structs.asdict(KeyOut.of(key)), token=token)
