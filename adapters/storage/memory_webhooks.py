"""In-memory webhook endpoints and outbox: the fakes of the use-case tests, held to the contract
of the SQL ones (the outbox is fed by the event trail, as their trigger feeds theirs)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import attrs

from adapters.storage.memory import MemoryEventRepository, MemorySnapshotRepository
from application.webhook_ports import Claim
from domain.errors import DeliveryNotFound, WebhookNotFound
from domain.events import Event
from domain.history import SchemaSnapshot
from domain.webhooks import Attempt, Delivery, DeliveryKey, DeliveryPage, DeliveryState, Endpoint


@attrs.define
class _Row:
    delivery: Delivery
    event: Event | None
    body: bytes | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


class MemoryWebhooks:
    """Endpoints and deliveries of one in-memory store, under one lock with its event trail."""

    def __init__(self, events: MemoryEventRepository, snapshots: MemorySnapshotRepository) -> None:
        self.endpoints: dict[UUID, Endpoint] = {}
        self.rows: dict[UUID, _Row] = {}
        self.lock = threading.RLock()
        self.events = events
        self.snapshots = snapshots
        events.on_record(self._outbox)

    def _outbox(self, event: Event, tags: tuple[str, ...] | None) -> None:
        with self.lock:
            for endpoint in self.endpoints.values():
                if endpoint.matches(event, tags):
                    delivery = Delivery(
                        id=uuid.uuid4(),
                        endpoint_id=endpoint.id,
                        event_id=event.id,
                        type=event.action.value,
                        state=DeliveryState.PENDING,
                        attempts=(),
                        next_attempt_at=event.at,
                        created_at=event.at,
                    )
                    self.rows[delivery.id] = _Row(delivery, event)


class MemoryWebhookRepository:
    def __init__(self, webhooks: MemoryWebhooks) -> None:
        self._w = webhooks

    async def add(self, endpoint: Endpoint, event: Event) -> None:
        # The trail's lock is taken before this store's, never inside it (the outbox nests so).
        with self._w.lock:
            self._w.endpoints[endpoint.id] = endpoint
        self._w.events.record(event)

    async def get(self, endpoint_id: UUID) -> Endpoint:
        try:
            return self._w.endpoints[endpoint_id]
        except KeyError:
            raise WebhookNotFound(endpoint_id) from None

    async def list(self) -> Sequence[Endpoint]:
        with self._w.lock:
            return sorted(self._w.endpoints.values(), key=lambda e: (e.created_at, str(e.id)))

    async def update(self, endpoint: Endpoint, event: Event | None) -> None:
        with self._w.lock:
            if endpoint.id not in self._w.endpoints:
                raise WebhookNotFound(endpoint.id)
            self._w.endpoints[endpoint.id] = endpoint
        if event is not None:
            self._w.events.record(event)

    async def remove(self, endpoint_id: UUID, event: Event) -> None:
        with self._w.lock:
            if self._w.endpoints.pop(endpoint_id, None) is None:
                raise WebhookNotFound(endpoint_id)
            for key in [
                k for k, r in self._w.rows.items() if r.delivery.endpoint_id == endpoint_id
            ]:
                del self._w.rows[key]
        self._w.events.record(event)


class MemoryDeliveryRepository:
    def __init__(self, webhooks: MemoryWebhooks) -> None:
        self._w = webhooks

    async def add(self, delivery: Delivery, body: bytes) -> None:
        with self._w.lock:
            self._w.rows[delivery.id] = _Row(delivery, None, body)

    async def list(
        self,
        endpoint_id: UUID,
        state: DeliveryState | None,
        limit: int,
        before: DeliveryKey | None = None,
    ) -> DeliveryPage:
        with self._w.lock:
            found = sorted(
                (
                    r.delivery
                    for r in self._w.rows.values()
                    if r.delivery.endpoint_id == endpoint_id
                    and (state is None or r.delivery.state is state)
                    and (
                        before is None
                        or (r.delivery.created_at, str(r.delivery.id))
                        < (before.created_at, str(before.id))
                    )
                ),
                key=lambda d: (d.created_at, str(d.id)),
                reverse=True,
            )
        page = tuple(found[:limit])
        more = len(found) > limit
        return DeliveryPage(page, DeliveryKey(page[-1].created_at, page[-1].id) if more else None)

    async def redeliver(self, endpoint_id: UUID, delivery_id: UUID, now: datetime) -> None:
        with self._w.lock:
            row = self._w.rows.get(delivery_id)
            if row is None or row.delivery.endpoint_id != endpoint_id:
                raise DeliveryNotFound(delivery_id)
            row.delivery = attrs.evolve(
                row.delivery, state=DeliveryState.PENDING, next_attempt_at=now, round_attempts=0
            )
            row.lease_owner = row.lease_until = None

    async def claim(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_endpoint: int,
        skip: frozenset[UUID] = frozenset(),
    ) -> Sequence[Claim]:
        with self._w.lock:
            due = sorted(
                (r for r in self._w.rows.values() if self._due(r, now, skip)),
                key=lambda r: (r.delivery.next_attempt_at, str(r.delivery.id)),
            )
            taken: list[_Row] = []
            per: dict[UUID, int] = {}
            for row in due:
                endpoint_id = row.delivery.endpoint_id
                if per.get(endpoint_id, 0) < per_endpoint and len(taken) < limit:
                    per[endpoint_id] = per.get(endpoint_id, 0) + 1
                    taken.append(row)
            for row in taken:
                row.lease_owner, row.lease_until = owner, lease_until
            return [
                Claim(r.delivery, self._w.endpoints[r.delivery.endpoint_id], r.event, r.body)
                for r in taken
            ]

    def _due(self, row: _Row, now: datetime, skip: frozenset[UUID]) -> bool:
        d = row.delivery
        endpoint = self._w.endpoints.get(d.endpoint_id)
        return (
            d.state is DeliveryState.PENDING
            and d.next_attempt_at is not None
            and d.next_attempt_at <= now
            and (row.lease_until is None or row.lease_until <= now)
            and endpoint is not None
            and endpoint.enabled
            and d.endpoint_id not in skip
        )

    async def finish_attempt(
        self,
        owner: str,
        delivery_id: UUID,
        attempt: Attempt,
        state: DeliveryState,
        next_attempt_at: datetime | None,
        body: bytes,
        disable: str | None = None,
    ) -> bool:
        with self._w.lock:
            row = self._w.rows.get(delivery_id)
            if row is None or row.lease_owner != owner:
                return False
            if row.body is None:
                row.body = body
            row.delivery = attrs.evolve(
                row.delivery,
                attempts=(*row.delivery.attempts, attempt),
                round_attempts=row.delivery.round_attempts + 1,
                state=state,
                next_attempt_at=next_attempt_at,
            )
            row.lease_owner = row.lease_until = None
            endpoint = self._w.endpoints.get(row.delivery.endpoint_id)
            if disable is not None and endpoint is not None:
                self._w.endpoints[endpoint.id] = attrs.evolve(
                    endpoint, enabled=False, disabled_reason=disable
                )
            return True

    async def pending(self) -> int:
        with self._w.lock:
            return sum(r.delivery.state is DeliveryState.PENDING for r in self._w.rows.values())

    async def snapshot_at(self, source_id: UUID, observed_at: datetime) -> SchemaSnapshot | None:
        for snapshot in await self._w.snapshots.newest_first(source_id, 2**31):
            if snapshot.observed_at == observed_at:
                return snapshot
        return None

    async def snapshot_before(self, source_id: UUID, sequence: int) -> SchemaSnapshot | None:
        found = await self._w.snapshots.newest_first(source_id, 1, sequence)
        return found[0] if found else None
