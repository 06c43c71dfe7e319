"""The API's JSON shapes: ids and times are typed objects in the presenters (the document says
uuid and date-time), written as the same text as ever: a UUID's hex form, UTC to the second with
a `Z`."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given

from domain.events import Event
from domain.sources import Source, SourceStamp
from entrypoints.presenters import EventOut, SourceRecord, SourceStampOut, api_timestamp
from tests.contract.strategies import events, sources


def _wire(value: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(value))
    return decoded


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
