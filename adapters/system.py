"""The real clock and id generator."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    """Random (version 4) UUIDs."""

    def new(self) -> uuid.UUID:
        return uuid.uuid4()
