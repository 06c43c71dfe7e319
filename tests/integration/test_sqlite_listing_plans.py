"""SQLite walks the index each listing query names, whatever its statistics: a tag the
`source_tags` key, a type `sources_by_type`, a prefix a range of the name index, no filter the
listing order; never a scan of every source."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.storage.source_query import Way, probe, walk
from adapters.storage.sqlite import SQLITE_WAYS, SqliteDatabase
from domain.sources import PageKey, SourceFilter

EVERY = SourceFilter(tags=("a", "b"), source_type="csv", name_prefix="x")
AFTER = PageKey(datetime(2026, 5, 1, tzinfo=UTC), uuid4())
EXPECTED = {
    "all": "INDEX sources_by_registration",
    "tag": "source_tags USING PRIMARY KEY (tag=?",
    "type": "INDEX sources_by_type (source_type=?",
    "prefix": "INDEX sqlite_autoindex_sources_2 (name>? AND name<?)",
}


def _scans_every_source(plan: list[str]) -> bool:
    # (`SCAN w`, `SCAN c`: the rows of a window or a count as they come, not a table.)
    return any(
        step.split()[:2] in (["SCAN", "sources"], ["SCAN", "s"]) and "USING" not in step
        for step in plan
    )


@pytest.mark.parametrize(
    "way", [Way("all"), Way("tag", "a"), Way("type", "csv"), Way("prefix", "x")]
)
def test_each_way_walks_its_index(tmp_path: Path, way: Way) -> None:
    db = SqliteDatabase(tmp_path / "plans.db")
    try:
        db.migrate()
        for after in (None, AFTER):
            for window in (None, 200) if way.kind != "prefix" else (None,):
                sql, parameters = walk(SQLITE_WAYS, way, EVERY, 100, after, window)
                plan = [row[3] for row in db.read_rows("EXPLAIN QUERY PLAN " + sql, parameters)]
                assert any(EXPECTED[way.kind] in step for step in plan), plan
                assert not _scans_every_source(plan), plan
            sql, parameters = probe(SQLITE_WAYS, way, after)
            plan = [row[3] for row in db.read_rows("EXPLAIN QUERY PLAN " + sql, parameters)]
            assert not _scans_every_source(plan), plan
    finally:
        db.close()
