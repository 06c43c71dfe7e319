"""The contract of the webhook ports, for every store: the outbox follows the domain's matching
rule (`Endpoint.matches`) event for event, and leases give each due delivery to one sender."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.errors import DeliveryNotFound, WebhookNotFound
from domain.events import Action, Event, EventFilter
from domain.history import SchemaSnapshot
from domain.sources import Column
from domain.webhooks import (
    Attempt,
    AttemptError,
    Delivery,
    DeliveryState,
    Endpoint,
    SigningSecret,
)
from tests.builders import T0, make_source
from tests.contract.stores import SQL_ADAPTERS, StoreFactory


def endpoint(**changes: Any) -> Endpoint:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "url": "https://hooks.example/x",
        "events": ("*",),
        "breaking_only": False,
        "source_ids": (),
        "tags": (),
        "description": "",
        "enabled": True,
        "disabled_reason": None,
        "secrets": (SigningSecret("v1.cipher", T0 + timedelta(days=1)), SigningSecret("v1.c2")),
        "created_at": T0,
        "created_by": "tdbk_admin",
        "updated_at": T0,
    }
    values.update(changes)
    return Endpoint(**values)


def event(action: Action, at_seconds: float = 0, **fields: Any) -> Event:
    return Event(
        id=uuid.uuid4(),
        at=T0 + timedelta(seconds=at_seconds),
        actor="tdbk_admin",
        action=action,
        **fields,
    )


def created(e: Endpoint) -> Event:
    return event(Action.WEBHOOK_CREATED, webhook_id=e.id)


def _deliveries(stores: Any, endpoint_id: UUID) -> list[Delivery]:
    return list(stores.deliveries.list(endpoint_id, None, 1000).deliveries)


def test_the_outbox_follows_the_domains_rule_for_every_event(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders", tags=("finance", "eu"))
        other = uuid.uuid4()
        endpoints = [
            endpoint(),
            endpoint(events=("source.registered",), tags=("finance",)),
            endpoint(events=("source.schema_changed",), breaking_only=True),
            endpoint(enabled=False, disabled_reason="gone"),
            endpoint(events=("source.deleted",), source_ids=(other,)),
            endpoint(events=("source.deleted", "key.created"), tags=("eu",)),
            endpoint(events=("source.updated", "source.deleted"), source_ids=(source.id,)),
        ]
        for e in endpoints:
            stores.webhooks.add(e, created(e))
        acts = [
            event(Action.SOURCE_REGISTERED, 1, source_id=source.id, source_name="orders"),
            event(Action.SOURCE_SCHEMA_CHANGED, 2, source_id=source.id, breaking=False),
            event(Action.SOURCE_SCHEMA_CHANGED, 3, source_id=source.id, breaking=True),
            event(Action.SOURCE_DELETED, 4, source_id=source.id),
            event(Action.KEY_CREATED, 5, key_id="k"),
        ]
        stores.sources.add(source, acts[0])
        columns = (Column("id", "integer"),)
        for sequence, act in ((1, acts[1]), (2, acts[2])):
            snapshot = SchemaSnapshot(source.id, sequence, f"sha256:{sequence}", columns, act.at)
            assert stores.history.append(snapshot, act)
        stores.sources.remove(source.id, None, acts[3])
        stores.events.append(acts[4])
        for e in endpoints:
            got = sorted(
                str(d.event_id)
                for d in _deliveries(stores, e.id)
                if not d.type.startswith("webhook.")
            )
            expected = sorted(str(a.id) for a in acts if e.matches(a, source.tags))
            assert got == expected, e
        every = _deliveries(stores, endpoints[0].id)
        assert all(d.state is DeliveryState.PENDING and not d.attempts for d in every)
        assert all(d.next_attempt_at == d.created_at for d in every)


def test_a_claim_leases_each_due_delivery_to_one_sender_until_the_lease_lapses(
    new_stores: StoreFactory,
) -> None:
    with new_stores.shared(2) as (one, two):
        slow, quick = endpoint(), endpoint()
        for e in (slow, quick):
            one.webhooks.add(e, created(e))
        for i in range(6):
            one.events.append(event(Action.KEY_CREATED, 10 + i, key_id=f"k{i}"))
        now = T0 + timedelta(seconds=60)
        until = now + timedelta(seconds=30)
        # 15 due: six key.created each, both webhook.created to the first, its own to the second.
        first = one.deliveries.claim("one", now, until, 100, 3)
        assert len(first) == 6
        assert {c.delivery.endpoint_id for c in first} == {slow.id, quick.id}
        assert all(c.endpoint.secrets == slow.secrets for c in first)
        skipped = two.deliveries.claim("two", now, until, 100, 3, frozenset({slow.id}))
        assert {c.delivery.endpoint_id for c in skipped} == {quick.id}
        assert len(skipped) == 3
        taken = {c.delivery.id for c in first} | {c.delivery.id for c in skipped}
        rest = two.deliveries.claim("two", now, until, 100, 100)
        assert len(rest) == 15 - len(taken)
        assert not {c.delivery.id for c in rest} & taken
        assert two.deliveries.claim("two", now, until, 100, 100) == []
        # The lease lapses: another sender takes the delivery, and the first may not finish it.
        later = until + timedelta(seconds=1)
        again = two.deliveries.claim("two", later, later + timedelta(seconds=30), 1, 1)
        assert len(again) == 1
        attempt = Attempt(later, 204, None, 1.5)
        mine = [c for c in first if c.delivery.id == again[0].delivery.id]
        if mine:
            assert not one.deliveries.finish_attempt(
                "one", mine[0].delivery.id, attempt, DeliveryState.SUCCEEDED, None, b"{}"
            )
        assert two.deliveries.finish_attempt(
            "two", again[0].delivery.id, attempt, DeliveryState.SUCCEEDED, None, b"{}"
        )


def test_an_attempt_is_recorded_with_its_body_and_a_410_disables(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        e = endpoint()
        stores.webhooks.add(e, created(e))
        now = T0 + timedelta(seconds=5)
        (claim,) = stores.deliveries.claim("s", now, now + timedelta(seconds=30), 10, 10)
        assert claim.body is None
        assert claim.event is not None
        assert claim.event.action is Action.WEBHOOK_CREATED
        failed = Attempt(now, 500, AttemptError.STATUS, 12.5)
        retry_at = now + timedelta(seconds=5)
        assert stores.deliveries.finish_attempt(
            "s", claim.delivery.id, failed, DeliveryState.PENDING, retry_at, b'{"a": 1}'
        )
        assert stores.deliveries.claim("s", now, now + timedelta(seconds=30), 10, 10) == []
        (again,) = stores.deliveries.claim("s", retry_at, retry_at + timedelta(seconds=9), 10, 10)
        assert again.body == b'{"a": 1}'
        assert again.delivery.round_attempts == 1
        gone = Attempt(retry_at, 410, AttemptError.STATUS, 3.0)
        assert stores.deliveries.finish_attempt(
            "s", again.delivery.id, gone, DeliveryState.FAILED, None, b"other", "gone"
        )
        shown = stores.webhooks.get(e.id)
        assert (shown.enabled, shown.disabled_reason) == (False, "gone")
        (delivery,) = _deliveries(stores, e.id)
        assert delivery.attempts == (failed, gone)
        assert (delivery.state, delivery.next_attempt_at) == (DeliveryState.FAILED, None)
        assert stores.deliveries.pending() == 0
        stores.deliveries.redeliver(e.id, delivery.id, retry_at)
        (pending,) = stores.deliveries.list(e.id, DeliveryState.PENDING, 10).deliveries
        assert (pending.round_attempts, pending.next_attempt_at) == (0, retry_at)
        with pytest.raises(DeliveryNotFound):
            stores.deliveries.redeliver(e.id, uuid.uuid4(), retry_at)


def test_pings_pages_and_removal(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        e = endpoint(events=("source.registered",))
        stores.webhooks.add(e, created(e))
        made = []
        for i in range(5):
            ping = Delivery(
                uuid.uuid4(), e.id, None, "webhook.ping", "pending", (), T0, T0 + timedelta(i)
            )
            stores.deliveries.add(ping, b"ping")
            made.append(ping.id)
        first = stores.deliveries.list(e.id, None, 3)
        assert [d.id for d in first.deliveries] == made[::-1][:3]
        rest = stores.deliveries.list(e.id, None, 3, first.next_key)
        assert [d.id for d in rest.deliveries] == made[::-1][3:]
        assert rest.next_key is None
        claims = stores.deliveries.claim("s", T0, T0 + timedelta(seconds=1), 10, 10)
        assert {c.body for c in claims} == {b"ping"}
        assert stores.deliveries.pending() == 5
        stores.webhooks.remove(e.id, event(Action.WEBHOOK_DELETED, webhook_id=e.id))
        assert stores.deliveries.pending() == 0
        with pytest.raises(WebhookNotFound):
            stores.webhooks.get(e.id)
        with pytest.raises(WebhookNotFound):
            stores.webhooks.update(e, None)


def test_an_endpoint_reads_back_as_stored(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        e = endpoint(
            source_ids=(uuid.uuid4(),), tags=("a", "é"), description="d", breaking_only=True
        )
        stores.webhooks.add(e, created(e))
        assert stores.webhooks.get(e.id) == e
        changed = endpoint(id=e.id, url="https://other.example/y", secrets=())
        stores.webhooks.update(changed, None)
        assert stores.webhooks.list() == [changed]
        trail = stores.events.list(EventFilter()).events
        assert [(t.action, t.webhook_id) for t in trail] == [(Action.WEBHOOK_CREATED, e.id)]


@pytest.mark.parametrize("adapter", SQL_ADAPTERS)
def test_the_outbox_is_in_the_events_transaction(new_stores: StoreFactory, adapter: str) -> None:
    """A rolled-back event leaves no delivery: a source whose name is taken writes neither."""
    with new_stores() as stores:
        e = endpoint()
        stores.webhooks.add(e, created(e))
        stores.sources.add(make_source("taken"), event(Action.SOURCE_REGISTERED))
        before = len(_deliveries(stores, e.id))
        with pytest.raises(Exception, match="taken"):
            stores.sources.add(make_source("taken"), event(Action.SOURCE_REGISTERED))
        assert len(_deliveries(stores, e.id)) == before
