"""Big response bodies leave in slices, with a turn of the event loop between two slices.

One event loop serves every request of a process. A body handed to the server whole is written
to the socket in one call, as much of it as the kernel takes (megabytes, to a client on the
same machine), and ten clients fetching full listings back to back keep the loop writing while
`/healthz` and every small request wait behind them. Sliced, a big body shares the loop: each
turn writes at most one slice per response in flight, and between two slices the loop accepts,
reads and answers whatever else is ready.

The slices go through the server's own flow control: uvicorn makes `send` wait while the
connection's write buffer is over its high-water mark (64 KiB), so a client that reads slowly
gets one slice at a time as it drains, and holds nothing but its own buffer. A client that
stops reading altogether is dropped at the send deadline (see `protocol.py`), and the rest of
its answer is let go.
"""

from __future__ import annotations

import asyncio

from litestar.types import HTTPResponseBodyEvent, Message, Send

# Bodies bigger than this leave in slices of this size: the transport's high-water mark, so
# that each slice either goes to the kernel at once or makes the next `send` wait for it.
SLICE_BYTES = 64 * 1024


def paced(send: Send, slice_bytes: int = SLICE_BYTES) -> Send:
    """`send`, with every body bigger than `slice_bytes` sent in slices, a loop turn apart."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            if len(body) > slice_bytes:
                await _in_slices(send, body, message.get("more_body", False), slice_bytes)
                return
        await send(message)

    return sending


async def _in_slices(send: Send, body: bytes, more_body: bool, slice_bytes: int) -> None:
    size = len(body)
    for start in range(0, size, slice_bytes):
        if start:
            await asyncio.sleep(0)  # one turn of the loop: whatever else is ready runs now
        end = start + slice_bytes
        event: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": body[start:end],
            "more_body": more_body or end < size,
        }
        await send(event)
