"""A full listing is read and encoded off the event loop (a small page on it), and kept only
while nothing changed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from adapters.storage.sqlite import SqliteSourceRepository
from application.sources import RegisterSourceCommand
from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class WhereReadsRun(SqliteSourceRepository):
    """The real SQLite repository, noting whether each read ran on the event loop."""

    seen: list[tuple[str, bool]]

    def list(self, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(("list", _on_event_loop()))
        return super().list(*args, **kwargs)


@pytest.fixture
def watched(container: Container) -> Iterator[WhereReadsRun]:
    repository = WhereReadsRun(container.store())
    repository.seen = []
    with container.sources.override(providers.Object(repository)):
        yield repository


def test_full_listings_leave_the_loop_and_small_pages_stay(
    container: Container, watched: WhereReadsRun, make_token: Any
) -> None:
    register = container.register_source()
    ids = [
        register(
            RegisterSourceCommand(
                actor=OPERATOR,
                name=f"source-{i:03d}",
                source_type="csv",
                connection={"path": f"f{i}.csv"},
            )
        ).id
        for i in range(150)
    ]
    headers = {"Authorization": f"Bearer {make_token()}"}
    with TestClient(create_app(container)) as client:
        watched.seen.clear()
        listing = client.get("/v1/sources", headers=headers)
        page = client.get("/v1/sources?limit=10", headers=headers)
    assert [s["id"] for s in listing.json()] == [str(i) for i in ids]  # everything, in order
    assert len(page.json()) == 10
    assert watched.seen == [("list", False), ("list", True)]


def test_a_kept_listing_gives_way_to_changes_made_by_another_process(
    container: Container, settings: Settings, make_token: Any
) -> None:
    headers = {"Authorization": f"Bearer {make_token()}"}
    other = build_container(settings)  # another process on the same SQLite file
    try:
        with TestClient(create_app(container)) as client:
            first = client.get("/v1/sources", headers=headers).json()
            assert client.get("/v1/sources", headers=headers).json() == first
            other.register_source()(
                RegisterSourceCommand(
                    actor=OPERATOR, name="late", source_type="csv", connection={"path": "l.csv"}
                )
            )
            after = client.get("/v1/sources", headers=headers).json()
            client.delete(f"/v1/sources/{after[-1]['id']}", headers=headers)
            again = client.get("/v1/sources", headers=headers).json()
    finally:
        other.shutdown_resources()
    assert [s["name"] for s in after] == [s["name"] for s in first] + ["late"]
    assert again == first
