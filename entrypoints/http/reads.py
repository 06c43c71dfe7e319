"""Where read use cases run: inline on the event loop for a local store, else on a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

T = TypeVar("T")


class ReadRunner:
    """Runs a read use case inline when the store answers without waiting, else on a thread.

    An SQLite read in WAL mode never waits for a writer and a memory read never waits at all, so
    the hop to a worker thread would cost more than the read. A PostgreSQL read waits on the
    network and always goes to a thread. Writes always go to a thread (SQLite may wait for the
    write lock).
    """

    def __init__(self, inline: bool) -> None:
        self.inline = inline

    async def __call__(self, use_case: Callable[[Any], T], query: Any) -> T:
        if self.inline:
            return use_case(query)
        return await anyio.to_thread.run_sync(use_case, query)
