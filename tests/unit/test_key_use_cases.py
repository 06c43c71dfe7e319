"""The API key use cases, on the in-memory key store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.keys import (
    Authenticate,
    BootstrapAdminKey,
    CreateApiKey,
    GetApiKey,
    KeyUses,
    ListApiKeys,
    RevokeApiKey,
    RotateApiKey,
    hash_secret,
)
from domain.errors import (
    ApiKeyNotFound,
    AuthenticationFailed,
    DuplicateKeyName,
    InvalidInput,
    KeyNotRotatable,
    PermissionDenied,
)
from domain.events import Action, EventFilter
from domain.keys import ALL_SCOPES, Principal, Scope
from entrypoints.operator import OPERATOR
from tests.helpers import Synced
from tests.unit.conftest import World


def test_a_created_key_authenticates_as_its_public_part(world: World) -> None:
    issued = Synced(CreateApiKey(world.keys, world.clock, world.ids))(
        "ci", ["sources:read"], OPERATOR
    )
    assert issued.token.startswith(f"tdbk_{issued.key.key_id}_")
    principal = Synced(Authenticate(world.keys, world.clock))(issued.token)
    assert principal.identity == f"tdbk_{issued.key.key_id}"
    assert principal.scopes == {Scope.READ}


def test_only_a_hash_of_the_secret_is_stored(world: World) -> None:
    issued = Synced(CreateApiKey(world.keys, world.clock, world.ids))("ci", (), OPERATOR)
    stored = world.keys.get(issued.key.key_id)
    secret = issued.token.split("_", 2)[2]
    assert secret not in repr(stored)
    assert stored.secret_hash == hash_secret(secret)


def test_no_scope_named_means_every_scope(world: World) -> None:
    assert (
        Synced(CreateApiKey(world.keys, world.clock, world.ids))("all", (), OPERATOR).key.scopes
        == ALL_SCOPES
    )


def test_unknown_scopes_and_blank_names_are_refused(world: World) -> None:
    create = Synced(CreateApiKey(world.keys, world.clock, world.ids))
    with pytest.raises(InvalidInput):
        create("x", ["sources:everything"], OPERATOR)
    for name in ("  ", "", "x" * 101, "nul\x00", "lone\ud800"):
        with pytest.raises(InvalidInput):
            create(name, (), OPERATOR)


@pytest.mark.parametrize(
    "token",
    ["", "tdbk", "tdbk_", "tdbk__secret", "Bearer x", "tdbk_nokey", "xyz_abc_def", "tdbk_abc_def"],
)
def test_malformed_or_unknown_tokens_fail(world: World, token: str) -> None:
    Synced(CreateApiKey(world.keys, world.clock, world.ids))("ci", (), OPERATOR)
    with pytest.raises(AuthenticationFailed):
        Synced(Authenticate(world.keys, world.clock))(token)


def test_a_wrong_secret_fails(world: World) -> None:
    issued = Synced(CreateApiKey(world.keys, world.clock, world.ids))("ci", (), OPERATOR)
    with pytest.raises(AuthenticationFailed):
        Synced(Authenticate(world.keys, world.clock))(
            issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
        )


def test_a_revoked_key_fails_and_revoking_is_idempotent(world: World) -> None:
    issued = Synced(CreateApiKey(world.keys, world.clock, world.ids))("ci", (), OPERATOR)
    revoke = Synced(RevokeApiKey(world.keys, world.clock, world.ids))
    first = revoke(f"tdbk_{issued.key.key_id}", OPERATOR)
    assert revoke(issued.key.key_id, OPERATOR).revoked_at == first.revoked_at
    with pytest.raises(AuthenticationFailed):
        Synced(Authenticate(world.keys, world.clock))(issued.token)
    with pytest.raises(ApiKeyNotFound):
        revoke("nope", OPERATOR)
    assert [k.key_id for k in Synced(ListApiKeys(world.keys))(OPERATOR)] == [issued.key.key_id]


def test_bootstrap_creates_one_admin_key_only_in_an_empty_store(world: World) -> None:
    create = Synced(CreateApiKey(world.keys, world.clock, world.ids))
    bootstrap = Synced(BootstrapAdminKey(world.keys, create.target))
    issued = bootstrap(OPERATOR)
    assert issued is not None
    assert issued.key.scopes == ALL_SCOPES
    assert Synced(Authenticate(world.keys, world.clock))(issued.token).scopes == ALL_SCOPES
    assert bootstrap(OPERATOR) is None
    assert len(Synced(ListApiKeys(world.keys))(OPERATOR)) == 1


def _create(world: World, max_days: int | None = None) -> Synced:
    return Synced(CreateApiKey(world.keys, world.clock, world.ids, max_days))


def _rotate(world: World, max_days: int | None = None) -> Synced:
    create = CreateApiKey(world.keys, world.clock, world.ids, max_days)
    return Synced(RotateApiKey(world.keys, create, world.clock, world.ids))


def test_a_name_is_held_by_one_key_until_it_is_revoked(world: World) -> None:
    create = _create(world)
    first = create("ci", (), OPERATOR)
    with pytest.raises(DuplicateKeyName):
        create("ci", ["sources:read"], OPERATOR)
    Synced(RevokeApiKey(world.keys, world.clock, world.ids))(first.key.key_id, OPERATOR)
    assert create("ci", (), OPERATOR).key.name == "ci"


@pytest.mark.parametrize("scope", list(Scope))
def test_a_key_never_grants_a_scope_its_maker_lacks(world: World, scope: Scope) -> None:
    maker = Principal("tdbk_maker", ALL_SCOPES - {scope})
    create = _create(world)
    with pytest.raises(PermissionDenied) as refused:
        create("more", [scope.value], maker)
    assert refused.value.scope == scope.value
    with pytest.raises(PermissionDenied):
        create("every", (), maker)  # none named is every scope, this one included
    if scope is Scope.KEYS:
        return  # without keys:manage no key is made at all (checked above)
    granted = create("less", [s.value for s in ALL_SCOPES - {scope}], maker)
    assert granted.key.created_by == "tdbk_maker"
    holder = _create(world)("holder", [scope.value], OPERATOR)
    with pytest.raises(PermissionDenied):
        _rotate(world)(holder.key.key_id, maker)


def test_every_key_use_case_needs_keys_manage(world: World) -> None:
    reader = Principal("tdbk_reader", ALL_SCOPES - {Scope.KEYS})
    issued = _create(world)("ci", (), OPERATOR)
    calls = [
        lambda: _create(world)("x", ["sources:read"], reader),
        lambda: Synced(ListApiKeys(world.keys))(reader),
        lambda: Synced(GetApiKey(world.keys))(reader, issued.key.key_id),
        lambda: Synced(RevokeApiKey(world.keys, world.clock, world.ids))(issued.key.key_id, reader),
        lambda: _rotate(world)(issued.key.key_id, reader),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()


def test_lifetimes_obey_the_servers_longest(world: World) -> None:
    assert _create(world)("forever", (), OPERATOR).key.expires_at is None
    bounded = _create(world, max_days=90)
    for days in (None, 91, 0, -1):
        with pytest.raises(InvalidInput) as refused:
            bounded(f"k{days}", (), OPERATOR, days)
        assert [e.field for e in refused.value.errors] == ["expires_in_days"]
    key = bounded("ninety", (), OPERATOR, 90).key
    assert key.expires_at == key.created_at + timedelta(days=90)


def test_an_expired_key_fails_as_an_unknown_one_does(world: World) -> None:
    issued = _create(world)("short", (), OPERATOR, 1)
    authenticate = Synced(Authenticate(world.keys, world.clock))
    assert authenticate(issued.token).expires_at == issued.key.expires_at
    world.clock.advance(timedelta(days=1))
    with pytest.raises(AuthenticationFailed) as failed:
        authenticate(issued.token)
    assert failed.value.cause == "expired"


def test_rotation_hands_on_name_scopes_and_lifetime_and_ends_the_old_key(world: World) -> None:
    old = _create(world)("ci", ["sources:read"], OPERATOR, 30)
    world.clock.advance(timedelta(days=3))
    new = _rotate(world)(f"tdbk_{old.key.key_id}", OPERATOR, timedelta(hours=1))
    assert (new.key.name, new.key.scopes) == ("ci", frozenset({Scope.READ}))
    assert new.key.lifetime == timedelta(days=30)
    assert new.key.rotated_from == old.key.key_id
    stored_old = world.keys.get(old.key.key_id)
    assert stored_old.superseded
    assert stored_old.expires_at is not None
    assert stored_old.expires_at - new.key.created_at <= timedelta(hours=1)
    authenticate = Synced(Authenticate(world.keys, world.clock))
    authenticate(old.token)  # within the overlap both work
    authenticate(new.token)
    world.clock.advance(timedelta(hours=1))
    with pytest.raises(AuthenticationFailed):
        authenticate(old.token)
    authenticate(new.token)
    with pytest.raises(KeyNotRotatable):
        _rotate(world)(old.key.key_id, OPERATOR)
    actions = [e.action for e in world.events.list(EventFilter()).events]
    assert actions == [Action.KEY_CREATED, Action.KEY_CREATED, Action.KEY_ROTATED]


def test_rotation_overlap_is_bounded_and_zero_ends_the_old_key_at_once(world: World) -> None:
    old = _create(world)("ci", (), OPERATOR)
    with pytest.raises(InvalidInput):
        _rotate(world)(old.key.key_id, OPERATOR, timedelta(days=8))
    _rotate(world)(old.key.key_id, OPERATOR, timedelta(0))
    with pytest.raises(AuthenticationFailed):
        Synced(Authenticate(world.keys, world.clock))(old.token)


def test_key_uses_write_once_per_key_per_minute(world: World) -> None:
    issued = _create(world)("ci", (), OPERATOR)
    uses = KeyUses(world.keys.target)
    for _ in range(1000):
        uses.seen(issued.key.key_id)
        uses.seen("gone")
    assert Synced(uses).flush() == 2
    assert Synced(uses).flush() == 0  # nothing new within the minute
    used = world.keys.get(issued.key.key_id).last_used_at
    assert used is not None
    assert (used.second, used.microsecond) == (0, 0)
