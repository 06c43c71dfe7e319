"""The audit trail: who did what to which source or key, and when (never a secret's value)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import attrs


class Action(enum.StrEnum):
    """What an event records."""

    SOURCE_REGISTERED = "source.registered"
    SOURCE_UPDATED = "source.updated"
    SOURCE_DELETED = "source.deleted"
    SOURCE_SECRETS_READ = "source.secrets_read"
    SOURCE_SCHEMA_CHANGED = "source.schema_changed"
    SOURCE_CHECK_FAILED = "source.check_failed"
    SOURCE_CHECK_RECOVERED = "source.check_recovered"
    KEY_CREATED = "key.created"
    KEY_REVOKED = "key.revoked"
    KEY_ROTATED = "key.rotated"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"  # noqa: S105 - an action's name


def _changed(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class Event:
    """One recorded act. `changed` holds field paths (`connection.password`), never values."""

    id: UUID
    at: datetime
    actor: str
    action: Action = attrs.field(converter=Action)
    source_id: UUID | None = None
    source_name: str | None = None
    key_id: str | None = None
    changed: tuple[str, ...] = attrs.field(default=(), converter=_changed)
    breaking: bool | None = None
    """Only for `source.schema_changed`: whether the new schema breaks readers of the old one."""
    reason: str | None = None
    """Only for `source.check_failed`: why the source's backend did not answer."""
    webhook_id: UUID | None = None
    """Only for `webhook.*` events: the endpoint acted on."""


@attrs.frozen
class EventKey:
    """A position in the oldest-first order of events: strictly after this (time, id)."""

    at: datetime
    id: UUID


def event_order(event: Event) -> tuple[datetime, UUID]:
    """The trail's order: oldest first, ties broken by id."""
    return (event.at, event.id)


@attrs.frozen
class EventFilter:
    """Which events a listing returns; every given criterion must hold."""

    source_id: UUID | None = None
    action: Action | None = None
    actor: str | None = None
    since: datetime | None = None

    def matches(self, event: Event) -> bool:
        """Whether an event passes this filter (the reference semantics every store follows)."""
        return (
            (self.source_id is None or event.source_id == self.source_id)
            and (self.action is None or event.action == self.action)
            and (self.actor is None or event.actor == self.actor)
            and (self.since is None or event.at >= self.since)
        )


@attrs.frozen
class EventPage:
    """One page of the trail and the key of the page after it, if there is one."""

    events: tuple[Event, ...]
    next_key: EventKey | None = None
