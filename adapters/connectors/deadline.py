"""A hard deadline around a blocking call, so that no connector makes its caller wait forever."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from domain.errors import BackendUnavailable

T = TypeVar("T")


def call_with_deadline(work: Callable[[], T], seconds: float, what: str) -> T:
    """What `work()` returns or raises, or `BackendUnavailable("timeout")` after `seconds`.

    The work runs on a daemon thread. A thread cannot be killed, so work that overruns is
    abandoned, not stopped: it must carry its own, looser limits (socket and statement timeouts,
    bounded reads) so that it ends on its own soon after.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as exc:  # handed over to the caller's thread and re-raised there
            errors.append(exc)

    worker = threading.Thread(target=run, name=f"tdb-deadline: {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if errors:
        raise errors[0]
    if results:
        return results[0]
    raise BackendUnavailable("timeout", f"{what} gave no answer within {seconds:g} s")
