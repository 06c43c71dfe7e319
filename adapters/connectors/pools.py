"""Pooled connections to source databases: a few per target, reused, replaced when broken.

A target is what a connection is made with (host, port, dbname, user, password, sslmode). Each
target gets a small pool whose bound doubles as a fairness limit: an inspection beyond it waits
for a connection (a few at most) unless the target is known to fail, and fails at once with `busy`
otherwise, so one silent backend never takes the threads every other source needs.

`AsyncConnectionPools` keeps connections for inspections awaited on an event loop: asyncio
psycopg connections by default, made and used without a thread, or any driver's connections
described by a `ConnectionKind` (the MySQL connector's, used on threads).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs
import psycopg
from psycopg.pq import TransactionStatus

from domain.errors import BackendUnavailable

T = TypeVar("T")
# A pooled connection: an asyncio psycopg connection, or another driver's (see ConnectionKind).
C = Any
AsyncConnect = Callable[[Sequence[str]], Awaitable[C]]
AsyncWork = Callable[[C], Awaitable[T]]

DEFAULT_MAX_SIZE = 2
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_MAX_TARGETS = 50
# How often idle connections are looked at; one may outlive the idle timeout by this much.
SWEEP_SECONDS = 5.0


@attrs.frozen
class ConnectionKind:
    """What the pools need to know of one driver's connections."""

    error: type[BaseException]
    """The driver's error: a pooled connection failing with it may have been closed idle."""
    alive: Callable[[C], bool]
    """Not closed and not broken."""
    reusable: Callable[[C], bool]
    """Alive and in a state a next inspection may take it in (no transaction left open)."""
    hostaddr: Callable[[C], str]
    """The address it is connected to."""
    close: Callable[[C], None]
    """Close it from any thread, awaiting nothing; no caller holds it."""


def _psycopg_alive(connection: C) -> bool:
    return not connection.closed and not connection.broken


def _psycopg_reusable(connection: C) -> bool:
    return (
        _psycopg_alive(connection) and connection.info.transaction_status == TransactionStatus.IDLE
    )


def _close_connection(connection: C) -> None:
    """Close a connection that no caller holds, from any thread: what `AsyncConnection.close()`
    does, which awaits nothing."""
    connection.pgconn.finish()


PSYCOPG = ConnectionKind(
    error=psycopg.Error,
    alive=_psycopg_alive,
    reusable=_psycopg_reusable,
    hostaddr=lambda connection: connection.info.hostaddr,
    close=_close_connection,
)


@attrs.frozen
class Target:
    """Where and as whom a connection goes; equal targets share a pool."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = attrs.field(repr=False)
    sslmode: str | None = None

    @property
    def place(self) -> tuple[str, int, str, str, str | None]:
        """The target without its secret: what `forget` matches and what `sizes` shows."""
        return (self.host, self.port, self.dbname, self.user, self.sslmode)


@attrs.define
class _Idle:
    connection: C
    hostaddr: str
    since: float


class _Pool:
    """One target's connections: `leased` slots in use (a connection each, or one on its way)."""

    def __init__(self) -> None:
        self.idle: list[_Idle] = []
        self.leased = 0
        self.waiting = 0
        # Whether the last connection made to this target succeeded (None: none was made yet).
        # Inspections may wait for a connection unless it is known to fail.
        self.answers: bool | None = None
        self.turns: deque[asyncio.Future[None]] = deque()  # waiters on an event loop

    @property
    def in_use(self) -> bool:
        return bool(self.leased or self.waiting)


class AsyncConnectionPools:
    """Per-target pools of asyncio psycopg connections, for inspections on an event loop:
    per-target slots, idle connections, least recently used targets dropped beyond a bound.

    A connection the server closed while it idled (a `pg_terminate_backend`, a restart) fails on
    its next use; that use is then made once more on a fresh connection, so it costs the client
    nothing a fresh connection would not. Nothing blocks: a caller waiting for a busy target's
    slot awaits it, and a freed slot passes straight to the longest waiting caller. `run` is
    called on one event loop at a time. The bookkeeping is thread-safe (one lock): `sweep` comes
    from a sweeper thread. A connection is closed only once no caller holds it, so closing one
    from any thread is safe.
    """

    def __init__(
        self,
        max_size: int = DEFAULT_MAX_SIZE,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_targets: int = DEFAULT_MAX_TARGETS,
        max_waiting: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        kind: ConnectionKind = PSYCOPG,
    ) -> None:
        if max_size < 1 or max_targets < 1 or idle_timeout < 0:
            raise ValueError("pool bounds must be positive")
        self._max_size = max_size
        self._idle_timeout = idle_timeout
        self._max_targets = max_targets
        # Inspections that may queue for a busy target that answers, beyond those it serves.
        self._max_waiting = 4 * max_size if max_waiting is None else max_waiting
        self._clock = clock
        self._kind = kind
        self._lock = threading.Lock()
        self._pools: OrderedDict[Target, _Pool] = OrderedDict()
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    def admit(self, target: Target) -> None:
        """Raise `BackendUnavailable("busy")` now if `run` would (a cheap early answer)."""
        pool = self._pools.get(target)
        if pool is None or pool.leased < self._max_size:
            return
        if pool.answers is False or pool.waiting >= self._max_waiting:
            raise _busy(target)

    def forget(self, place: tuple[str, int, str, str, str | None]) -> None:
        """Drop every pool of targets at this place (whatever the password): a source changed."""
        with self._lock:
            gone = [t for t in self._pools if t.place == place]
            closing = [idle for t in gone for idle in self._pools.pop(t).idle]
        self._close(closing)

    def sweep(self) -> None:
        """Close connections idle longer than the idle timeout; drop targets left empty."""
        now = self._clock()
        closing: list[_Idle] = []
        with self._lock:
            for target, pool in list(self._pools.items()):
                fresh = [i for i in pool.idle if now - i.since < self._idle_timeout]
                closing += [i for i in pool.idle if now - i.since >= self._idle_timeout]
                pool.idle = fresh
                if not pool.idle and not pool.in_use:
                    del self._pools[target]
        self._close(closing)

    def sizes(self) -> dict[tuple[str, int, str, str, str | None], tuple[int, int, int]]:
        """Per target kept (without its password): connections in use, idle, and waiters."""
        with self._lock:
            return {t.place: (p.leased, len(p.idle), p.waiting) for t, p in self._pools.items()}

    def close(self) -> None:
        """Close every idle connection and stop sweeping; connections in use close on return."""
        self._stop.set()
        with self._lock:
            closing = [idle for pool in self._pools.values() for idle in pool.idle]
            self._pools.clear()
        self._close(closing)

    def _close(self, idle: Sequence[_Idle]) -> None:
        for item in idle:
            self._kind.close(item.connection)

    # --- bookkeeping -----------------------------------------------------------------------

    def _slot(self, target: Target) -> tuple[_Pool, bool]:
        """The target's pool, and whether a slot was leased in it. Lock held.

        Raises `busy` when the caller may not wait for one: nothing is known to come back soon.
        """
        pool = self._pools.get(target)
        if pool is None:
            pool = self._pools[target] = _Pool()
        self._pools.move_to_end(target)
        if pool.leased < self._max_size:
            pool.leased += 1
            return pool, True
        if pool.answers is False or pool.waiting >= self._max_waiting:
            raise _busy(target)
        return pool, False

    def _evict(self) -> list[_Idle]:
        """Drop least recently used targets beyond the bound (never one in use). Lock held."""
        closing: list[_Idle] = []
        for target in list(self._pools):
            if len(self._pools) <= self._max_targets:
                break
            if not self._pools[target].in_use:
                closing += self._pools.pop(target).idle
        return closing

    def _take_idle(self, pool: _Pool, hostaddrs: Sequence[str]) -> _Idle | None:
        now = self._clock()
        closing: list[_Idle] = []
        taken = None
        with self._lock:
            while pool.idle:
                idle = pool.idle.pop()  # the most recently used: the others may idle out
                fit = idle.hostaddr in hostaddrs and now - idle.since < self._idle_timeout
                if fit and self._kind.alive(idle.connection):
                    taken = idle
                    break
                closing.append(idle)
        self._close(closing)
        return taken

    def _replaces(
        self, target: Target, pool: _Pool, reused: _Idle, failure: BaseException | None
    ) -> bool:
        """Give back a pooled connection after its work, unless the server closed it while it
        idled: then close it and say that a fresh connection must do the work again."""
        connection = reused.connection
        if isinstance(failure, self._kind.error) and not self._kind.alive(connection):
            self._kind.close(connection)
            return True
        self._give_back(target, pool, connection, reused.hostaddr)
        return False

    def _give_back(self, target: Target, pool: _Pool, connection: C, hostaddr: str) -> None:
        reusable = (
            self._kind.reusable(connection) and self._idle_timeout > 0 and not self._stop.is_set()
        )
        with self._lock:
            # A forgotten or evicted target's connections are not kept.
            if reusable and self._pools.get(target) is pool:
                pool.idle.append(_Idle(connection, hostaddr, self._clock()))
                self._start_sweeper()
                return
        self._kind.close(connection)

    def _start_sweeper(self) -> None:
        """Start the thread that closes idle connections, unless it runs. Lock held."""
        if self._sweeper is None or not self._sweeper.is_alive():
            self._sweeper = threading.Thread(
                target=self._sweep_until_empty, name="tdb-source-pool-sweeper", daemon=True
            )
            self._sweeper.start()

    def _sweep_until_empty(self) -> None:
        while not self._stop.wait(min(SWEEP_SECONDS, self._idle_timeout)):
            self.sweep()
            with self._lock:
                if not any(pool.idle for pool in self._pools.values()):
                    self._sweeper = None
                    return

    async def run(
        self,
        target: Target,
        hostaddrs: Sequence[str],
        connect: AsyncConnect,
        work: AsyncWork[T],
        deadline: float,
    ) -> T:
        """`await work(connection)` on a pooled connection to one of `hostaddrs`, else a fresh one.

        `deadline` (a `time.monotonic()` instant) bounds the wait for a busy target's slot;
        `connect` and `work` bound their own waits. Raises `BackendUnavailable("busy")` when the
        target has no connection to spare.
        """
        pool = await self._lease(target, deadline)
        try:
            reused = self._take_idle(pool, hostaddrs)
            if reused is not None:
                try:
                    result = await work(reused.connection)
                except BaseException as exc:  # cancelled mid-query, say: then it is not kept
                    if not self._replaces(target, pool, reused, exc):
                        raise
                else:
                    self._replaces(target, pool, reused, None)
                    return result
            try:
                connection = await connect(hostaddrs)
            except BaseException:
                self._failed(target, pool)
                raise
            pool.answers = True
            hostaddr = self._kind.hostaddr(connection)
            try:
                return await work(connection)
            finally:
                self._give_back(target, pool, connection, hostaddr)
        finally:
            self._release(pool)

    async def _lease(self, target: Target, deadline: float) -> _Pool:
        with self._lock:
            pool, leased = self._slot(target)
            if leased:
                evicted = self._evict()
            else:
                turn = asyncio.get_running_loop().create_future()
                pool.turns.append(turn)
                pool.waiting += 1
        if leased:
            self._close(evicted)
            return pool
        try:
            # A turn comes with the slot of the caller that released it, or with `busy`.
            await asyncio.wait_for(turn, max(0.0, deadline - time.monotonic()))
        except BaseException as exc:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self._release(pool)  # the slot came as the wait ended: it passes on
            if isinstance(exc, TimeoutError):
                raise _busy(target) from None
            raise
        finally:
            with self._lock:
                pool.waiting -= 1
        return pool

    def _release(self, pool: _Pool) -> None:
        with self._lock:
            while pool.turns:
                turn = pool.turns.popleft()
                if not turn.done():
                    turn.set_result(None)  # the slot passes on, still leased
                    return
            pool.leased -= 1

    def _failed(self, target: Target, pool: _Pool) -> None:
        """A new connection failed: the waiting ones give up, as nothing comes back soon."""
        with self._lock:
            pool.answers = False
            while pool.turns:
                turn = pool.turns.popleft()
                if not turn.done():
                    turn.set_exception(_busy(target))
                    # Retrieved by its waiter, or by nobody if that one already gave up.
                    turn.exception()


def _busy(target: Target) -> BackendUnavailable:
    return BackendUnavailable(
        "busy",
        f"every connection to {target.host}:{target.port} is in use; try again shortly",
    )
