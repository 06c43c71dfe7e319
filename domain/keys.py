"""API keys, their scopes, and who is acting."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta

import attrs

TOKEN_PREFIX = "tdbk"  # noqa: S105 - a label, not a secret
OIDC_PREFIX = "oidc"
ROTATION_OVERLAP_MAX = timedelta(days=7)
ROTATION_OVERLAP_DEFAULT = timedelta(days=1)


class Scope(enum.StrEnum):
    """What a key may do."""

    READ = "sources:read"
    WRITE = "sources:write"
    SECRETS = "sources:secrets"
    AUDIT = "audit:read"
    KEYS = "keys:manage"
    WEBHOOKS = "webhooks:manage"


ALL_SCOPES = frozenset(Scope)


def _scopes(values: Iterable[Scope]) -> frozenset[Scope]:
    return frozenset(values)


def public_id(key_id: str) -> str:
    """The part of a token that may be shown anywhere: `tdbk_<key_id>`."""
    return f"{TOKEN_PREFIX}_{key_id}"


def key_id_of(text: str) -> str:
    """A key's id from itself or its public form (`tdbk_<key_id>`)."""
    return text.removeprefix(f"{TOKEN_PREFIX}_")


@attrs.frozen
class ApiKey:
    """A stored API key: only a hash of its secret is kept.

    `superseded` marks a key whose rotation gave its name to a new key: it works until it
    expires, but no longer holds the name (one key that is not revoked holds a name at a time).
    `last_used_at` is kept to the minute.
    """

    key_id: str
    name: str
    scopes: frozenset[Scope] = attrs.field(converter=_scopes)
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    created_by: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    rotated_from: str | None = None
    superseded: bool = False

    @property
    def active(self) -> bool:
        """Not revoked (it may have expired: see `usable`)."""
        return self.revoked_at is None

    def usable(self, now: datetime) -> bool:
        """Whether a token of this key authenticates at `now`: not revoked, not expired."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    @property
    def lifetime(self) -> timedelta | None:
        """How long the key was made to last (None: for ever); a rotation keeps it."""
        return None if self.expires_at is None else self.expires_at - self.created_at


@attrs.frozen
class Principal:
    """Who is acting and what they may do."""

    identity: str
    scopes: frozenset[Scope] = attrs.field(converter=_scopes)
    operator: bool = False
    """The local operator (`tdb-cli`), trusted as a key with every scope: it may act without
    `sources:secrets` only so that secrets are not shown to it."""
    key_id: str | None = None
    """The id of the API key acting (None for the operator and for an OIDC token)."""
    expires_at: datetime | None = None
    """When the key or token stops working (None: not by itself)."""

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    def may_send_secrets(self) -> bool:
        """Whether a stored secret may go where this actor points its connection without the
        actor sending it: only for one who could read it (or the local operator)."""
        return self.operator or self.can(Scope.SECRETS)


def scopes_named(claim: object) -> frozenset[Scope]:
    """The tdb scopes an OIDC token's scope claim names: a space-separated string or a list of
    names; names that are not tdb scopes are ignored."""
    names: Iterable[object]
    if isinstance(claim, str):
        names = claim.split()
    elif isinstance(claim, list | tuple):
        names = claim
    else:
        return frozenset()
    known = {s.value: s for s in Scope}
    return frozenset(known[n] for n in names if isinstance(n, str) and n in known)


@attrs.frozen
class VerifiedToken:
    """What a verified OIDC token says: its subject, its scope claim, when it stops working."""

    subject: str
    scope_claim: object
    expires_at: datetime

    def principal(self) -> Principal:
        """The principal acting with this token: `oidc:<sub>`, with the scopes it names."""
        return Principal(
            identity=f"{OIDC_PREFIX}:{self.subject}",
            scopes=scopes_named(self.scope_claim),
            expires_at=self.expires_at,
        )
