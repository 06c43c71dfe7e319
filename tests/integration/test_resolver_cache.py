"""Host lookups are remembered for a while: answers and failures alike, then asked again."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from adapters.connectors.outbound import OutboundPolicy, PolicyRefused
from adapters.connectors.postgres import PostgresConnector
from adapters.connectors.resolver_cache import CachingResolver
from domain.errors import BackendUnavailable, HostNotAllowed
from tests.helpers import Synced, loopback_resolver


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


def test_what_is_remembered_is_known_without_a_lookup() -> None:
    resolver, clock = Resolver({"db.example": ["192.0.2.7"]}), Clock()
    cached = CachingResolver(resolver, ttl=10, clock=clock)
    assert cached.known("db.example", 5432) is None
    cached("db.example", 5432)
    assert cached.known("db.example", 5432) == ("192.0.2.7",)
    with pytest.raises(socket.gaierror, match="not known"):
        cached("nowhere.example", 5432)
    with pytest.raises(socket.gaierror, match="not known"):
        cached.known("nowhere.example", 5432)
    assert resolver.lookups == ["db.example", "nowhere.example"]
    clock.now += 10
    assert cached.known("db.example", 5432) is None
    assert cached.known("nowhere.example", 5432) is None
    assert resolver.lookups == ["db.example", "nowhere.example"]


def test_the_policy_answers_now_only_what_needs_no_lookup() -> None:
    resolver = Resolver(
        {"db.example": ["192.0.2.7", "169.254.169.254"], "meta.example": ["169.254.169.254"]}
    )
    policy = OutboundPolicy(resolver=CachingResolver(resolver, ttl=10, clock=Clock()))
    assert policy.resolve_now("db.example", 5432) is None
    assert resolver.lookups == []
    assert policy.resolve("db.example", 5432) == ("192.0.2.7",)
    # The remembered answer, judged as `resolve` judges it: the denied address left out.
    assert policy.resolve_now("db.example", 5432) == ("192.0.2.7",)
    with pytest.raises(PolicyRefused):
        policy.resolve("meta.example", 5432)
    with pytest.raises(PolicyRefused):
        policy.resolve_now("meta.example", 5432)
    with pytest.raises(BackendUnavailable):
        policy.resolve("nowhere.example", 5432)
    with pytest.raises(BackendUnavailable):
        policy.resolve_now("nowhere.example", 5432)
    assert resolver.lookups == ["db.example", "meta.example", "nowhere.example"]
    # A resolver that remembers nothing: a name always needs its lookup, an address none.
    loopback = OutboundPolicy(resolver=loopback_resolver)
    assert loopback.resolve_now("localhost", 5432) is None
    assert loopback.resolve_now("127.0.0.1", 5432) == ("127.0.0.1",)
    with pytest.raises(PolicyRefused):
        loopback.resolve_now("169.254.169.254", 5432)


def test_a_registration_looks_a_name_up_once_and_refuses_what_the_policy_refuses() -> None:
    resolver = Resolver({"db.example": ["192.0.2.7"], "meta.example": ["169.254.169.254"]})
    # An address resolves to itself at once, as getaddrinfo answers it.
    resolver.table.update({a: [a] for a in ("192.0.2.9", "169.254.169.254")})
    connector = Synced(
        PostgresConnector(
            policy=OutboundPolicy(resolver=CachingResolver(resolver, ttl=10, clock=Clock()))
        )
    )

    def validated(host: str) -> dict[str, object]:
        connection = {"host": host, "dbname": "app", "user": "u", "table": "orders"}
        answer: dict[str, object] = connector.validate(connection)
        return answer

    # A name not known yet is looked up once; then it is known.
    assert validated("db.example")["host"] == "db.example"
    validated("db.example")
    assert resolver.lookups.count("db.example") == 1
    assert validated("192.0.2.9")["host"] == "192.0.2.9"
    # A name or an address the policy refuses is refused, known or not.
    for host in ("meta.example", "169.254.169.254"):
        for _ in range(2):
            with pytest.raises(HostNotAllowed) as caught:
                connector.validate({"host": host, "dbname": "app", "user": "u", "table": "t"})
            assert caught.value.errors[0].field == "connection.host"
    # A name that did not resolve is remembered, and given the benefit of the doubt (every
    # inspection checks again).
    validated("nowhere.example")
    validated("nowhere.example")
    assert resolver.lookups.count("nowhere.example") == 1
