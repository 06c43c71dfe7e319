"""How the SQL stores answer a filtered listing from an index, whatever the statistics say.

Every filter has an index of its own: a tag the `source_tags` table (keyed by tag, then the
listing order), a type the `sources_by_type` index (type, then the listing order), a name
prefix the name index as a range (`prefix <= name < the next text after every name starting
so`). A tag or a type alone is walked in listing order from the cursor and costs the page it
gives. A name prefix gives its names in name order, to be sorted; and a combination must pick
one index to walk and check the others row by row.

Which one is not left to the database's planner, whose choice rests on statistics that may not
have been gathered yet (a million sources read through for a tag nobody has): the store walks
the index it is told to (SQLite's `INDEXED BY` and a forced join order; on PostgreSQL queries
shaped to leave one way in, run where the planner may not scan a table or join by hash or
merge: `INDEX_WALKS` in postgres.py). The choice here, in two steps:

1. A window: the most selective ordered index at hand (a tag, the type, else the listing
   order) walked for at most `WINDOW` entries from the cursor, every filter checked. Common
   filters fill their page there, at the cost of the page.
2. Else each filter's matches are counted in its own index, up to `PROBE_MAX`, and the rarest
   is walked: in order for a tag or a type, sorted for a prefix (at most `PROBE_MAX` rows).
   When every filter matches at least `PROBE_MAX` sources, a filter that dense fills a page
   within `limit * count / PROBE_MAX` entries of an ordered walk.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import attrs

from adapters.serialization import timestamp
from adapters.storage.listing import SUMMARY_COLUMNS, Dialect
from domain.sources import PageKey, SourceFilter

WINDOW_MIN = 200
"""Entries of an ordered index a window walks at least."""
WINDOW_PER_ROW = 2
"""Entries of an ordered index a window walks per row of the page asked for."""
PROBE_MAX = 1_000
"""Matches counted per filter at most: a rarer filter is walked, a denser one fills a page."""

_COLUMNS = ", ".join(f"s.{name.strip()}" for name in SUMMARY_COLUMNS.split(","))


@attrs.frozen
class Way:
    """An index a listing can walk: a tag, the type, a name prefix, or the listing order."""

    kind: str
    """`tag`, `type`, `prefix` or `all`."""
    value: str = ""


ALL = Way("all")


@attrs.frozen
class Spelling:
    """What a store adds to its dialect to walk the index it is told to."""

    dialect: Dialect
    indexed: Callable[[str], str]
    """What follows `sources s` to make the store walk the named index ("" if the query's shape
    leaves it no other way)."""
    name_index: str
    """The name of the index of names."""
    joined: str
    """What follows the walked entries `w` to join each to its source, named `s`, with `w` the
    outer loop (so that a walk in listing order stays in it, and stops at the page's end)."""
    fence: str
    """What ends a query of a prefix's names so that it is planned alone, its rows sorted after
    ("" if the store walks the index it is told to anyway)."""


_INDEXES = {"all": "sources_by_registration", "type": "sources_by_type"}


def next_text(prefix: str) -> str | None:
    """The least text after every text that starts with `prefix`, in code point order (None
    when there is none: the prefix is all U+10FFFF)."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            following = last + 1
            # Surrogates cannot be stored: the next storable code point after U+D7FF is U+E000.
            if 0xD800 <= following <= 0xDFFF:
                following = 0xE000
            return "".join(chars) + chr(following)
    return None


class _Where:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.conditions: list[str] = []
        self.parameters: list[Any] = []

    def add(self, condition: str, *parameters: Any) -> None:
        self.conditions.append(condition)
        self.parameters += parameters

    def text(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""


def _prefix(where: _Where, column: str, prefix: str) -> None:
    p = where.dialect.param
    where.add(f"{column} >= {p}", prefix)
    bound = next_text(prefix)
    if bound is not None:
        where.add(f"{column} < {p}", bound)


def _after(where: _Where, columns: str, after: PageKey | None) -> None:
    if after is not None:
        d = where.dialect
        where.add(
            f"({columns}) > ({d.timestamp_param}, {d.uuid_param})",
            timestamp(after.registered_at),
            d.uuid_value(after.id),
        )


def _checks(where: _Where, way: Way, source_filter: SourceFilter) -> None:
    """Every filter but the one the walk answers, on the source `s`."""
    d = where.dialect
    others = [tag for tag in dict.fromkeys(source_filter.tags) if way != Way("tag", tag)]
    if others:
        # One subquery for every other tag, not one EXISTS each: PostgreSQL plans fifty
        # semi-joins for longer than a statement may take.
        marks = ", ".join([d.param] * len(others))
        where.add(
            "(SELECT count(*) FROM source_tags u WHERE u.registered_at = s.registered_at"
            f" AND u.source_id = s.id AND u.tag IN ({marks})) = {len(others)}",
            *others,
        )
    if source_filter.source_type is not None and way.kind != "type":
        where.add(f"s.source_type = {d.param}", source_filter.source_type)
    if source_filter.name_prefix and way.kind != "prefix":
        _prefix(where, "s.name", source_filter.name_prefix)


def _limit(dialect: Dialect, limit: int | None, parameters: list[Any]) -> str:
    if limit is None:
        return ""
    parameters.append(limit + 1)  # one row more than asked for says whether there is more
    return f" LIMIT {dialect.param}"


def _entries(
    spelling: Spelling, way: Way, after: PageKey | None, window: int | None, fence: str = ""
) -> tuple[str, list[Any]]:
    """The walked index's entries from the cursor, as `(registered_at, id)`: with `window`, the
    first so many in listing order; with `fence`, planned apart from the query around them."""
    d = spelling.dialect
    where = _Where(d)
    if way.kind == "tag":
        where.add(f"tag = {d.param}", way.value)
        _after(where, "registered_at, source_id", after)
        sql = f"SELECT registered_at, source_id AS id FROM source_tags{where.text()}"
        order = "registered_at, source_id"
    else:
        _way(where, way, "")
        _after(where, "registered_at, id", after)
        sql = f"SELECT registered_at, id FROM sources{_hint(spelling, way)}{where.text()}"
        order = "registered_at, id"
    if window is not None:
        sql += f" ORDER BY {order} LIMIT {d.param}"
        where.parameters.append(window)
    return sql + fence, where.parameters


def _way(where: _Where, way: Way, table: str) -> None:
    if way.kind == "type":
        where.add(f"{table}source_type = {where.dialect.param}", way.value)
    elif way.kind == "prefix":
        _prefix(where, f"{table}name", way.value)


def _hint(spelling: Spelling, way: Way) -> str:
    return spelling.indexed(_INDEXES.get(way.kind, spelling.name_index))


def walk(
    spelling: Spelling,
    way: Way,
    source_filter: SourceFilter,
    limit: int | None,
    after: PageKey | None,
    window: int | None = None,
) -> tuple[str, list[Any]]:
    """The query for a page (at most `limit + 1` summaries in listing order) that walks `way`'s
    index from the cursor; with `window`, at most that many of its entries."""
    d = spelling.dialect
    where = _Where(d)
    # A prefix's page walks a prefix counted to fewer than `PROBE_MAX` names (`rarest`): its
    # entries are taken apart and then sorted. Left in one query with the listing's order and
    # limit, PostgreSQL would walk the listing order instead, checking every source's name,
    # unless its statistics told it how few names match.
    fence = spelling.fence if way.kind == "prefix" and limit is not None else ""
    checked = any(other != way for other in ways(source_filter))
    if way.kind == "tag" or window is not None or fence or checked:
        # The index's entries, then each one's source by its id: the filters checked on the
        # source cannot lead the store to another index instead.
        entries, where.parameters = _entries(spelling, way, after, window, fence)
        where.add("s.id = w.id")
        source = f"({entries}) w {spelling.joined}"
        order = "w.registered_at, w.id"
    else:  # the walk answers the whole filter: the sources in the index's order
        _way(where, way, "s.")
        _after(where, "s.registered_at, s.id", after)
        source = f"sources s{_hint(spelling, way)}"
        order = "s.registered_at, s.id"
    _checks(where, way, source_filter)
    sql = f"SELECT {_COLUMNS} FROM {source}{where.text()} ORDER BY {order}"
    sql += _limit(d, limit, where.parameters)
    return sql, where.parameters


def probe(spelling: Spelling, way: Way, after: PageKey | None) -> tuple[str, list[Any]]:
    """A query of how many entries `way` has from the cursor (all of a prefix), up to
    `PROBE_MAX`."""
    entries, parameters = _entries(spelling, way, after if way.kind != "prefix" else None, None)
    parameters.append(PROBE_MAX)
    return f"SELECT count(*) FROM ({entries} LIMIT {spelling.dialect.param}) c", parameters


def ways(source_filter: SourceFilter) -> list[Way]:
    """The indexes that answer one filter each: the tags, the type, the prefix."""
    found = [Way("tag", tag) for tag in dict.fromkeys(source_filter.tags)]
    if source_filter.source_type is not None:
        found.append(Way("type", source_filter.source_type))
    if source_filter.name_prefix:
        found.append(Way("prefix", source_filter.name_prefix))
    return found


def ordered(source_filter: SourceFilter) -> Way:
    """The ordered index a window walks: a tag, else the type, else the listing order."""
    return next((way for way in ways(source_filter) if way.kind != "prefix"), ALL)


def direct(source_filter: SourceFilter, limit: int | None) -> Way | None:
    """The way that needs no choosing, if there is one: no filter, one tag or the type alone
    (each walked in order, at the cost of the page), or a whole listing (which reads every
    match: a prefix reads no other row)."""
    found = ways(source_filter)
    if not found:
        return ALL
    if limit is None:
        return next((way for way in found if way.kind == "prefix"), found[0])
    if len(found) == 1 and found[0].kind != "prefix":
        return found[0]
    return None


def window(limit: int) -> int:
    """Entries a window walks for a page of `limit`."""
    return max(WINDOW_MIN, WINDOW_PER_ROW * limit)


def rarest(found: Sequence[Way], counts: Sequence[int], source_filter: SourceFilter) -> Way:
    """The way to walk once each filter's matches are counted (up to `PROBE_MAX`)."""
    count, way = min(zip(counts, found, strict=True), key=lambda pair: pair[0])
    if count < PROBE_MAX:
        return way
    return ordered(source_filter)


Query = tuple[str, list[Any]]
Rows = list[tuple[Any, ...]]


def page_rows(
    spelling: Spelling, source_filter: SourceFilter, limit: int | None, after: PageKey | None
) -> Generator[Query, Rows, Rows]:
    """The rows of a page (at most `limit + 1`, in listing order), as a sans-IO generator: it
    yields each query to run and is sent its rows, so a blocking and an asyncio store share it."""
    way = direct(source_filter, limit)
    if way is None:
        assert limit is not None  # a whole listing is always direct
        rows = yield walk(
            spelling, ordered(source_filter), source_filter, limit, after, window(limit)
        )
        if len(rows) > limit:
            return rows
        found = ways(source_filter)
        counts = []
        for candidate in found:
            counts.append(int((yield probe(spelling, candidate, after))[0][0]))
        way = rarest(found, counts, source_filter)
    return (yield walk(spelling, way, source_filter, limit, after))


def whole_listing(spelling: Spelling, source_filter: SourceFilter) -> Query:
    """The query of every matching source in listing order (read a chunk at a time)."""
    way = direct(source_filter, None)
    assert way is not None
    return walk(spelling, way, source_filter, None, None)
