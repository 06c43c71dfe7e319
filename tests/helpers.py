"""Small things several test packages need: a free loopback port, a throwaway database, a
resolver that never leaves the machine."""

from __future__ import annotations

import asyncio
import functools
import inspect
import ipaddress
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

T = TypeVar("T")


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (an exited child nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@contextmanager
def throwaway_database(admin_url: str, prefix: str, options: str = "") -> Iterator[str]:
    """The URL of a new, empty database on the server of `admin_url`, dropped afterwards.

    `options` follow `CREATE DATABASE name` as they are (`ENCODING 'SQL_ASCII' ...`)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" {options}'.rstrip())
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def loopback_resolver(host: str, _port: int) -> list[str]:
    """Addresses for IP literals and `localhost`; any other name is unknown, as a resolver
    answering NXDOMAIN would say. Tests send traffic to loopback only, DNS queries included."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if host.lower() == "localhost":
        return ["127.0.0.1"]
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def get_scope(path: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """The ASGI scope of `GET path` from a loopback client, as a server would hand it to an app."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"tdb"),
            *[(k.lower().encode(), v.encode()) for k, v in headers.items()],
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


class LoopTurns:
    """Counts the turns of the running event loop, from `start()` until `stop()`."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._count())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _count(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)


class LoopThread:
    """One event loop running on a thread of its own, for the whole test session."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="test-loop", daemon=True).start()
                self._loop = loop
            return self._loop

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """What `work` gives, awaited on the loop; this thread waits for it."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()


TEST_LOOP = LoopThread()


def run(work: Coroutine[Any, Any, T]) -> T:
    """What `work` gives (a use case's answer, say), awaited on the tests' event loop, where
    the stores the tests hold through `Synced` run too."""
    return TEST_LOOP.run(work)


class Synced:
    """A test's synchronous face of an object whose I/O methods are coroutines (a store's
    repository, a connector), so that contract tests keep their text: called where no event loop
    runs (a test's own code, its threads), a coroutine method runs to its end on the tests' loop
    (`TEST_LOOP`) and gives its result; called from code on an event loop (a use case under
    test), it gives the coroutine to await, as the object itself does. Other attributes are the
    object's own; calling the object (a use case) is calling its `__call__`."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("__call__")(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.target, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            work = attribute(*args, **kwargs)
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return TEST_LOOP.run(work)
            return work

        return call


def on_app(client: Any, call: Callable[..., Awaitable[T]], *args: Any) -> T:
    """What `call(*args)` (a use case of the app's container) gives, awaited on the event loop
    of the app that a Litestar `TestClient` serves, where the app's store connections live."""
    result: T = client.blocking_portal.call(call, *args)
    return result


def reaching(url: str, **fields: Any) -> dict[str, Any]:
    """Connection fields that reach the database of `url`."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    connection: dict[str, Any] = {
        "host": info.get("host", "127.0.0.1"),
        "port": int(info.get("port") or 5432),
        "dbname": info["dbname"],
        "user": info.get("user", "postgres"),
        **fields,
    }
    if info.get("password"):
        connection["password"] = info["password"]
    return connection


def mysql_execute(where: Mapping[str, Any], *statements: str) -> None:
    """Run statements on the MySQL database whose connection fields are `where`."""
    import pymysql

    with (
        pymysql.connect(
            host=where["host"],
            port=where["port"],
            user=where["user"],
            password=where["password"],
            database=where["dbname"],
            autocommit=True,
        ) as conn,
        conn.cursor() as cursor,
    ):
        for statement in statements:
            cursor.execute(statement)


def unchunked(body: bytes) -> bytes:
    """The content of an HTTP/1.1 body sent with `Transfer-Encoding: chunked`, read off a socket."""
    content = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return content
        content, body = content + body[:size], body[size + 2 :]
