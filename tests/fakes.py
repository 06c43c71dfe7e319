"""Doubles for the ports without an in-memory adapter: clock, ids, a fake connector."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.connections import ConnectionField, check_connection
from domain.errors import BackendUnavailable
from domain.sources import Column


class SteppingClock:
    """Starts at a fixed instant and moves one millisecond each time it is read."""

    def __init__(self, start: datetime = datetime(2026, 5, 22, 9, 0, tzinfo=UTC)) -> None:
        self._now = start

    def now(self) -> datetime:
        self._now += timedelta(milliseconds=1)
        return self._now

    def advance(self, by: timedelta) -> None:
        """Move the clock on by `by` (a key's lifetime passing, say)."""
        self._now += by


class CountingIds:
    """UUIDs 00000000-...-000000000001, ...-0002, ... in order."""

    def __init__(self) -> None:
        self._n = 0

    def new(self) -> uuid.UUID:
        self._n += 1
        return uuid.UUID(int=self._n)


class FakeConnector:
    """A connector whose 'backend' is a dict of table name to columns; records what it was given."""

    source_type = "fake"
    title = "A fake table"
    origin = "builtin"
    package: str | None = None
    fields: Sequence[ConnectionField] = (
        ConnectionField("table", required=True),
        ConnectionField("password", secret=True, allow_empty=True),
        ConnectionField("port", type=int, default=1, min_value=1, max_value=65535),
        # Where the connection goes: a kept password follows it only for a holder of secrets.
        ConnectionField("host", target=True),
    )

    def __init__(self, tables: Mapping[str, Sequence[Column]] | None = None) -> None:
        self.tables = dict(tables or {})
        self.seen: list[Mapping[str, Any]] = []
        self.forgotten: list[Mapping[str, Any]] = []

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return check_connection(self.fields, connection)

    async def check(self, connection: Mapping[str, Any]) -> None:
        # The schema would answer now exactly when an inspection succeeds.
        await self.inspect(connection)

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        self.seen.append(dict(connection))
        try:
            return self.tables[connection["table"]]
        except KeyError:
            raise BackendUnavailable("table_not_found", "no such table") from None

    async def forget(self, connection: Mapping[str, Any]) -> None:
        self.forgotten.append(dict(connection))


class FailingConnector(FakeConnector):
    """A connector of `source_type` whose every inspection fails with an error that is not a
    domain error, as a connector's bug or a driver's surprise would."""

    def __init__(self, source_type: str) -> None:
        super().__init__()
        self.source_type = source_type

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        self.seen.append(dict(connection))
        raise RuntimeError("the connector broke: internal detail")
