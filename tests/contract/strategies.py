"""Hypothesis strategies for valid sources, API keys, events and listing filters, and the
spellings of IPv6 addresses."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from domain.events import Action, Event, EventFilter
from domain.keys import ApiKey, Scope
from domain.sources import (
    Source,
    SourceFilter,
    SourceName,
    description_errors,
    name_errors,
    tags_errors,
)

SOURCE_TYPES = ("postgres", "csv")

NAME_POOL = (
    "orders",
    "Orders",
    "ORDERS",
    "ord",
    "50%_off",
    "50x_off",
    "a_b",
    "aXb",
    "\u00e9t\u00e9",  # composed é
    "e\u0301te\u0301",  # the same word, decomposed
    "日本語",
    "😀 party",
)
"""Names that trip naive stores: case, LIKE wildcards, Unicode normalization, astral characters."""

TAG_POOL = ("pii", "PII", "finance", "team:data", "日本", "a%", "a_")

PREFIX_POOL = ("", "o", "O", "ord", "orders", "50%", "50_", "a_", "a%", "e", "\u00e9", "日", "😀")

_OFFSETS = st.one_of(
    st.just(UTC),
    st.builds(
        timezone,
        st.timedeltas(
            min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
        ),
    ),
)

instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_OFFSETS
)
"""Aware datetimes with microseconds, in any fixed offset, across Python's whole calendar."""

TIME_POOL = (
    datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),  # the same instant
    datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
)
"""Few instants, so that sources often share one and the id must break the tie."""

names = st.one_of(
    st.sampled_from(NAME_POOL), st.text(st.characters(codec="utf-8"), min_size=1, max_size=100)
).filter(lambda name: not name_errors(name))

_tag = st.one_of(st.sampled_from(TAG_POOL), st.text(min_size=1, max_size=100))
tags = st.lists(_tag, max_size=6).filter(lambda t: not tags_errors(t))

descriptions = st.text(max_size=500).filter(lambda d: not description_errors(d))

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
"""Anything JSON can carry: big integers, -0.0, 1e308, NUL and astral characters in strings."""

connections = st.dictionaries(st.text(max_size=20), json_values, max_size=6)

public_ids = st.from_regex(r"tdbk_[0-9a-f]{16}", fullmatch=True)


def sources(
    names: st.SearchStrategy[str] = names,
    tags: st.SearchStrategy[list[str]] = tags,
    times: st.SearchStrategy[datetime] = instants,
) -> st.SearchStrategy[Source]:
    """Valid sources with every field drawn."""
    return st.builds(
        Source,
        id=st.uuids(),
        name=st.builds(SourceName, names),
        source_type=st.sampled_from(SOURCE_TYPES),
        connection=connections,
        description=descriptions,
        tags=tags,
        registered_by=public_ids,
        registered_at=times,
        status=st.sampled_from(("active", "disabled")),
        version=st.integers(min_value=1, max_value=2**31 - 1),
        updated_at=times,
        updated_by=public_ids,
    )


def source_batches(max_size: int = 12) -> st.SearchStrategy[list[Source]]:
    """Sources that can all be stored together: distinct ids and names, often equal times."""
    return st.lists(
        sources(
            names=st.one_of(st.sampled_from(NAME_POOL), names),
            tags=st.lists(st.sampled_from(TAG_POOL), max_size=3, unique=True),
            times=st.one_of(st.sampled_from(TIME_POOL), instants),
        ),
        max_size=max_size,
        unique_by=(lambda s: s.id, lambda s: s.name),
    )


filters = st.one_of(
    st.just(SourceFilter()),
    st.builds(
        SourceFilter,
        tags=st.lists(st.sampled_from(TAG_POOL), max_size=2).map(tuple),
        source_type=st.none() | st.sampled_from((*SOURCE_TYPES, "unknown")),
        name_prefix=st.none() | st.sampled_from(PREFIX_POOL) | st.text(max_size=3),
    ),
)
"""Listing filters: none at all, or ones likely to match some sources (even prefixes with NUL)."""

key_ids = st.one_of(
    st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20),
)
"""Real key ids are hex; other text checks that every store orders ids by code point."""

api_keys = st.builds(
    ApiKey,
    key_id=key_ids,
    name=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=100),
    scopes=st.frozensets(st.sampled_from(Scope), min_size=1),
    secret_hash=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    created_at=st.one_of(st.sampled_from(TIME_POOL), instants),
    revoked_at=st.none() | instants,
    created_by=st.none() | st.sampled_from(("tdb-cli", "tdbk_0123456789abcdef", "oidc:alice")),
    expires_at=st.none() | instants,
    last_used_at=st.none() | instants,
    rotated_from=st.none() | key_ids,
    superseded=st.booleans(),
)


ACTOR_POOL = ("tdb-cli", "tdbk_0123456789abcdef", "tdbk_fedcba9876543210")
SOURCE_ID_POOL = tuple(UUID(int=n) for n in (1, 2, 3))

events = st.builds(
    Event,
    id=st.uuids(),
    at=st.one_of(st.sampled_from(TIME_POOL), instants),
    actor=st.one_of(st.sampled_from(ACTOR_POOL), public_ids),
    action=st.sampled_from(Action),
    source_id=st.none() | st.sampled_from(SOURCE_ID_POOL) | st.uuids(),
    source_name=st.none() | names,
    key_id=st.none() | st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    changed=st.lists(
        st.sampled_from(("name", "tags", "description", "connection.password", "connection.port"))
    ).map(tuple),
    breaking=st.none() | st.booleans(),
)
"""Events of every action, often sharing an instant, a source or an actor."""

event_filters = st.builds(
    EventFilter,
    source_id=st.none() | st.sampled_from(SOURCE_ID_POOL),
    action=st.none() | st.sampled_from(Action),
    actor=st.none() | st.sampled_from(ACTOR_POOL),
    since=st.none() | st.sampled_from(TIME_POOL) | instants,
)


def ipv6_spellings(address: ipaddress.IPv6Address | str) -> st.SearchStrategy[str]:
    """The ways to write one IPv6 address: each group with or without its leading zeros, in
    any case, `::` over any run of zero groups (or none), the last 32 bits as a dotted quad."""
    value = int(ipaddress.IPv6Address(address))
    groups = [(value >> (16 * (7 - i))) & 0xFFFF for i in range(8)]

    @st.composite
    def spelling(draw: st.DrawFn) -> str:
        dotted = draw(st.booleans())
        count = 6 if dotted else 8
        texts = []
        for group in groups[:count]:
            digits = f"{group:0{draw(st.integers(len(f'{group:x}'), 4))}x}"
            upper = draw(st.lists(st.booleans(), min_size=len(digits), max_size=len(digits)))
            texts.append("".join(c.upper() if u else c for c, u in zip(digits, upper, strict=True)))
        tail = [str(ipaddress.IPv4Address(value & 0xFFFFFFFF))] if dotted else []
        runs = [
            (start, end)
            for start in range(count)
            for end in range(start + 1, count + 1)
            if not any(groups[start:end])
        ]
        run = draw(st.none() | st.sampled_from(runs)) if runs else None
        if run is None:
            text = ":".join(texts + tail)
        else:
            start, end = run
            text = ":".join(texts[:start]) + "::" + ":".join(texts[end:] + tail)
        assert ipaddress.IPv6Address(text) == ipaddress.IPv6Address(value), text
        return text

    return spelling()


unspecified_addresses = st.one_of(
    st.just("0.0.0.0"),  # noqa: S104
    ipv6_spellings("::"),
    ipv6_spellings("::ffff:0.0.0.0"),
)
"""Every spelling of an unspecified address: IPv4's, IPv6's and IPv6's mapping of IPv4's."""

mapped_addresses = st.ip_addresses(v=4).flatmap(
    lambda ipv4: ipv6_spellings(f"::ffff:{ipv4}").map(lambda text: (ipv4, text))
)
"""An IPv4 address and a spelling of its IPv4-mapped IPv6 address."""
