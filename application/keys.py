"""Use cases on API keys: create, list, revoke, bootstrap the first one, authenticate a token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable, Sequence

import attrs

from application.ports import ApiKeyRepository, Clock, IdGenerator
from domain.errors import ApiKeyNotFound, AuthenticationFailed, InvalidInput
from domain.events import Action, Event
from domain.keys import ALL_SCOPES, TOKEN_PREFIX, ApiKey, Principal, Scope, public_id
from domain.sources import name_errors


def hash_secret(secret: str) -> str:
    """The stored form of a token's secret (256 random bits: a plain hash suffices)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scopes by name; none named means all of them."""
    names = list(names)
    known = {s.value: s for s in Scope}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInput.single(
            "scopes", f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return frozenset(known[n] for n in names) or ALL_SCOPES


@attrs.frozen
class IssuedKey:
    """A newly created key and its token, which exists only in this object."""

    key: ApiKey
    token: str


@attrs.frozen
class CreateApiKey:
    """Mint a key: a random id and secret; only the secret's hash is stored, with its event."""

    _keys: ApiKeyRepository
    _clock: Clock
    _ids: IdGenerator

    def issue(self, name: str, scopes: Iterable[str] = ()) -> IssuedKey:
        """A new key, not yet stored."""
        # A key's name keeps the rules of a source's name: 1-100 characters, not blank, no control.
        errors = name_errors(name)
        if errors:
            raise InvalidInput(errors)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            key_id=key_id,
            name=name,
            scopes=parse_scopes(scopes),
            secret_hash=hash_secret(secret),
            created_at=self._clock.now(),
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

    async def __call__(self, name: str, scopes: Iterable[str], actor: Principal) -> IssuedKey:
        issued = self.issue(name, scopes)
        await self._keys.add(issued.key, self.event(issued.key, actor))
        return issued


@attrs.frozen
class BootstrapAdminKey:
    """On first start, create one admin key if the store has none; return it, or None."""

    _keys: ApiKeyRepository
    _create: CreateApiKey

    async def __call__(self, actor: Principal) -> IssuedKey | None:
        issued = self._create.issue("admin")
        event = self._create.event(issued.key, actor)
        return issued if await self._keys.add_if_none(issued.key, event) else None


@attrs.frozen
class ListApiKeys:
    """Every key, revoked ones included, without secrets."""

    _keys: ApiKeyRepository

    async def __call__(self) -> Sequence[ApiKey]:
        return await self._keys.list()


@attrs.frozen
class RevokeApiKey:
    """Stop a key from working (the first revocation is recorded)."""

    _keys: ApiKeyRepository
    _clock: Clock
    _ids: IdGenerator

    async def __call__(self, key_id: str, actor: Principal) -> ApiKey:
        if key_id.startswith(f"{TOKEN_PREFIX}_"):
            key_id = key_id.removeprefix(f"{TOKEN_PREFIX}_")
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
class Authenticate:
    """Turn a bearer token into a principal, or raise `AuthenticationFailed`, whatever the cause."""

    _keys: ApiKeyRepository

    async def __call__(self, token: str) -> Principal:
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not key_id or not secret:
            raise AuthenticationFailed("malformed")
        try:
            key = await self._keys.get(key_id)
        except ApiKeyNotFound:
            raise AuthenticationFailed("unknown") from None
        if not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
            raise AuthenticationFailed("unknown")
        if not key.active:
            raise AuthenticationFailed("revoked")
        return Principal(identity=public_id(key.key_id), scopes=key.scopes)


class PrincipalCache:
    """Recently authenticated tokens, so that a hot key costs no store round trip.

    A revoked key keeps working for at most `ttl` seconds in each process that has it cached.
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
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[token] = (principal, time.monotonic() + self._ttl)
