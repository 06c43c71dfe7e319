"""Use cases on an endpoint's deliveries that a client runs: list them, redeliver one."""

from __future__ import annotations

from uuid import UUID

import attrs

from application.ports import Clock
from application.sources import Guarded, check_limit, guarded
from application.webhook_ports import DeliveryRepository, WebhookRepository
from domain.keys import Principal, Scope
from domain.webhooks import DeliveryKey, DeliveryPage, DeliveryState

DELIVERY_LIMIT_DEFAULT = 100


@attrs.frozen
class ListDeliveriesQuery:
    actor: Principal
    endpoint_id: UUID
    state: DeliveryState | None = None
    limit: int = DELIVERY_LIMIT_DEFAULT
    before: DeliveryKey | None = None


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class ListDeliveries(Guarded):
    """An endpoint's deliveries, newest first, with every attempt."""

    _webhooks: WebhookRepository
    _deliveries: DeliveryRepository

    async def __call__(self, query: ListDeliveriesQuery) -> DeliveryPage:
        check_limit(query.limit)
        await self._webhooks.get(query.endpoint_id)
        return await self._deliveries.list(
            query.endpoint_id, query.state, query.limit, query.before
        )


@attrs.frozen
class RedeliverCommand:
    actor: Principal
    endpoint_id: UUID
    delivery_id: UUID


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class Redeliver(Guarded):
    """Make a delivery pending again, with an attempt due now and a fresh retry schedule."""

    _webhooks: WebhookRepository
    _deliveries: DeliveryRepository
    _clock: Clock

    async def __call__(self, command: RedeliverCommand) -> None:
        await self._webhooks.get(command.endpoint_id)
        await self._deliveries.redeliver(
            command.endpoint_id, command.delivery_id, self._clock.now()
        )
