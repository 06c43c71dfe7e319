"""Logging for every tdb process: structlog events on stderr, `console` or `json`, one format.

tdb's own events go through structlog (`events.info("request", ...)`); the standard library's
records (uvicorn, psycopg-pool, the adapters) are rendered by the same processors, so every line
of a process has one format. Every line written while a request runs carries its request id, on
whichever thread it is written: the id lives in a context variable, which anyio copies into the
threads it runs work on.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO, cast

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LOG_FORMATS = ("console", "json")
REQUEST_ID: ContextVar[str | None] = ContextVar("tdb_request_id", default=None)

# tdb's own events. Fields are chosen by the code that logs them: never a token, a secret,
# a query value or a body.
events = structlog.get_logger("tdb")

_REDACTIONS = (
    # scheme://user:password@host
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@]*@"), r"\1***@"),
    # password=..., "password": "...", PGPASSWORD=...
    (
        re.compile(
            r"""((?:password|passwd|secret)['"]?\s*[=:]\s*)('[^']*'|"[^"]*"|[^\s,;)}]+)""", re.I
        ),
        r"\1***",
    ),
    # tdbk_<key_id>_<secret>: the key id is public, the rest is not
    (re.compile(r"\b(tdbk_[0-9a-f]+)_[A-Za-z0-9_-]+"), r"\1_***"),
)


MASK = "***"
# A secret's words (a password "hunter2 SECRET" quoted in part) are masked from this length on:
# shorter ones would mask common words everywhere, and say little of the secret.
SECRET_PART_MIN = 4


class SecretMask:
    """Masks the given secrets (the store's password, ...) in any text, under every spelling a
    library may write them in: as given, escaped as `repr` or JSON would, and word by word."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in filter(None, secrets):
            spellings = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
            spellings.add(json.dumps(secret, ensure_ascii=False)[1:-1])
            forms |= spellings
            forms |= {part for part in secret.split() if len(part) >= SECRET_PART_MIN}
        # The longest first: a whole secret is masked at once rather than word by word.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        # The mask never spells the secret itself (a password made of asterisks): the two
        # masks share no character, so a secret is inside one of them at most.
        self._mask = "[secret]" if any(form in MASK for form in forms) else MASK

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(self._mask, text)


# The secrets of this process (configure_logging): masked in every line, whoever writes it.
_secrets = SecretMask()
# tdb's events this process does not write (configure_logging): a command that tells its user
# what failed leaves out the warnings a server logs for its operator.
_left_out: frozenset[str] = frozenset()


def redact(text: str) -> str:
    """`text` with this process's secrets, connection-string passwords, `password=` values and
    token secrets masked."""
    text = _secrets(text)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _add_request_id(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _redacted_exception(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # A traceback quotes exception messages, and a driver's message may quote a connection
    # string: format it here, redacted, instead of leaving it to the renderer.
    exc_info = event.pop("exc_info", None)
    if exc_info:
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        elif not isinstance(exc_info, tuple):
            exc_info = sys.exc_info()
        if exc_info[0] is not None:
            event["exception"] = redact("".join(traceback.format_exception(*exc_info)))
    return event


def _redacted_foreign_event(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # Other libraries' messages are not ours to vouch for. Some end with a newline (libpq's
    # do): the line ends here, with its fields still to come.
    text = event.get("event")
    if isinstance(text, str):
        event["event"] = redact(text).rstrip()
    return event


def _left_out_events(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # Read at each line: a logger caches the processors it was first used with, not this set.
    if event.get("event") in _left_out:
        raise structlog.DropEvent
    return event


def _masked_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # Whatever a field quotes (an error's text, a library's message): the process's secrets
    # never reach a line.
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = _secrets(value)
    return event


class _Timestamp:
    """UTC ISO 8601 with milliseconds; the seconds part is formatted once per second.

    structlog's TimeStamper builds a datetime for every line: several times the cost of this,
    on the path every request takes.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event["timestamp"] = self.now()
        return event

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"


def _json_line(event: MutableMapping[str, Any], **_: Any) -> str:
    return msgspec.json.encode(event, enc_hook=str).decode()


_BARE = re.compile(r'[^\s"=\\]+')


def _console_value(value: object) -> str:
    kind = type(value)
    if kind is str:
        text: str = value  # type: ignore[assignment]
        return text if _BARE.fullmatch(text) else _json_line(text)  # type: ignore[arg-type]
    if kind is int or kind is float:
        return str(value)
    if value is None:
        return "none"
    if kind is bool:
        return "true" if value else "false"
    return msgspec.json.encode(value, enc_hook=str).decode()


def _console_line(_: WrappedLogger, __: str, event: EventDict) -> str:
    """`<time> <level> <event> key=value ...` (logfmt values), then a traceback if any."""
    exception = event.pop("exception", None)
    parts = [f"{event.pop('timestamp', '-')} {event.pop('level', '-'):<7} {event.pop('event', '')}"]
    for key, value in event.items():
        parts.append(f"{key}={_console_value(value)}")
    line = " ".join(parts)
    return f"{line}\n{exception.rstrip()}" if exception else line


def _renderer(log_format: str) -> Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer(serializer=_json_line)
    return _console_line


class _Stderr:
    """structlog's output: whatever `sys.stderr` is at the time of each line, one write a line."""

    def msg(self, message: str) -> None:
        log_request.flush()  # request lines written before this one come first
        sys.stderr.write(message + "\n")

    def __getattr__(self, _: str) -> Any:
        return self.msg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's records, to whatever `sys.stderr` is at the time."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        log_request.flush()  # request lines written before this one come first
        super().emit(record)


_SHOWN_MAX = 1024


class _RequestLine:
    """The line every request writes, rendered as every other line but straight to stderr.

    It is on the path of every request: structlog's bound logger and processor chain would
    double what the line costs, for a line whose fields are always the same few. The console
    form is written in one piece, as `_console_line` would render it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self.configure("console")

    def configure(self, log_format: str, batched: bool = False) -> None:
        self._batched = batched
        self._stamp = _Timestamp()
        self._console = log_format == "console"
        # Both renderers make text (JSONRenderer with a serializer that returns str).
        self._render = cast(Callable[[Any, str, EventDict], str], _renderer(log_format))
        # The console form of the values that repeat from line to line (methods, routes, keys,
        # clients), made once each: at most _SHOWN_MAX of them, forgotten all at once.
        self._shown: dict[str | None, str] = {}

    def _show(self, value: str | None) -> str:
        if len(self._shown) >= _SHOWN_MAX:
            self._shown.clear()
        text = self._shown[value] = _console_value(value)
        return text

    def __call__(
        self,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        actor: str | None,
        client: str | None,
    ) -> None:
        request_id = REQUEST_ID.get()
        if self._console:
            # A console value is never empty: `or` falls back only when it is not known yet.
            shown = self._shown.get
            show = self._show
            self._write(
                f"{self._stamp.now()} info    request method={shown(method) or show(method)} "
                f"route={shown(route) or show(route)} status={status} duration_ms={duration_ms} "
                f"actor={shown(actor) or show(actor)} client={shown(client) or show(client)} "
                f"request_id={_console_value(request_id)}\n"
            )
            return
        event = {
            "timestamp": self._stamp.now(),
            "level": "info",
            "event": "request",
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "actor": actor,
            "client": client,
            "request_id": request_id,
        }
        self._write(f"{self._render(None, 'info', event)}\n")

    def _write(self, line: str) -> None:
        if not self._batched:
            sys.stderr.write(line)
            return
        # A server's lines of one turn of the event loop go out in one write, at the end of the
        # turn: under load a turn ends many requests, and a write (a system call) per line was
        # about a tenth of the CPU a GET by id costs. Every other line, and the process's exit,
        # write the pending ones first; off an event loop, a line goes at once.
        with self._lock:
            self._pending.append(line)
            if len(self._pending) > 1:
                return  # the first pending line's flush is scheduled
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:
            self.flush()

    def flush(self) -> None:
        """Write the lines not written yet (the other writers call it first, to keep order)."""
        with self._lock:
            if not self._pending:
                return
            text = "".join(self._pending)
            self._pending.clear()
            sys.stderr.write(text)


# `log_request(method=..., route=..., ...)`: one request's line.
log_request = _RequestLine()
atexit.register(log_request.flush)


def configure_logging(
    log_format: str = "console",
    secrets: Iterable[str] = (),
    leave_out: Iterable[str] = (),
    batch_request_lines: bool = False,
) -> None:
    """Send every log line of this process to stderr in `log_format`, `secrets` masked, but for
    tdb's events named in `leave_out`; with `batch_request_lines` (a server), the request lines
    of one turn of the event loop in one write at its end."""
    global _secrets, _left_out
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    _secrets = SecretMask(secrets)
    _left_out = frozenset(leave_out)
    stamp = _Timestamp()
    renderer = _renderer(log_format)
    log_request.flush()
    log_request.configure(log_format, batch_request_lines)
    structlog.configure(
        processors=[
            _left_out_events,
            structlog.processors.add_log_level,
            stamp,
            _add_request_id,
            _masked_secrets,
            _redacted_exception,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=lambda *_: _Stderr(),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                stamp,
                _add_request_id,
                _redacted_foreign_event,
                _masked_secrets,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _redacted_exception,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "tdb", False)]:
        root.removeHandler(old)
    handler.tdb = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
