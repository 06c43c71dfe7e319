"""Use cases on API keys: create, get, list, revoke, rotate, bootstrap the first one, authenticate
a token (a tdb key or, when configured, an OIDC token), and remember when each key was last used."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from application.ports import ApiKeyRepository, Clock, IdGenerator, TokenVerifier
from application.sources import require as require_scope
from domain.errors import (
    ApiKeyNotFound,
    AuthenticationFailed,
    FieldError,
    InvalidInput,
    KeyNotRotatable,
    PermissionDenied,
)
from domain.events import Action, Event
from domain.keys import (
    ALL_SCOPES,
    ROTATION_OVERLAP_DEFAULT,
    ROTATION_OVERLAP_MAX,
    TOKEN_PREFIX,
    ApiKey,
    Principal,
    Scope,
    key_id_of,
    public_id,
)
from domain.sources import name_errors

KEY_DAYS_MAX = 36_500
"""The longest lifetime a key may be given in days when `TDB_KEY_MAX_DAYS` sets none."""


def hash_secret(secret: str) -> str:
    """The stored form of a token's secret (256 random bits: a plain hash suffices)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scopes by name; none named means every scope that exists."""
    names = list(names)
    known = {s.value: s for s in Scope}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInput.single(
            "scopes", f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return frozenset(known[n] for n in names) or ALL_SCOPES


def _no_escalation(actor: Principal, scopes: Iterable[Scope]) -> None:
    """A key never grants a scope its maker lacks: `PermissionDenied` naming the first one."""
    for scope in sorted(scopes):
        if not actor.can(scope):
            raise PermissionDenied(scope)


@attrs.frozen
class IssuedKey:
    """A newly created key and its token, which exists only in this object."""

    key: ApiKey
    token: str


@attrs.frozen
class CreateApiKey:
    """Mint a key: a random id and secret; only the secret's hash is stored, with its event.

    Two keys that are not revoked never share a name (a rotation hands its name on): the store
    holds the rule, so two racing creations give one key and one `DuplicateKeyName`.
    """

    required_scope = Scope.KEYS

    _keys: ApiKeyRepository
    _clock: Clock
    _ids: IdGenerator
    _max_days: int | None = None

    def lifetime(self, expires_in_days: int | None) -> timedelta | None:
        """The lifetime asked for, or `InvalidInput` if the server's longest refuses it."""
        most = self._max_days
        if expires_in_days is None:
            if most is not None:
                raise InvalidInput.single(
                    "expires_in_days", f"is required: keys on this server last at most {most} days"
                )
            return None
        bound = most if most is not None else KEY_DAYS_MAX
        if isinstance(expires_in_days, bool) or not 1 <= expires_in_days <= bound:
            raise InvalidInput.single("expires_in_days", f"must be an integer from 1 to {bound}")
        return timedelta(days=expires_in_days)

    def issue(
        self,
        name: str,
        scopes: Iterable[str] = (),
        lifetime: timedelta | None = None,
        created_by: str = "tdb-cli",
        rotated_from: str | None = None,
    ) -> IssuedKey:
        """A new key, not yet stored."""
        # A key's name keeps the rules of a source's name: 1-100 characters, not blank, no control.
        errors = name_errors(name)
        if errors:
            raise InvalidInput(errors)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = self._clock.now()
        key = ApiKey(
            key_id=key_id,
            name=name,
            scopes=parse_scopes(scopes),
            secret_hash=hash_secret(secret),
            created_at=now,
            created_by=created_by,
            expires_at=None if lifetime is None else now + lifetime,
            rotated_from=rotated_from,
        )
        return IssuedKey(key=key, token=f"{public_id(key_id)}_{secret}")

    def event(self, key: ApiKey, actor: Principal) -> Event:
        """The `key.created` event of a key."""
        return Event(
            id=self._ids.new(),
            at=key.created_at,
            actor=actor.identity,
            action=Action.KEY_CREATED,
            key_id=key.key_id,
        )

    async def __call__(
        self,
        name: str,
        scopes: Iterable[str],
        actor: Principal,
        expires_in_days: int | None = None,
    ) -> IssuedKey:
        """A key named `name` with these scopes (none named: every scope), lasting
        `expires_in_days` days (None: for ever, unless the server sets a longest lifetime)."""
        require_scope(actor, self.required_scope)
        scopes = tuple(scopes)
        errors: list[FieldError] = name_errors(name)
        granted: frozenset[Scope] = frozenset()
        try:
            granted = parse_scopes(scopes)
        except InvalidInput as exc:
            errors += exc.errors
        lifetime = None
        try:
            lifetime = self.lifetime(expires_in_days)
        except InvalidInput as exc:
            errors += exc.errors
        if errors:
            raise InvalidInput(errors)
        _no_escalation(actor, granted)
        issued = self.issue(name, scopes, lifetime, actor.identity)
        await self._keys.add(issued.key, self.event(issued.key, actor))
        return issued


@attrs.frozen
class BootstrapAdminKey:
    """On first start, create one admin key if the store has none; return it, or None.

    Under a longest lifetime (`TDB_KEY_MAX_DAYS`) the admin key lasts that long."""

    _keys: ApiKeyRepository
    _create: CreateApiKey
    _max_days: int | None = None

    async def __call__(self, actor: Principal) -> IssuedKey | None:
        lifetime = None if self._max_days is None else timedelta(days=self._max_days)
        issued = self._create.issue("admin", (), lifetime, actor.identity)
        event = self._create.event(issued.key, actor)
        return issued if await self._keys.add_if_none(issued.key, event) else None


@attrs.frozen
class ListApiKeys:
    """Every key, revoked and expired ones included, without secrets, oldest first."""

    required_scope = Scope.KEYS

    _keys: ApiKeyRepository

    async def __call__(self, actor: Principal) -> Sequence[ApiKey]:
        require_scope(actor, self.required_scope)
        return await self._keys.list()


@attrs.frozen
class GetApiKey:
    """One key by its id (`<id>` or `tdbk_<id>`), without its secret."""

    required_scope = Scope.KEYS

    _keys: ApiKeyRepository

    async def __call__(self, actor: Principal, key_id: str) -> ApiKey:
        require_scope(actor, self.required_scope)
        return await self._keys.get(key_id_of(key_id))


@attrs.frozen
class RevokeApiKey:
    """Stop a key from working (the first revocation is recorded; the record stays)."""

    required_scope = Scope.KEYS

    _keys: ApiKeyRepository
    _clock: Clock
    _ids: IdGenerator

    async def __call__(self, key_id: str, actor: Principal) -> ApiKey:
        require_scope(actor, self.required_scope)
        key_id = key_id_of(key_id)
        now = self._clock.now()
        event = Event(
            id=self._ids.new(),
            at=now,
            actor=actor.identity,
            action=Action.KEY_REVOKED,
            key_id=key_id,
        )
        return await self._keys.revoke(key_id, now, event)


@attrs.frozen
class RotateApiKey:
    """Rotate a key: the new key takes the name, the old one expires at the end of the overlap.

    The new key is a key made by the actor: it needs every scope of the old one (no escalation)
    and its lifetime must be one the server allows. Of two racing rotations of one key, one wins
    (the store hands the name on once); the other gets `KeyNotRotatable`.
    """

    required_scope = Scope.KEYS

    _keys: ApiKeyRepository
    _create: CreateApiKey
    _clock: Clock
    _ids: IdGenerator

    async def __call__(
        self, key_id: str, actor: Principal, overlap: timedelta = ROTATION_OVERLAP_DEFAULT
    ) -> IssuedKey:
        """The new key; the old one (`key_id`) keeps working for `overlap` (0 to 7 days)."""
        require_scope(actor, self.required_scope)
        if not timedelta(0) <= overlap <= ROTATION_OVERLAP_MAX:
            raise InvalidInput.single(
                "overlap_seconds", f"must be from 0 to {int(ROTATION_OVERLAP_MAX.total_seconds())}"
            )
        old = await self._keys.get(key_id_of(key_id))
        now = self._clock.now()
        if old.revoked_at is not None:
            raise KeyNotRotatable(old.key_id, "revoked")
        if not old.usable(now):
            raise KeyNotRotatable(old.key_id, "expired")
        if old.superseded:
            raise KeyNotRotatable(old.key_id, "already rotated")
        _no_escalation(actor, old.scopes)
        lifetime = old.lifetime
        try:
            self._create.lifetime(None if lifetime is None else max(1, lifetime.days))
        except InvalidInput:
            raise InvalidInput.single(
                "key_id", "its lifetime is not one this server allows now: create a new key"
            ) from None
        scopes = [s.value for s in old.scopes]
        issued = self._create.issue(old.name, scopes, lifetime, actor.identity, old.key_id)
        old_until = now + overlap
        if old.expires_at is not None:
            old_until = min(old_until, old.expires_at)
        created = self._create.event(issued.key, actor)
        rotated = attrs.evolve(
            created, id=self._ids.new(), action=Action.KEY_ROTATED, key_id=old.key_id
        )
        events = (created, rotated)
        await self._keys.rotate(old.key_id, old_until, issued.key, events)
        return issued


@attrs.frozen
class Authenticate:
    """Turn a bearer token into a principal, or raise `AuthenticationFailed`, whatever the cause.

    A token that is not a tdb key (`tdbk_...`) is verified as an OIDC token when the server
    trusts an issuer; otherwise it is unknown. The answer is the same either way: only the
    failure's `cause` (for the metrics) says why.
    """

    _keys: ApiKeyRepository
    _clock: Clock
    _tokens: TokenVerifier | None = None

    async def __call__(self, token: str) -> Principal:
        prefix, _, rest = token.partition("_")
        if prefix != TOKEN_PREFIX:
            if self._tokens is None:
                raise AuthenticationFailed("malformed")
            return (await self._tokens.verify(token)).principal()
        key_id, _, secret = rest.partition("_")
        if not key_id or not secret:
            raise AuthenticationFailed("malformed")
        try:
            key = await self._keys.get(key_id)
        except ApiKeyNotFound:
            raise AuthenticationFailed("unknown") from None
        if not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
            raise AuthenticationFailed("unknown")
        if not key.active:
            raise AuthenticationFailed("revoked")
        if not key.usable(self._clock.now()):
            raise AuthenticationFailed("expired")
        return Principal(
            identity=public_id(key.key_id),
            scopes=key.scopes,
            key_id=key.key_id,
            expires_at=key.expires_at,
        )


class PrincipalCache:
    """Recently authenticated tokens, so that a hot key costs no store round trip.

    A revoked key keeps working for at most `ttl` seconds in each process that has it cached;
    an entry never outlives the principal's own `expires_at`.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, token: str, principal: Principal) -> None:
        if self._ttl <= 0:
            return
        now = time.monotonic()
        until = now + self._ttl
        if principal.expires_at is not None:
            left = (principal.expires_at - datetime.now(UTC)).total_seconds()
            until = min(until, now + left)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[token] = (principal, until)


class KeyUses:
    """When each key was last used, to the minute, written behind the requests.

    `seen` is on every authenticated request's path: no I/O, a clock read and a dict lookup. A
    key seen in a minute it was not yet marked for is queued; `flush` writes the queued keys in
    one store call, each at most once per `interval` seconds (a minute), so this process writes
    a key at most once in any minute, and a request never waits for the write. A key held back
    keeps its newest minute for the next flush; `flush(everything=True)`, at shutdown, writes all.
    A flush that fails puts its uses back for the next one.
    """

    def __init__(self, keys: ApiKeyRepository, interval: float = 60.0) -> None:
        self._keys = keys
        self._interval = interval
        self._marked: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._written_at: dict[str, float] = {}
        self.writes = 0
        """Keys written so far (a figure for the benchmarks and the tests)."""

    def seen(self, key_id: str) -> None:
        minute = int(time.time()) // 60
        if self._marked.get(key_id) != minute:
            if len(self._marked) >= 100_000:
                self._marked.clear()
            self._marked[key_id] = minute
            self._pending[key_id] = minute

    async def flush(self, everything: bool = False) -> int:
        """Write the queued uses that are due (all of them with `everything`); return how many
        keys were written."""
        now = time.monotonic()
        due = {
            key_id: minute
            for key_id, minute in self._pending.items()
            if everything or now - self._written_at.get(key_id, -self._interval) >= self._interval
        }
        if not due:
            return 0
        for key_id in due:
            del self._pending[key_id]
        uses = {k: datetime.fromtimestamp(m * 60, UTC) for k, m in due.items()}
        try:
            await self._keys.touch(uses)
        except BaseException:
            for key_id, minute in due.items():
                self._pending.setdefault(key_id, minute)
            raise
        if len(self._written_at) >= 100_000:
            self._written_at.clear()
        self._written_at.update(dict.fromkeys(due, now))
        self.writes += len(uses)
        return len(uses)
