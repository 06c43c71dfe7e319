"""A hard deadline around a blocking call, so that no connector makes its caller wait forever."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from domain.errors import BackendUnavailable

T = TypeVar("T")

# Threads kept waiting for the next call; a thread beyond this many ends when its call does.
MAX_IDLE_THREADS = 32

_lock = threading.Lock()


class _Worker:
    """A daemon thread that runs calls one after another, and waits idle in between."""

    idle: list[_Worker] = []

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="tdb-deadline", daemon=True).start()

    @classmethod
    def take(cls) -> _Worker:
        with _lock:
            if cls.idle:
                return cls.idle.pop()
        return cls()

    def submit(self, call: Callable[[], None]) -> None:
        self._calls.put(call)

    def _serve(self) -> None:
        while True:
            self._calls.get()()
            with _lock:
                if len(self.idle) >= MAX_IDLE_THREADS:
                    return
                self.idle.append(self)


# A forked child has none of its parent's threads: it must not hand calls to them.
os.register_at_fork(after_in_child=_Worker.idle.clear)


class Deadline:
    """When a piece of work must end, for the work to check as it goes.

    A thread cannot be stopped from outside: work that its caller gave up on would otherwise
    run to its end on an orphaned thread, burning CPU for nobody. Work that loops checks its
    deadline between steps and stops with `BackendUnavailable("timeout")` once it has passed
    or once the caller abandoned it.
    """

    def __init__(self, seconds: float, what: str, end: float | None = None) -> None:
        self.seconds = seconds
        self.what = what
        # `end` on the monotonic clock, which all processes of the machine share.
        self._end = time.monotonic() + seconds if end is None else end
        self._abandoned = threading.Event()

    @property
    def end(self) -> float:
        """When it passes, on the monotonic clock (which every process of the machine shares)."""
        return self._end

    def abandon(self) -> None:
        """The caller stopped waiting: the work should stop at its next check."""
        self._abandoned.set()

    @property
    def expired(self) -> bool:
        return self._abandoned.is_set() or time.monotonic() >= self._end

    def check(self) -> None:
        """Raise `BackendUnavailable("timeout")` if the work should stop now."""
        if self.expired:
            raise self.timeout()

    def timeout(self) -> BackendUnavailable:
        return BackendUnavailable(
            "timeout", f"{self.what} gave no answer within {self.seconds:g} s"
        )


def call_with_deadline(
    work: Callable[[], T], seconds: float, what: str, end: float | None = None
) -> T:
    """What `work()` returns or raises, or `BackendUnavailable("timeout")` after `seconds`.

    `end` (a `time.monotonic()` instant), if given, is when the `seconds` that began earlier
    run out: the wait ends then.

    The work runs on a daemon thread (kept for later calls, which saves starting one each
    time). A thread cannot be killed, so work that overruns is abandoned, not stopped: it must
    carry its own, looser limits (socket and statement timeouts, bounded reads) so that it ends
    on its own soon after.
    """
    results: list[T] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        threading.current_thread().name = f"tdb-deadline: {what}"
        try:
            results.append(work())
        except BaseException as exc:  # handed over to the caller's thread and re-raised there
            errors.append(exc)
        finally:
            done.set()

    _Worker.take().submit(run)
    done.wait(seconds if end is None else max(0.0, end - time.monotonic()))
    if errors:
        raise errors[0]
    if results:
        return results[0]
    raise BackendUnavailable("timeout", f"{what} gave no answer within {seconds:g} s")
