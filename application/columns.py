"""Use cases on columns across sources: find the sources whose newest snapshot has a column."""

from __future__ import annotations

from typing import Protocol, TypeAlias

import attrs

from application.sources import PagedListing, PageQuery, guarded
from domain.columns import ColumnFilter, ColumnKey, ColumnPage
from domain.keys import Scope

COLUMN_LIMIT_DEFAULT = 100
"""The page a search answers when no `limit` is asked: a common name can match every source."""


class ColumnIndex(Protocol):
    """The columns of each source's newest snapshot, kept by the store in the transaction that
    stores the snapshot (or removes the source), and indexed on the case-folded name: a search
    reads the index, never the histories.

    Awaiting a method never blocks the event loop; a read sees every change committed before it
    began.
    """

    async def find(
        self, column_filter: ColumnFilter, limit: int, after: ColumnKey | None = None
    ) -> ColumnPage:
        """Matching columns in `ColumnKey` order, at most `limit`, strictly after `after`; each
        with its source's current name and type and its snapshot's time."""


FindColumnsQuery: TypeAlias = PageQuery[ColumnFilter, ColumnKey]
"""Find columns by name and/or type, one page at a time (no `limit`: `COLUMN_LIMIT_DEFAULT`;
no filter matches nothing)."""


@guarded(Scope.READ)
@attrs.frozen
class FindColumns(PagedListing[ColumnFilter, ColumnKey, ColumnPage]):
    """Which sources have a column so named (or so typed), for keys with `sources:read`."""

    _columns: ColumnIndex

    async def _page(self, query: FindColumnsQuery) -> ColumnPage:
        if query.filter is None or not query.filter.can_match:
            return ColumnPage(())
        limit = COLUMN_LIMIT_DEFAULT if query.limit is None else query.limit
        return await self._columns.find(query.filter, limit, query.after)
