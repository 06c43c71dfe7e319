"""Webhook endpoints, their deliveries and attempts; which events an endpoint wants; retries.

An endpoint's matching rule lives here once (`Endpoint.matches`): the stores' outboxes follow it
(the SQL ones restate it in their trigger, and the contract suite holds them to this one).
"""

from __future__ import annotations

import enum
import ipaddress
import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

import attrs

from domain.errors import FieldError
from domain.events import Action, Event
from domain.hosts import host_problem
from domain.sources import description_errors, tags_errors

PING = "webhook.ping"
"""The type of the one delivery a ping makes; it goes with no event of the trail."""
EVERY_EVENT = "*"
URL_MAX = 2000
SOURCE_IDS_MAX = 1000
OVERLAP_MAX = 604800
OVERLAP_DEFAULT = 86400
SECRET_PREFIX = "whsec_"  # noqa: S105 - a label, not a secret
RETRY_SCHEDULE_DEFAULT = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
RETRY_AFTER_MAX = 3600
GONE = "gone"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class AttemptError(enum.StrEnum):
    """Why an attempt failed, for machines."""

    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    TLS_FAILED = "tls_failed"
    HOST_NOT_ALLOWED = "host_not_allowed"
    REDIRECT = "redirect"
    STATUS = "status"


def event_types() -> tuple[str, ...]:
    """What `events` may name: every audit action, the ping, and `*` for all of them."""
    return (*(a.value for a in Action), PING, EVERY_EVENT)


@attrs.frozen
class SigningSecret:
    """One signing secret as stored (`ciphertext`), in use until `expires_at` (None: for good)."""

    ciphertext: str
    expires_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


def _ids(values: Iterable[UUID]) -> tuple[UUID, ...]:
    return tuple(values)


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _secrets(values: Iterable[SigningSecret]) -> tuple[SigningSecret, ...]:
    return tuple(values)


@attrs.frozen
class Endpoint:
    """Where events are sent, and which ones. `secrets` is newest first (encrypted)."""

    id: UUID
    url: str
    events: tuple[str, ...] = attrs.field(converter=_strings)
    breaking_only: bool
    source_ids: tuple[UUID, ...] = attrs.field(converter=_ids)
    tags: tuple[str, ...] = attrs.field(converter=_strings)
    description: str
    enabled: bool
    disabled_reason: str | None
    secrets: tuple[SigningSecret, ...] = attrs.field(converter=_secrets)
    created_at: datetime
    created_by: str
    updated_at: datetime

    def matches(self, event: Event, source_tags: Sequence[str] | None) -> bool:
        """Whether this endpoint wants the event: enabled, its action named (or `*`), breaking
        when only breaking schema changes are wanted, and, for an event about a source when
        `source_ids` or `tags` are given, that source named or carrying one of the tags (the
        source's tags when the event was recorded; those it had, for a deletion)."""
        if not self.enabled:
            return False
        if EVERY_EVENT not in self.events and event.action.value not in self.events:
            return False
        if (
            self.breaking_only
            and event.action is Action.SOURCE_SCHEMA_CHANGED
            and event.breaking is not True
        ):
            return False
        if event.source_id is None or not (self.source_ids or self.tags):
            return True
        return event.source_id in self.source_ids or any(
            tag in self.tags for tag in (source_tags or ())
        )

    def signing(self, now: datetime) -> tuple[SigningSecret, ...]:
        """The secrets a delivery is signed with now, newest first."""
        return tuple(s for s in self.secrets if s.live(now))


@attrs.frozen
class Attempt:
    """One try at a delivery: the answer's status, or why there was none."""

    at: datetime
    status_code: int | None
    error: AttemptError | None
    duration_ms: float


def _attempts(values: Iterable[Attempt]) -> tuple[Attempt, ...]:
    return tuple(values)


@attrs.frozen
class Delivery:
    """One event (or ping) owed to one endpoint; its id is the `webhook-id` of every attempt."""

    id: UUID
    endpoint_id: UUID
    event_id: UUID | None
    type: str
    state: DeliveryState = attrs.field(converter=DeliveryState)
    attempts: tuple[Attempt, ...] = attrs.field(converter=_attempts)
    next_attempt_at: datetime | None
    created_at: datetime
    round_attempts: int = 0
    """Attempts since the delivery was made or last redelivered: where the retry schedule is."""


@attrs.frozen
class DeliveryKey:
    """A position in the newest-first order of an endpoint's deliveries: strictly before this."""

    created_at: datetime
    id: UUID


@attrs.frozen
class DeliveryPage:
    deliveries: tuple[Delivery, ...]
    next_key: DeliveryKey | None = None


@attrs.frozen
class AttemptResult:
    """What the transport saw: a status code or an error, how long it took, and Retry-After."""

    status_code: int | None
    error: AttemptError | None
    duration_ms: float
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


@attrs.frozen
class RetryPolicy:
    """When the next attempt of a failed delivery is due: the schedule's delays in order, each
    with up to `jitter` of it added, or `Retry-After` (at most an hour) on a 429 or 503."""

    schedule: tuple[float, ...] = RETRY_SCHEDULE_DEFAULT
    jitter: float = 0.1

    def next_attempt(
        self, now: datetime, attempts: int, result: AttemptResult, rng: random.Random | None = None
    ) -> datetime | None:
        """After `attempts` failed attempts (this one included), when the next is due; None
        once the schedule is spent (the delivery has failed)."""
        if attempts > len(self.schedule):
            return None
        if result.retry_after is not None and result.status_code in (429, 503):
            return now + timedelta(seconds=min(max(result.retry_after, 0), RETRY_AFTER_MAX))
        delay = self.schedule[attempts - 1]
        spread = (rng or random).random() * self.jitter * delay
        return now + timedelta(seconds=delay + spread)


def parse_schedule(text: str) -> tuple[float, ...]:
    """`5,300,1800` as delays in seconds; raises `ValueError` on anything else."""
    delays = tuple(float(item) for item in text.split(",") if item.strip())
    if not delays or any(d < 0 for d in delays):
        raise ValueError(f"not a list of delays in seconds: {text!r}")
    return delays


def url_errors(url: object, allow_http: bool) -> list[FieldError]:
    """Problems with an endpoint's URL: absolute https (or http to a loopback address, or any
    http when allowed), one host, no user info, at most 2000 characters."""
    if not isinstance(url, str) or not url:
        return [FieldError("url", "must be a non-empty string")]
    if len(url) > URL_MAX:
        return [FieldError("url", f"must be at most {URL_MAX} characters long")]
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        return [FieldError("url", "must be ASCII without spaces or control characters")]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [FieldError("url", "must be an absolute URL with a valid port")]
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return [FieldError("url", "must be an absolute https:// URL")]
    if "@" in parts.netloc:
        return [FieldError("url", "must not carry user information")]
    if parts.fragment:
        return [FieldError("url", "must not have a fragment")]
    if port == 0:
        return [FieldError("url", "must not name port 0")]
    problem = host_problem(parts.hostname)
    if problem is not None:
        return [FieldError("url", f"host {problem}")]
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        return [FieldError("url", "must use https:// (http:// only to a loopback address)")]
    return []


def is_loopback(host: str) -> bool:
    """Whether the host is `localhost` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def events_errors(events: object) -> list[FieldError]:
    """`events`: a non-empty list of known event types, without repeats."""
    if not isinstance(events, list | tuple) or not events:
        return [FieldError("events", "must be a non-empty list of event types")]
    known = event_types()
    errors = []
    for i, value in enumerate(events):
        if value not in known:
            errors.append(FieldError(f"events[{i}]", f"must be one of {', '.join(known)}"))
    if not errors and len(set(events)) != len(events):
        errors.append(FieldError("events", "must not repeat an event type"))
    return errors


def source_ids_errors(source_ids: object) -> list[FieldError]:
    if not isinstance(source_ids, list | tuple):
        return [FieldError("source_ids", "must be a list of source ids")]
    if len(source_ids) > SOURCE_IDS_MAX:
        return [FieldError("source_ids", f"must hold at most {SOURCE_IDS_MAX} ids")]
    errors = []
    for i, value in enumerate(source_ids):
        if not isinstance(value, UUID):
            errors.append(FieldError(f"source_ids[{i}]", "must be a UUID"))
    return errors


def endpoint_errors(
    url: object,
    events: object,
    source_ids: object,
    tags: object,
    description: object,
    allow_http: bool,
) -> list[FieldError]:
    """Every problem with an endpoint's fields, each naming its field."""
    return [
        *url_errors(url, allow_http),
        *events_errors(events),
        *source_ids_errors(source_ids),
        *tags_errors(tags),
        *description_errors(description),
    ]
