"""The one converter: every stored record goes to a row and back unchanged, in one timestamp
form, and rows written in older forms (other ISO 8601 timestamps, spaced or ASCII-escaped JSON,
0/1 booleans) still read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from adapters.serialization import from_row, parse_timestamp, timestamp, to_row
from domain.events import Action, Event
from domain.history import SchemaSnapshot
from domain.keys import ApiKey, Scope
from domain.sources import Column, Source, SourceSummary
from tests.contract.strategies import api_keys, events, instants, sources

SOURCE_JSON = ("connection", "tags")


@given(sources(), st.booleans())
def test_a_source_comes_back_from_its_row(source: Source, as_json: bool) -> None:
    row = to_row(source, SOURCE_JSON if as_json else ())
    assert from_row(row, Source) == source
    assert from_row(row, SourceSummary) == SourceSummary.of(source)


@given(api_keys, st.booleans())
def test_a_key_comes_back_from_its_row(key: ApiKey, as_json: bool) -> None:
    assert from_row(to_row(key, ("scopes",) if as_json else ()), ApiKey) == key


@given(events, st.booleans())
def test_an_event_comes_back_from_its_row(event: Event, as_json: bool) -> None:
    row = to_row(event, ("changed",) if as_json else ())
    assert row["action"] == event.action.value
    assert type(row["action"]) is str
    assert from_row(row, Event) == event


@given(instants, st.lists(st.tuples(st.text(), st.text(), st.sampled_from([True, False, None]))))
def test_a_snapshot_comes_back_from_its_row(
    at: datetime, columns: list[tuple[str, str, bool | None]]
) -> None:
    snapshot = SchemaSnapshot(UUID(int=7), 3, "f" * 64, tuple(Column(*c) for c in columns), at)
    assert from_row(to_row(snapshot, ("columns",)), SchemaSnapshot) == snapshot


@given(instants, instants)
def test_the_one_timestamp_form_is_fixed_width_and_sorts_in_time_order(
    a: datetime, b: datetime
) -> None:
    assert len(timestamp(a)) == len("2026-05-22T09:00:00.000000Z")
    assert timestamp(a).endswith("Z")
    assert (timestamp(a) < timestamp(b)) == (a < b)
    assert parse_timestamp(timestamp(a)) == a


def test_rows_in_older_forms_still_read() -> None:
    at = datetime(2026, 5, 22, 9, 0, tzinfo=UTC)
    row = {
        "id": "00000000-0000-0000-0000-000000000001",
        "at": "2026-05-22T11:00:00+02:00",
        "actor": "tdb-cli",
        "action": "source.registered",
        "source_id": None,
        "source_name": "caf\u00e9",
        "key_id": None,
        "changed": json.dumps(["name", "caf\u00e9"]),  # spaced, ASCII-escaped
        "breaking": 0,
    }
    event = from_row(row, Event)
    assert event.at == at
    assert event.action is Action.SOURCE_REGISTERED
    assert event.changed == ("name", "caf\u00e9")
    assert event.breaking is False
    key = from_row(
        {
            "key_id": "tdbk_0000000000000001",
            "name": "old",
            "scopes": json.dumps(["sources:read"]),
            "secret_hash": "h",
            "created_at": "2026-05-22T09:00:00",  # naive: UTC
            "revoked_at": datetime(2026, 5, 22, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        },
        ApiKey,
    )
    assert key.scopes == frozenset({Scope.READ})
    assert key.created_at == at
    assert key.revoked_at == at
