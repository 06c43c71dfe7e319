"""A source's live schema and its history: the snapshots as a timeline, breaking changes
marked, and any two snapshots side by side.

What changed and whether it breaks is the domain's answer (`domain.history.diff` and
`ColumnChange.breaking`, as the API's history gives it); this module only lays it out."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import attrs
from litestar import get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from application.history import GetSchemaHistory, InspectSchema, InspectSchemaQuery
from application.history import SchemaHistoryQuery as HistoryQuery
from domain.errors import DomainError, InvalidInput
from domain.history import ColumnChange, SchemaSnapshot, diff
from domain.sources import Column, parse_source_id
from entrypoints.runtime.outcomes import outcome_of
from entrypoints.ui.pages import UiRequest, page, ui_of
from entrypoints.ui.sources import source_of

TIMELINE_SIZE = 20


@get("/sources/{source_id:str}/schema", opt={"scope": InspectSchema.required_scope})
async def schema_page(request: UiRequest, source_id: FromPath[str]) -> Template:
    source = await source_of(request, source_id)
    query = InspectSchemaQuery(request.user, source.id)
    try:
        schema = await ui_of(request).use_case("inspect_schema")(query)
    except DomainError as exc:
        # The backend cannot answer: the page says why, with the API's status and reason.
        outcome = outcome_of(exc)
        return page(
            request,
            "schema.html",
            status=outcome.status,
            source=source,
            outcome=outcome,
            tab="schema",
        )
    return page(request, "schema.html", source=source, schema=schema, tab="schema")


@attrs.frozen
class DiffRow:
    """One line of a side-by-side diff: the column before and after (None: not there), what
    changed, and whether that breaks (the domain's verdict)."""

    before: Column | None
    after: Column | None
    changes: tuple[ColumnChange, ...]

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)


def diff_rows(older: Sequence[Column], newer: Sequence[Column]) -> list[DiffRow]:
    """The rows of a side-by-side diff: removed columns first, then the newer columns in order,
    each beside the column of that name before it."""
    changes = diff(older, newer)
    rows = [DiffRow(c.before, None, (c,)) for c in changes if c.after is None]
    by_position: dict[int, list[ColumnChange]] = {}
    for change in changes:
        if change.position is not None:
            by_position.setdefault(change.position, []).append(change)
    seen: dict[str, int] = {}
    for position, column in enumerate(newer):
        n = seen[column.name] = seen.get(column.name, -1) + 1
        matches = [c for c in older if c.name == column.name]
        before = matches[n] if n < len(matches) else None
        rows.append(DiffRow(before, column, tuple(by_position.get(position, ()))))
    return rows


async def _snapshot(
    request: UiRequest, source_id: UUID, sequence: int, field: str
) -> SchemaSnapshot:
    """Snapshot number `sequence` of the source (the page of one that starts there)."""
    query = HistoryQuery(request.user, source_id, limit=1, before=sequence + 1)
    found = await ui_of(request).use_case("schema_history")(query)
    if not found.entries or found.entries[0].snapshot.sequence != sequence:
        raise InvalidInput.single(field, "is not a snapshot of this source")
    snapshot: SchemaSnapshot = found.entries[0].snapshot
    return snapshot


def _sequence(text: str, field: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 2**62:
        raise InvalidInput.single(field, "must be a snapshot number")
    return int(text)


@get("/sources/{source_id:str}/history", opt={"scope": GetSchemaHistory.required_scope})
async def history_page(
    request: UiRequest,
    source_id: FromPath[str],
    before: FromQuery[str] = "",
    a: FromQuery[str] = "",
    b: FromQuery[str] = "",
) -> Template:
    ident = parse_source_id(source_id)
    source = await source_of(request, source_id)
    start = _sequence(before, "before") if before else None
    query = HistoryQuery(request.user, ident, limit=TIMELINE_SIZE, before=start)
    timeline = await ui_of(request).use_case("schema_history")(query)
    compared = None
    if a or b:
        older = await _snapshot(request, ident, _sequence(a, "a"), "a")
        newer = await _snapshot(request, ident, _sequence(b, "b"), "b")
        if older.sequence > newer.sequence:
            older, newer = newer, older
        compared = (older, newer, diff_rows(older.columns, newer.columns))
    return page(
        request,
        "history.html",
        source=source,
        timeline=timeline.entries,
        next_before=timeline.next_before,
        compared=compared,
        picked=(a, b),
        tab="history",
    )


HANDLERS = [schema_page, history_page]
