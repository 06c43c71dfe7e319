"""Where a page of a listing starts, in the UI's links: `<time>~<id>` of the last row shown.

A position is not a secret nor a promise: a link that names a position the listing no longer
has starts after it all the same. Text that is no position is the API's 400 on `after`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.errors import InvalidInput

PAGE_SIZE = 50


def position(at: datetime, ident: UUID) -> str:
    return f"{at.isoformat()}~{ident}"


def parse_position(text: str, field: str = "after") -> tuple[datetime, UUID]:
    when, _, ident = text.partition("~")
    try:
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError("no offset")
        return at, UUID(ident)
    except ValueError:
        raise InvalidInput.single(field, "is not a position in this listing") from None
