"""A hard deadline around a blocking call, so that no connector makes its caller wait forever."""

from __future__ import annotations

import os
import queue
import threading
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


def call_with_deadline(work: Callable[[], T], seconds: float, what: str) -> T:
    """What `work()` returns or raises, or `BackendUnavailable("timeout")` after `seconds`.

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
    done.wait(seconds)
    if errors:
        raise errors[0]
    if results:
        return results[0]
    raise BackendUnavailable("timeout", f"{what} gave no answer within {seconds:g} s")
