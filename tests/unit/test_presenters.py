"""The API's JSON shapes: ids and times are typed objects in the presenters (the document says
uuid and date-time), written as the same text as ever: a UUID's hex form, UTC to the second with
a `Z`, the year in four digits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from domain.events import Event
from domain.sources import Source, SourceStamp
from entrypoints.presenters import EventOut, SourceRecord, SourceStampOut, api_time, api_timestamp
from tests.contract.strategies import events, sources

zones = st.sampled_from([UTC, timezone(timedelta(0)), timezone(timedelta(hours=-7, minutes=-30))])
aware = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    zones,
)


def _wire(value: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(value))
    return decoded


@given(aware)
def test_a_timestamp_is_the_utc_second_with_a_z(value: datetime) -> None:
    text = api_timestamp(value)
    assert len(text) == 20
    assert text.endswith("Z")
    assert datetime.fromisoformat(text) == value.astimezone(UTC).replace(microsecond=0)
    assert datetime.fromisoformat(text) == api_time(value)


@given(sources())
def test_a_record_shows_its_id_and_times_as_always(source: Source) -> None:
    record = _wire(SourceRecord.of(source))
    assert record["id"] == str(source.id)
    assert record["registered_at"] == api_timestamp(source.registered_at)
    assert record["updated_at"] == api_timestamp(source.updated_at)
    stamp = _wire(SourceStampOut.of(SourceStamp(source.id, source.version, source.updated_at)))
    assert stamp == {
        "id": str(source.id),
        "version": source.version,
        "updated_at": api_timestamp(source.updated_at),
    }


@given(events)
def test_an_event_shows_its_id_action_and_time_as_always(event: Event) -> None:
    out = _wire(EventOut.of(event))
    assert out["id"] == str(event.id)
    assert out["at"] == api_timestamp(event.at)
    assert out["action"] == event.action.value
    assert out["source_id"] == (None if event.source_id is None else str(event.source_id))
