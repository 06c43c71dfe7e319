"""Host lookups remembered for a few seconds: a burst of registrations or inspections naming one
host asks the resolver once, not once each."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from adapters.connectors.outbound import Resolver


class CachingResolver:
    """A `Resolver` that remembers each answer, addresses or failure, for `ttl` seconds.

    A lookup can be slow (a resolver that drops a query answers after its own timeout, seconds
    later), and registration and every inspection resolve the host: without this, each of them
    pays for it. Concurrent callers of one host wait for the lookup already under way.
    """

    def __init__(
        self,
        resolve: Resolver,
        ttl: float = 10.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolve = resolve
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._answers: dict[tuple[str, int], tuple[float, tuple[str, ...] | OSError]] = {}
        self._lookups: dict[tuple[str, int], threading.Lock] = {}
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> Sequence[str]:
        key = (host, port)
        answer = self._fresh(key)
        if answer is None:
            with self._lock:
                lookup = self._lookups.setdefault(key, threading.Lock())
            with lookup:  # one lookup per host at a time; the others take its answer
                answer = self._fresh(key)
                if answer is None:
                    answer = self._look_up(key)
        if isinstance(answer, OSError):
            raise type(answer)(*answer.args)
        return answer

    def known(self, host: str, port: int) -> Sequence[str] | None:
        """The remembered answer, without a lookup: the addresses, or None if none is remembered.

        Raises the remembered failure as `__call__` would.
        """
        answer = self._fresh((host, port))
        if isinstance(answer, OSError):
            raise type(answer)(*answer.args)
        return answer

    def _fresh(self, key: tuple[str, int]) -> tuple[str, ...] | OSError | None:
        entry = self._answers.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def _look_up(self, key: tuple[str, int]) -> tuple[str, ...] | OSError:
        answer: tuple[str, ...] | OSError
        try:
            answer = tuple(self._resolve(*key))
        except OSError as exc:  # the name does not resolve (now): remembered as well
            answer = exc
        with self._lock:
            if len(self._answers) >= self._max:
                self._answers.clear()
                self._lookups.clear()
            self._answers[key] = (self._clock() + self._ttl, answer)
        return answer
