"""A deadline that long work checks as it goes (a CSV inspection in a worker process)."""

from __future__ import annotations

import time

from domain.errors import BackendUnavailable


class Deadline:
    """When a piece of work must end, for the work to check as it goes.

    Work that loops checks its deadline between steps and stops with
    `BackendUnavailable("timeout")` once it has passed, rather than run on for nobody.
    """

    def __init__(self, seconds: float, what: str, end: float | None = None) -> None:
        self.seconds = seconds
        self.what = what
        # `end` on the monotonic clock, which all processes of the machine share.
        self._end = time.monotonic() + seconds if end is None else end

    @property
    def end(self) -> float:
        """When it passes, on the monotonic clock (which every process of the machine shares)."""
        return self._end

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def check(self) -> None:
        """Raise `BackendUnavailable("timeout")` if the work should stop now."""
        if self.expired:
            raise self.timeout()

    def timeout(self) -> BackendUnavailable:
        return BackendUnavailable(
            "timeout", f"{self.what} gave no answer within {self.seconds:g} s"
        )
