"""Opaque paging cursors: a position in the listing order, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from domain.errors import InvalidInput
from domain.sources import PageKey


def encode_cursor(key: PageKey) -> str:
    """The cursor for a position."""
    raw = f"{key.registered_at.isoformat()}|{key.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> PageKey:
    """The position of a cursor this server issued; `InvalidInput` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError("naive timestamp")
        return PageKey(registered_at=at, id=UUID(ident))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput.single("cursor", "is not a cursor this server issued") from None
