"""Store outages as events: one line when the store stops answering, one when it answers again."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("tdb.store")


class OutageWatch:
    """Logs the start and the end of each outage of one store, once each, whatever the traffic."""

    def __init__(self, store: str) -> None:
        self._store = store
        self._down_since: float | None = None
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        """A call could not reach the store."""
        if self._down_since is not None:
            return
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        cause = exc.__cause__ or exc
        # The driver's message names the host and what failed; no password is in it, and the
        # log formatter masks anything shaped like one.
        log.warning(
            "store_unavailable",
            extra={"store": self._store, "reason": type(cause).__name__, "detail": str(cause)},
        )

    def answered(self) -> None:
        """A call reached the store."""
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.info(
                "store_recovered",
                extra={"store": self._store, "down_seconds": round(time.monotonic() - since, 3)},
            )
