"""The webhook sender: a runner beside the request handlers that claims due deliveries from the
store's outbox and attempts each, through the same use cases as everything else.

Each `tdb serve` worker runs one. Deliveries are leased in the store, so any number of workers
and replicas share the outbox, and a worker killed mid-send leaves its deliveries to whoever
claims after the lease. At most `concurrency` attempts per endpoint run at once in a worker;
an endpoint whose attempts are all in flight is left out of the next claims, so a slow or dead
endpoint holds only its own slots and never delays another's deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from uuid import UUID

from application.webhook_ports import Claim
from application.webhooks import AttemptDelivery, ClaimDeliveries
from domain.errors import DomainError
from entrypoints import metrics
from entrypoints.logs import events

CLAIM_BATCH = 64
QUEUED_PER_SLOT = 2
STORE_BACKOFF = 1.0
STOP_GRACE = 5.0


class WebhookSender:
    """Claims and attempts due deliveries until stopped."""

    def __init__(
        self,
        claim: ClaimDeliveries,
        attempt: AttemptDelivery,
        concurrency: int = 4,
        poll: float = 0.1,
    ) -> None:
        self._claim = claim
        self._attempt = attempt
        self._concurrency = concurrency
        self._poll = poll
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._in_flight: Counter[UUID] = Counter()
        self._slots: dict[UUID, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run on the current event loop until `stop`."""
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="tdb-webhooks")

    async def stop(self) -> None:
        """Stop claiming; let the attempts in flight end (a few seconds at most), then cancel
        the rest (their leases lapse and another claim sends them). Called on another loop
        than the one it runs on (some servers start and stop an app on different loops), it
        only tells that loop to stop it."""
        self._stopping = True
        if self._runner is None:
            return
        loop = self._runner.get_loop()
        if loop is not asyncio.get_running_loop():
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._cancel_all)
            return
        self._wake.set()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    def _cancel_all(self) -> None:
        for task in (self._runner, *self._tasks):
            if task is not None:
                task.cancel()

    async def _run(self) -> None:
        while not self._stopping:
            # An endpoint keeps at most `depth` claimed: `concurrency` sending, as many queued
            # for the next free slot (queued no longer than one attempt's timeout, well
            # within the lease).
            depth = self._concurrency * QUEUED_PER_SLOT
            full = frozenset(e for e, n in self._in_flight.items() if n >= depth)
            try:
                claims = await self._claim(self.owner, CLAIM_BATCH, depth, full)
            except DomainError as exc:
                # The store is away: the deliveries wait in it; try again shortly.
                events.warning("webhook_claim_failed", error=type(exc).__name__)
                await self._pause(STORE_BACKOFF)
                continue
            for claim in claims:
                self._launch(claim)
            if len(claims) < CLAIM_BATCH:
                await self._pause(self._poll)

    async def _pause(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _launch(self, claim: Claim) -> None:
        endpoint_id = claim.endpoint.id
        self._in_flight[endpoint_id] += 1
        task = asyncio.get_running_loop().create_task(self._send(claim))
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            self._in_flight[endpoint_id] -= 1
            if self._in_flight[endpoint_id] <= 0:
                del self._in_flight[endpoint_id]
            self._wake.set()

        task.add_done_callback(done)

    async def _send(self, claim: Claim) -> None:
        slots = self._slots.setdefault(claim.endpoint.id, asyncio.Semaphore(self._concurrency))
        async with slots:
            try:
                outcome = await self._attempt(claim, self.owner)
            except DomainError as exc:
                # Not recorded: the lease lapses and the delivery is attempted again.
                events.warning(
                    "webhook_attempt_unrecorded",
                    delivery_id=str(claim.delivery.id),
                    error=type(exc).__name__,
                )
                return
        result = outcome.result
        label = "succeeded" if result.succeeded else (result.error or "status")
        metrics.WEBHOOK_ATTEMPTS.labels(str(label)).inc()
        metrics.WEBHOOK_SECONDS.observe(result.duration_ms / 1000)
        if not result.succeeded:
            events.info(
                "webhook_attempt_failed",
                delivery_id=str(claim.delivery.id),
                webhook_id=str(claim.endpoint.id),
                error=str(label),
                status_code=result.status_code,
                state=outcome.state.value,
            )
