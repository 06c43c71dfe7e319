"""Pooled connections to a real PostgreSQL, and the outbound policy in front of them.

What the server sees is the proof: its `pg_stat_activity` shows which backends a pool keeps,
and `pg_terminate_backend` kills them as an operator or a restart would.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from adapters.connectors.outbound import OutboundPolicy, parse_networks
from adapters.connectors.pools import AsyncConnectionPools, Target
from adapters.connectors.postgres import PostgresConnector
from domain.errors import BackendUnavailable, InvalidConnection
from domain.sources import Column
from tests.contract.relay import TcpRelay
from tests.helpers import TEST_LOOP, Synced

pytestmark = pytest.mark.postgres

ITEMS = [Column("sku", "text", False), Column("qty", "integer", True)]

Pools = AsyncConnectionPools


@pytest.fixture(scope="module")
def source(postgres_url: str) -> dict[str, Any]:
    """A connection to a real table in the throwaway database."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pool_items (sku text NOT NULL, qty integer)")
    info = psycopg.conninfo.conninfo_to_dict(postgres_url)
    return {
        "host": info.get("host", "127.0.0.1"),
        "port": int(info.get("port") or 5432),
        "dbname": info["dbname"],
        "user": info.get("user", "postgres"),
        "password": info.get("password") or "",
        "table": "pool_items",
    }


@pytest.fixture
def app_name() -> str:
    """The application_name this test's connections carry, to find them on the server."""
    return f"tdb-test-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def loop() -> asyncio.AbstractEventLoop:
    """The event loop, running on a thread of its own as a server's does, where the connectors
    of these tests make their inspections (`Synced`)."""
    return TEST_LOOP.loop


Make = Callable[..., tuple[Any, Pools]]


@pytest.fixture
def make(app_name: str) -> Iterator[Make]:
    """Connectors and their pools, seen through `Synced`: an inspection called from any thread
    is made on the tests' event loop."""
    made: list[Pools] = []

    def build(
        connect_timeout: float = 2,
        statement_timeout_ms: int = 2000,
        policy: OutboundPolicy | None = None,
        **bounds: Any,
    ) -> tuple[Any, Pools]:
        pools = AsyncConnectionPools(**bounds)
        connector = PostgresConnector(
            connect_timeout, statement_timeout_ms, policy=policy, pools=pools,
            application_name=app_name,
        )  # fmt: skip
        made.append(pools)
        return Synced(connector), pools

    yield build
    for pools in made:
        pools.close()


@pytest.fixture
def pooled(make: Make) -> tuple[Any, Pools]:
    return make()


@pytest.fixture
def connector(pooled: tuple[Any, Pools]) -> Any:
    return pooled[0]


@pytest.fixture
def pools(pooled: tuple[Any, Pools]) -> Pools:
    return pooled[1]


def run_pooled(
    pools: Pools, loop: asyncio.AbstractEventLoop, target: Target, statements: list[str]
) -> list[Any]:
    """Each statement's rows, from a connection `pools` keeps for `target` (never a new one)."""
    deadline = time.monotonic() + 5

    async def work_async(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
        return [await (await conn.execute(statement)).fetchall() for statement in statements]

    async def never_connect_async(addresses: object) -> Any:
        never_connect(addresses)

    running = pools.run(target, ["127.0.0.1"], never_connect_async, work_async, deadline)
    return asyncio.run_coroutine_threadsafe(running, loop).result(10)


def backends(postgres_url: str, app_name: str) -> set[int]:
    """The server's backends serving connections of this application name."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app_name,)
        ).fetchall()
    return {pid for (pid,) in rows}


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a condition the server reaches on its own (a backend exiting), bounded."""
    for _ in range(200):
        if condition():
            return
        time.sleep(0.025)
    pytest.fail(f"never happened: {what}")


def kill(postgres_url: str, app_name: str) -> set[int]:
    """Terminate every backend of this application name; return once they are gone."""
    pids = backends(postgres_url, app_name)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    until(lambda: not backends(postgres_url, app_name) & pids, "the killed backends exit")
    return pids


def target_of(source: dict[str, Any]) -> Target:
    return Target(
        source["host"], source["port"], source["dbname"], source["user"], source["password"]
    )


def reach(connector: Any, connection: dict[str, Any]) -> bool:
    """Inspect a source of this target; a missing table is fine: the connection was made."""
    try:
        connector.inspect(connection)
    except BackendUnavailable as exc:
        return exc.reason == "table_not_found"
    return True


def never_connect(addresses: object) -> Any:
    raise AssertionError("a pooled connection was expected, not a new one")


class TestPooling:
    def test_inspections_of_one_target_reuse_one_connection(
        self, connector: Any, source: dict[str, Any], postgres_url: str, app_name: str
    ) -> None:
        for _ in range(5):
            assert list(connector.inspect(source)) == ITEMS
        assert len(backends(postgres_url, app_name)) == 1

    def test_a_pooled_session_is_read_only(
        self,
        connector: Any,
        pools: Pools,
        source: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        connector.inspect(source)
        shown = ["SHOW transaction_read_only", "SHOW statement_timeout"]
        assert run_pooled(pools, loop, target_of(source), shown) == [[("on",)], [("2s",)]]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            run_pooled(pools, loop, target_of(source), ["CREATE TABLE pool_written (x int)"])

    def test_a_connection_the_server_killed_is_replaced_unseen(
        self, connector: Any, source: dict[str, Any], postgres_url: str, app_name: str
    ) -> None:
        # Two pooled connections, so that both the used one and the spare one get killed.
        threads = [threading.Thread(target=connector.inspect, args=(source,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        killed = kill(postgres_url, app_name)
        for _ in range(3):
            assert list(connector.inspect(source)) == ITEMS
        assert backends(postgres_url, app_name).isdisjoint(killed)
        assert backends(postgres_url, app_name)

    def test_least_recently_used_targets_are_dropped_beyond_the_bound(
        self, make: Make, source: dict[str, Any], postgres_url: str, app_name: str
    ) -> None:
        connector, pools = make(max_targets=2)
        # Three databases of one server are three targets.
        for dbname in (source["dbname"], "postgres", source["dbname"], "template1"):
            assert reach(connector, {**source, "dbname": dbname})
            assert len(pools.sizes()) <= 2
        until(lambda: len(backends(postgres_url, app_name)) == 2, "the evicted one closes")
        # "postgres" was the least recently used: it is the one dropped.
        assert {place[2] for place in pools.sizes()} == {source["dbname"], "template1"}

    def test_idle_connections_close_after_the_idle_timeout(
        self, make: Make, source: dict[str, Any], postgres_url: str, app_name: str
    ) -> None:
        now = [1000.0]
        connector, pools = make(idle_timeout=60, clock=lambda: now[0])
        connector.inspect(source)
        now[0] += 59
        pools.sweep()
        assert len(backends(postgres_url, app_name)) == 1
        now[0] += 1
        pools.sweep()
        assert pools.sizes() == {}
        until(lambda: not backends(postgres_url, app_name), "the idle connection closes")

    def test_forgetting_a_connection_drops_its_pool(
        self,
        connector: Any,
        pools: Pools,
        source: dict[str, Any],
        postgres_url: str,
        app_name: str,
    ) -> None:
        connector.inspect(source)
        assert reach(connector, {**source, "dbname": "postgres"})  # another target: it stays
        # What a deleted source hands over: its stored connection, secret still encrypted.
        connector.forget({**source, "password": "v1:ciphertext"})
        assert list(pools.sizes()) == [
            (source["host"], source["port"], "postgres", "postgres", None)
        ]

    def test_without_an_idle_timeout_nothing_is_kept(
        self, make: Make, source: dict[str, Any], postgres_url: str, app_name: str
    ) -> None:
        connector, pools = make(idle_timeout=0)
        connector.inspect(source)
        assert list(pools.sizes().values()) == [(0, 0, 0)]
        until(lambda: not backends(postgres_url, app_name), "the connection closes")


class TestTheDeadline:
    def test_a_pooled_connection_gone_silent_is_a_timeout_at_the_deadline_and_not_kept(
        self, make: Make, source: dict[str, Any], postgres_url: str, app_name: str
    ) -> None:
        relay = TcpRelay(source["host"], source["port"])
        relay.start()
        # The server's own statement timeout is far away: only the deadline can end the wait.
        connector, _ = make(connect_timeout=1, statement_timeout_ms=600_000)
        through = {**source, "port": relay.port}
        outcome: list[BackendUnavailable] = []

        def inspect() -> None:
            try:
                connector.inspect(through)
            except BackendUnavailable as exc:
                outcome.append(exc)

        try:
            assert list(connector.inspect(through)) == ITEMS
            (silenced,) = backends(postgres_url, app_name)
            relay.hold()
            worker = threading.Thread(target=inspect, daemon=True)
            worker.start()
            worker.join(timeout=60)  # a bound on a failure, not a measure
            assert not worker.is_alive(), "the pooled query outlived its deadline"
            assert [exc.reason for exc in outcome] == ["timeout"]
            relay.release()
            assert list(connector.inspect(through)) == ITEMS
            until(lambda: silenced not in backends(postgres_url, app_name), "it is dropped")
            assert len(backends(postgres_url, app_name)) == 1
        finally:
            relay.stop()


def hang_up_once(listener: socket.socket) -> None:
    listener.settimeout(10)
    peer, _ = listener.accept()
    peer.close()


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A listener on 127.0.0.1 that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener
    listener.close()


class TestFairness:
    def test_a_failing_target_gets_its_bound_and_then_busy_at_once(
        self,
        connector: Any,
        source: dict[str, Any],
        silent: socket.socket,
    ) -> None:
        silent_source = {**source, "port": silent.getsockname()[1]}
        failures: list[BackendUnavailable] = []
        # A first connection fails (the peer hangs up): the target is known to fail.
        first = threading.Thread(target=hang_up_once, args=(silent,))
        first.start()
        with pytest.raises(BackendUnavailable):
            connector.inspect(silent_source)
        first.join()

        def hang() -> None:
            try:
                connector.inspect(silent_source)
            except BackendUnavailable as exc:
                failures.append(exc)

        threads = [threading.Thread(target=hang) for _ in range(2)]
        for thread in threads:
            thread.start()
        silent.settimeout(10)
        accepted = [silent.accept()[0] for _ in range(2)]  # both connections wait for an answer
        try:
            with pytest.raises(BackendUnavailable) as caught:
                connector.inspect(silent_source)
            assert caught.value.reason == "busy"
            # Another target is served meanwhile.
            assert list(connector.inspect(source)) == ITEMS
        finally:
            for sock in accepted:
                sock.close()
            for thread in threads:
                thread.join()
        assert [f.reason for f in failures] == ["unreachable", "unreachable"]

    def test_an_untried_target_queues_until_its_connections_fail(
        self,
        connector: Any,
        pools: Pools,
        source: dict[str, Any],
        silent: socket.socket,
    ) -> None:
        silent_source = {**source, "port": silent.getsockname()[1]}
        reasons: list[str] = []

        def inspect() -> None:
            try:
                connector.inspect(silent_source)
            except BackendUnavailable as exc:
                reasons.append(exc.reason)

        threads = [threading.Thread(target=inspect) for _ in range(3)]
        for thread in threads[:2]:
            thread.start()
        silent.settimeout(10)
        accepted = [silent.accept()[0] for _ in range(2)]
        threads[2].start()
        place = (source["host"], silent.getsockname()[1], source["dbname"], source["user"], None)
        until(lambda: pools.sizes()[place] == (2, 0, 1), "the third one waits")
        for sock in accepted:
            sock.close()  # both connections fail: the waiting one gives up at once
        for thread in threads:
            thread.join()
        assert sorted(reasons) == ["busy", "unreachable", "unreachable"]

    def test_on_the_loop_a_freed_slot_passes_to_the_waiting_one_and_a_late_one_is_busy(
        self, source: dict[str, Any]
    ) -> None:
        pools = AsyncConnectionPools(max_size=1)
        target = target_of(source)
        pids: list[int] = []

        async def scenario() -> list[str]:
            release = asyncio.Event()

            async def fresh(addresses: Any) -> psycopg.AsyncConnection[Any]:
                return await psycopg.AsyncConnection.connect(
                    host=source["host"], port=source["port"], dbname=source["dbname"],
                    user=source["user"], password=source["password"], autocommit=True,
                )  # fmt: skip

            async def holding(conn: psycopg.AsyncConnection[Any]) -> None:
                pids.append(conn.info.backend_pid)
                await release.wait()

            async def reuse(conn: psycopg.AsyncConnection[Any]) -> None:
                pids.append(conn.info.backend_pid)

            async def never(addresses: Any) -> Any:
                never_connect(addresses)

            far = time.monotonic() + 10
            holder = asyncio.create_task(pools.run(target, ["127.0.0.1"], fresh, holding, far))
            while not pids:
                await asyncio.sleep(0.01)
            waiter = asyncio.create_task(pools.run(target, ["127.0.0.1"], never, reuse, far))
            while pools.sizes()[target.place] != (1, 0, 1):
                await asyncio.sleep(0.01)
            # One whose deadline comes before the slot does is told `busy` then.
            outcomes = []
            try:
                await pools.run(target, ["127.0.0.1"], never, reuse, time.monotonic() + 0.05)
            except BackendUnavailable as exc:
                outcomes.append(exc.reason)
            release.set()
            await holder
            await waiter
            return outcomes

        try:
            assert asyncio.run(asyncio.wait_for(scenario(), 30)) == ["busy"]
            assert len(pids) == 2
            assert pids[0] == pids[1]
            assert pools.sizes()[target.place] == (0, 1, 0)
        finally:
            pools.close()


class TestOutboundPolicy:
    def test_a_denied_address_is_refused_at_registration(self) -> None:
        connector = Synced(
            PostgresConnector(policy=OutboundPolicy(denied=parse_networks("127.0.0.2/32")))
        )
        for host in ("127.0.0.2", "::ffff:127.0.0.2"):
            with pytest.raises(InvalidConnection) as caught:
                connector.validate({"host": host, "dbname": "d", "user": "u", "table": "t"})
            assert [e.field for e in caught.value.errors] == ["connection.host"]
        assert connector.validate({"host": "127.0.0.3", "dbname": "d", "user": "u", "table": "t"})

    def test_a_name_is_judged_by_the_addresses_it_resolves_to(self) -> None:
        denied = OutboundPolicy(denied=parse_networks("127.0.0.0/8, ::1/128"))
        connector = Synced(PostgresConnector(policy=denied))
        with pytest.raises(InvalidConnection):
            connector.validate({"host": "localhost", "dbname": "d", "user": "u", "table": "t"})
        only_v6 = Synced(
            PostgresConnector(policy=OutboundPolicy(allowed=parse_networks("::1/128")))
        )
        with pytest.raises(InvalidConnection):
            only_v6.validate({"host": "127.0.0.1", "dbname": "d", "user": "u", "table": "t"})

    def test_a_name_resolving_to_an_unspecified_address_is_refused_before_any_connection(
        self,
    ) -> None:
        # Linux connects 0.0.0.0, :: and ::ffff:0.0.0.0 to this machine; loopback is denied.
        policy = OutboundPolicy(
            denied=parse_networks("127.0.0.0/8,::1/128"),
            resolver=lambda host, port: {
                "zero4.tdb.test": ["0.0.0.0"],  # noqa: S104
                "zero6.tdb.test": ["::"],
                "mapped.tdb.test": ["::ffff:0.0.0.0"],
            }[host],
        )
        connector = Synced(PostgresConnector(policy=policy))
        for host in ("zero4.tdb.test", "zero6.tdb.test", "mapped.tdb.test"):
            connection = {"host": host, "port": 5432, "dbname": "d", "user": "u", "table": "t"}
            # Refused at registration: were it not, the inspection below would connect.
            with pytest.raises(InvalidConnection) as refused:
                connector.validate(connection)
            assert [e.field for e in refused.value.errors] == ["connection.host"]
            with pytest.raises(BackendUnavailable) as caught:
                connector.inspect(connection)
            assert caught.value.reason == "host_not_allowed"

    def test_an_inspection_of_a_denied_address_never_connects(self) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.2", 0))
        listener.listen()
        listener.setblocking(False)
        connector = Synced(
            PostgresConnector(policy=OutboundPolicy(denied=parse_networks("127.0.0.2/32")))
        )
        connection = {
            "host": "127.0.0.2",
            "port": listener.getsockname()[1],
            "dbname": "d",
            "user": "u",
            "table": "t",
        }
        try:
            with pytest.raises(BackendUnavailable) as caught:
                connector.inspect(connection)
            assert caught.value.reason == "host_not_allowed"
            with pytest.raises(BlockingIOError):
                listener.accept()  # nothing ever knocked
        finally:
            listener.close()

    def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(
        self, source: dict[str, Any], make: Make
    ) -> None:
        # A name only this resolver knows: libpq could not look it up itself.
        lookups: list[str] = []

        def resolver(host: str, port: int) -> list[str]:
            lookups.append(host)
            return {"pg.tdb-rebind.test": ["127.0.0.1"], "meta.tdb-rebind.test": ["169.254.2.1"]}[
                host
            ]

        connector, _ = make(policy=OutboundPolicy(resolver=resolver))
        assert list(connector.inspect({**source, "host": "pg.tdb-rebind.test"})) == ITEMS
        assert lookups == ["pg.tdb-rebind.test"]
        with pytest.raises(BackendUnavailable) as caught:
            connector.inspect({**source, "host": "meta.tdb-rebind.test"})
        assert caught.value.reason == "host_not_allowed"
        with pytest.raises(InvalidConnection):
            connector.validate({**source, "host": "meta.tdb-rebind.test"})
