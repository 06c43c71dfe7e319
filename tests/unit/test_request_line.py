"""The request line is written in one piece: it must read exactly as the generic renderer would
render the same fields, in both log formats."""

from __future__ import annotations

import asyncio
import io
import sys

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoints.logs import (
    REQUEST_ID,
    _console_line,
    _RequestLine,
    configure_logging,
    events,
    log_request,
)

texts = st.none() | st.text(max_size=20)


def _written(line: _RequestLine, **fields: object) -> str:
    out, err = io.StringIO(), sys.stderr
    sys.stderr = out
    try:
        line(**fields)  # type: ignore[arg-type]
    finally:
        sys.stderr = err
    return out.getvalue()


@given(
    method=st.text(min_size=1, max_size=8),
    route=st.text(min_size=1, max_size=30),
    status=st.integers(100, 599),
    duration_ms=st.floats(0, 1e6, allow_nan=False),
    actor=texts,
    client=texts,
    request_id=st.text(min_size=1, max_size=40),
)
def test_the_console_line_reads_as_the_console_renderer_renders_it(
    method: str,
    route: str,
    status: int,
    duration_ms: float,
    actor: str | None,
    client: str | None,
    request_id: str,
) -> None:
    fields = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
        "actor": actor,
        "client": client,
    }
    token = REQUEST_ID.set(request_id)
    try:
        written = _written(_RequestLine(), **fields)
    finally:
        REQUEST_ID.reset(token)
    stamp, _, rest = written.partition(" ")
    expected = _console_line(
        None,
        "info",
        {
            "timestamp": stamp,
            "level": "info",
            "event": "request",
            **fields,
            "request_id": request_id,
        },
    )
    assert written == f"{expected}\n"
    assert rest.startswith("info    request method=")


def test_the_json_line_holds_the_same_fields_in_order() -> None:
    line = _RequestLine()
    line.configure("json")
    token = REQUEST_ID.set('a"b')
    try:
        written = _written(
            line,
            method="GET",
            route="/v1/sources/{source_id}",
            status=200,
            duration_ms=1.5,
            actor=None,
            client="127.0.0.1",
        )
    finally:
        REQUEST_ID.reset(token)
    event = msgspec.json.decode(written)
    assert list(event) == [
        "timestamp",
        "level",
        "event",
        "method",
        "route",
        "status",
        "duration_ms",
        "actor",
        "client",
        "request_id",
    ]
    assert event["request_id"] == 'a"b'
    assert event["actor"] is None
    assert event["level"] == "info"


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_one_line_per_request(log_format: str) -> None:
    line = _RequestLine()
    line.configure(log_format)
    written = _written(
        line, method="GET", route="/healthz", status=200, duration_ms=0.1, actor=None, client=None
    )
    assert written.count("\n") == 1
    assert written.endswith("\n")


class _Writes(io.StringIO):
    """stderr that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_a_servers_lines_of_one_loop_turn_go_out_in_one_write_before_any_later_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _Writes()
    monkeypatch.setattr(sys, "stderr", out)
    fields = {"method": "GET", "status": 200, "duration_ms": 0.1, "actor": None, "client": None}

    async def serve() -> None:
        log_request(route="/a", **fields)  # type: ignore[arg-type]
        log_request(route="/b", **fields)  # type: ignore[arg-type]
        assert out.writes == []
        await asyncio.sleep(0)  # the turn ends: both lines leave together
        log_request(route="/c", **fields)  # type: ignore[arg-type]
        events.info("something_else")  # an event of the same turn: the pending line first

    configure_logging("console", batch_request_lines=True)  # as entrypoints/http/asgi.py does
    try:
        asyncio.run(serve())
    finally:
        configure_logging("console")
    assert len(out.writes) == 3, out.writes
    first, second, third = out.writes

    def routes(written: str) -> list[str]:
        return [part.split("route=")[1].split()[0] for part in written.splitlines()]

    assert routes(first) == ["/a", "/b"]
    assert routes(second) == ["/c"]
    assert "something_else" in third

    async def in_process() -> None:  # an app made in process writes each line as it comes
        log_request(route="/d", **fields)  # type: ignore[arg-type]
        assert routes(out.writes[-1]) == ["/d"]

    asyncio.run(in_process())
