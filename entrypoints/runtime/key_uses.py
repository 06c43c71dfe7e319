"""Writes the keys' last use behind the requests: a task of the serving loop, flushed at its end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from application.keys import KeyUses
from domain.errors import StoreUnavailable


class KeyUseWriter:
    """Flushes `KeyUses` every `interval` seconds on the running loop, and all of it at `stop`,
    so a clean shutdown loses no use. A store that does not answer keeps the uses for the next
    flush; a request never waits for any of it."""

    def __init__(
        self, uses: KeyUses, interval: float, written: Callable[[int], object] = lambda n: None
    ) -> None:
        self._uses = uses
        self._interval = interval
        self._written = written
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._flush()

    async def _flush(self, everything: bool = False) -> None:
        with contextlib.suppress(StoreUnavailable):
            self._written(await self._uses.flush(everything))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush(everything=True)
