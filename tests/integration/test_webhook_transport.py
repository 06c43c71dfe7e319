"""The webhook transport against real listeners on 127.0.0.1: what each kind of failure is."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from adapters.connectors.outbound import OutboundPolicy, parse_networks
from adapters.webhooks.transport import H11WebhookTransport
from application.webhooks import new_secret
from domain.webhooks import AttemptError, AttemptResult
from tests.helpers import run
from tests.receivers import Answer, Receiver

POLICY = OutboundPolicy(denied=parse_networks("169.254.0.0/16,127.0.0.2/32"))


def _send(url: str, timeout: float = 2.0) -> AttemptResult:
    transport = H11WebhookTransport(POLICY, timeout, "tdb/test")

    async def attempt() -> AttemptResult:
        try:
            return await transport.send(url, "msg_1", b"{}", [new_secret()])
        finally:
            await transport.close()

    return run(attempt())


@pytest.fixture
def silent() -> Iterator[str]:
    """A listener that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        listener.close()


def test_each_failure_has_its_error(silent: str) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    assert _send(f"http://127.0.0.1:{port}/x").error is AttemptError.UNREACHABLE
    assert _send("http://127.0.0.2:9/x").error is AttemptError.HOST_NOT_ALLOWED
    slow = _send(silent, timeout=0.3)
    assert slow.error is AttemptError.TIMEOUT
    assert slow.duration_ms < 2000


def test_statuses_redirects_and_retry_after() -> None:
    answers = {
        "/moved": Answer(302, (("Location", "http://127.0.0.1:1/elsewhere"),)),
        "/busy": Answer(429, (("Retry-After", "120"),)),
        "/ok": Answer(200),
    }
    with Receiver(lambda received: answers[received.path]).running() as receiver:
        base = receiver.url.removesuffix("/hook")
        moved = _send(f"{base}/moved")
        busy = _send(f"{base}/busy")
        ok = _send(f"{base}/ok")
        assert len(receiver.received) == 3  # the redirect was not followed
    assert (moved.status_code, moved.error) == (302, AttemptError.REDIRECT)
    assert (busy.status_code, busy.error, busy.retry_after) == (429, AttemptError.STATUS, 120)
    assert ok.succeeded
