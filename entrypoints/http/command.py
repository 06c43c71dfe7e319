"""`tdb serve`: the HTTP entrypoint's command."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
from types import SimpleNamespace

import click

from application.keys import IssuedKey
from entrypoints import metrics, startup
from entrypoints.commands import out, store_options, with_container
from entrypoints.container import Container
from entrypoints.logs import events
from entrypoints.operator import OPERATOR


def _serve(container: Container, args: SimpleNamespace) -> None:
    from entrypoints.http import serving  # imports uvicorn: only `serve` needs it

    settings = container.settings()
    issued = asyncio.run(_prepare(container))
    if issued is not None:
        out(
            "No API key existed: created an admin key with every scope."
            " It is shown once; store it now:"
        )
        out(issued.token)
    # Workers are separate processes: they read the same settings from the environment.
    os.environ.update(settings.to_env())
    events.info(
        "startup",
        version=_version(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        store=container.store_kind(),
        log_format=settings.log_format,
        access_log=settings.access_log,
        metrics=settings.metrics,
    )
    # Several workers share their figures through files in a directory of this server's own.
    shared = metrics.make_multiprocess_dir() if settings.metrics and args.workers > 1 else None
    try:
        serving.serve(
            "entrypoints.http.asgi:app", args.host, args.port, args.workers, stack=args.stack
        )
    finally:
        if shared is not None:
            metrics.remove_multiprocess_dir(shared)


async def _prepare(container: Container) -> IssuedKey | None:
    """`startup.prepare`, on an event loop of its own, whose resources are let go after it."""
    try:
        return await startup.prepare(container, OPERATOR)
    finally:
        await startup.stop_worker(container)


def _version() -> str:
    try:
        return importlib.metadata.version("tdb")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@click.command("serve", help="serve the HTTP API")
@store_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True)
@click.option(
    "--log-format",
    help="TDB_LOG_FORMAT: console (default) or json, one event per line on stderr",
)
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="TDB_ACCESS_LOG: one log line per request (default on)",
)
@click.option(
    "--stack",
    type=click.Choice(["fast", "pure"]),
    default="fast",
    help="fast: uvloop + httptools with read deadlines and a connection cap (default);"
    " pure: asyncio + h11, unguarded, for comparison only",
)
@with_container(upgrade=False, creates_store=True)
def serve(container: Container, args: SimpleNamespace) -> None:
    _serve(container, args)
