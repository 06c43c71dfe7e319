"""The JSON shapes of webhooks: endpoints, deliveries and attempts as the API shows them, and the
body every delivery carries (`{"type", "timestamp", "data"}`), which the sender signs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from domain.events import Event
from domain.history import SchemaSnapshot, diff
from domain.webhooks import Attempt, Delivery, Endpoint
from entrypoints.presenters import ColumnChangeOut, EventOut, Timestamp, api_time

DeliveryStateName = Literal["pending", "succeeded", "failed"]
AttemptErrorName = Literal[
    "timeout", "unreachable", "tls_failed", "host_not_allowed", "redirect", "status"
]


class WebhookOut(msgspec.Struct):
    """A webhook endpoint (its secret is never shown again after creation)."""

    id: UUID
    url: str
    events: list[str]
    breaking_only: bool
    source_ids: list[UUID]
    tags: list[str]
    description: str
    enabled: bool
    disabled_reason: Annotated[str | None, Meta(description='"gone" after a 410 answer')]
    created_at: Timestamp
    created_by: str
    updated_at: Timestamp

    @classmethod
    def of(cls, endpoint: Endpoint) -> WebhookOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            events=list(endpoint.events),
            breaking_only=endpoint.breaking_only,
            source_ids=list(endpoint.source_ids),
            tags=list(endpoint.tags),
            description=endpoint.description,
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            created_at=api_time(endpoint.created_at),
            created_by=endpoint.created_by,
            updated_at=api_time(endpoint.updated_at),
        )


class CreatedWebhookOut(WebhookOut):
    """A new endpoint, with its signing secret: the only answer that ever shows it."""

    secret: Annotated[str, Meta(description="whsec_<base64 of 32 random bytes>")] = ""


class SecretOut(msgspec.Struct):
    """A new signing secret, shown once."""

    secret: Annotated[str, Meta(description="whsec_<base64 of 32 random bytes>")]


class AttemptOut(msgspec.Struct):
    at: Timestamp
    status_code: int | None
    error: AttemptErrorName | None
    duration_ms: float

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls(
            at=api_time(attempt.at),
            status_code=attempt.status_code,
            error=None if attempt.error is None else attempt.error.value,  # type: ignore[arg-type]
            duration_ms=attempt.duration_ms,
        )


class DeliveryOut(msgspec.Struct):
    """One event (or ping) owed to an endpoint, and every attempt at it."""

    id: Annotated[UUID, Meta(description="The webhook-id header of every attempt")]
    event_id: UUID | None
    type: str
    state: DeliveryStateName
    attempts: list[AttemptOut]
    next_attempt_at: Timestamp | None
    created_at: Timestamp

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            type=delivery.type,
            state=delivery.state.value,  # type: ignore[arg-type]
            attempts=[AttemptOut.of(a) for a in delivery.attempts],
            next_attempt_at=(
                None if delivery.next_attempt_at is None else api_time(delivery.next_attempt_at)
            ),
            created_at=api_time(delivery.created_at),
        )


class PingAccepted(msgspec.Struct):
    """The ping's delivery, due now."""

    delivery_id: UUID


def encode_payload(
    kind: str,
    at: datetime,
    event: Event | None,
    data: dict[str, object] | None = None,
    snapshot: SchemaSnapshot | None = None,
    previous: SchemaSnapshot | None = None,
) -> bytes:
    """A delivery's body: the event as `GET /v1/events` shows it and, for a schema change, its
    fingerprint, whether it breaks and its column changes (as in the history). Nothing else:
    an event never holds a secret or a connection value."""
    body: dict[str, Any] = dict(data or {})
    if event is not None:
        body = msgspec.to_builtins(EventOut.of(event))
        if snapshot is not None:
            changes = diff(previous.columns, snapshot.columns) if previous is not None else ()
            body["fingerprint"] = snapshot.fingerprint
            body["breaking"] = any(c.breaking for c in changes)
            body["changes"] = msgspec.to_builtins([ColumnChangeOut.of(c) for c in changes])
    return msgspec.json.encode({"type": kind, "timestamp": api_time(at), "data": body})
