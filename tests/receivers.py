"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records what it is sent and
answers as the test says (a status, headers, a hold until released)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs


@attrs.frozen
class Received:
    """One request as the receiver read it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@attrs.frozen
class Answer:
    status: int = 204
    headers: tuple[tuple[str, str], ...] = ()
    hold: threading.Event | None = None
    """If given, the answer waits until it is set (a receiver that stalls mid-delivery)."""


class Receiver:
    """Records every request; `answer(received)` decides each answer (204 by default)."""

    def __init__(self, answer: Callable[[Received], Answer] | None = None) -> None:
        self.answer = answer or (lambda _: Answer())
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def record(self, received: Received) -> None:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests once at least `count` arrived; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"received {len(self.received)} of {count} requests in {timeout}s"
                self._changed.wait(left)
            return list(self.received)

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                received = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.time(),
                )
                receiver.record(received)
                answer = receiver.answer(received)
                if answer.hold is not None:
                    answer.hold.wait(30)
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
