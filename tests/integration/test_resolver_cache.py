"""Host lookups are remembered for a while: answers and failures alike, then asked again."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from adapters.connectors.resolver_cache import CachingResolver


class Resolver:
    """A resolver over a fixed table, counting the lookups it is asked for."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_until_it_expires() -> None:
    resolver, clock = Resolver({"db.example": ["192.0.2.7"]}), Clock()
    cached = CachingResolver(resolver, ttl=10, clock=clock)
    assert [cached("db.example", 5432) for _ in range(3)] == [("192.0.2.7",)] * 3
    assert resolver.lookups == ["db.example"]
    resolver.table["db.example"] = ["192.0.2.8"]
    clock.now += 10
    assert cached("db.example", 5432) == ("192.0.2.8",)
    assert resolver.lookups == ["db.example", "db.example"]


def test_a_name_that_does_not_resolve_is_remembered_too() -> None:
    resolver, clock = Resolver({}), Clock()
    cached = CachingResolver(resolver, ttl=10, clock=clock)
    for _ in range(3):
        with pytest.raises(socket.gaierror, match="not known"):
            cached("nowhere.example", 5432)
    assert resolver.lookups == ["nowhere.example"]


def test_a_zero_ttl_asks_every_time() -> None:
    resolver = Resolver({"db.example": ["192.0.2.7"]})
    cached = CachingResolver(resolver, ttl=0, clock=Clock())
    cached("db.example", 5432)
    cached("db.example", 5432)
    assert resolver.lookups == ["db.example", "db.example"]
