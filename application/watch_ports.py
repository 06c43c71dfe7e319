"""The port the watches need: where each source's one watch and its lease are kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.events import Event
from domain.watches import CheckResult, Claim, Watch, WatchKey, WatchPage, WatchStatus


class WatchRepository(Protocol):
    """Where watches are kept. The store is what coordinates the processes that share it: a due
    check is claimed with a lease, so that however many processes ask, one holds it at a time.

    A source's watch goes with the source (in the transaction that deletes it), and a change of
    the source's `connection` makes its watch due at once (in the transaction that changes it).
    """

    async def put(self, watch: Watch) -> Watch:
        """Create or replace the source's watch (a replaced one starts over, its lease dropped);
        the watch as stored, its source's name filled in; `SourceNotFound` if no such source."""

    async def get(self, source_id: UUID) -> Watch:
        """The source's watch; `WatchNotFound` if it has none (or there is no such source)."""

    async def remove(self, source_id: UUID) -> None:
        """Delete the source's watch; `WatchNotFound` if it has none."""

    async def list(
        self, status: WatchStatus | None, limit: int | None, after: WatchKey | None = None
    ) -> WatchPage:
        """Watches (of this status, if given) soonest next check first, at most `limit`, strictly
        after `after`."""

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Claim]:
        """Lease at most `limit` checks due by `now` that no live lease holds, until
        `lease_until`, each under a fresh token; soonest first."""

    async def complete(
        self, claim: Claim, result: CheckResult, next_check_at: datetime, events: Sequence[Event]
    ) -> bool:
        """Record the claimed check's result and its events in one transaction, and release the
        lease, if the lease is still the claim's (else record nothing and say so). The watch
        becomes due at `next_check_at` unless it was made due at another time meanwhile."""

    async def overdue(self, due_before: datetime, now: datetime) -> int:
        """How many checks were due before `due_before` and are not being run (no live lease)."""
