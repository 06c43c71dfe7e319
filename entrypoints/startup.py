"""What a tdb process does before it serves, for every entrypoint: migrate the store, load the
secret key, create the first admin key."""

from __future__ import annotations

from application.keys import IssuedKey
from domain.errors import StoreUnavailable
from domain.keys import Principal
from entrypoints.container import Container
from entrypoints.logs import events
from entrypoints.runtime.webhook_sender import WebhookSender

_SENDERS: dict[int, WebhookSender] = {}
"""The webhook sender of each container serving on a running loop, by the container's id."""


async def prepare(container: Container, operator: Principal) -> IssuedKey | None:
    """Before any worker starts: migrate the store, load (or make) the secret key, and if the store
    has no API key, create an admin key on behalf of `operator` and return it (shown once)."""
    applied = await container.upgrade_store()()
    if applied:
        events.info("migrations_applied", versions=applied)
    container.cipher()  # the key file is made now, or a bad TDB_SECRET_KEY is refused now
    return await container.bootstrap_admin_key()(operator)


async def start_worker(container: Container) -> None:
    """As a worker starts: load the secret key, so that a bad one fails the start rather than the
    first request, and migrate the store if it answers."""
    container.cipher()
    try:
        applied = await container.upgrade_store()()
    except StoreUnavailable as exc:
        # A worker (re)started while the store is down must still serve: 503 until it is back.
        # `tdb serve` migrated the store before starting any worker.
        events.warning(
            "store_unavailable_at_start",
            reason=type(exc.__cause__ or exc).__name__,
            detail="requests get 503 until the store answers",
        )
    else:
        if applied:
            events.info("migrations_applied", versions=applied)
    start_webhook_sender(container)


def start_webhook_sender(container: Container) -> None:
    """Start the worker's webhook sender on the running loop, unless `TDB_WEBHOOKS=off`."""
    settings = container.settings()
    if not settings.webhooks or id(container) in _SENDERS:
        return
    sender = WebhookSender(
        container.claim_deliveries(),
        container.attempt_delivery(),
        concurrency=settings.webhook_concurrency,
        poll=settings.webhook_poll,
    )
    _SENDERS[id(container)] = sender
    sender.start()


async def stop_worker(container: Container) -> None:
    """As an event loop that used the container ends: the webhook sender stops, the writes begun
    on the loop end, what the store holds for it is let go, then the container's resources are
    shut down (only those in use were initialised)."""
    sender = _SENDERS.pop(id(container), None)
    try:
        if sender is not None:
            await sender.stop()
            await container.webhook_transport().close()
        await container.store().release()
    finally:
        container.shutdown_resources()
