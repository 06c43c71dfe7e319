"""The webhook transport: one signed POST per attempt, over httpx, to the address the outbound
policy checked.

The URL's host is resolved once per attempt and judged by the outbound policy; the request then
goes to that address itself (the `Host` header and, for https, the TLS server name and
certificate check keep the URL's name), so a second lookup can never slip a denied address
past (DNS rebinding). Redirects are not followed; proxies from the environment are not used;
the whole attempt, answer included, ends within `timeout`. At most 64 KiB of an answer's body
is read: a receiver cannot make tdb read a big one.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from adapters.connectors.outbound import OutboundPolicy, PolicyRefused
from adapters.webhooks.signing import signed_headers
from domain.errors import BackendUnavailable
from domain.webhooks import AttemptError, AttemptResult

_KEEP_ALIVE = 64
_ANSWER_READ_MAX = 64 * 1024


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


class HttpxWebhookTransport:
    """Sends attempts with one httpx client per event loop (connections kept alive by address)."""

    def __init__(self, policy: OutboundPolicy, timeout: float, user_agent: str) -> None:
        self._policy = policy
        self._timeout = timeout
        self._user_agent = user_agent
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for old in [known for known in self._clients if known.is_closed()]:
                del self._clients[old]
            client = self._clients[loop] = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self._timeout),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=_KEEP_ALIVE),
            )
        return client

    async def close(self) -> None:
        """Close this loop's client and its connections."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

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
        host = parts.hostname or ""
        try:
            await self._address(host, parts.port or _default_port(parts.scheme))
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
                response = await self._post(url, message_id, body, keys)
        except _Refused as refused:
            return AttemptResult(None, refused.error, elapsed())
        except (TimeoutError, httpx.TimeoutException):
            return AttemptResult(None, AttemptError.TIMEOUT, elapsed())
        except httpx.HTTPError as exc:
            return AttemptResult(None, _transport_error(exc), elapsed())
        status = response.status_code
        error = None
        if 300 <= status < 400:
            error = AttemptError.REDIRECT
        elif not 200 <= status < 300:
            error = AttemptError.STATUS
        return AttemptResult(
            status, error, elapsed(), retry_after(response.headers.get("retry-after"))
        )

    async def _post(
        self, url: str, message_id: str, body: bytes, keys: Sequence[str]
    ) -> httpx.Response:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or _default_port(parts.scheme)
        address = await self._address(host, port)
        shown = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        target = urlunsplit(parts._replace(netloc=f"{shown}:{port}"))
        headers = {
            "Host": parts.netloc.rpartition("@")[2],
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            **signed_headers(keys, message_id, int(time.time()), body),
        }
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        client = self._client()
        request = client.build_request(
            "POST", target, content=body, headers=headers, extensions=extensions
        )
        response = await client.send(request, stream=True)
        try:
            # A small answer is read to its end, so its connection can serve the next attempt.
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > _ANSWER_READ_MAX:
                    break
        finally:
            await response.aclose()
        return response


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _transport_error(exc: httpx.HTTPError) -> AttemptError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return AttemptError.TLS_FAILED
        cause = cause.__cause__ or cause.__context__
    if "SSL" in str(exc) or "certificate" in str(exc).lower():
        return AttemptError.TLS_FAILED
    return AttemptError.UNREACHABLE
