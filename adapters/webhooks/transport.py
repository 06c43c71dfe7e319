"""The webhook transport: one signed POST per attempt, over HTTP/1.1 (framed by h11) on
connections kept alive per target, to the address the outbound policy checked.

The URL's host is resolved once per attempt and judged by the outbound policy; the request then
goes to that address itself (the `Host` header and, for https, the TLS server name and
certificate check keep the URL's name), so a second lookup can never slip a denied address
past (DNS rebinding). Redirects are not followed; no proxy is ever used;
the whole attempt, answer included, ends within `timeout`. At most 64 KiB of an answer's body
is read: a receiver cannot make tdb read a big one. (httpx did the same at three times the
CPU per attempt: at hundreds of deliveries a second, that was the sender's main cost.)
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import h11

from adapters.connectors.outbound import OutboundPolicy, PolicyRefused
from adapters.webhooks.signing import signed_headers
from domain.errors import BackendUnavailable
from domain.webhooks import AttemptError, AttemptResult

_ANSWER_READ_MAX = 64 * 1024
_IDLE_PER_TARGET = 8
_READ_CHUNK = 16 * 1024


class _Refused(Exception):
    def __init__(self, error: AttemptError) -> None:
        self.error = error


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header: delay-seconds or an HTTP date; None if neither."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# Where a connection goes: scheme, the checked address, port, and the name TLS checks.
_Target = tuple[str, str, int, str]


class _Connection:
    """One HTTP/1.1 connection (h11 frames it: a receiver's answer is parsed strictly)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.http = h11.Connection(h11.CLIENT, max_incomplete_event_size=_ANSWER_READ_MAX)
        self.used = False

    def reusable(self) -> bool:
        return (
            self.http.our_state is h11.DONE
            and self.http.their_state is h11.DONE
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()


class _Answer:
    def __init__(self, status: int, retry_after: str | None) -> None:
        self.status, self.retry_after = status, retry_after


class H11WebhookTransport:
    """Sends attempts over kept-alive HTTP/1.1 connections, per event loop and target."""

    def __init__(self, policy: OutboundPolicy, timeout: float, user_agent: str) -> None:
        self._policy = policy
        self._timeout = timeout
        self._user_agent = user_agent
        self._idle: dict[asyncio.AbstractEventLoop, dict[_Target, list[_Connection]]] = {}
        self._tls: ssl.SSLContext | None = None

    async def close(self) -> None:
        """Close this loop's idle connections."""
        for connections in self._idle.pop(asyncio.get_running_loop(), {}).values():
            for connection in connections:
                connection.close()

    async def _address(self, host: str, port: int) -> str:
        """The first address of the host that the policy allows (looked up off the loop)."""
        try:
            found = self._policy.resolve_now(host, port)
            if found is None:
                found = await asyncio.to_thread(self._policy.resolve, host, port)
        except PolicyRefused:
            raise _Refused(AttemptError.HOST_NOT_ALLOWED) from None
        except BackendUnavailable:
            raise _Refused(AttemptError.UNREACHABLE) from None
        return found[0]

    async def check_url(self, url: str) -> str | None:
        parts = urlsplit(url)
        try:
            await self._address(parts.hostname or "", parts.port or _default_port(parts.scheme))
        except _Refused as refused:
            if refused.error is AttemptError.HOST_NOT_ALLOWED:
                return "is not a host this server may connect to"
            return "names a host that does not resolve"
        return None

    async def send(
        self, url: str, message_id: str, body: bytes, keys: Sequence[str]
    ) -> AttemptResult:
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 3)

        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._post(url, message_id, body, keys)
        except _Refused as refused:
            return AttemptResult(None, refused.error, elapsed())
        except TimeoutError:
            return AttemptResult(None, AttemptError.TIMEOUT, elapsed())
        except ssl.SSLError:
            return AttemptResult(None, AttemptError.TLS_FAILED, elapsed())
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError):
            return AttemptResult(None, AttemptError.UNREACHABLE, elapsed())
        status = answer.status
        error = None
        if 300 <= status < 400:
            error = AttemptError.REDIRECT
        elif not 200 <= status < 300:
            error = AttemptError.STATUS
        return AttemptResult(status, error, elapsed(), retry_after(answer.retry_after))

    async def _post(self, url: str, message_id: str, body: bytes, keys: Sequence[str]) -> _Answer:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or _default_port(parts.scheme)
        target: _Target = (parts.scheme, await self._address(host, port), port, host)
        headers = [
            ("Host", parts.netloc),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("User-Agent", self._user_agent),
            *signed_headers(keys, message_id, int(time.time()), body).items(),
        ]
        request = h11.Request(
            method="POST",
            target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            headers=headers,
        )
        connection = self._idle_connection(target)
        if connection is not None:
            try:
                return await self._exchange(target, connection, request, body)
            except (OSError, asyncio.IncompleteReadError, h11.RemoteProtocolError):
                # A kept-alive connection the receiver had closed: once more, on a new one.
                connection.close()
        return await self._exchange(target, await self._connect(target), request, body)

    def _idle_connection(self, target: _Target) -> _Connection | None:
        idle = self._idle.get(asyncio.get_running_loop(), {}).get(target)
        while idle:
            connection = idle.pop()
            if not connection.writer.is_closing() and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    async def _connect(self, target: _Target) -> _Connection:
        scheme, address, port, name = target
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        reader, writer = await asyncio.open_connection(
            address, port, ssl=tls, server_hostname=name if tls else None, limit=_READ_CHUNK
        )
        return _Connection(reader, writer)

    async def _exchange(
        self, target: _Target, connection: _Connection, request: h11.Request, body: bytes
    ) -> _Answer:
        http = connection.http
        try:
            connection.writer.write(
                http.send(request) + http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage())
            )
            await connection.writer.drain()
            answer = await self._read(connection)
        except BaseException:
            connection.close()
            raise
        if connection.reusable():
            http.start_next_cycle()
            idle = self._idle.setdefault(asyncio.get_running_loop(), {}).setdefault(target, [])
            if len(idle) < _IDLE_PER_TARGET:
                idle.append(connection)
                return answer
        connection.close()
        return answer

    @staticmethod
    async def _read(connection: _Connection) -> _Answer:
        """The answer's status and Retry-After; at most 64 KiB of its body is read."""
        http = connection.http
        answer: _Answer | None = None
        read = 0
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                chunk = await connection.reader.read(_READ_CHUNK)
                if not chunk and answer is None:
                    raise asyncio.IncompleteReadError(b"", None)
                http.receive_data(chunk)
            elif isinstance(event, h11.Response):
                found = dict(event.headers)
                later = found.get(b"retry-after")
                answer = _Answer(event.status_code, later.decode("latin-1") if later else None)
            elif isinstance(event, h11.Data):
                read += len(event.data)
                if read > _ANSWER_READ_MAX:
                    connection.close()  # not read to its end: the connection is not reused
                    break
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        assert answer is not None
        return answer


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
