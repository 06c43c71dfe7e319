"""Opaque paging cursors: a position in the listing, the trail or a history, base64url-encoded.

Each names the listing that made it (`sources`, `events`, `history`, `watches`, `columns`), and
no other listing takes it; the HTTP API and the MCP tools issue and take the same cursors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from uuid import UUID

from domain.columns import ColumnKey
from domain.errors import InvalidInput
from domain.events import EventKey
from domain.sources import PageKey
from domain.watches import WatchKey
from domain.webhooks import DeliveryKey


def _encode(route: str, at: datetime, ident: UUID) -> str:
    raw = f"{route}|{at.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(route: str, cursor: str) -> tuple[datetime, UUID]:
    """The position in a cursor made by `route`: one made by another route (or before cursors
    named theirs), or holding a time that UTC cannot hold, is not one this server issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        made_by, when, ident = raw.split("|")
        if made_by != route:
            raise ValueError("another route's cursor")
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError("naive timestamp")
        at.astimezone(UTC)  # OverflowError beyond years 1-9999 once in UTC
        return at, UUID(ident)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput.single("cursor", "is not a cursor this server issued") from None


def encode_cursor(key: PageKey) -> str:
    """The cursor for a position in the list of sources."""
    return _encode("sources", key.registered_at, key.id)


def decode_cursor(cursor: str) -> PageKey:
    """The position of a cursor this server issued; `InvalidInput` for anything else."""
    return PageKey(*_decode("sources", cursor))


def encode_event_cursor(key: EventKey) -> str:
    """The cursor for a position in the audit trail."""
    return _encode("events", key.at, key.id)


def decode_event_cursor(cursor: str) -> EventKey:
    """The position of an event cursor this server issued; `InvalidInput` for anything else."""
    return EventKey(*_decode("events", cursor))


_SEQUENCE_MAX = 2**62


def encode_history_cursor(source_id: UUID, before: int) -> str:
    """The cursor for the page of a source's history older than snapshot `before`."""
    raw = f"history|{source_id}|{before}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_history_cursor(cursor: str, source_id: UUID) -> int:
    """Where a history cursor of this source starts; `InvalidInput` for any other cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, ident, before = raw.split("|")
        if kind != "history" or UUID(ident) != source_id or not before.isdigit():
            raise ValueError("another cursor")
        sequence = int(before)
        if not 1 <= sequence <= _SEQUENCE_MAX:
            raise ValueError("out of range")
        return sequence
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput.single("cursor", "is not a cursor of this history") from None


def encode_column_cursor(key: ColumnKey) -> str:
    """The cursor for a position in a column search."""
    raw = json.dumps(["columns", key.folded_name, str(key.source_id), key.position])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_column_cursor(cursor: str) -> ColumnKey:
    """The position of a column cursor this server issued; `InvalidInput` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, name, ident, position = json.loads(raw)
        if kind != "columns" or not isinstance(name, str) or type(position) is not int:
            raise ValueError("another cursor")
        if not 0 <= position < _SEQUENCE_MAX:
            raise ValueError("out of range")
        return ColumnKey(name, UUID(ident), position)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput.single("cursor", "is not a cursor this server issued") from None


def encode_watch_cursor(key: WatchKey) -> str:
    """The cursor for a position in the list of watches."""
    return _encode("watches", key.next_check_at, key.source_id)


def decode_watch_cursor(cursor: str) -> WatchKey:
    """The position of a watch cursor this server issued; `InvalidInput` for anything else."""
    return WatchKey(*_decode("watches", cursor))


def encode_delivery_cursor(key: DeliveryKey) -> str:
    """The cursor for a position in an endpoint's deliveries."""
    return _encode("deliveries", key.created_at, key.id)


def decode_delivery_cursor(cursor: str) -> DeliveryKey:
    """The position in an endpoint's deliveries a cursor names; 400 if not one of theirs."""
    at, ident = _decode("deliveries", cursor)
    return DeliveryKey(at, ident)
