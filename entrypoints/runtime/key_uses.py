"""Writes the keys' last use behind the requests: a task of the serving loop, flushed at its end."""

from __future__ import annotations

import asyncio
import contextlib

from application.keys import KeyUses
from domain.errors import StoreUnavailable


class KeyUseWriter:
    """Flushes `KeyUses` every `interval` seconds on the running loop, and once more at `stop`,
    so a clean shutdown loses no use. A store that does not answer keeps the uses for the next
    flush; a request never waits for any of it."""

    def __init__(self, uses: KeyUses, interval: float) -> None:
        self._uses = uses
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(StoreUnavailable):
                await self._uses.flush()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StoreUnavailable):
            await self._uses.flush()
