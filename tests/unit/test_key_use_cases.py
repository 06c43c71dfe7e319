"""The API key use cases, on the in-memory key store."""

from __future__ import annotations

import pytest

from application.keys import (
    Authenticate,
    BootstrapAdminKey,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    hash_secret,
)
from domain.errors import ApiKeyNotFound, AuthenticationFailed, InvalidInput
from domain.keys import ALL_SCOPES, Scope
from entrypoints.operator import OPERATOR
from tests.helpers import Synced
from tests.unit.conftest import World


def test_a_created_key_authenticates_as_its_public_part(world: World) -> None:
    issued = Synced(CreateApiKey(world.keys, world.clock, world.ids))(
        "ci", ["sources:read"], OPERATOR
    )
    assert issued.token.startswith(f"tdbk_{issued.key.key_id}_")
    principal = Synced(Authenticate(world.keys))(issued.token)
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
        Synced(Authenticate(world.keys))(token)


def test_a_wrong_secret_fails(world: World) -> None:
    issued = Synced(CreateApiKey(world.keys, world.clock, world.ids))("ci", (), OPERATOR)
    with pytest.raises(AuthenticationFailed):
        Synced(Authenticate(world.keys))(
            issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
        )


def test_a_revoked_key_fails_and_revoking_is_idempotent(world: World) -> None:
    issued = Synced(CreateApiKey(world.keys, world.clock, world.ids))("ci", (), OPERATOR)
    revoke = Synced(RevokeApiKey(world.keys, world.clock, world.ids))
    first = revoke(f"tdbk_{issued.key.key_id}", OPERATOR)
    assert revoke(issued.key.key_id, OPERATOR).revoked_at == first.revoked_at
    with pytest.raises(AuthenticationFailed):
        Synced(Authenticate(world.keys))(issued.token)
    with pytest.raises(ApiKeyNotFound):
        revoke("nope", OPERATOR)
    assert [k.key_id for k in Synced(ListApiKeys(world.keys))()] == [issued.key.key_id]


def test_bootstrap_creates_one_admin_key_only_in_an_empty_store(world: World) -> None:
    create = Synced(CreateApiKey(world.keys, world.clock, world.ids))
    bootstrap = Synced(BootstrapAdminKey(world.keys, create.target))
    issued = bootstrap(OPERATOR)
    assert issued is not None
    assert issued.key.scopes == ALL_SCOPES
    assert Synced(Authenticate(world.keys))(issued.token).scopes == ALL_SCOPES
    assert bootstrap(OPERATOR) is None
    assert len(Synced(ListApiKeys(world.keys))()) == 1
