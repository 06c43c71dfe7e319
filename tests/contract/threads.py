"""Several threads released at once against one store, to show what it does under contention."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def race(attempts: int, attempt: Callable[[int], object]) -> list[BaseException | None]:
    """Run `attempt(i)` on `attempts` threads released together; each one's exception, or None."""
    start = threading.Barrier(attempts)

    def run(i: int) -> BaseException | None:
        start.wait()
        try:
            attempt(i)
        except Exception as exc:
            return exc
        return None

    with ThreadPoolExecutor(attempts) as pool:
        return list(pool.map(run, range(attempts)))
