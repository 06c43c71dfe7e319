"""Use cases on webhooks: manage endpoints and their secrets, list and redeliver deliveries, and
the two steps the sender runs: claim due deliveries, attempt one."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import attrs

from application.ports import Clock, IdGenerator, SecretCipher
from application.sources import Guarded, guarded
from application.webhook_ports import (
    Claim,
    DeliveryRepository,
    PayloadEncoder,
    WebhookRepository,
    WebhookTransport,
)
from domain.errors import FieldError, InvalidInput
from domain.events import Action, Event
from domain.keys import Principal, Scope
from domain.sources import normalized
from domain.webhooks import (
    GONE,
    OVERLAP_DEFAULT,
    OVERLAP_MAX,
    PING,
    SECRET_PREFIX,
    Attempt,
    AttemptResult,
    Delivery,
    DeliveryState,
    Endpoint,
    RetryPolicy,
    SigningSecret,
    endpoint_errors,
)

PATCHABLE = ("url", "events", "breaking_only", "source_ids", "tags", "description", "enabled")


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@attrs.frozen
class UrlRules:
    """How far an endpoint's URL may point: `allow_http` lets http:// go anywhere."""

    allow_http: bool = False


@attrs.frozen
class EndpointFields:
    """An endpoint's fields as a client gives them (typed at the edge, judged here)."""

    url: str
    events: tuple[str, ...]
    breaking_only: bool = False
    source_ids: tuple[UUID, ...] = ()
    tags: tuple[str, ...] = ()
    description: str = ""


@attrs.frozen
class CreateWebhookCommand:
    actor: Principal
    fields: EndpointFields


@attrs.frozen
class CreatedWebhook:
    """A new endpoint and its secret in clear: the only time it is shown."""

    endpoint: Endpoint
    secret: str


@attrs.frozen
class WebhookUseCase(Guarded):
    """A use case that changes endpoints: their store, and what their audit events take."""

    _webhooks: WebhookRepository
    _clock: Clock
    _ids: IdGenerator

    def _event(
        self, actor: Principal, action: Action, endpoint: Endpoint, changed: Sequence[str] = ()
    ) -> Event:
        return Event(
            id=self._ids.new(),
            at=endpoint.updated_at,
            actor=actor.identity,
            action=action,
            changed=tuple(changed),
            webhook_id=endpoint.id,
        )


@attrs.frozen(kw_only=True)
class EndpointUseCase(WebhookUseCase):
    """A use case that writes an endpoint's fields: they are judged as at creation."""

    _transport: WebhookTransport
    _rules: UrlRules = attrs.field(factory=UrlRules)

    async def _check(self, fields: EndpointFields) -> None:
        """Raise `InvalidInput` naming every bad field, the URL's policy refusal included."""
        errors = endpoint_errors(
            fields.url,
            list(fields.events),
            list(fields.source_ids),
            list(fields.tags),
            fields.description,
            self._rules.allow_http,
        )
        if not any(e.field == "url" for e in errors):
            refused = await self._transport.check_url(fields.url)
            if refused is not None:
                errors.insert(0, FieldError("url", refused))
        if errors:
            raise InvalidInput(errors)


@guarded(Scope.WEBHOOKS)
@attrs.frozen(kw_only=True)
class CreateWebhook(EndpointUseCase):
    """Validate an endpoint (its URL against the outbound policy too), give it a secret, store
    it with its `webhook.created` event."""

    _cipher: SecretCipher

    async def __call__(self, command: CreateWebhookCommand) -> CreatedWebhook:
        fields = attrs.evolve(
            command.fields, tags=tuple(normalized(t) for t in command.fields.tags)
        )
        await self._check(fields)
        now = self._clock.now()
        secret = new_secret()
        endpoint = Endpoint(
            id=self._ids.new(),
            **attrs.asdict(fields, recurse=False),
            enabled=True,
            disabled_reason=None,
            secrets=(SigningSecret(self._cipher.encrypt(secret)),),
            created_at=now,
            created_by=command.actor.identity,
            updated_at=now,
        )
        event = self._event(command.actor, Action.WEBHOOK_CREATED, endpoint)
        await self._webhooks.add(endpoint, event)
        return CreatedWebhook(endpoint, secret)


@attrs.frozen
class WebhookQuery:
    actor: Principal
    endpoint_id: UUID


@attrs.frozen
class ListWebhooksQuery:
    """Every endpoint, oldest first (there are few: no pages)."""

    actor: Principal


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class ListWebhooks(Guarded):
    _webhooks: WebhookRepository

    async def __call__(self, query: ListWebhooksQuery) -> Sequence[Endpoint]:
        return await self._webhooks.list()


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class GetWebhook(Guarded):
    _webhooks: WebhookRepository

    async def __call__(self, query: WebhookQuery) -> Endpoint:
        return await self._webhooks.get(query.endpoint_id)


@attrs.frozen
class UpdateWebhookCommand:
    """A merge patch over the endpoint's fields: `changes` holds the fields given, typed."""

    actor: Principal
    endpoint_id: UUID
    changes: Mapping[str, Any]


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class UpdateWebhook(EndpointUseCase):
    """Apply a merge patch, validate the result as at creation, store it with its event (none
    when nothing changed). Enabling again clears `disabled_reason`."""

    async def __call__(self, command: UpdateWebhookCommand) -> Endpoint:
        unknown = [name for name in command.changes if name not in PATCHABLE]
        if unknown:
            raise InvalidInput([FieldError(n, "is not a field an update may set") for n in unknown])
        current = await self._webhooks.get(command.endpoint_id)
        merged = self._merged(current, command.changes)
        changed = [n for n in PATCHABLE if getattr(merged, n) != getattr(current, n)]
        if not changed:
            return current
        if {"url", "events", "source_ids", "tags", "description"} & set(changed):
            fields = EndpointFields(
                merged.url,
                merged.events,
                merged.breaking_only,
                merged.source_ids,
                merged.tags,
                merged.description,
            )
            await self._check(fields)
        merged = attrs.evolve(merged, updated_at=self._clock.now())
        event = self._event(command.actor, Action.WEBHOOK_UPDATED, merged, changed)
        await self._webhooks.update(merged, event)
        return merged

    @staticmethod
    def _merged(current: Endpoint, changes: Mapping[str, Any]) -> Endpoint:
        defaults = {"source_ids": (), "tags": (), "description": "", "breaking_only": False}
        values: dict[str, Any] = {}
        errors = []
        for name, value in changes.items():
            if value is None and name not in defaults:
                errors.append(FieldError(name, "must not be null"))
            elif value is None:
                values[name] = defaults[name]
            elif name == "tags":
                values[name] = tuple(normalized(t) if isinstance(t, str) else t for t in value)
            else:
                values[name] = value
        if errors:
            raise InvalidInput(errors)
        if values.get("enabled") is True and not current.enabled:
            values["disabled_reason"] = None
        return attrs.evolve(current, **values)


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class DeleteWebhook(WebhookUseCase):
    """Delete the endpoint and the deliveries it has not had yet, with `webhook.deleted`."""

    async def __call__(self, query: WebhookQuery) -> None:
        endpoint = await self._webhooks.get(query.endpoint_id)
        gone = attrs.evolve(endpoint, updated_at=self._clock.now())
        await self._webhooks.remove(
            endpoint.id, self._event(query.actor, Action.WEBHOOK_DELETED, gone)
        )


@attrs.frozen
class RotateSecretCommand:
    actor: Principal
    endpoint_id: UUID
    overlap_seconds: int = OVERLAP_DEFAULT


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class RotateWebhookSecret(WebhookUseCase):
    """A new secret, first; the current ones stay in use until the overlap ends."""

    _cipher: SecretCipher

    async def __call__(self, command: RotateSecretCommand) -> str:
        overlap = command.overlap_seconds
        if isinstance(overlap, bool) or not 0 <= overlap <= OVERLAP_MAX:
            raise InvalidInput.single("overlap_seconds", f"must be between 0 and {OVERLAP_MAX}")
        endpoint = await self._webhooks.get(command.endpoint_id)
        now = self._clock.now()
        until = now + timedelta(seconds=overlap)
        kept = tuple(
            attrs.evolve(s, expires_at=min(until, s.expires_at or until))
            for s in endpoint.signing(now)
            if overlap > 0
        )
        secret = new_secret()
        rotated = attrs.evolve(
            endpoint,
            secrets=(SigningSecret(self._cipher.encrypt(secret)), *kept),
            updated_at=now,
        )
        event = self._event(command.actor, Action.WEBHOOK_SECRET_ROTATED, rotated)
        await self._webhooks.update(rotated, event)
        return secret


@guarded(Scope.WEBHOOKS)
@attrs.frozen
class PingWebhook(WebhookUseCase):
    """One `webhook.ping` delivery to the endpoint."""

    _deliveries: DeliveryRepository
    _encode: PayloadEncoder

    async def __call__(self, query: WebhookQuery) -> Delivery:
        endpoint = await self._webhooks.get(query.endpoint_id)
        now = self._clock.now()
        delivery = Delivery(
            id=self._ids.new(),
            endpoint_id=endpoint.id,
            event_id=None,
            type=PING,
            state=DeliveryState.PENDING,
            attempts=(),
            next_attempt_at=now,
            created_at=now,
        )
        body = self._encode(PING, now, None, {"webhook_id": str(endpoint.id)})
        await self._deliveries.add(delivery, body)
        return delivery


@attrs.frozen
class ClaimDeliveries:
    """Lease the deliveries due now (the sender's first step), at most `per_endpoint` of an
    endpoint and none of the endpoints in `skip` (those whose attempts are all in flight)."""

    _deliveries: DeliveryRepository
    _clock: Clock
    lease_seconds: float = 60.0

    async def __call__(
        self, owner: str, limit: int, per_endpoint: int, skip: frozenset[UUID] = frozenset()
    ) -> Sequence[Claim]:
        now = self._clock.now()
        until = now + timedelta(seconds=self.lease_seconds)
        return await self._deliveries.claim(owner, now, until, limit, per_endpoint, skip)


@attrs.frozen
class AttemptOutcome:
    """What one attempt did: the transport's result and the delivery's state after it."""

    result: AttemptResult
    state: DeliveryState
    recorded: bool


@attrs.frozen
class AttemptDelivery:
    """Send one claimed delivery once: its body (written at the first attempt and kept), signed
    with each live secret; record the attempt, and the next one's time or the end."""

    _deliveries: DeliveryRepository
    _transport: WebhookTransport
    _encode: PayloadEncoder
    _cipher: SecretCipher
    _clock: Clock
    _retry: RetryPolicy = attrs.field(factory=RetryPolicy)

    async def __call__(self, claim: Claim, owner: str) -> AttemptOutcome:
        delivery = claim.delivery
        # A body is written at the first attempt and kept: every attempt sends the same one.
        body = claim.body if claim.body is not None else await self._body(claim)
        started = self._clock.now()
        keys = [self._cipher.decrypt(s.ciphertext) for s in claim.endpoint.signing(started)]
        result = await self._transport.send(claim.endpoint.url, str(delivery.id), body, keys)
        now = self._clock.now()
        attempt = Attempt(started, result.status_code, result.error, result.duration_ms)
        state, next_at, disable = self._after(result, delivery, now)
        recorded = await self._deliveries.finish_attempt(
            owner, delivery.id, attempt, state, next_at, body, disable
        )
        return AttemptOutcome(result, state, recorded)

    def _after(
        self, result: AttemptResult, delivery: Delivery, now: Any
    ) -> tuple[DeliveryState, Any, str | None]:
        if result.succeeded:
            return DeliveryState.SUCCEEDED, None, None
        if result.gone:
            return DeliveryState.FAILED, None, GONE
        next_at = self._retry.next_attempt(now, delivery.round_attempts + 1, result)
        return (DeliveryState.PENDING if next_at else DeliveryState.FAILED), next_at, None

    async def _body(self, claim: Claim) -> bytes:
        event = claim.event
        if event is None:  # a ping's body is written with it; this one's event has gone
            return self._encode(claim.delivery.type, claim.delivery.created_at, None, {})
        snapshot = previous = None
        if event.action is Action.SOURCE_SCHEMA_CHANGED and event.source_id is not None:
            snapshot = await self._deliveries.snapshot_at(event.source_id, event.at)
            if snapshot is not None:
                previous = await self._deliveries.snapshot_before(
                    event.source_id, snapshot.sequence
                )
        return self._encode(event.action.value, event.at, event, None, snapshot, previous)


@attrs.frozen
class CountPendingDeliveries:
    """How many deliveries are pending (for the operator's metrics)."""

    _deliveries: DeliveryRepository

    async def __call__(self) -> int:
        return await self._deliveries.pending()
