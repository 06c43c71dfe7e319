"""API keys, their scopes, and who is acting."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs

TOKEN_PREFIX = "tdbk"  # noqa: S105 - a label, not a secret


class Scope(enum.StrEnum):
    """What a key may do."""

    READ = "sources:read"
    WRITE = "sources:write"
    SECRETS = "sources:secrets"
    AUDIT = "audit:read"
    WEBHOOKS = "webhooks:manage"


ALL_SCOPES = frozenset(Scope)


def _scopes(values: Iterable[Scope]) -> frozenset[Scope]:
    return frozenset(values)


def public_id(key_id: str) -> str:
    """The part of a token that may be shown anywhere: `tdbk_<key_id>`."""
    return f"{TOKEN_PREFIX}_{key_id}"


@attrs.frozen
class ApiKey:
    """A stored API key: only a hash of its secret is kept."""

    key_id: str
    name: str
    scopes: frozenset[Scope] = attrs.field(converter=_scopes)
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@attrs.frozen
class Principal:
    """Who is acting and what they may do."""

    identity: str
    scopes: frozenset[Scope] = attrs.field(converter=_scopes)
    operator: bool = False
    """The local operator (`tdb-cli`), trusted as a key with every scope: it may act without
    `sources:secrets` only so that secrets are not shown to it."""

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    def may_send_secrets(self) -> bool:
        """Whether a stored secret may go where this actor points its connection without the
        actor sending it: only for one who could read it (or the local operator)."""
        return self.operator or self.can(Scope.SECRETS)
