"""A whole listing is streamed: read a chunk at a time and encoded off the event loop (a small
page on it), the same bytes as encoded at once, and sent in slices with the loop free between
them; a big page is kept only while nothing changed, and made once for those asking at once."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from adapters.storage import sqlite
from adapters.storage.sqlite import SqliteSourceRepository
from application.sources import RegisterSourceCommand
from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.http.pacing import SLICE_BYTES
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from tests.helpers import LoopTurns, get_scope, run


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class WhereReadsRun(SqliteSourceRepository):
    """The real SQLite repository, noting whether each read ran on the event loop."""

    seen: list[tuple[str, bool]]

    def _list(self, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(("list", _on_event_loop()))
        return super()._list(*args, **kwargs)


def _register_csv_sources(
    container: Container,
    count: int,
    description: str = "",
    tags: Callable[[int], tuple[str, ...]] = lambda _: (),
) -> list[UUID]:
    """The ids of `count` new CSV sources, registered in this order."""
    register = container.register_source()
    return [
        run(
            register(
                RegisterSourceCommand(
                    actor=OPERATOR,
                    name=f"source-{i:04d}",
                    source_type="csv",
                    connection={"path": f"f{i}.csv"},
                    description=description,
                    tags=tags(i),
                )
            )
        ).id
        for i in range(count)
    ]


@pytest.fixture
def watched(container: Container, monkeypatch: pytest.MonkeyPatch) -> Iterator[WhereReadsRun]:
    db = container.store()
    repository = WhereReadsRun(db)
    repository.seen = []
    statement = db.statement

    @contextmanager
    def noted(sql: str, parameters: Any = ()) -> Iterator[Callable[[int], Any]]:
        with statement(sql, parameters) as next_rows:

            def rows(size: int) -> Any:
                repository.seen.append(("chunk", _on_event_loop()))
                return next_rows(size)

            yield rows

    monkeypatch.setattr(db, "statement", noted)
    with container.sources.override(providers.Object(repository)):
        yield repository


def test_full_listings_leave_the_loop_and_small_pages_stay(
    container: Container, watched: WhereReadsRun, make_token: Any
) -> None:
    ids = _register_csv_sources(container, 150)
    headers = {"Authorization": f"Bearer {make_token()}"}
    with TestClient(create_app(container)) as client:
        watched.seen.clear()
        listing = client.get("/v1/sources", headers=headers)
        page = client.get("/v1/sources?limit=10", headers=headers)
    assert [s["id"] for s in listing.json()] == [str(i) for i in ids]  # everything, in order
    assert len(page.json()) == 10
    # The whole listing's rows in one chunk, then the end; the page on the loop.
    assert watched.seen == [("chunk", False), ("chunk", False), ("list", True)]


def test_a_streamed_listing_is_the_bytes_of_the_listing_at_once(
    container: Container, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "LISTING_CHUNK", 7)  # several chunks, the last one short
    _register_csv_sources(container, 30, tags=lambda i: ("t", f"u{i % 3}"))
    with TestClient(create_app(container)) as client:
        for query in ("", "?tag=u1", "?name_prefix=source-001", "?tag=nobody"):
            streamed = client.get(f"/v1/sources{query}", headers=admin)
            page = client.get(f"/v1/sources{query}{'&' if query else '?'}limit=1000", headers=admin)
            assert streamed.status_code == page.status_code == 200
            assert streamed.headers["content-type"] == page.headers["content-type"]
            assert "content-length" not in streamed.headers
            assert streamed.content == page.content  # one JSON array, the seed's shape


def test_a_kept_listing_gives_way_to_changes_made_by_another_process(
    container: Container, settings: Settings, make_token: Any
) -> None:
    headers = {"Authorization": f"Bearer {make_token()}"}
    other = build_container(settings)  # another process on the same SQLite file
    try:
        with TestClient(create_app(container)) as client:
            first = client.get("/v1/sources", headers=headers).json()
            assert client.get("/v1/sources", headers=headers).json() == first
            late = RegisterSourceCommand(
                actor=OPERATOR, name="late", source_type="csv", connection={"path": "l.csv"}
            )
            run(other.register_source()(late))
            after = client.get("/v1/sources", headers=headers).json()
            client.delete(f"/v1/sources/{after[-1]['id']}", headers=headers)
            again = client.get("/v1/sources", headers=headers).json()
    finally:
        other.shutdown_resources()
    assert [s["name"] for s in after] == [s["name"] for s in first] + ["late"]
    assert again == first


def test_a_big_listing_leaves_in_slices_with_the_loop_free_between_them(
    container: Container, admin: dict[str, str]
) -> None:
    ids = _register_csv_sources(
        container,
        250,
        description="a source with a few words to say about itself " * 10,
        tags=lambda i: ("finance", "nightly", f"batch-{i % 7}"),
    )
    app = create_app(container)
    sent: list[tuple[int, Any]] = []
    turns = LoopTurns()

    asked: list[bool] = []
    answered = asyncio.Event()

    async def receive() -> Any:
        # As a server: the request once, then a disconnect once the answer is complete.
        if asked:
            await answered.wait()
            return {"type": "http.disconnect"}
        asked.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run() -> None:
        async def send(message: Any) -> None:
            # From the first slice on, another task counts the turns of the loop.
            if message["type"] == "http.response.body" and not turns.started:
                turns.start()
            sent.append((turns.count, message))
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        try:
            await app(get_scope("/v1/sources", admin), receive, send)  # type: ignore[arg-type]
        finally:
            turns.stop()

    asyncio.run(run())
    [start] = [m for _, m in sent if m["type"] == "http.response.start"]
    slices = [(turn, m) for turn, m in sent if m["type"] == "http.response.body"]
    content = b"".join(m["body"] for _, m in slices)
    assert start["status"] == 200
    assert [s["id"] for s in json.loads(content)] == [str(i) for i in ids]  # all, in order
    assert len(content) > 2 * SLICE_BYTES
    assert all(isinstance(m["body"], bytes) and len(m["body"]) <= SLICE_BYTES for _, m in slices)
    assert [m["more_body"] for _, m in slices] == [True] * (len(slices) - 1) + [False]
    # Between any two slices the loop ran something else.
    seen = [turn for turn, m in slices if m["body"]]  # (the empty end holds nothing up)
    assert all(before < after for before, after in itertools.pairwise(seen))


def _concurrently(app: Any, n: int, headers: dict[str, str]) -> list[tuple[int, bytes]]:
    """n big pages asked at once through the ASGI app: (status, body) of each."""

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one() -> tuple[int, bytes]:
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {**get_scope("/v1/sources", headers), "query_string": b"limit=500"}
        await app(scope, receive, send)
        body = b"".join(m["body"] for m in sent if m["type"] == "http.response.body")
        return sent[0]["status"], body

    async def all_at_once() -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(*(one() for _ in range(n))))

    return asyncio.run(all_at_once())


def test_big_pages_asked_at_once_after_a_change_are_read_once(
    container: Container, watched: WhereReadsRun, admin: dict[str, str]
) -> None:
    register = container.register_source()
    for name in ("a", "b", "c"):
        run(
            register(
                RegisterSourceCommand(
                    actor=OPERATOR, name=name, source_type="csv", connection={"path": f"{name}.csv"}
                )
            )
        )
    app = create_app(container)
    watched.seen.clear()
    first = _concurrently(app, 5, admin)
    run(
        register(
            RegisterSourceCommand(
                actor=OPERATOR, name="d", source_type="csv", connection={"path": "d"}
            )
        )
    )
    second = _concurrently(app, 5, admin)
    assert {status for status, _ in first + second} == {200}
    assert [s["name"] for s in json.loads(first[0][1])] == ["a", "b", "c"]
    assert {body for _, body in first} == {first[0][1]}
    assert [s["name"] for s in json.loads(second[0][1])] == ["a", "b", "c", "d"]
    assert {body for _, body in second} == {second[0][1]}
    assert watched.seen == [("list", False), ("list", False)]  # one read per change
