"""The HTTP/1.1 protocol `tdb serve` speaks: uvicorn's httptools protocol, guarded against slow
and excess clients.

uvicorn has a keep-alive timeout but no deadline for reading a request, so a client that sends
one header line every few seconds holds its connection (and a file descriptor) for ever. This
protocol adds, per process:

- a header deadline: from the moment a connection waits for a request until its headers are
  in, at most `header_timeout` seconds; then the connection is closed;
- a body deadline: once the headers are in, the body within `body_timeout` seconds;
- a send deadline: a client that leaves the answer unread, its connection's write buffer full,
  for `send_timeout` seconds is dropped (the buffered bytes and the rest of the answer with it:
  uvicorn would otherwise hold both, and the request, as long as the client's kernel keeps the
  connection open, for ever if it acknowledges with a zero window);
- a connection cap: beyond `max_connections` open connections, the connections that have waited
  longest for a request (slow clients, idle keep-alive ones) are closed to make room, a moment
  later, so that a client that sends its request at once is served; if every connection is busy
  with a request (or at a hard ceiling below the file-descriptor limit), a new one is refused
  at once with a 503;
- one log line per interval that counts what was cut or refused, never one line per socket.

Deadlines are checked by one sweep a second, so a request pays two dictionary operations for
them, not two timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import resource
import socket
import struct
import time
from collections import Counter
from typing import Any

import attrs
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from entrypoints.settings import Settings

log = logging.getLogger("tdb.connections")

REPORT_INTERVAL = 10.0
_RESERVED_DESCRIPTORS = 256
# How soon after going over the cap the excess is shed.
SHED_DELAY = 0.05
# A refused connection is closed this long after its 503, if the client has not closed it.
REFUSAL_LINGER = 1.0
_SWEEP_INTERVAL = 1.0
# SO_LINGER on, for zero seconds: closing the socket resets the connection.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
_REFUSAL_BODY = (
    b'{"type":"about:blank","title":"Service Unavailable","status":503,'
    b'"detail":"The server has too many open connections; retry shortly.",'
    b'"reason":"too_many_connections"}'
)
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/problem+json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY
)

# What the report counts, in the words it logs them with.
CUT_HEADERS = "cut: headers not in within the deadline"
CUT_BODY = "cut: body not in within the deadline"
CUT_SEND = "dropped: answer left unread past the deadline"
EVICTED = "closed to make room: waited longest for a request"
REFUSED = "refused: every connection busy"


@attrs.frozen
class ClientLimits:
    """How long a client may take to send a request, and how many connections a process keeps."""

    header_timeout: float
    body_timeout: float
    send_timeout: float
    max_connections: int
    # Beyond this many open connections a new one is refused at once, whatever the others do.
    ceiling: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientLimits:
        """The settings' limits, the cap kept below this process's file descriptor limit."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        cap = settings.max_connections
        # Far above the cap: between two sheds a flood of new connections must not reach it,
        # or clients that would be served at once get refused with the attackers.
        ceiling = max(10 * cap, cap + 8192)
        if soft != resource.RLIM_INFINITY:
            # Room for the store's connections, the sources', files and the listening sockets.
            ceiling = min(ceiling, max(16, soft - _RESERVED_DESCRIPTORS))
            cap = min(cap, ceiling)
        return cls(
            settings.header_timeout, settings.body_timeout, settings.send_timeout, cap, ceiling
        )


class ShedReport:
    """Counts connections cut or refused; logs the counts at most once per interval."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = REPORT_INTERVAL):
        self._loop = loop
        self._interval = interval
        self._counts: Counter[str] = Counter()
        self._scheduled = False

    def count(self, event: str) -> None:
        self._counts[event] += 1
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._counts:
            summary = ", ".join(f"{n} {event}" for event, n in sorted(self._counts.items()))
            self._counts.clear()
            log.warning("slow or excess clients in the last %.0f s: %s", self._interval, summary)


class ConnectionGuard:
    """The deadlines and the cap of one process (one event loop)."""

    def __init__(self, limits: ClientLimits, loop: asyncio.AbstractEventLoop) -> None:
        self.limits = limits
        self.report = ShedReport(loop)
        # Connections waiting for a request's headers, and reading a body: oldest first, with
        # the monotonic time each started waiting.
        self.waiting: dict[GuardedHttpToolsProtocol, float] = {}
        self.reading: dict[GuardedHttpToolsProtocol, float] = {}
        # Connections whose writes wait for the client to read (write buffer over its high-water
        # mark), with the time the wait began.
        self.stalled: dict[GuardedHttpToolsProtocol, float] = {}
        # Connections answered 503: closed a moment later, whatever the client does.
        self.refused: dict[GuardedHttpToolsProtocol, float] = {}
        self._loop = loop
        self._shed_handle: asyncio.TimerHandle | None = None
        loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def _sweep(self) -> None:
        now = time.monotonic()
        for table, timeout, event in (
            (self.waiting, self.limits.header_timeout, CUT_HEADERS),
            (self.reading, self.limits.body_timeout, CUT_BODY),
            (self.stalled, self.limits.send_timeout, CUT_SEND),
            (self.refused, REFUSAL_LINGER, REFUSED),
        ):
            late = []
            for protocol, since in table.items():
                if now - since < timeout:
                    break  # the rest started later
                late.append(protocol)
            for protocol in late:
                protocol.cut(event)
        self._loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def admit(self, connections: set[Any]) -> bool:
        """Whether a new connection (already in `connections`) may stay.

        Beyond the cap it may, as long as some connection is waiting for a request: the excess
        is shed shortly, oldest waiting first, late enough that the connections accepted in
        one burst have had their chance to send a request (and so are no longer waiting).
        If every connection is busy with a request, or the hard ceiling is reached, it may not.
        """
        over = len(connections) - len(self.refused) - self.limits.max_connections
        if over <= 0:
            return True
        if not self.waiting or len(connections) > self.limits.ceiling:
            return False
        if self._shed_handle is None:
            self._shed_handle = self._loop.call_later(SHED_DELAY, self._shed, connections)
        return True

    def _shed(self, connections: set[Any]) -> None:
        self._shed_handle = None
        over = len(connections) - len(self.refused) - self.limits.max_connections
        for protocol in list(itertools.islice(self.waiting, max(0, over))):
            protocol.cut(EVICTED)


_guards: dict[asyncio.AbstractEventLoop, ConnectionGuard] = {}


def guard_for(loop: asyncio.AbstractEventLoop) -> ConnectionGuard:
    """This event loop's guard, made on first use from the `TDB_*` settings."""
    guard = _guards.get(loop)
    if guard is None:
        guard = _guards[loop] = ConnectionGuard(
            ClientLimits.from_settings(Settings.from_env()), loop
        )
    return guard


def _drop(transport: asyncio.Transport) -> None:
    """Reset the connection, and let go of what it has not sent. A plain close would keep the
    answer in the kernel, sent on to a client that does not read for as long as the kernel
    retries (minutes); a linger time of zero makes the close a reset, at once."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    transport.abort()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines and a connection cap (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard_for(self.loop)
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self._guard
        if not guard.admit(self.connections):
            guard.report.count(REFUSED)
            self._refused = True
            # Answer, then half-close and drop what the client sends: closing with its request
            # unread would reset the connection and lose the answer. The client closes next;
            # if it does not, the next sweep does.
            transport.write(REFUSAL)
            transport.write_eof()
            guard.refused[self] = time.monotonic()
            return
        guard.waiting[self] = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._guard.stalled[self] = time.monotonic()

    def resume_writing(self) -> None:
        self._guard.stalled.pop(self, None)
        super().resume_writing()

    def on_headers_complete(self) -> None:
        guard = self._guard
        guard.waiting.pop(self, None)
        guard.reading.pop(self, None)  # re-inserted at the end: the table stays in time order
        guard.reading[self] = time.monotonic()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._guard.reading.pop(self, None)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:
            # Waiting for the next request: the keep-alive timeout and the header deadline run.
            self._guard.waiting[self] = time.monotonic()

    def cut(self, event: str) -> None:
        """Close this connection for a reason the report counts."""
        stalled = self in self._guard.stalled
        self._forget()
        if stalled:
            if not self._refused:
                self._guard.report.count(event)
            _drop(self.transport)
        elif not self.transport.is_closing():
            if not self._refused:
                self._guard.report.count(event)
            self.transport.close()

    def _forget(self) -> None:
        guard = self._guard
        guard.waiting.pop(self, None)
        guard.reading.pop(self, None)
        guard.stalled.pop(self, None)
        guard.refused.pop(self, None)
