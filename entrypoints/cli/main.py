"""`tdb`: serve the API, manage API keys and sources, upgrade the store."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from msgspec import to_builtins

from application.events import ListEventsQuery
from application.sources import (
    CheckSourceConnectionQuery,
    DeleteSourceCommand,
    GetSourceQuery,
    InspectSchemaQuery,
    ListSourcesQuery,
    RegisterSourceCommand,
    UpdateSourceCommand,
)
from domain.errors import (
    BackendUnavailable,
    DomainError,
    FieldError,
    InvalidInput,
    SecretUnreadable,
    SourceNotFound,
)
from domain.events import Action, EventFilter, EventKey
from domain.keys import ApiKey, Principal, Scope, public_id
from domain.sources import (
    IfMatch,
    Source,
    SourceFilter,
    SourceSchema,
    parse_if_match,
    parse_source_id,
)
from domain.sources import SourceSummary as Summary
from entrypoints import metrics
from entrypoints.container import Container, build_container
from entrypoints.logs import configure_logging, events
from entrypoints.operator import OPERATOR
from entrypoints.presenters import (
    ColumnChangeOut,
    ConnectionCheckOut,
    EventOut,
    SchemaOut,
    SourceListItem,
    SourceRecord,
    api_timestamp,
)
from entrypoints.settings import Settings

REGISTER_FIELDS = {"name", "source_type", "connection", "description", "tags"}


def _out(text: str = "") -> None:
    print(text, flush=True)


def _json(value: Any) -> None:
    _out(json.dumps(value, ensure_ascii=False))


def _actor(container: Container, args: argparse.Namespace) -> Principal:
    """The operator, or the holder of `--token`/`TDB_TOKEN` with that key's scopes."""
    token = getattr(args, "token", None) or os.environ.get("TDB_TOKEN")
    if token:
        return container.authenticate()(token)
    if getattr(args, "show_secrets", False):
        return OPERATOR
    return Principal(OPERATOR.identity, OPERATOR.scopes - {Scope.SECRETS})


# --- keys ---------------------------------------------------------------------------------


def _key_row(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "public_id": public_id(key.key_id),
        "name": key.name,
        "scopes": sorted(s.value for s in key.scopes),
        "created_at": api_timestamp(key.created_at),
        "revoked_at": api_timestamp(key.revoked_at) if key.revoked_at else None,
    }


def keys_create(container: Container, args: argparse.Namespace) -> None:
    issued = container.create_api_key()(args.name, args.scope or (), OPERATOR)
    if args.json:
        _json({**_key_row(issued.key), "token": issued.token})
        return
    scopes = ", ".join(sorted(s.value for s in issued.key.scopes))
    _out(f"Created API key {issued.key.key_id} ({issued.key.name}) with scopes: {scopes}")
    _out("The token is shown once; store it now:")
    _out(issued.token)


def keys_list(container: Container, args: argparse.Namespace) -> None:
    rows = [_key_row(k) for k in container.list_api_keys()()]
    if args.json:
        _json(rows)
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        _out(
            f"{row['key_id']}  {row['name']}  {','.join(row['scopes'])}"
            f"  {row['created_at']}  {state}"
        )


def keys_revoke(container: Container, args: argparse.Namespace) -> None:
    key = container.revoke_api_key()(args.key_id, OPERATOR)
    if args.json:
        _json(_key_row(key))
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
    ):
        _out(f"{field}: {record[field]}")
    _out(f"tags: {', '.join(record['tags'])}")
    _out("connection:")
    for name, value in record["connection"].items():
        _out(f"  {name}: {value}")


def sources_list(container: Container, args: argparse.Namespace) -> None:
    query = ListSourcesQuery(
        actor=_actor(container, args),
        filter=SourceFilter(
            tags=tuple(args.tag or ()), source_type=args.source_type, name_prefix=args.name_prefix
        ),
    )
    rows = [to_builtins(SourceListItem.of(s)) for s in container.list_sources()(query).sources]
    if args.json:
        _json(rows)
        return
    for row in rows:
        _out(
            f"{row['id']}  {row['name']}  {row['source_type']}  {row['registered_at']}"
            f"  {','.join(row['tags'])}"
        )


def sources_show(container: Container, args: argparse.Namespace) -> None:
    source = container.get_source()(
        GetSourceQuery(_actor(container, args), parse_source_id(args.id))
    )
    _print_record(source, args.json)


def _read_json(file: str) -> Any:
    """The JSON value in FILE (`-`: standard input)."""
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
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


def sources_register(container: Container, args: argparse.Namespace) -> None:
    body = _read_json(args.file)
    if not isinstance(body, dict):
        raise InvalidInput.single("file", "must hold a JSON object")
    errors = [FieldError(f, "is not a known field") for f in sorted(set(body) - REGISTER_FIELDS)]
    missing = sorted({"name", "source_type", "connection"} - set(body))
    errors += [FieldError(f, "is required") for f in missing]
    if errors:
        raise InvalidInput(errors)
    source = container.register_source()(
        RegisterSourceCommand(actor=_actor(container, args), verify=args.verify, **body)
    )
    _print_record(source, args.json)


def sources_update(container: Container, args: argparse.Namespace) -> None:
    command = UpdateSourceCommand(
        actor=_actor(container, args),
        source_id=parse_source_id(args.id),
        patch=_read_json(args.file),
        if_match=_if_match(args.if_match),
        verify=args.verify,
    )
    _print_record(container.update_source()(command), args.json)


def sources_test(container: Container, args: argparse.Namespace) -> int:
    query = CheckSourceConnectionQuery(_actor(container, args), parse_source_id(args.id))
    result = to_builtins(ConnectionCheckOut.of(container.check_source_connection()(query)))
    if args.json:
        _json(result)
    elif result["ok"]:
        _out(f"ok ({result['elapsed_ms']:.0f} ms)")
    else:
        _out(f"failed: {result['reason']}: {result['detail']} ({result['elapsed_ms']:.0f} ms)")
    # Like `test(1)`: a script can branch on whether the source answers.
    return 0 if result["ok"] else 1


def events_list(container: Container, args: argparse.Namespace) -> None:
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
        page = list_events(ListEventsQuery(_actor(container, args), event_filter, 1000, after))
        rows += [to_builtins(EventOut.of(e)) for e in page.events]
        if page.next_key is None:
            break
        after = page.next_key
    if args.json:
        _json(rows)
        return
    for row in rows:
        subject = row["source_name"] or (f"key {row['key_id']}" if row["key_id"] else "")
        changed = f"  {','.join(row['changed'])}" if row["changed"] else ""
        _out(f"{row['at']}  {row['actor']}  {row['action']}  {subject}{changed}")


def sources_schema(container: Container, args: argparse.Namespace) -> None:
    schema = container.inspect_schema()(
        InspectSchemaQuery(_actor(container, args), parse_source_id(args.id))
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


def _inspection_row(summary: Summary, outcome: SourceSchema | DomainError) -> dict[str, Any]:
    row: dict[str, Any] = {"id": str(summary.id), "name": summary.name}
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


def sources_inspect_all(container: Container, args: argparse.Namespace) -> int:
    actor = _actor(container, args)
    summaries = container.list_sources()(ListSourcesQuery(actor=actor)).sources
    inspect_schema = container.inspect_schema()

    def inspect(summary: Summary) -> dict[str, Any]:
        outcome: SourceSchema | DomainError
        try:
            outcome = inspect_schema(InspectSchemaQuery(actor, summary.id))
        except (BackendUnavailable, SourceNotFound, SecretUnreadable) as exc:
            outcome = exc
        return _inspection_row(summary, outcome)

    rows = []
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        # In listing order, each line as soon as it and those before it are done.
        for row in pool.map(inspect, summaries):
            rows.append(row)
            if not args.json:
                _out(f"{row['id']}  {row['name']}  {_inspection_line(row)}")
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


def sources_delete(container: Container, args: argparse.Namespace) -> None:
    container.delete_source()(
        DeleteSourceCommand(
            _actor(container, args), parse_source_id(args.id), _if_match(args.if_match)
        )
    )
    if args.json:
        _json({"deleted": args.id})
    else:
        _out(f"Deleted source {args.id}")


# --- db and serve -------------------------------------------------------------------------


def db_upgrade(container: Container, args: argparse.Namespace) -> None:
    applied = container.upgrade_store()()
    if args.json:
        _json({"applied": applied})
    elif applied:
        _out(f"Applied migrations: {', '.join(str(v) for v in applied)}")
    else:
        _out("The store is up to date.")


def serve(container: Container, args: argparse.Namespace) -> None:
    from entrypoints.http import serving  # imports uvicorn: only `serve` needs it

    settings: Settings = container.settings()
    applied = container.upgrade_store()()
    if applied:
        events.info("migrations_applied", versions=applied)
    container.cipher()  # the key file is made now, or a bad TDB_SECRET_KEY is refused now
    issued = container.bootstrap_admin_key()(OPERATOR)
    container.shutdown_resources()
    if issued is not None:
        _out(
            "No API key existed: created an admin key with every scope."
            " It is shown once; store it now:"
        )
        _out(issued.token)
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


def _version() -> str:
    try:
        return importlib.metadata.version("tdb")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --- parser -------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return value


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url", help="TDB_DATABASE_URL: sqlite:///FILE or postgresql://..."
    )
    common.add_argument("--csv-root", help="TDB_CSV_ROOT: the folder CSV paths are relative to")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    top = argparse.ArgumentParser(prog="tdb", description="The tdb data-source registry.")
    commands = top.add_subparsers(dest="command", required=True)

    s = commands.add_parser("serve", parents=[common], help="serve the HTTP API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument(
        "--log-format",
        choices=["console", "json"],
        help="TDB_LOG_FORMAT: console (default) or json, one event per line on stderr",
    )
    s.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        help="TDB_ACCESS_LOG: one log line per request (default on)",
    )
    s.add_argument(
        "--stack",
        choices=("fast", "pure"),
        default="fast",
        help="fast: uvloop + httptools with read deadlines and a connection cap (default);"
        " pure: asyncio + h11, unguarded, for comparison only",
    )
    s.set_defaults(run=serve)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    k = keys.add_parser("create", parents=[common], help="create a key; prints its token once")
    k.add_argument("--name", required=True)
    k.add_argument(
        "--scope",
        action="append",
        choices=[s.value for s in Scope],
        help="repeatable; none means every scope",
    )
    k.set_defaults(run=keys_create)
    keys.add_parser("list", parents=[common], help="list keys").set_defaults(run=keys_list)
    k = keys.add_parser("revoke", parents=[common], help="revoke a key")
    k.add_argument("key_id")
    k.set_defaults(run=keys_revoke)

    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument(
        "--token", help="act as this API key (TDB_TOKEN); default: the local operator"
    )
    actor.add_argument(
        "--show-secrets", action="store_true", help="print connection secrets in clear"
    )
    sources = commands.add_parser("sources", help="manage sources").add_subparsers(
        dest="action", required=True
    )
    c = sources.add_parser("list", parents=[common, actor], help="list sources")
    c.add_argument("--tag", action="append")
    c.add_argument("--source-type")
    c.add_argument("--name-prefix")
    c.set_defaults(run=sources_list)
    if_match = argparse.ArgumentParser(add_help=False)
    if_match.add_argument(
        "--if-match", metavar="VERSION", help="only if the source is at this version (or *)"
    )
    verify = argparse.ArgumentParser(add_help=False)
    verify.add_argument(
        "--verify", action="store_true", help="test the connection first; store nothing if it fails"
    )
    for name, run, help_text, extra in (
        ("show", sources_show, "show one source", []),
        ("schema", sources_schema, "inspect a source's live columns", []),
        ("test", sources_test, "test a source's connection; exit 1 if it fails", []),
        ("delete", sources_delete, "delete a source", [if_match]),
    ):
        c = sources.add_parser(name, parents=[common, actor, *extra], help=help_text)
        c.add_argument("id")
        c.set_defaults(run=run)
    c = sources.add_parser(
        "update",
        parents=[common, actor, if_match, verify],
        help="apply the JSON Merge Patch in PATCH.json ('-': stdin) to a source",
    )
    c.add_argument("id")
    c.add_argument("file", metavar="PATCH.json")
    c.set_defaults(run=sources_update)
    c = sources.add_parser(
        "inspect-all",
        parents=[common, actor],
        help="inspect every source once and keep its schema history; exit 2 on a breaking change",
    )
    c.add_argument(
        "--concurrency", type=_positive_int, default=4, help="inspections at once (default 4)"
    )
    c.set_defaults(run=sources_inspect_all)
    c = sources.add_parser(
        "register",
        parents=[common, actor, verify],
        help="register the source in FILE.json ('-': stdin)",
    )
    c.add_argument("file")
    c.set_defaults(run=sources_register)

    events = commands.add_parser("events", help="the audit trail").add_subparsers(
        dest="action", required=True
    )
    c = events.add_parser("list", parents=[common, actor], help="list events, oldest first")
    c.add_argument("--source-id")
    c.add_argument("--action", dest="event_action", choices=[a.value for a in Action])
    c.add_argument("--actor", help="tdbk_<key_id>, or tdb-cli")
    c.add_argument("--since", help="only events at or after this RFC 3339 time")
    c.set_defaults(run=events_list)

    db = commands.add_parser("db", help="the store").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", parents=[common], help="apply pending migrations").set_defaults(
        run=db_upgrade
    )
    return top


def _said(exc: Exception) -> str:
    """What went wrong, never an empty string: the class's own one-line account at worst."""
    return str(exc) or (type(exc).__doc__ or type(exc).__name__).strip().splitlines()[0]


def _report(exc: DomainError) -> None:
    if isinstance(exc, InvalidInput):
        for error in exc.errors:
            print(f"error: {error.field}: {error.message}", file=sys.stderr)
    else:
        print(f"error: {_said(exc)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # To a cron job, 2 from `inspect-all` means "a breaking change": its other failures are 1.
    failure = 1 if argv[:2] == ["sources", "inspect-all"] else 2
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 2:
            return failure
        raise
    try:
        settings = Settings.from_env(
            database_url=args.database_url,
            csv_root=args.csv_root,
            log_format=getattr(args, "log_format", None),
            access_log=getattr(args, "access_log", None),
        )
    except ValueError as exc:
        print(f"error: {_said(exc)}", file=sys.stderr)
        return failure
    configure_logging(settings.log_format)
    container = build_container(settings)
    run: Callable[[Container, argparse.Namespace], int | None] = args.run
    try:
        if run not in (serve, db_upgrade):
            container.upgrade_store()()
        return run(container, args) or 0
    except DomainError as exc:
        _report(exc)
        return 1
    except (ValueError, OSError) as exc:
        print(f"error: {_said(exc)}", file=sys.stderr)
        return failure
    finally:
        container.shutdown_resources()


if __name__ == "__main__":
    sys.exit(main())
