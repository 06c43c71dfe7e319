"""Use cases on an endpoint's deliveries that a client runs: list them, redeliver one."""

from __future__ import annotations

from typing import TypeAlias
from uuid import UUID

import attrs

from application.ports import Clock
from application.sources import (
    CHILD_LIMIT_DEFAULT,
    ChildPageQuery,
    ChildStoreListing,
    Guarded,
    guarded,
)
from application.webhook_ports import DeliveryRepository, WebhookRepository
from domain.keys import Principal, Scope
from domain.webhooks import DeliveryKey, DeliveryPage, DeliveryState

DELIVERY_LIMIT_DEFAULT = CHILD_LIMIT_DEFAULT

ListDeliveriesQuery: TypeAlias = ChildPageQuery[DeliveryState, DeliveryKey]
"""An endpoint's deliveries (`parent_id`: the endpoint), of one state if `filter` names one."""


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class ListDeliveries(ChildStoreListing[DeliveryState, DeliveryKey, DeliveryPage]):
    """An endpoint's deliveries, newest first, with every attempt: `parents` the endpoints'
    store, `children` the outbox (`DeliveryRepository.list`)."""


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
