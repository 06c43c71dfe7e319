"""The ports the webhook use cases need: the endpoints, the outbox of deliveries, the transport."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import attrs

from domain.events import Event
from domain.history import SchemaSnapshot
from domain.webhooks import (
    Attempt,
    AttemptResult,
    Delivery,
    DeliveryKey,
    DeliveryPage,
    DeliveryState,
    Endpoint,
)


@attrs.frozen
class Claim:
    """A delivery this process holds the lease of, with what sending it needs: its endpoint,
    its event (None for a ping) and its body if one was written already."""

    delivery: Delivery
    endpoint: Endpoint
    event: Event | None
    body: bytes | None


class WebhookRepository(Protocol):
    """Where webhook endpoints are kept; each change commits with its audit event."""

    async def add(self, endpoint: Endpoint, event: Event) -> None:
        """Store a new endpoint and its event together."""

    async def get(self, endpoint_id: UUID) -> Endpoint:
        """The endpoint with this id; raise `WebhookNotFound` if there is none."""

    async def list(self) -> Sequence[Endpoint]:
        """Every endpoint, oldest first."""

    async def update(self, endpoint: Endpoint, event: Event | None) -> None:
        """Replace the endpoint (and append its event, if any); `WebhookNotFound` if gone."""

    async def remove(self, endpoint_id: UUID, event: Event) -> None:
        """Delete the endpoint and every delivery it has not had yet, with its event."""


class DeliveryRepository(Protocol):
    """The outbox: deliveries are written by the store itself, in the transaction of each event
    they are for (for every enabled endpoint the event matches then); senders lease them."""

    async def add(self, delivery: Delivery, body: bytes) -> None:
        """Store a delivery that goes with no event (a ping), its body written already."""

    async def list(
        self,
        endpoint_id: UUID,
        state: DeliveryState | None,
        limit: int,
        before: DeliveryKey | None = None,
    ) -> DeliveryPage:
        """The endpoint's deliveries, newest first, at most `limit`, strictly before `before`."""

    async def redeliver(self, endpoint_id: UUID, delivery_id: UUID, now: datetime) -> None:
        """Make the delivery pending with an attempt due now; `DeliveryNotFound` if none."""

    async def claim(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_endpoint: int,
        skip: frozenset[UUID] = frozenset(),
    ) -> Sequence[Claim]:
        """Lease up to `limit` pending deliveries due by `now` whose lease is free (never
        taken, or lapsed), at most `per_endpoint` of one endpoint, none of the `skip` ones',
        oldest due first: no other claim gets them until `lease_until`."""

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
        """Record an attempt, the delivery's new state and its next attempt, and let go of the
        lease; keep `body` if the delivery has none yet (so every later attempt sends the
        first one's); with `disable`, disable the endpoint with that reason. Only while `owner`
        holds the lease: say whether it did (a lapsed lease is another sender's now)."""

    async def pending(self) -> int:
        """How many deliveries are pending, across every endpoint."""

    async def snapshot_at(self, source_id: UUID, observed_at: datetime) -> SchemaSnapshot | None:
        """The source's snapshot observed at this time, if the source and it still exist."""

    async def snapshot_before(self, source_id: UUID, sequence: int) -> SchemaSnapshot | None:
        """The source's snapshot just before `sequence`, if there is one."""


class WebhookTransport(Protocol):
    """Sends one signed attempt of a delivery, with the outbound policy checked on the resolved
    address and the connection made to that address, no redirect followed, within a timeout."""

    async def send(
        self, url: str, message_id: str, body: bytes, keys: Sequence[str]
    ) -> AttemptResult:
        """POST the body to the URL signed with each key (`whsec_...`, newest first)."""

    async def check_url(self, url: str) -> str | None:
        """Why the outbound policy refuses every address the URL's host resolves to, or None."""


class PayloadEncoder(Protocol):
    """Writes a delivery's body: the API's JSON shapes belong to the entrypoints."""

    def __call__(
        self,
        kind: str,
        at: datetime,
        event: Event | None,
        data: dict[str, object] | None = None,
        snapshot: SchemaSnapshot | None = None,
        previous: SchemaSnapshot | None = None,
    ) -> bytes:
        """`{"type", "timestamp", "data"}`; for a schema change, data gains the fingerprint,
        breaking and the changes against `previous`."""
