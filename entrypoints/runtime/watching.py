"""The watch scheduler: a runner, beside the request handlers, of the watches' use cases.

Every `tdb serve` worker runs one (unless `TDB_WATCH=off`). It claims due checks from the store
only as fast as it can start them (`at_once`: half of `TDB_INSPECT_CONCURRENCY`, so checks never
take every turn from requests), runs each as the inspection any client could ask for, and
records it. A claim is a lease in the store: however many processes share it, one runs each due
check, and if that one dies the check is run by another once the lease has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from application.watches import CheckReport
from domain.errors import StoreUnavailable
from domain.watches import Claim
from entrypoints import metrics
from entrypoints.container import Container
from entrypoints.logs import events

ClaimChecks = Callable[[int], Awaitable[Sequence[Claim]]]
RunOne = Callable[[Claim], Awaitable[CheckReport]]

POLL_SECONDS = 1.0
"""How long the scheduler waits before it asks the store again when nothing was due."""
STOP_GRACE_SECONDS = 5.0
"""How long a stopping scheduler lets the checks it started finish (an unfinished one is run
again by a process that takes it over once its lease has passed)."""


class WatchScheduler:
    """Claims due checks as turns free up and runs each on the event loop it was started on."""

    def __init__(
        self,
        claim: ClaimChecks,
        run: RunOne,
        at_once: int,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._claim = claim
        self._run = run
        self._at_once = max(1, at_once)
        self._poll = poll_seconds
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._store_down = False

    def start(self) -> None:
        """Begin claiming and running due checks on the running event loop."""
        self._loop_task = asyncio.get_running_loop().create_task(self._claiming())

    async def stop(self) -> None:
        """Stop claiming; give the checks under way a moment to finish, then cancel the rest."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._running:
            await asyncio.wait(self._running, timeout=STOP_GRACE_SECONDS)
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(self._running)

    async def _claiming(self) -> None:
        while True:
            free = self._at_once - len(self._running)
            claimed = await self._claim_some(free) if free > 0 else 0
            if free > 0 and claimed < free:
                await asyncio.sleep(self._poll)
            else:  # every turn is taken: claim again as soon as one frees up
                await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)

    async def _claim_some(self, free: int) -> int:
        try:
            claims = await self._claim(free)
        except StoreUnavailable:
            if not self._store_down:
                events.warning("watch_claims_paused", detail="the store cannot be reached")
            self._store_down = True
            return 0
        except Exception as exc:  # a bug must not stop the scheduler: it asks again later
            events.error("watch_claim_error", error=type(exc).__name__)
            return 0
        self._store_down = False
        loop = asyncio.get_running_loop()
        for claim in claims:
            task = loop.create_task(self._check(claim))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(claims)

    async def _check(self, claim: Claim) -> None:
        lateness = max(0.0, (datetime.now(UTC) - claim.due_at).total_seconds())
        metrics.WATCH_LATENESS_SECONDS.observe(lateness)
        source_id = str(claim.watch.source_id)
        try:
            report = await self._run(claim)
        except StoreUnavailable:
            # The lease runs out and the check is run again, here or elsewhere.
            events.warning(
                "watch_check_unrecorded", source_id=source_id, reason="store_unavailable"
            )
            return
        except Exception as exc:  # a bug must not stop the scheduler: the lease runs out
            events.error("watch_check_error", source_id=source_id, error=type(exc).__name__)
            return
        result = report.result
        if report.recorded:
            metrics.WATCH_CHECKS.labels(result.outcome.value).inc()
        events.info(
            "watch_check",
            source_id=source_id,
            due_at=claim.due_at.isoformat(),
            outcome=result.outcome.value,
            reason=result.reason,
            lateness_ms=round(lateness * 1000, 1),
            recorded=report.recorded,
        )


def scheduler_for(container: Container) -> WatchScheduler | None:
    """The scheduler of a serving process, over the container's use cases; None with
    `TDB_WATCH=off`."""
    settings = container.settings()
    if not settings.watch:
        return None
    claim, run = container.claim_due_checks(), container.run_check()
    # Intervals shortened for tests are polled for more often, so that due checks start in time.
    poll = min(POLL_SECONDS, settings.watch_min_interval / 4)
    return WatchScheduler(claim, run, at_once=settings.inspect_concurrency // 2, poll_seconds=poll)
