"""What every `tdb` command shares, whichever entrypoint defines it: the store options, output,
the container's life, and how failures become exit statuses."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
import sys
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, TypeVar

import click
from msgspec import to_builtins

from domain.errors import DomainError, InvalidInput
from entrypoints.container import backend_name, build_container, sqlite_path
from entrypoints.logs import configure_logging, redact
from entrypoints.metrics import BACKEND_CALL_FAILURES
from entrypoints.runtime.outcomes import Exit, Outcome, outcome_of
from entrypoints.settings import Settings
from entrypoints.startup import stop_worker

F = TypeVar("F", bound=Callable[..., Any])


def out(text: str = "") -> None:
    print(text, flush=True)


# What a terminal acts on rather than shows: C0 and C1 controls (ESC begins ANSI sequences; CR,
# LF, VT, FF and NEL begin lines), DEL, Unicode's line and paragraph separators, bidirectional
# controls (they reorder what follows), and lone surrogates (no terminal encoding writes them).
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """`text` as one line a terminal shows as it is: every character it would act on instead
    (a line break, an ANSI escape, ...) written as its escape (`\\n`, `\\x1b`, `\\u2028`).

    Human output quotes names and texts from elsewhere (a backend's column names, a stored
    description): escaped, they cannot forge a line or drive the terminal. JSON output needs
    nothing more than its encoding.
    """
    return _UNPRINTABLE.sub(_escaped, text)


def out_json(value: Any) -> None:
    out(json.dumps(value, ensure_ascii=False))


def store_options(command: F) -> F:
    """`--database-url`, `--csv-root` (or their `TDB_*` variables) and `--json`."""
    command = click.option("--json", "json", is_flag=True, help="machine-readable output")(command)
    command = click.option(
        "--csv-root",
        envvar="TDB_CSV_ROOT",
        help="TDB_CSV_ROOT: the folder CSV paths are relative to",
    )(command)
    return click.option(
        "--database-url",
        envvar="TDB_DATABASE_URL",
        help="TDB_DATABASE_URL: sqlite:///FILE or postgresql://...",
    )(command)


class Refused(Exception):
    """A command's own refusal, not a domain error's: `message` on stderr, or with `--json` the
    outcome's problem document; the outcome's exit status."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def _refuse_a_new_store(settings: Settings) -> None:
    """Refuse to go on if the settings name an SQLite file that does not exist: opening it would
    create an empty store (and its key file) wherever the command happened to run."""
    if backend_name(settings) != "sqlite":
        return
    path = sqlite_path(settings)
    if str(path) == ":memory:" or path.exists():
        return
    message = (
        f"there is no store at {path}: run `tdb db upgrade` (or `tdb serve`) first to create one"
    )
    outcome = Outcome(
        "store-unavailable",
        503,
        Exit.STORE,
        message[0].upper() + message[1:] + ".",
        reason="store_missing",
    )
    raise Refused(outcome, message)


def with_container(
    *, upgrade: bool = True, creates_store: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The command, a coroutine function, is awaited on an event loop of its own with a container
    built from the settings (the store options, then the `TDB_*` variables) and its other options
    as attributes; the store is upgraded first unless `upgrade` is false, and the container's
    resources are let go and shut down when the command ends. An SQLite store that does not exist
    is refused (`Refused`, nothing created) unless `creates_store`."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(
            database_url: str | None,
            csv_root: str | None,
            log_format: str | None = None,
            access_log: bool | None = None,
            **options: Any,
        ) -> Any:
            settings = Settings.from_env(
                database_url=database_url,
                csv_root=csv_root,
                log_format=log_format,
                access_log=access_log,
            )
            if not creates_store:
                _refuse_a_new_store(settings)
            serves = not inspect.iscoroutinefunction(command)  # `serve`: it runs its own loops
            # A failed inspection or connection test is logged for a server's operator; a
            # command's user is told by the command itself (its error or its output line).
            leave_out = () if serves else BACKEND_CALL_FAILURES
            configure_logging(settings.log_format, settings.secrets(), leave_out)
            container = build_container(settings)
            if serves:
                try:
                    return command(container, SimpleNamespace(**options))
                finally:
                    container.shutdown_resources()

            async def session() -> Any:
                try:
                    if upgrade:
                        await container.upgrade_store()()
                    return await command(container, SimpleNamespace(**options))
                finally:
                    await stop_worker(container)

            return asyncio.run(session())

        return run

    return decorate


def _said(exc: Exception) -> str:
    """What went wrong, never an empty string: the class's own one-line account at worst; a
    secret it quotes (a library's message may) masked as in the logs."""
    return redact(str(exc)) or (type(exc).__doc__ or type(exc).__name__).strip().splitlines()[0]


def _report(exc: DomainError, outcome: Outcome) -> None:
    if isinstance(exc, InvalidInput):
        for error in exc.errors:
            print(f"error: {printable(f'{error.field}: {error.message}')}", file=sys.stderr)
    elif outcome.available_types is not None:
        # What the problem adds (the types there are) is what a person needs next, too.
        print(f"error: {printable(outcome.detail)}", file=sys.stderr)
    else:
        print(f"error: {printable(_said(exc))}", file=sys.stderr)


def _answer(outcome: Outcome) -> int:
    """`--json`'s failure: the API's problem document (no request id: no server is asked), as
    the one JSON value on stdout, as an answer would be; its exit status."""
    out_json(to_builtins(outcome.problem()))
    return int(outcome.exit_status)


def refused(exc: DomainError, as_json: bool) -> int:
    """Report a refused operation (its outcome in the runtime's table) and return its exit
    status: `error: ...` lines on stderr, or with `--json` the problem document on stdout."""
    outcome = outcome_of(exc)
    if as_json:
        return _answer(outcome)
    _report(exc, outcome)
    return int(outcome.exit_status)


def _misused(message: str, failure: int, as_json: bool) -> int:
    """A usage error or a bad setting: `error: MESSAGE` on stderr, or with `--json` an
    `invalid-input` problem, as the API answers a request it cannot read."""
    if as_json:
        return _answer(Outcome("invalid-input", 400, Exit(failure), message))
    print(f"error: {printable(message)}", file=sys.stderr)
    return failure


def _wants_json(argv: Sequence[str]) -> bool:
    # Every command takes --json; a failure before the command parsed it looks for it itself.
    return "--json" in (argv[: argv.index("--")] if "--" in argv else argv)


def run(command: click.Command, argv: Sequence[str] | None = None) -> int:
    """Run `tdb ARGV`: its exit status, 0 unless the command says otherwise; a refused operation's
    own status (`Exit`, from the runtime's outcome table); 2 for a usage error or a bad setting
    (1 for `sources inspect-all`, whose 2 means a breaking change)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(argv)
    # To a cron job, 2 from `inspect-all` means "a breaking change": its usage errors are 1.
    failure = int(Exit.INVALID if argv[:2] == ["sources", "inspect-all"] else Exit.USAGE)
    try:
        result = command.main(argv, prog_name="tdb", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        if as_json:
            return _misused(exc.format_message(), failure, as_json)
        print(exc.format_message(), file=sys.stderr)  # the group's help: it says what to add
        return failure
    except click.UsageError as exc:
        if exc.ctx is not None and not as_json:
            print(exc.ctx.get_usage(), file=sys.stderr)
        return _misused(exc.format_message(), failure, as_json)
    except click.ClickException as exc:
        return _misused(exc.format_message(), failure, as_json)
    except click.Abort:
        return failure
    except DomainError as exc:
        return refused(exc, as_json)
    except Refused as exc:
        if as_json:
            return _answer(exc.outcome)
        print(f"error: {printable(exc.message)}", file=sys.stderr)
        return int(exc.outcome.exit_status)
    except (ValueError, OSError) as exc:
        return _misused(_said(exc), failure, as_json)
    return result if isinstance(result, int) else 0
