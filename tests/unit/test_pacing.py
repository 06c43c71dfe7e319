"""Big bodies leave in slices, unchanged once joined, with a turn of the loop between slices."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from entrypoints.http.pacing import paced
from tests.helpers import LoopTurns


def _through_paced(messages: list[Any], slice_bytes: int) -> list[tuple[int, Any]]:
    """What `paced` hands the server for these messages: (turns of the loop so far, message)."""
    sent: list[tuple[int, Any]] = []
    turns = LoopTurns()

    async def server(message: Any) -> None:
        sent.append((turns.count, message))

    async def run() -> None:
        turns.start()
        await asyncio.sleep(0)  # the counter is under way
        send = paced(server, slice_bytes)
        try:
            for message in messages:
                await send(message)
        finally:
            turns.stop()

    asyncio.run(run())
    return sent


@given(
    body=st.binary(max_size=600),
    slice_bytes=st.integers(min_value=1, max_value=200),
    more_body=st.booleans(),
)
def test_a_body_leaves_whole_in_slices_a_loop_turn_apart(
    body: bytes, slice_bytes: int, more_body: bool
) -> None:
    start = {"type": "http.response.start", "status": 200, "headers": []}
    message = {"type": "http.response.body", "body": body, "more_body": more_body}
    sent = _through_paced([start, message], slice_bytes)
    assert sent[0][1] is start
    slices = [m for _, m in sent[1:]]
    assert all(m["type"] == "http.response.body" for m in slices)
    assert b"".join(m["body"] for m in slices) == body
    if len(body) <= slice_bytes:
        assert slices == [message]  # as it came, not copied
        return
    assert all(isinstance(m["body"], bytes) and 0 < len(m["body"]) <= slice_bytes for m in slices)
    # The last slice ends the response only if the body did.
    assert [m["more_body"] for m in slices] == [True] * (len(slices) - 1) + [more_body]
    seen = [turns for turns, _ in sent[1:]]
    assert all(before < after for before, after in itertools.pairwise(seen))


def test_a_streamed_response_keeps_its_parts_in_order() -> None:
    parts = [b"a" * 250, b"b" * 10, b"", b"c" * 101]
    messages = [{"type": "http.response.start", "status": 200, "headers": []}]
    messages += [
        {"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    slices = [m for _, m in _through_paced(messages, 100)[1:]]
    assert b"".join(m["body"] for m in slices) == b"".join(parts)
    assert [len(m["body"]) for m in slices] == [100, 100, 50, 10, 0, 100, 1]
    assert [m["more_body"] for m in slices] == [True] * 6 + [False]
