"""`tdb`'s management commands: API keys, sources, the audit trail, the store."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
from msgspec import to_builtins

from application.events import ListEventsQuery
from application.history import InspectSchemaQuery
from application.keys import IssuedKey
from application.sources import (
    CheckSourceConnectionQuery,
    DeleteSourceCommand,
    GetSourceQuery,
    ListSourcesQuery,
)
from domain.errors import (
    BackendUnavailable,
    DomainError,
    InvalidInput,
    SecretUnreadable,
    SourceNotFound,
)
from domain.events import Action, EventFilter, EventKey
from domain.keys import ApiKey, Principal, Scope, key_id_of, public_id
from domain.sources import (
    IfMatch,
    Source,
    SourceFilter,
    SourceSchema,
    SourceStamp,
    parse_if_match,
    parse_source_id,
)
from domain.sources import SourceSummary as Summary
from entrypoints.catalog import connector_out, failure_out
from entrypoints.cli.durations import Duration
from entrypoints.cli.webhooks import webhooks_group
from entrypoints.commands import out, printable, run, store_options, with_container
from entrypoints.commands import out_json as _json
from entrypoints.container import Container
from entrypoints.logs import events
from entrypoints.operator import OPERATOR, OPERATOR_MASKED
from entrypoints.presenters import (
    ColumnChangeOut,
    ConnectionCheckOut,
    EventOut,
    SchemaOut,
    SourceListItem,
    SourceRecord,
    api_timestamp,
    change_out,
)
from entrypoints.requests import RegisterSourceRequest, update_command
from entrypoints.runtime.outcomes import Exit


def _out(line: str = "") -> None:
    """One line of human output, whatever the names and texts in it hold (see `printable`)."""
    out(printable(line))


def _header(*columns: str) -> None:
    """A table's header row, in human output only: the columns of the lines that follow."""
    out("  ".join(columns))


SECRETS_MASKED = "notice: secrets are masked: this API key lacks the scope sources:secrets"


async def _actor(container: Container, args: SimpleNamespace) -> Principal:
    """The operator, or the holder of `--token`/`TDB_TOKEN` with that key's scopes."""
    token = getattr(args, "token", None) or os.environ.get("TDB_TOKEN")
    if token:
        principal = await container.authenticate()(token)
        # Asked for secrets, shown masks: a person is told why (`--json`'s stderr holds log
        # lines only; its masked values say it).
        asked = getattr(args, "show_secrets", False) and not args.json
        if asked and not principal.can(Scope.SECRETS):
            print(SECRETS_MASKED, file=sys.stderr)
        return principal
    if getattr(args, "show_secrets", False):
        return OPERATOR
    return OPERATOR_MASKED


# --- keys ---------------------------------------------------------------------------------


async def _key_actor(container: Container, args: SimpleNamespace) -> Principal:
    """The holder of `--token`/`TDB_TOKEN`, or the local operator with every scope (a key it
    makes may hold `sources:secrets`)."""
    token = getattr(args, "token", None) or os.environ.get("TDB_TOKEN")
    return await container.authenticate()(token) if token else OPERATOR


def _key_row(key: ApiKey) -> dict[str, Any]:
    def shown(value: datetime | None) -> str | None:
        return None if value is None else api_timestamp(value)

    return {
        "key_id": key.key_id,
        "public_id": public_id(key.key_id),
        "name": key.name,
        "scopes": sorted(s.value for s in key.scopes),
        "created_at": api_timestamp(key.created_at),
        "created_by": key.created_by or "tdb-cli",
        "expires_at": shown(key.expires_at),
        "last_used_at": shown(key.last_used_at),
        "revoked_at": shown(key.revoked_at),
        "rotated_from": None if key.rotated_from is None else public_id(key.rotated_from),
    }


def _issued(issued: IssuedKey, args: SimpleNamespace, verb: str) -> None:
    if args.json:
        _json({**_key_row(issued.key), "token": issued.token})
        return
    key = issued.key
    scopes = ", ".join(sorted(s.value for s in key.scopes))
    until = f", expires {api_timestamp(key.expires_at)}" if key.expires_at else ""
    _out(f"{verb} API key {key.key_id} ({key.name}) with scopes: {scopes}{until}")
    _out("The token is shown once; store it now:")
    _out(issued.token)


async def keys_create(container: Container, args: SimpleNamespace) -> None:
    # Two keys that are not revoked never share a name: the use case and the store say so.
    days = None if args.expires_in is None else args.expires_in.days
    issued = await container.create_api_key()(
        args.name, args.scope or (), await _key_actor(container, args), days
    )
    _issued(issued, args, "Created")


async def keys_rotate(container: Container, args: SimpleNamespace) -> None:
    actor = await _key_actor(container, args)
    issued = await container.rotate_api_key()(args.key_id, actor, args.overlap)
    _issued(issued, args, "Rotated to")
    if not args.json:
        print(f"notice: key {key_id_of(args.key_id)} works until the overlap ends", file=sys.stderr)


async def keys_list(container: Container, args: SimpleNamespace) -> None:
    keys = await container.list_api_keys()(await _key_actor(container, args))
    if args.json:
        _json([_key_row(k) for k in keys])
        return
    _header("KEY_ID", "NAME", "SCOPES", "CREATED_AT", "EXPIRES_AT", "LAST_USED_AT", "STATE")
    now = datetime.now(UTC)
    for key in keys:
        row = _key_row(key)
        state = "active"
        if row["revoked_at"]:
            state = f"revoked {row['revoked_at']}"
        elif not key.usable(now):
            state = "expired"
        _out(
            f"{row['key_id']}  {row['name']}  {','.join(row['scopes'])}  {row['created_at']}"
            f"  {row['expires_at'] or '-'}  {row['last_used_at'] or '-'}  {state}"
        )


async def keys_revoke(container: Container, args: SimpleNamespace) -> None:
    actor = await _key_actor(container, args)
    before = {k.key_id: k.revoked_at for k in await container.list_api_keys()(actor)}
    # Revoking a revoked key changes nothing and records nothing: it keeps its first revocation.
    key = await container.revoke_api_key()(args.key_id, actor)
    if args.json:
        _json(_key_row(key))
    elif before.get(key.key_id) is not None and key.revoked_at is not None:
        _out(
            f"API key {key.key_id} ({key.name}) was already revoked at"
            f" {api_timestamp(key.revoked_at)}"
        )
    else:
        _out(f"Revoked API key {key.key_id} ({key.name})")


# --- sources ------------------------------------------------------------------------------


def _print_record(source: Source, as_json: bool) -> None:
    record = to_builtins(SourceRecord.of(source))
    if as_json:
        _json(record)
        return
    for field in (
        "id",
        "name",
        "source_type",
        "description",
        "registered_by",
        "registered_at",
        "status",
        "version",
        "updated_at",
        "updated_by",
    ):
        _out(f"{field}: {record[field]}")
    _out(f"tags: {', '.join(record['tags'])}")
    _out("connection:")
    for name, value in record["connection"].items():
        _out(f"  {name}: {value}")


async def sources_list(container: Container, args: SimpleNamespace) -> None:
    query = ListSourcesQuery(
        actor=await _actor(container, args),
        filter=SourceFilter(
            tags=tuple(args.tag or ()), source_type=args.source_type, name_prefix=args.name_prefix
        ),
    )
    page = await container.list_sources()(query)
    rows = [to_builtins(SourceListItem.of(s)) for s in page.sources]
    if args.json:
        _json(rows)
        return
    _header("ID", "NAME", "SOURCE_TYPE", "REGISTERED_AT", "TAGS")
    for row in rows:
        _out(
            f"{row['id']}  {row['name']}  {row['source_type']}  {row['registered_at']}"
            f"  {','.join(row['tags'])}"
        )


async def sources_show(container: Container, args: SimpleNamespace) -> None:
    source = await container.get_source()(
        GetSourceQuery(await _actor(container, args), parse_source_id(args.id))
    )
    _print_record(source, args.json)


def _read_json(file: str) -> Any:
    """The JSON value in FILE (`-`: standard input)."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput.single("file", "is not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput.single(
            "file", f"is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None


def _if_match(raw: str | None) -> IfMatch | None:
    # A bare version is what a shell user types; the header's quotes are optional here.
    if raw is None:
        return None
    return parse_if_match(raw if raw.strip() == "*" or '"' in raw else f'"{raw.strip()}"')


async def sources_register(container: Container, args: SimpleNamespace) -> None:
    # Decoded as the API decodes `POST /v1/sources`, the file standing for the body.
    body = RegisterSourceRequest.decode(_read_json(args.file), root="file")
    command = body.command(await _actor(container, args), args.verify)
    source = await container.register_source()(command)
    _print_record(source, args.json)


async def sources_update(container: Container, args: SimpleNamespace) -> None:
    source_id = parse_source_id(args.id)
    condition = _if_match(args.if_match)
    # Decoded as the API decodes a PATCH's merge patch, the file standing for the body.
    command = update_command(
        await _actor(container, args),
        source_id,
        _read_json(args.file),
        condition,
        args.verify,
        root="file",
    )
    answer = await container.update_source()(command)
    if isinstance(answer, SourceStamp):
        # A key that may not read sources is told only the version, as over HTTP.
        stamp = to_builtins(change_out(answer))
        if args.json:
            _json(stamp)
        else:
            for field in ("id", "version", "updated_at"):
                _out(f"{field}: {stamp[field]}")
        return
    _print_record(answer, args.json)


async def sources_test(container: Container, args: SimpleNamespace) -> int:
    query = CheckSourceConnectionQuery(await _actor(container, args), parse_source_id(args.id))
    result = to_builtins(ConnectionCheckOut.of(await container.check_source_connection()(query)))
    if args.json:
        _json(result)
    elif result["ok"]:
        _out(f"ok ({result['elapsed_ms']:.0f} ms)")
    else:
        _out(f"failed: {result['reason']}: {result['detail']} ({result['elapsed_ms']:.0f} ms)")
    # A script can branch on whether the source answers: the status a backend's failure has.
    return 0 if result["ok"] else Exit.BACKEND


async def events_list(container: Container, args: SimpleNamespace) -> None:
    since = None
    if args.since is not None:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise InvalidInput.single("since", "must be an RFC 3339 timestamp") from None
        if since.tzinfo is None:
            raise InvalidInput.single("since", "must carry an offset, such as Z")
    event_filter = EventFilter(
        source_id=parse_source_id(args.source_id) if args.source_id else None,
        action=Action(args.event_action) if args.event_action else None,
        actor=args.actor,
        since=since,
    )
    list_events = container.list_events()
    rows: list[dict[str, Any]] = []
    after: EventKey | None = None
    while True:
        query = ListEventsQuery(await _actor(container, args), event_filter, 1000, after)
        page = await list_events(query)
        rows += [to_builtins(EventOut.of(e)) for e in page.events]
        if page.next_key is None:
            break
        after = page.next_key
    if args.json:
        _json(rows)
        return
    _header("AT", "ACTOR", "ACTION", "SUBJECT", "CHANGED")
    for row in rows:
        subject = row["source_name"] or (f"key {row['key_id']}" if row["key_id"] else "")
        changed = f"  {','.join(row['changed'])}" if row["changed"] else ""
        # A schema change says whether it breaks readers: what a person scans the trail for.
        breaking = "  breaking" if row["breaking"] else ""
        _out(f"{row['at']}  {row['actor']}  {row['action']}  {subject}{changed}{breaking}")


async def sources_schema(container: Container, args: SimpleNamespace) -> None:
    schema = await container.inspect_schema()(
        InspectSchemaQuery(await _actor(container, args), parse_source_id(args.id))
    )
    out = to_builtins(SchemaOut.of(schema))
    if args.json:
        _json(out)
        return
    for column in out["columns"]:
        null = (
            ""
            if column.get("nullable") is None
            else ("  null" if column["nullable"] else "  not null")
        )
        _out(f"{column['name']}  {column['type']}{null}")


BREAKING_EXIT = 2
"""`inspect-all`'s exit status when it stored a breaking change (what cron jobs watch for)."""


_FAILURE_REASONS = {SourceNotFound: "source_deleted", SecretUnreadable: "secret_unreadable"}
# An inspection that failed for a reason tdb did not foresee (a connector's bug, a driver's
# surprise): the source fails, its error goes to the log, and the other sources are inspected.
_UNEXPECTED = "internal_error"
_UNEXPECTED_DETAIL = "the inspection failed unexpectedly; the error is in the log (stderr)"


def _inspection_row(summary: Summary, outcome: SourceSchema | DomainError | None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": str(summary.id), "name": summary.name}
    if outcome is None:
        return {**row, "status": "failed", "reason": _UNEXPECTED, "detail": _UNEXPECTED_DETAIL}
    if isinstance(outcome, BackendUnavailable):
        return {**row, "status": "failed", "reason": outcome.reason, "detail": outcome.detail}
    if isinstance(outcome, DomainError):
        reason = _FAILURE_REASONS[type(outcome)]
        return {**row, "status": "failed", "reason": reason, "detail": str(outcome)}
    recorded = outcome.recorded
    status = "unchanged" if recorded is None else "breaking" if recorded.breaking else "changed"
    return {
        **row,
        "status": status,
        "fingerprint": outcome.fingerprint,
        "first_snapshot": recorded is not None and recorded.snapshot.sequence == 1,
        "changes": [to_builtins(ColumnChangeOut.of(c)) for c in recorded.changes]
        if recorded is not None
        else [],
    }


async def sources_inspect_all(container: Container, args: SimpleNamespace) -> int:
    actor = await _actor(container, args)
    summaries = (await container.list_sources()(ListSourcesQuery(actor=actor))).sources
    inspect_schema = container.inspect_schema()
    turns = asyncio.Semaphore(args.concurrency)

    async def inspect(summary: Summary) -> dict[str, Any]:
        outcome: SourceSchema | DomainError | None
        try:
            async with turns:
                outcome = await inspect_schema(InspectSchemaQuery(actor, summary.id))
        except (BackendUnavailable, SourceNotFound, SecretUnreadable) as exc:
            outcome = exc
        except DomainError:
            raise  # the store or the key: no source can be inspected (exit 1)
        except Exception as exc:
            events.error(
                "inspection_failed_unexpectedly",
                source_id=str(summary.id),
                error=type(exc).__name__,
                exc_info=exc,
            )
            outcome = None
        return _inspection_row(summary, outcome)

    rows = []
    inspections = [asyncio.ensure_future(inspect(summary)) for summary in summaries]
    try:
        # In listing order, each line as soon as it and those before it are done.
        for inspection in inspections:
            row = await inspection
            rows.append(row)
            if not args.json:
                _out(f"{row['id']}  {row['name']}  {_inspection_line(row)}")
    finally:
        for inspection in inspections:
            inspection.cancel()
    if args.json:
        _json(rows)
    return BREAKING_EXIT if any(row["status"] == "breaking" for row in rows) else 0


def _inspection_line(row: dict[str, Any]) -> str:
    if row["status"] == "failed":
        return f"failed: {row['reason']}"
    if row["status"] == "unchanged":
        return "unchanged"
    if row["first_snapshot"]:
        return f"{row['status']}: first snapshot"
    changes = [
        f"{c['change']} {c['column']}"
        + (
            f" ({c['before']['type']} -> {c['after']['type']})"
            if c["change"] == "type_changed"
            else ""
        )
        for c in row["changes"]
    ]
    return f"{row['status']}: {', '.join(changes)}"


async def sources_delete(container: Container, args: SimpleNamespace) -> None:
    await container.delete_source()(
        DeleteSourceCommand(
            await _actor(container, args), parse_source_id(args.id), _if_match(args.if_match)
        )
    )
    if args.json:
        _json({"deleted": args.id})
    else:
        _out(f"Deleted source {args.id}")


# --- db and serve -------------------------------------------------------------------------


async def db_upgrade(container: Container, args: SimpleNamespace) -> None:
    applied = await container.upgrade_store()()
    if args.json:
        _json({"applied": applied})
    elif applied:
        _out(f"Applied migrations: {', '.join(str(v) for v in applied)}")
    else:
        _out("The store is up to date.")


async def connectors_list(container: Container, args: SimpleNamespace) -> None:
    catalog = await container.list_connectors()(OPERATOR)
    if args.json:
        _json(
            {
                "connectors": [connector_out(c) for c in catalog.connectors],
                "failures": [failure_out(f) for f in catalog.failures],
            }
        )
        return
    _header("SOURCE_TYPE", "ORIGIN", "PACKAGE", "TITLE")
    for connector in catalog.connectors:
        package = connector.package or "-"
        _out(f"{connector.source_type}  {connector.origin}  {package}  {connector.title}")
    for failure in catalog.failures:
        _out(
            f"{failure.source_type}  not loaded  {failure.package or '-'}  {failure.error}"
            + (f" ({failure.entry_point})" if failure.entry_point else "")
        )


# --- the command line ---------------------------------------------------------------------

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _add(
    group: click.Group,
    name: str,
    handler: Callable[[Container, SimpleNamespace], Awaitable[int | None]],
    help_text: str,
    *options: Decorator,
    upgrade: bool = True,
    creates_store: bool = False,
) -> None:
    command: Callable[..., Any] = with_container(upgrade=upgrade, creates_store=creates_store)(
        handler
    )
    for option in reversed(options):
        command = option(command)
    group.command(name, help=help_text)(store_options(command))


_actor_options: tuple[Decorator, ...] = (
    click.option(
        "--token",
        envvar="TDB_TOKEN",
        help="act as this API key (TDB_TOKEN); default: the local operator",
    ),
    click.option("--show-secrets", is_flag=True, help="print connection secrets in clear"),
)
_token_option = _actor_options[0]
_if_match_option = click.option(
    "--if-match", metavar="VERSION", help="only if the source is at this version (or *)"
)
_verify_option = click.option(
    "--verify", is_flag=True, help="test the connection first; store nothing if it fails"
)
_id = click.argument("id")


def commands() -> click.Group:
    """The management commands, as a group of their own."""
    tdb = click.Group("tdb", help="The tdb data-source registry.")
    for group in (_keys(), _sources(), _events(), webhooks_group(), _db(), _connectors()):
        tdb.add_command(group)
    # Imported here: the watches' commands are built with this module's helpers.
    from entrypoints.cli.watches import add_watch_commands

    add_watch_commands(tdb)
    return tdb


def _keys() -> click.Group:
    keys = click.Group("keys", help="manage API keys")
    _add(
        keys,
        "create",
        keys_create,
        "create a key; prints its token once",
        click.option("--name", required=True),
        click.option(
            "--scope",
            multiple=True,
            type=click.Choice([s.value for s in Scope]),
            help="repeatable; none means every scope",
        ),
        click.option(
            "--expires-in",
            type=Duration(whole_days=True),
            help="the key's lifetime in days, such as 90d (default: never expires)",
        ),
        _token_option,
    )
    _add(keys, "list", keys_list, "list keys", _token_option)
    _add(keys, "revoke", keys_revoke, "revoke a key", click.argument("key_id"), _token_option)
    _add(
        keys,
        "rotate",
        keys_rotate,
        "replace a key by a new one (same name, scopes, lifetime); prints its token once",
        click.argument("key_id"),
        click.option(
            "--overlap",
            type=Duration(),
            default="24h",
            show_default=True,
            help="how long the old key keeps working (at most 7d)",
        ),
        _token_option,
    )
    return keys


def _sources() -> click.Group:
    sources = click.Group("sources", help="manage sources")
    _add(
        sources,
        "list",
        sources_list,
        "list sources",
        *_actor_options,
        click.option("--tag", multiple=True),
        click.option("--source-type"),
        click.option("--name-prefix"),
    )
    _add(sources, "show", sources_show, "show one source", *_actor_options, _id)
    _add(sources, "schema", sources_schema, "inspect a source's live columns", *_actor_options, _id)
    _add(
        sources,
        "test",
        sources_test,
        "test a source's connection; exit 6 if it fails",
        *_actor_options,
        _id,
    )
    _add_source_writes(sources)
    return sources


def _add_source_writes(sources: click.Group) -> None:
    _add(
        sources,
        "delete",
        sources_delete,
        "delete a source",
        *_actor_options,
        _if_match_option,
        _id,
    )
    _add(
        sources,
        "update",
        sources_update,
        "apply the JSON Merge Patch in PATCH.json ('-': stdin) to a source",
        *_actor_options,
        _if_match_option,
        _verify_option,
        _id,
        click.argument("file", metavar="PATCH.json"),
    )
    _add(
        sources,
        "inspect-all",
        sources_inspect_all,
        "inspect every source once and keep its schema history; exit 2 on a breaking change",
        *_actor_options,
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=4,
            help="inspections at once (default 4)",
        ),
    )
    _add(
        sources,
        "register",
        sources_register,
        "register the source in FILE.json ('-': stdin)",
        *_actor_options,
        _verify_option,
        click.argument("file"),
    )


def _events() -> click.Group:
    events = click.Group("events", help="the audit trail")
    _add(
        events,
        "list",
        events_list,
        "list events, oldest first",
        *_actor_options,
        click.option("--source-id"),
        click.option("--action", "event_action", type=click.Choice([a.value for a in Action])),
        click.option("--actor", help="tdbk_<key_id>, or tdb-cli"),
        click.option("--since", help="only events at or after this RFC 3339 time"),
    )
    return events


def _db() -> click.Group:
    db = click.Group("db", help="the store")
    _add(
        db,
        "upgrade",
        db_upgrade,
        "create the store, or apply its pending migrations",
        upgrade=False,
        creates_store=True,
    )
    return db


def _connectors() -> click.Group:
    connectors = click.Group("connectors", help="the source types this build can register")
    _add(
        connectors,
        "list",
        connectors_list,
        "list the connectors, built-in and plug-in, and the plug-ins that failed to load",
        upgrade=False,
        creates_store=True,
    )
    return connectors


def main(argv: Sequence[str] | None = None) -> int:
    """`tdb` with the management commands only (the full `tdb` is `entrypoints.tdb`)."""
    return run(commands(), argv)


if __name__ == "__main__":
    sys.exit(main())
