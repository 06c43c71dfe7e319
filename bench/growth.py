"""How tdb grows: fill a store to each size through the project's own code, then measure a real
`tdb serve` (one worker) on it.

    .venv/bin/python bench/growth.py --store sqlite --sizes 1000,10000,100000,1000000
    .venv/bin/python bench/growth.py --store postgres --keep      # prints the database it keeps
    .venv/bin/python bench/growth.py --store sqlite --path /tmp/g.sqlite3 --sizes 1000000

Sources are registered by the `RegisterSource` use case (validation, encrypted secrets, the
event), and what it stores goes to the store through its own adapter (`SourceRepository.add`),
many at a time. A store given with `--path` / `--database-url` is filled only up to each size,
so a kept store measures again at once. Per size it prints the p50 of each filtered page kind
(a tag nobody has, a tag few have, a prefix few names have, a type, the three combined, a page
at a 90 % cursor), GET by id, the first page, `/metrics` per scrape, POST and PATCH, and the
whole listing (`GET /v1/sources`): its time, sources per second, the server's RSS growth while
it runs and `/healthz` p99 meanwhile. Each figure is the median of `--batches` batches.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict
from servers import Server, serving, tdb_server, venv_bin

from adapters.crypto import generate_key
from adapters.storage.postgres import _adding
from adapters.storage.sqlite import SqliteDatabase, insert_source
from application.sources import RegisterSourceCommand
from domain.errors import StoreUnavailable
from domain.events import Event
from domain.sources import PageKey, Source
from entrypoints.container import build_container
from entrypoints.cursors import encode_cursor
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings

FEW_EVERY = 50_000
"""One source in this many is named `few-...` and tagged `few`: the rare filters' matches."""
CSV_EVERY = 100
"""One source in this many is a CSV file (the rest PostgreSQL tables)."""
BATCH = 2000


def command(i: int) -> RegisterSourceCommand:
    """The i-th source of a growth store (the same for every run)."""
    few = i % FEW_EVERY == 3
    tags = ("common", f"t{i % 50}") + (("few",) if few else ())
    if i % CSV_EVERY == 0:
        kind, connection = "csv", {"path": f"file-{i}.csv"}
    else:
        connection = {
            "host": "127.0.0.1",
            "port": 5432,
            "dbname": "warehouse",
            "user": "reader",
            "password": f"pw-{i}",
            "table": f"table_{i}",
        }
        kind = "postgres"
    name = f"few-{i:08d}" if few else f"src-{i:08d}"
    return RegisterSourceCommand(
        OPERATOR, name, kind, connection, description=f"source number {i}", tags=tags
    )


class _Kept:
    """A SourceRepository that keeps what the use case would store, for the real one to add."""

    def __init__(self) -> None:
        self.added: list[tuple[Source, Event | None]] = []

    async def add(self, source: Source, event: Event | None = None) -> None:
        self.added.append((source, event))


async def write(container: Any, added: list[tuple[Source, Event | None]]) -> None:
    """Store a batch as `SourceRepository.add` stores each source, in one transaction."""
    db = container.store()
    if isinstance(db, SqliteDatabase):

        def batch() -> None:
            with db.writing() as conn:
                for source, event in added:
                    insert_source(conn, source, event)

        for attempt in range(100):  # other fill processes hold the write lock meanwhile
            try:
                await asyncio.to_thread(batch)
                return
            except StoreUnavailable:
                if attempt == 99:
                    raise
    async with db.transaction() as conn, conn.cursor() as cursor:
        for sql, group in itertools.groupby((_adding(s, e) for s, e in added), lambda q: q[0]):
            await cursor.executemany(sql, [parameters for _, parameters in group])


async def fill(
    all_settings: list[Settings], target: int, worker: int = 0, workers: int = 1
) -> list[int]:
    """Register sources until each store holds `target`; return how many each held before.

    Each source is made once by the use case and stored in every store that lacks it (stores
    given together share their secret key). With several workers, worker `w` makes the
    batches `w, w + workers, ...`, each stored in one transaction per store.
    """
    containers = [build_container(settings) for settings in all_settings]
    for container in containers:
        await container.upgrade_store()()
    have = [await container.sources().count() for container in containers]
    kept = _Kept()
    register = containers[0].register_source(sources=kept)
    started = time.monotonic()
    for n, start in enumerate(range(min(have), target, BATCH)):
        if n % workers != worker:
            continue
        end = min(target, start + BATCH)
        kept.added.clear()
        for i in range(start, end):  # one after another: kept in the numbers' order
            await register(command(i))
        for container, count in zip(containers, have, strict=True):
            if end > count:
                await write(container, kept.added[max(0, count - start) :])
        if n % (50 * workers) == worker:
            rate = (end - min(have)) / (time.monotonic() - started)
            print(f"  [{worker}] filled to {end:,} ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    for container in containers:
        await container.store().release()
    return have


def fill_in_processes(urls: list[str], secret_key: str, target: int, workers: int) -> None:
    """`fill`, by `workers` processes at once."""
    # `--secret-key=K`: a key may begin with "-", which as a word of its own reads as an option.
    argv = [sys.executable, __file__, "--fill-worker", "", f"--secret-key={secret_key}"]
    argv += ["--sizes", str(target), "--urls", ",".join(urls)]
    procs = []
    for worker in range(workers):
        argv[3] = f"{worker}/{workers}"
        procs.append(subprocess.Popen(list(argv)))
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("a fill worker failed")


async def deep_key(settings: Settings, fraction: float, tag: str | None = None) -> str:
    """The cursor of the page that starts `fraction` of the way into the (tagged) listing."""
    container = build_container(settings)
    list_sources = container.list_sources()
    from application.sources import ListSourcesQuery
    from domain.sources import SourceFilter

    total = await container.sources().count()
    target = int(total * fraction)
    key: PageKey | None = None
    walked = 0
    source_filter = SourceFilter(tags=(tag,) if tag else ())
    # Pages of 1000 by keyset: the same reads a client makes.
    while walked < target:
        step = min(1000, target - walked)
        page = await list_sources(ListSourcesQuery(OPERATOR, source_filter, step, key))
        if page.next_key is None:
            break
        key, walked = page.next_key, walked + step
    await container.store().release()
    return encode_cursor(key) if key is not None else ""


def rss_of_group(pgid: int) -> int:
    """The resident memory of every process in the group, in bytes."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return total


def timed(client: httpx.Client, method: str, url: str, **kwargs: Any) -> float:
    started = time.perf_counter()
    answer = client.request(method, url, **kwargs)
    elapsed = time.perf_counter() - started
    if answer.status_code >= 400:
        raise RuntimeError(f"{method} {url}: {answer.status_code} {answer.text[:200]}")
    return elapsed * 1000


def p50(batches: int, per_batch: int, once: Callable[[], float]) -> float:
    """The median over `batches` of each batch's median, in ms."""
    medians = []
    for _ in range(batches):
        medians.append(statistics.median(once() for _ in range(per_batch)))
    return statistics.median(medians)


@contextlib.contextmanager
def watching(server: Server, base: str) -> Iterator[dict[str, Any]]:
    """While the block runs: /healthz every 10 ms, the server's RSS every 50 ms."""
    assert server.proc is not None
    seen: dict[str, Any] = {"health": [], "rss": [], "before": rss_of_group(server.proc.pid)}
    stop = threading.Event()

    def health() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while not stop.is_set():
                seen["health"].append(timed(client, "GET", "/healthz"))
                stop.wait(0.01)

    def rss() -> None:
        while not stop.is_set():
            seen["rss"].append(rss_of_group(server.proc.pid))  # type: ignore[union-attr]
            stop.wait(0.05)

    threads = [threading.Thread(target=health), threading.Thread(target=rss)]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def whole_listing(server: Server, client: httpx.Client, size: int) -> dict[str, float]:
    with watching(server, server.base_url) as seen:
        started = time.perf_counter()
        received = 0
        with client.stream("GET", "/v1/sources") as answer:
            for part in answer.iter_bytes():
                received += len(part)
        elapsed = time.perf_counter() - started
    health = sorted(seen["health"])
    return {
        "seconds": elapsed,
        "sources_per_s": size / elapsed,
        "mb": received / 1e6,
        "rss_growth_mb": (max(seen["rss"], default=seen["before"]) - seen["before"]) / 1e6,
        "healthz_p99_ms": health[int(0.99 * (len(health) - 1))] if health else float("nan"),
    }


def measure(server: Server, token: str, settings: Settings, size: int, opts: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {"size": size}
    deep = asyncio.run(deep_key(settings, 0.9))
    deep_tag = asyncio.run(deep_key(settings, 0.9, "common"))
    pages = {
        "tag_nobody": "tag=nobody&limit=100",
        "tag_few": "tag=few&limit=100",
        "prefix_few": "name_prefix=few-&limit=100",
        "type_csv": "source_type=csv&limit=100",
        "combined": "tag=t0&source_type=csv&name_prefix=src-000&limit=100",
        "deep_cursor": f"limit=100&cursor={deep}",
        "deep_cursor_tag": f"tag=common&limit=100&cursor={deep_tag}",
        "first_page": "limit=100",
        "common_tag": "tag=common&limit=100",
        "common_prefix": "name_prefix=src-&limit=100",
    }
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as client:
        first = client.get("/v1/sources", params={"limit": "10"}).json()
        some_id = first[len(first) // 2]["id"]
        for label, query in pages.items():
            figures[label] = p50(
                opts.batches,
                opts.per_batch,
                lambda q=query: timed(client, "GET", f"/v1/sources?{q}"),
            )
        figures["get_by_id"] = p50(
            opts.batches, opts.per_batch, lambda: timed(client, "GET", f"/v1/sources/{some_id}")
        )
        figures["metrics"] = p50(
            opts.batches, opts.per_batch, lambda: timed(client, "GET", "/metrics")
        )
        serial = iter(range(10**9))
        run = secrets.token_hex(4)

        def post() -> float:
            body = command(next(serial))
            return timed(
                client,
                "POST",
                "/v1/sources",
                json={
                    "name": f"post-{run}-{next(serial)}",
                    "source_type": body.source_type,
                    "connection": dict(body.connection),
                    "tags": list(body.tags),
                },
            )

        figures["post"] = p50(opts.batches, opts.per_batch, post)
        versions: dict[str, int] = {}

        def patch() -> float:
            version = versions.get(some_id)
            if version is None:
                version = client.get(f"/v1/sources/{some_id}").json()["version"]
            elapsed = timed(
                client,
                "PATCH",
                f"/v1/sources/{some_id}",
                headers={
                    "Content-Type": "application/merge-patch+json",
                    "If-Match": f'"{version}"',
                },
                json={"description": f"patched {next(serial)}"},
            )
            versions[some_id] = version + 1
            return elapsed

        figures["patch"] = p50(opts.batches, opts.per_batch, patch)
        runs = [whole_listing(server, client, size) for _ in range(opts.listings)]
        for key in runs[0] if runs else ():
            figures[f"listing_{key}"] = statistics.median(r[key] for r in runs)
    return figures


def key_for(settings_env: dict[str, str], workdir: Path) -> str:
    out = subprocess.run(
        [str(venv_bin() / "tdb"), "keys", "create", "--name", f"growth-{secrets.token_hex(4)}"],
        env=settings_env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _settings(url: str, secret_key: str, workdir: Path) -> Settings:
    return Settings.from_env({}, database_url=url, secret_key=secret_key, csv_root=workdir)


def pg_store_url(admin_url: str, name: str) -> str:
    params = conninfo_to_dict(admin_url)
    auth = params.get("user", "postgres")
    return (
        f"postgresql://{auth}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{name}"
    )


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--path", help="the SQLite file to fill (kept)")
    p.add_argument("--database-url", help="the PostgreSQL store to fill (kept)")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--secret-key", help="the store's key (printed when generated)")
    p.add_argument("--keep", action="store_true", help="keep a store made here, print it")
    p.add_argument("--fill-only", action="store_true")
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--per-batch", type=int, default=15)
    p.add_argument("--listings", type=int, default=1, help="whole listings per size")
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--workers", type=int, default=1, help="processes that fill")
    p.add_argument("--also-path", help="a SQLite file filled with the same sources too")
    p.add_argument("--fill-worker", help=argparse.SUPPRESS)
    p.add_argument("--urls", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.fill_worker:
        worker, workers = (int(x) for x in opts.fill_worker.split("/"))
        settings = [_settings(url, opts.secret_key, Path(".")) for url in opts.urls.split(",")]
        asyncio.run(fill(settings, int(opts.sizes), worker, workers))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="tdb-growth-"))
    secret_key = opts.secret_key or generate_key().decode()
    with contextlib.ExitStack() as stack:
        if not (opts.keep and opts.store == "sqlite" and not opts.path):
            # The servers' logs, and a SQLite store made here unless it is to be kept.
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if opts.store == "sqlite":
            url = f"sqlite:///{Path(opts.path or workdir / 'growth.sqlite3').resolve()}"
        elif opts.database_url:
            url = opts.database_url
        else:
            name = f"tdb_growth_{secrets.token_hex(4)}"
            with psycopg.connect(opts.pg_url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            if not opts.keep:
                stack.callback(drop_database, opts.pg_url, name)
            url = pg_store_url(opts.pg_url, name)
        print(f"store: {url}  secret key: {secret_key}", file=sys.stderr, flush=True)
        settings = _settings(url, secret_key, workdir)
        urls = [url]
        if opts.also_path:
            urls.append(f"sqlite:///{Path(opts.also_path).resolve()}")
        env = {**os.environ, "TDB_DATABASE_URL": url, "TDB_SECRET_KEY": secret_key}
        results = []
        for size in [int(s) for s in opts.sizes.split(",")]:
            started = time.monotonic()
            if opts.workers > 1:
                fill_in_processes(urls, secret_key, size, opts.workers)
            else:
                asyncio.run(fill([_settings(u, secret_key, workdir) for u in urls], size))
            print(f"size {size:,}: filled in {time.monotonic() - started:.0f} s", file=sys.stderr)
            if opts.fill_only:
                continue
            token = key_for(env, workdir)
            with serving(tdb_server(workdir, url, secret_key, 1)) as server:
                figures = measure(server, token, settings, size, opts)
            results.append(figures)
            print(
                json.dumps(
                    {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
                ),
                flush=True,
            )
        if opts.json:
            Path(opts.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
