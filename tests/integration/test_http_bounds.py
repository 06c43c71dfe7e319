"""What a client may ask of the listings, and the 400 past it: dates that exist in UTC, at most
50 tag filters, a default page of events, cursors that belong to their route."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import attrs
import pytest
from dependency_injector import providers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from adapters.crypto import generate_key
from domain.events import EventKey
from domain.sources import PageKey
from entrypoints.container import build_container
from entrypoints.cursors import encode_cursor, encode_event_cursor, encode_history_cursor
from entrypoints.http.app import create_app
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from tests.builders import assert_problem, post_source
from tests.helpers import loopback_resolver, on_app, throwaway_database

# --- dates outside years 1-9999 once in UTC -------------------------------------------------

EDGE_OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).filter(bool)


@st.composite
def edge_times(draw: st.DrawFn) -> datetime:
    """A time within a day of the first or the last instant Python can hold, at an offset."""
    offset = timezone(timedelta(minutes=draw(EDGE_OFFSETS)))
    seconds = draw(st.integers(min_value=0, max_value=24 * 3600 - 1))
    if draw(st.booleans()):
        naive = datetime(1, 1, 1) + timedelta(seconds=seconds)
    else:
        naive = datetime(9999, 12, 31, 23, 59, 59) - timedelta(seconds=seconds)
    return naive.replace(tzinfo=offset)


def in_utc_range(at: datetime) -> bool:
    """Whether this time exists in UTC between years 1 and 9999 (what a store can hold)."""
    try:
        at.astimezone(UTC)
    except OverflowError:
        return False
    return True


@pytest.mark.parametrize(
    "since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:59:59+01:00"]
)
def test_a_since_outside_years_1_to_9999_in_utc_is_400(
    client: TestClient[Any], admin: dict[str, str], since: str
) -> None:
    response = client.get(f"/v1/events?since={quote(since)}", headers=admin)
    assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["since"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edge_times())
def test_a_since_at_the_edges_is_400_exactly_when_utc_cannot_hold_it(
    client: TestClient[Any], admin: dict[str, str], since: datetime
) -> None:
    response = client.get(f"/v1/events?since={quote(since.isoformat())}", headers=admin)
    if in_utc_range(since):
        assert response.status_code == 200, response.text
    else:
        assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["since"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edge_times())
def test_a_cursor_at_the_edges_is_400_exactly_when_utc_cannot_hold_it(
    client: TestClient[Any], admin: dict[str, str], at: datetime
) -> None:
    # Cursors as this server writes them, at times a tampered one could carry.
    for url in (
        f"/v1/sources?limit=5&cursor={encode_cursor(PageKey(at, uuid4()))}",
        f"/v1/sources?cursor={encode_cursor(PageKey(at, uuid4()))}",
        f"/v1/events?limit=5&cursor={encode_event_cursor(EventKey(at, uuid4()))}",
    ):
        response = client.get(url, headers=admin)
        if in_utc_range(at):
            assert response.status_code == 200, response.text
        else:
            assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["cursor"]


def test_the_cli_says_a_since_outside_utc_is_wrong_without_a_traceback(tdb: Any) -> None:
    for since in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        code, out, err = tdb("events", "list", "--since", since)
        assert code != 0
        assert "since" in err
        assert "Traceback" not in out + err
    assert tdb("events", "list", "--since", "0001-01-01T01:00:00+01:00")[0] == 0


# --- tag filters ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """The settings of a fresh store of each kind."""
    if request.param == "sqlite":
        yield settings
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    with throwaway_database(admin_url, "tdb_bounds") as url:
        yield attrs.evolve(settings, database_url=url, secret_key=generate_key().decode())


@pytest.fixture
def served(any_store: Settings) -> Iterator[tuple[TestClient[Any], dict[str, str]]]:
    """A client of the app on that store, and the headers of a key with every scope."""
    container = build_container(any_store)
    container.resolver.override(providers.Object(loopback_resolver))
    with TestClient(create_app(container)) as client:
        token = on_app(client, container.create_api_key(), "test", (), OPERATOR).token
        yield client, {"Authorization": f"Bearer {token}"}
    container.shutdown_resources()


def test_more_than_50_tag_filters_are_400_and_50_work(
    served: tuple[TestClient[Any], dict[str, str]],
) -> None:
    client, admin = served
    tags = [f"t{i}" for i in range(51)]
    post_source(client, admin, "tagged", tags=tags[:50])
    post_source(client, admin, "other", tags=tags[:3])
    for limit in ("", "&limit=10", "&limit=1000"):
        query = "&".join(f"tag={t}" for t in tags[:50])
        response = client.get(f"/v1/sources?{query}{limit}", headers=admin)
        assert response.status_code == 200, response.text
        assert [s["name"] for s in response.json()] == ["tagged"]
        for count in (51, 997):
            query = "&".join(f"tag=t{i}" for i in range(count))
            response = client.get(f"/v1/sources?{query}{limit}", headers=admin)
            assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["tag"]


# --- a page of events by default -----------------------------------------------------------


def test_events_without_a_limit_come_100_at_a_time_and_sources_all_at_once(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    for i in range(101):
        post_source(client, admin, f"s{i:03}")
    everything = client.get("/v1/events?limit=1000", headers=admin).json()
    assert len(everything) > 101
    first = client.get("/v1/events", headers=admin)
    assert first.status_code == 200
    assert first.json() == everything[:100]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    rest = client.get(link[1 : link.index(">")], headers=admin)
    assert rest.json() == everything[100:]
    assert "link" not in rest.headers
    # The list of sources keeps answering all of them without a limit, as it always did.
    sources = client.get("/v1/sources", headers=admin)
    assert len(sources.json()) == 101
    assert "link" not in sources.headers


# --- cursors belong to their route ---------------------------------------------------------


def _next(response: Any) -> str:
    link: str = response.headers["link"]
    cursor = link[link.index("cursor=") + len("cursor=") : link.index(">")]
    return cursor


def test_a_cursor_made_by_another_route_is_400(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    ids = [post_source(client, admin, f"s{i}")["id"] for i in range(3)]
    sources_cursor = _next(client.get("/v1/sources?limit=1", headers=admin))
    events_cursor = _next(client.get("/v1/events?limit=1", headers=admin))
    history_cursor = encode_history_cursor(UUID(ids[0]), 5)
    # Each is good on its own route.
    assert client.get(f"/v1/sources?limit=1&cursor={sources_cursor}", headers=admin).is_success
    assert client.get(f"/v1/events?limit=1&cursor={events_cursor}", headers=admin).is_success
    history = f"/v1/sources/{ids[0]}/schema/history"
    assert client.get(f"{history}?cursor={history_cursor}", headers=admin).is_success
    # A cursor of the old, unbound form names no route: no route takes it.
    at, ident = datetime.now(UTC).isoformat(), uuid4()
    unbound = base64.urlsafe_b64encode(f"{at}|{ident}".encode()).decode().rstrip("=")
    for url in (
        f"/v1/events?cursor={sources_cursor}",
        f"/v1/events?limit=1&cursor={history_cursor}",
        f"/v1/events?cursor={unbound}",
        f"/v1/sources?cursor={events_cursor}",
        f"/v1/sources?limit=1&cursor={history_cursor}",
        f"/v1/sources?limit=1&cursor={unbound}",
        f"{history}?cursor={sources_cursor}",
        f"{history}?cursor={events_cursor}",
        f"{history}?cursor={unbound}",
    ):
        response = client.get(url, headers=admin)
        assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["cursor"], url
