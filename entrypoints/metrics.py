"""The Prometheus metrics of a tdb process; with several workers, one scrape covers them all.

`tdb serve` makes a directory for prometheus-client's multiprocess mode and names it in
`PROMETHEUS_MULTIPROC_DIR` before any worker starts (the variable must be set before
`prometheus_client` is imported); each worker then writes its figures there and a scrape of any
worker adds them up. Without the variable (one process, tests) the figures live in memory.
Labels hold route templates, methods, statuses, source types, reasons and causes: never an id,
a name or a secret.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from bisect import bisect_left
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from entrypoints.logs import events

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# The media type without its charset: Litestar adds `; charset=utf-8` to every text/ type, and a
# charset named twice is not one a client should have to guess from.
MEDIA_TYPE = "; ".join(
    part for part in CONTENT_TYPE.split("; ") if not part.lower().startswith("charset=")
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter(
    "tdb_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "tdb_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer.",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)
INSPECTIONS = Counter(
    "tdb_schema_inspections",
    "Live schema inspections, by source type and outcome (`ok` or the failure reason).",
    ["source_type", "reason"],
)
INSPECTION_SECONDS = Histogram(
    "tdb_schema_inspection_duration_seconds",
    "Time a schema inspection took, by source type and outcome.",
    ["source_type", "reason"],
    buckets=_LATENCY_BUCKETS,
)
CONNECTION_TESTS = Counter(
    "tdb_connection_tests",
    "Connection tests (POST .../test), by source type and outcome (`ok` or the failure reason).",
    ["source_type", "reason"],
)
CONNECTION_TEST_SECONDS = Histogram(
    "tdb_connection_test_duration_seconds",
    "Time a connection test took, by source type and outcome.",
    ["source_type", "reason"],
    buckets=_LATENCY_BUCKETS,
)


class RequestSeries:
    """The figures of one route, method and status: the request counter's value, and the latency
    histogram's sum and buckets.

    `add` does what `Counter.inc()` and `Histogram.observe()` do to them (in memory or in the
    multiprocess files alike), without their checks of labels, amounts and exemplars on every
    call: the labels are given once here, and an answer's duration is the only amount.
    """

    __slots__ = ("_bounds", "_buckets", "_count", "_sum")

    def __init__(self, route: str, method: str, status: str) -> None:
        histogram = REQUEST_SECONDS.labels(route, method, status)
        # prometheus-client's value cells (pinned in constraints.txt; tests read the figures
        # through the registry, as a scrape does).
        self._count = REQUESTS.labels(route, method, status)._value
        self._sum = histogram._sum
        self._buckets = histogram._buckets
        self._bounds = histogram._upper_bounds

    def add(self, seconds: float) -> None:
        self._count.inc(1)
        self._sum.inc(seconds)
        # The first bucket whose upper bound is at least `seconds` (the last one is +Inf).
        self._buckets[bisect_left(self._bounds, seconds)].inc(1)


_BACKEND_CALLS = {
    "inspection": (INSPECTIONS, INSPECTION_SECONDS),
    "connection_test": (CONNECTION_TESTS, CONNECTION_TEST_SECONDS),
}
AUTH_FAILURES = Counter(
    "tdb_auth_failures",
    "Requests refused with 401, by cause: missing, malformed, unknown, revoked, expired, or"
    " the check an OIDC token failed (jwt_*, jwks_unavailable).",
    ["cause"],
)
KEY_USE_WRITES = Counter(
    "tdb_key_use_writes",
    "Keys whose last use was written to the store (at most one per key per minute per process).",
)
STORE_POOL_SIZE = Gauge(
    "tdb_store_pool_connections",
    "Connections to the registry's store held open (idle or in use), summed over workers.",
    multiprocess_mode="livesum",
)
STORE_POOL_IN_USE = Gauge(
    "tdb_store_pool_connections_in_use",
    "Connections to the registry's store in use right now, summed over workers.",
    multiprocess_mode="livesum",
)
SOURCES = Gauge(
    "tdb_sources_registered",
    "Sources in the registry, as last counted (at a scrape).",
    multiprocess_mode="livemostrecent",
)
WEBHOOK_ATTEMPTS = Counter(
    "tdb_webhook_deliveries",
    "Webhook delivery attempts, by outcome: succeeded, or the attempt's error.",
    ["outcome"],
)
WEBHOOK_PENDING = Gauge(
    "tdb_webhook_pending",
    "Webhook deliveries pending, across every endpoint, as last counted (at a scrape).",
    multiprocess_mode="livemostrecent",
)
WEBHOOK_SECONDS = Histogram(
    "tdb_webhook_delivery_seconds",
    "Time a webhook delivery attempt took, answer included.",
    buckets=_LATENCY_BUCKETS,
)
CONNECTOR_LOAD_FAILURES = Gauge(
    "tdb_connector_load_failures",
    "Connector plug-ins not loaded at start (a failed import or construction, a taken type).",
    multiprocess_mode="livemax",
)


def record_connector_load_failures(count: int) -> None:
    """Show how many connector plug-ins were not loaded by this process."""
    CONNECTOR_LOAD_FAILURES.set(count)


WATCH_CHECKS = Counter(
    "tdb_watch_checks",
    "Scheduled schema checks, by outcome: unchanged, changed, breaking or failed.",
    ["outcome"],
)
WATCH_LATENESS_SECONDS = Histogram(
    "tdb_watch_lateness_seconds",
    "How long after its due time a scheduled check started.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
WATCHES_OVERDUE = Gauge(
    "tdb_watches_overdue",
    "Checks due more than a minute ago and not started, as last counted (at a scrape).",
    multiprocess_mode="livemostrecent",
)


BACKEND_CALL_FAILURES = tuple(f"{operation}_failed" for operation in _BACKEND_CALLS)
"""The events `record_backend_call` logs for a failed call (a server's operator reads them)."""


def record_backend_call(
    operation: str, source_type: str, reason: str | None, seconds: float
) -> None:
    """Count one inspection or connection test and its duration (`reason` None: it answered).

    Called on the thread the call ran on: a failure's log line carries the request's id.
    """
    outcome = reason or "ok"
    counter, histogram = _BACKEND_CALLS[operation]
    counter.labels(source_type, outcome).inc()
    histogram.labels(source_type, outcome).observe(seconds)
    if reason is not None:
        events.warning(
            f"{operation}_failed",
            source_type=source_type,
            reason=reason,
            duration_ms=round(seconds * 1000, 3),
        )


def exposition() -> bytes:
    """Every metric of every worker, in the Prometheus text format."""
    return generate_latest(_registry())


def _registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


_DIR_PREFIX = "tdb-metrics-"


def make_multiprocess_dir() -> Path:
    """A fresh directory for the workers' figures, named in the environment workers inherit.

    Its name holds this process's id. A server that was killed (SIGKILL, a power cut) could not
    remove its directory: the next one removes those of servers that are gone, once no process
    named in its files (prometheus-client's `<kind>_<pid>.db`: the workers) is alive either.
    """
    _remove_orphans(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-"))
    os.environ[MULTIPROCESS_ENV] = str(path)
    return path


def _remove_orphans(parent: Path) -> None:
    for path in parent.glob(f"{_DIR_PREFIX}*-*"):
        pid = path.name.removeprefix(_DIR_PREFIX).partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)) and not any(map(_alive, _writers(path))):
            shutil.rmtree(path, ignore_errors=True)


def _writers(path: Path) -> set[int]:
    """The ids of the processes whose figures are in `path`."""
    writers = set()
    for file in path.glob("*_*.db"):
        pid = file.stem.rpartition("_")[2]
        if pid.isdigit():
            writers.add(int(pid))
    return writers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_multiprocess_dir(path: Path) -> None:
    """Delete the workers' figures when the server stops."""
    shutil.rmtree(path, ignore_errors=True)


def worker_gone(pid: int | None) -> None:
    """Drop a dead worker's live gauges (its counters stay: they still count)."""
    if pid is not None and os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
