"""The column index every store keeps: the columns of each source's newest snapshot, one row per
column, replaced in the transaction that stores a newer snapshot and removed with the source.

A search seeks the index on the case-folded name (an equality, or the range of the pattern's
literal prefix), in the order of the search's key (folded name, source id, position), so a page
of a common name reads that page's rows and no history. Names are folded in Python
(`domain.columns.folded`), the same in every store, whatever the database's own `lower` does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

from adapters.serialization import parse_timestamp
from adapters.storage.memory import MemorySnapshotRepository, MemorySourceRepository
from domain.columns import (
    ColumnFilter,
    ColumnKey,
    ColumnMatch,
    ColumnPage,
    ColumnPattern,
    folded,
    prefix_end,
)
from domain.history import SchemaSnapshot
from domain.sources import Column

LATEST_COLUMNS = "source_id, position, folded_name, name, type, folded_type, nullable, observed_at"
"""The columns of the `latest_columns` table, in the order `column_rows` gives them."""


def column_rows(
    snapshot: SchemaSnapshot, ident: Callable[[UUID], Any], at: Callable[[datetime], Any]
) -> list[tuple[Any, ...]]:
    """The index rows of a snapshot, with its id and time as the store binds them."""
    source_id, observed_at = ident(snapshot.source_id), at(snapshot.observed_at)
    return [
        (source_id, i, folded(c.name), c.name, c.type, folded(c.type), c.nullable, observed_at)
        for i, c in enumerate(snapshot.columns)
    ]


def stored_column_rows(
    source_id: Any, columns_json: str | list[Any], observed_at: Any
) -> list[tuple[Any, ...]]:
    """The index rows of a stored snapshot (its columns as the store keeps them), for the
    migration that fills the index from the histories already stored."""
    listed = json.loads(columns_json) if isinstance(columns_json, str) else columns_json
    return [
        (
            source_id,
            i,
            folded(c["name"]),
            c["name"],
            c["type"],
            folded(c["type"]),
            c.get("nullable"),
            observed_at,
        )
        for i, c in enumerate(listed)
    ]


@attrs.frozen
class ColumnDialect:
    """How one SQL store spells the search."""

    param: str
    ident: Callable[[UUID], Any]
    """An id as this store binds it."""


def _pattern_conditions(
    d: ColumnDialect, column: str, pattern: ColumnPattern
) -> tuple[list[str], list[Any]]:
    if pattern.exact:
        return [f"c.{column} = {d.param}"], [pattern.text]
    conditions, parameters = [], []
    prefix = pattern.prefix
    if prefix:
        conditions.append(f"c.{column} >= {d.param}")
        parameters.append(prefix)
        end = prefix_end(prefix)
        if end is not None:
            conditions.append(f"c.{column} < {d.param}")
            parameters.append(end)
    conditions.append(f"c.{column} LIKE {d.param} ESCAPE '\\'")
    parameters.append(pattern.like())
    return conditions, parameters


def column_search(
    d: ColumnDialect, column_filter: ColumnFilter, limit: int, after: ColumnKey | None
) -> tuple[str, list[Any]]:
    """The query of one page of a search (one row more than `limit`, to tell if there is more)."""
    where: list[str] = []
    parameters: list[Any] = []
    for column, pattern in (
        ("folded_name", column_filter.name),
        ("folded_type", column_filter.type),
    ):
        if pattern is not None:
            conditions, values = _pattern_conditions(d, column, pattern)
            where += conditions
            parameters += values
    if after is not None:
        p = d.param
        where.append(f"(c.folded_name, c.source_id, c.position) > ({p}, {p}, {p})")
        parameters += [after.folded_name, d.ident(after.source_id), after.position]
    sql = (
        "SELECT c.source_id, s.name, s.source_type, c.name, c.type, c.nullable, c.position,"
        " c.observed_at FROM latest_columns c JOIN sources s ON s.id = c.source_id"
        f" WHERE {' AND '.join(where)}"
        f" ORDER BY c.folded_name, c.source_id, c.position LIMIT {d.param}"
    )
    return sql, [*parameters, limit + 1]


def column_page(rows: Sequence[Sequence[Any]], limit: int) -> ColumnPage:
    """A page from the rows of `column_search`."""
    matches = tuple(
        ColumnMatch(
            source_id=ident if isinstance(ident, UUID) else UUID(ident),
            source_name=source_name,
            source_type=source_type,
            column=Column(name, type_, None if nullable is None else bool(nullable)),
            position=position,
            observed_at=parse_timestamp(at),
        )
        for ident, source_name, source_type, name, type_, nullable, position, at in rows
    )
    return page_of(matches, limit)


def page_of(matches: Sequence[ColumnMatch], limit: int) -> ColumnPage:
    """A page from at most `limit + 1` matches in key order: the extra one says there is more."""
    if len(matches) <= limit:
        return ColumnPage(tuple(matches))
    return ColumnPage(tuple(matches[:limit]), matches[limit - 1].key)


class MemoryColumnIndex:
    """The index in dicts: the newest snapshot of each source, and for each folded name the
    (source, position) pairs that have it. The snapshot repository calls `replace` inside its
    append and the source repository `forget` inside its removal."""

    def __init__(self, source_of: Callable[[UUID], Any]) -> None:
        self._source_of = source_of
        self._latest: dict[UUID, SchemaSnapshot] = {}
        self._by_name: dict[str, set[tuple[UUID, int]]] = {}
        self._lock = threading.Lock()

    def replace(self, snapshot: SchemaSnapshot) -> None:
        with self._lock:
            self._drop(snapshot.source_id)
            self._latest[snapshot.source_id] = snapshot
            for i, column in enumerate(snapshot.columns):
                self._by_name.setdefault(folded(column.name), set()).add((snapshot.source_id, i))

    def forget(self, source_id: UUID) -> None:
        with self._lock:
            self._drop(source_id)

    def _drop(self, source_id: UUID) -> None:
        old = self._latest.pop(source_id, None)
        for i, column in enumerate(old.columns if old is not None else ()):
            self._by_name[folded(column.name)].discard((source_id, i))

    async def find(
        self, column_filter: ColumnFilter, limit: int, after: ColumnKey | None = None
    ) -> ColumnPage:
        with self._lock:
            names = [n for n in self._by_name if column_filter.name.matches(n)]
            found = [
                (ColumnKey(n, source_id, i), self._latest[source_id])
                for n in names
                for source_id, i in self._by_name[n]
            ]
        found.sort(key=lambda pair: pair[0])
        matches = []
        for key, snapshot in found:
            column = snapshot.columns[key.position]
            if (after is not None and key <= after) or not column_filter.matches(column):
                continue
            source = self._source_of(key.source_id)
            matches.append(
                ColumnMatch(
                    key.source_id,
                    source.name.value,
                    source.source_type,
                    column,
                    key.position,
                    snapshot.observed_at,
                )
            )
            if len(matches) > limit:
                break
        return page_of(matches, limit)


def memory_column_index(
    sources: MemorySourceRepository, snapshots: MemorySnapshotRepository
) -> MemoryColumnIndex:
    """The index of an in-memory store (`MemorySourceRepository`, `MemorySnapshotRepository`),
    kept by their appends and removals."""
    index = MemoryColumnIndex(sources.find)
    snapshots.on_append(index.replace)
    sources.on_remove(index.forget)
    return index
