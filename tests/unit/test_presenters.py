"""The API's timestamp form: UTC, to the second, `Z`, the year in four digits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from entrypoints.presenters import api_time, api_timestamp

zones = st.sampled_from([UTC, timezone(timedelta(0)), timezone(timedelta(hours=-7, minutes=-30))])
aware = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    zones,
)


@given(aware)
def test_a_timestamp_is_the_utc_second_with_a_z(value: datetime) -> None:
    text = api_timestamp(value)
    assert len(text) == 20
    assert text.endswith("Z")
    assert datetime.fromisoformat(text) == value.astimezone(UTC).replace(microsecond=0)
    assert datetime.fromisoformat(text) == api_time(value)
