"""Group commit: writes that arrive while one transaction is out go together in the next.

A busy webhook sender ends hundreds of attempts a second; one transaction each would be most of
its cost. Each caller awaits its own answer; a cancelled caller stops waiting, and its write
still goes in with the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Hands `write_all` every item given since its last call, in order; one call at a time.

    Meant for one event loop at a time (the sender's): the batch in flight belongs to it.
    """

    def __init__(self, write_all: Callable[[list[Any]], Awaitable[Sequence[T]]]) -> None:
        self._write_all = write_all
        self._waiting: list[tuple[asyncio.Future[T], Any]] = []
        self._flushing = False
        self._writes: set[asyncio.Task[Sequence[T]]] = set()

    async def __call__(self, item: Any) -> T:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        self._waiting.append((answer, item))
        if not self._flushing:
            self._flushing = True
            # At the loop's next turn: what is given until then goes in the same write.
            loop.call_soon(self._flush)
        return await asyncio.shield(answer)

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        if not batch:
            self._flushing = False
            return
        loop = asyncio.get_running_loop()
        writing = loop.create_task(self._run([item for _, item in batch]))  # noqa: RUF006
        self._writes.add(writing)  # kept here: the loop holds only a weak reference to a task

        def answer(written: asyncio.Task[Sequence[T]]) -> None:
            self._writes.discard(written)
            failure = None if written.cancelled() else written.exception()
            for i, (future, _) in enumerate(batch):
                if future.done():
                    continue
                if written.cancelled():
                    future.cancel()
                elif failure is not None:
                    future.set_exception(failure)
                else:
                    future.set_result(written.result()[i])
            self._flush()

        writing.add_done_callback(answer)

    async def _run(self, items: list[Any]) -> Sequence[T]:
        return await self._write_all(items)
