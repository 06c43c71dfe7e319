"""Opaque paging cursors: a position in the listing or in a history, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from domain.errors import InvalidInput
from domain.events import EventKey
from domain.sources import PageKey


def _encode(at: datetime, ident: UUID) -> str:
    raw = f"{at.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError("naive timestamp")
        return at, UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput.single("cursor", "is not a cursor this server issued") from None


def encode_cursor(key: PageKey) -> str:
    """The cursor for a position in the list of sources."""
    return _encode(key.registered_at, key.id)


def decode_cursor(cursor: str) -> PageKey:
    """The position of a cursor this server issued; `InvalidInput` for anything else."""
    return PageKey(*_decode(cursor))


def encode_event_cursor(key: EventKey) -> str:
    """The cursor for a position in the audit trail."""
    return _encode(key.at, key.id)


def decode_event_cursor(cursor: str) -> EventKey:
    """The position of an event cursor this server issued; `InvalidInput` for anything else."""
    return EventKey(*_decode(cursor))


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
