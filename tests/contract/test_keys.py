"""The ApiKeyRepository contract, held by every storage adapter."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule, run_state_machine_as_test

from domain.errors import ApiKeyNotFound, DuplicateKeyName, KeyNotRotatable
from domain.keys import ApiKey, Scope
from tests.builders import T0, make_key
from tests.contract import strategies
from tests.contract.stores import FRESH_STORE_PER_EXAMPLE, StoreFactory
from tests.contract.threads import race


def key_order(key: ApiKey) -> tuple[datetime, str]:
    return (key.created_at, key.key_id)


@FRESH_STORE_PER_EXAMPLE
@given(key=strategies.api_keys)
def test_a_stored_key_reads_back_exactly(new_stores: StoreFactory, key: ApiKey) -> None:
    with new_stores() as stores:
        stores.keys.add(key)
        assert stores.keys.get(key.key_id) == key
        assert list(stores.keys.list()) == [key]


def test_an_unknown_key_is_not_found(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        stores.keys.add(make_key("0123456789abcdef"))
        for unknown in ("fedcba9876543210", "0123456789ABCDEF", "", "a\x00b", "\ud800"):
            with pytest.raises(ApiKeyNotFound) as not_found:
                stores.keys.get(unknown)
            assert not_found.value.key_id == unknown
            with pytest.raises(ApiKeyNotFound):
                stores.keys.revoke(unknown, T0)


def test_keys_are_listed_oldest_first_then_by_id_revoked_ones_included(
    new_stores: StoreFactory,
) -> None:
    keys = [
        make_key("b", created_at=T0),
        make_key("a", created_at=T0 + timedelta(microseconds=1)),
        make_key("B", created_at=T0),
        make_key("é", created_at=T0),
        make_key("z", created_at=T0 - timedelta(days=1), revoked_at=T0),
    ]
    with new_stores() as stores:
        for key in keys:
            stores.keys.add(key)
        assert [k.key_id for k in stores.keys.list()] == ["z", "B", "b", "é", "a"]


def test_revoking_keeps_the_first_revocation_time(new_stores: StoreFactory) -> None:
    key = make_key("0123456789abcdef", scopes={Scope.READ})
    with new_stores() as stores:
        stores.keys.add(key)
        revoked = stores.keys.revoke(key.key_id, T0 + timedelta(hours=1))
        assert revoked == attrs.evolve(key, revoked_at=T0 + timedelta(hours=1))
        assert not revoked.active
        again = stores.keys.revoke(key.key_id, T0 + timedelta(hours=2))
        assert again == revoked
        assert stores.keys.get(key.key_id) == revoked
        assert list(stores.keys.list()) == [revoked]


def test_a_key_stored_again_under_its_id_replaces_it(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        stores.keys.add(make_key("k", name="old"))
        stores.keys.add(make_key("k", name="new", scopes={Scope.READ}))
        assert [(k.name, k.scopes) for k in stores.keys.list()] == [("new", {Scope.READ})]


def test_add_if_none_stores_only_the_first_key(new_stores: StoreFactory) -> None:
    first, second = make_key("first"), make_key("second")
    with new_stores() as stores:
        assert stores.keys.add_if_none(first) is True
        assert stores.keys.add_if_none(second) is False
        assert list(stores.keys.list()) == [first]


def test_add_if_none_counts_revoked_keys(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        stores.keys.add(make_key("old", revoked_at=T0))
        assert stores.keys.add_if_none(make_key("new")) is False
        assert [k.key_id for k in stores.keys.list()] == ["old"]


def test_simultaneous_add_if_none_stores_exactly_one(new_stores: StoreFactory) -> None:
    candidates = [make_key(f"key{i}") for i in range(8)]
    stored: list[bool] = []
    with new_stores.shared(2) as handles:
        outcomes = race(
            len(candidates),
            lambda i: stored.append(handles[i % 2].keys.add_if_none(candidates[i])),
        )
        keys = list(handles[1].keys.list())
    assert outcomes == [None] * len(candidates)
    assert sorted(stored) == [False] * (len(candidates) - 1) + [True]
    assert len(keys) == 1
    assert keys[0] in candidates


def test_one_key_that_is_neither_revoked_nor_superseded_holds_a_name(
    new_stores: StoreFactory,
) -> None:
    with new_stores() as stores:
        stores.keys.add(make_key("a", name="ci"))
        with pytest.raises(DuplicateKeyName) as taken:
            stores.keys.add(make_key("b", name="ci"))
        assert taken.value.name == "ci"
        stores.keys.add(make_key("c", name="ci", revoked_at=T0))
        stores.keys.add(make_key("d", name="ci", superseded=True))
        stores.keys.add(make_key("e", name="CI"))
        stores.keys.revoke("a", T0)
        stores.keys.add(make_key("b", name="ci"))
        assert [k.key_id for k in stores.keys.list() if k.name == "ci"] == ["a", "b", "c", "d"]


def test_simultaneous_creations_of_one_name_store_exactly_one(new_stores: StoreFactory) -> None:
    candidates = [make_key(f"key{i}", name="shared") for i in range(8)]
    with new_stores.shared(2) as handles:
        outcomes = race(len(candidates), lambda i: handles[i % 2].keys.add(candidates[i]))
        keys = list(handles[1].keys.list())
    assert sorted(type(o).__name__ for o in outcomes) == ["DuplicateKeyName"] * 7 + ["NoneType"]
    assert len(keys) == 1


def test_a_rotation_hands_the_name_on_once(new_stores: StoreFactory) -> None:
    old = make_key("old", name="ci", expires_at=T0 + timedelta(days=30))
    new = make_key("new", name="ci", rotated_from="old", created_at=T0 + timedelta(days=1))
    until = T0 + timedelta(days=2)
    with new_stores() as stores:
        stores.keys.add(old)
        stores.keys.rotate("old", until, new, [])
        assert stores.keys.get("old") == attrs.evolve(old, superseded=True, expires_at=until)
        assert stores.keys.get("new") == new
        with pytest.raises(KeyNotRotatable):
            stores.keys.rotate("old", until, make_key("other", name="ci"), [])
        with pytest.raises(ApiKeyNotFound):
            stores.keys.rotate("nope", until, make_key("other2", name="x"), [])
        stores.keys.revoke("new", T0)
        with pytest.raises(KeyNotRotatable):
            stores.keys.rotate("new", until, make_key("other3", name="ci"), [])
        assert {k.key_id for k in stores.keys.list()} == {"old", "new"}


def test_last_use_only_moves_forward(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        stores.keys.add(make_key("k"))
        stores.keys.touch({"k": T0 + timedelta(minutes=2), "gone": T0})
        stores.keys.touch({"k": T0 + timedelta(minutes=1)})
        assert stores.keys.get("k").last_used_at == T0 + timedelta(minutes=2)


class ApiKeyRepositoryMachine(RuleBasedStateMachine):
    """Drives one store's keys and a plain dict side by side."""

    factory: ClassVar[StoreFactory]
    key_ids = Bundle("key_ids")

    def __init__(self) -> None:
        super().__init__()
        self._resources = ExitStack()
        self.keys = self._resources.enter_context(self.factory()).keys
        self.model: dict[str, ApiKey] = {}

    def teardown(self) -> None:
        self._resources.close()

    def _holder(self, key: ApiKey) -> ApiKey | None:
        """The other key that holds this key's name, if this one would hold it too."""
        if not key.active or key.superseded:
            return None
        return next(
            (
                k
                for k in self.model.values()
                if k.key_id != key.key_id and k.name == key.name and k.active and not k.superseded
            ),
            None,
        )

    @rule(target=key_ids, key=strategies.api_keys)
    def add(self, key: ApiKey) -> str:
        if self._holder(key) is not None:
            with pytest.raises(DuplicateKeyName):
                self.keys.add(key)
            return key.key_id
        self.keys.add(key)
        self.model[key.key_id] = key
        return key.key_id

    @rule(key_id=key_ids, at=strategies.instants)
    def touch(self, key_id: str, at: datetime) -> None:
        self.keys.touch({key_id: at})
        key = self.model.get(key_id)
        if key is not None and (key.last_used_at is None or key.last_used_at < at):
            self.model[key_id] = attrs.evolve(key, last_used_at=at)

    @rule(target=key_ids, key=strategies.api_keys)
    def add_if_none(self, key: ApiKey) -> str:
        assert self.keys.add_if_none(key) is (not self.model)
        if not self.model:
            self.model[key.key_id] = key
        return key.key_id

    @rule(key_id=st.one_of(key_ids, st.text(max_size=5)))
    def get(self, key_id: str) -> None:
        if key_id in self.model:
            assert self.keys.get(key_id) == self.model[key_id]
        else:
            with pytest.raises(ApiKeyNotFound):
                self.keys.get(key_id)

    @rule(key_id=st.one_of(key_ids, st.text(max_size=5)), at=strategies.instants)
    def revoke(self, key_id: str, at: datetime) -> None:
        if key_id not in self.model:
            with pytest.raises(ApiKeyNotFound):
                self.keys.revoke(key_id, at)
            return
        if self.model[key_id].active:
            self.model[key_id] = attrs.evolve(self.model[key_id], revoked_at=at)
        assert self.keys.revoke(key_id, at) == self.model[key_id]

    @rule()
    def list_all(self) -> None:
        assert list(self.keys.list()) == sorted(self.model.values(), key=key_order)


def test_keys_behave_like_a_dict(new_stores: StoreFactory) -> None:
    machine = type("Machine", (ApiKeyRepositoryMachine,), {"factory": new_stores})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
