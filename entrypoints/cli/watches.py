"""`tdb sources watch`, `tdb sources unwatch` and `tdb watches list`: the watches' use cases from
the command line, acting on the store directly as every management command does."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import click
from msgspec import to_builtins

from application.watches import ListWatchesQuery, PutWatchCommand, WatchQuery
from domain.errors import InvalidInput
from domain.sources import parse_source_id
from domain.watches import WatchKey, WatchStatus
from entrypoints.cli.main import _actor, _actor_options, _add, _header, _id, _json, _out
from entrypoints.container import Container
from entrypoints.watch_shapes import WatchOut

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]{1,9})([smhd]?)")


def interval_seconds(every: str) -> int:
    """Seconds of a duration written `90`, `90s`, `15m`, `2h` or `1d`; `InvalidInput` (on
    `every`) for anything else. Its bounds are the use case's, as over HTTP."""
    match = _DURATION.fullmatch(every.strip())
    if match is None:
        raise InvalidInput.single("every", "must be a duration such as 90s, 15m, 2h or 1d")
    number, unit = match.groups()
    return int(number) * _UNITS[unit or "s"]


async def sources_watch(container: Container, args: SimpleNamespace) -> None:
    command = PutWatchCommand(
        await _actor(container, args), parse_source_id(args.id), interval_seconds(args.every)
    )
    watch = to_builtins(WatchOut.of(await container.put_watch()(command)))
    if args.json:
        _json(watch)
    else:
        _out(
            f"Watching {watch['source_name']} every {watch['interval_seconds']} s;"
            f" next check at {watch['next_check_at']}"
        )


async def sources_unwatch(container: Container, args: SimpleNamespace) -> None:
    await container.delete_watch()(
        WatchQuery(await _actor(container, args), parse_source_id(args.id))
    )
    if args.json:
        _json({"unwatched": args.id})
    else:
        _out(f"Stopped watching source {args.id}")


async def watches_list(container: Container, args: SimpleNamespace) -> None:
    status = WatchStatus(args.status) if args.status else None
    list_watches = container.list_watches()
    rows: list[dict[str, Any]] = []
    after: WatchKey | None = None
    while True:
        query = ListWatchesQuery(await _actor(container, args), status, 1000, after)
        page = await list_watches(query)
        rows += [to_builtins(WatchOut.of(w)) for w in page.watches]
        if page.next_key is None:
            break
        after = page.next_key
    if args.json:
        _json(rows)
        return
    _header("NEXT CHECK", "STATUS", "EVERY", "LAST", "SOURCE")
    for row in rows:
        last = row["last_outcome"] or "-"
        if row["last_reason"]:
            last += f" ({row['last_reason']}, {row['consecutive_failures']} in a row)"
        _out(
            f"{row['next_check_at']}  {row['status']}  {row['interval_seconds']}s  {last}"
            f"  {row['source_name']} {row['source_id']}"
        )


def add_watch_commands(tdb: click.Group) -> None:
    """`watch` and `unwatch` in the `sources` group, and the `watches` group."""
    sources = tdb.commands["sources"]
    assert isinstance(sources, click.Group)
    _add(
        sources,
        "watch",
        sources_watch,
        "check a source's schema on a schedule (replaces its watch); --every 15m",
        *_actor_options,
        click.option("--every", required=True, help="90s, 15m, 2h, 1d (60 s to 1 day)"),
        _id,
    )
    _add(sources, "unwatch", sources_unwatch, "stop watching a source", *_actor_options, _id)
    watches = click.Group("watches", help="scheduled schema checks")
    _add(
        watches,
        "list",
        watches_list,
        "list watches, soonest next check first",
        *_actor_options,
        click.option("--status", type=click.Choice([s.value for s in WatchStatus])),
    )
    tdb.add_command(watches)
