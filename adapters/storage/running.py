"""Writes that run to their end even if whoever awaits them is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WritesToEnd:
    """Runs each write as a task of its own: a caller that is cancelled stops waiting at once
    (its client went away) and the outcome is dropped, but the write neither stops halfway nor
    holds the loop; `ended` waits for those still running on the current loop."""

    def __init__(self) -> None:
        # The loop keeps only a weak reference to a task: a write whose caller was cancelled
        # is held here until it ends.
        self._running: set[asyncio.Task[Any]] = set()

    async def __call__(self, write: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(write)
        self._running.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    async def ended(self) -> None:
        """Return once every write begun on the running loop has ended."""
        loop = asyncio.get_running_loop()
        running = {task for task in self._running if task.get_loop() is loop}
        if running:
            await asyncio.wait(running)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that was cancelled no longer wants it
