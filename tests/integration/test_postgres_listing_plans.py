"""PostgreSQL walks the index each listing query names, with no statistics gathered (a store
filled and never analysed): a tag the `source_tags` key, a type `sources_by_type`, a prefix a
range of the name index, no filter the listing order; never a scan of every source, a hash or a
merge join, nor the listing order walked for a filter that has an index of its own.

The twin of `test_sqlite_listing_plans.py`; PostgreSQL takes no hints, so what is checked is
the plan each query gets inside the transaction the store reads a page in (`INDEX_WALKS`)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from adapters.storage.postgres import INDEX_WALKS, POSTGRES_WAYS, PostgresDatabase
from adapters.storage.source_query import Way, probe, walk
from tests.contract.stores import PostgresStores
from tests.helpers import run
from tests.integration.test_sqlite_listing_plans import AFTER, EVERY

pytestmark = pytest.mark.postgres

EXPECTED = {
    "all": "sources_by_registration",
    "tag": "source_tags_pkey",
    "type": "sources_by_type",
    "prefix": "sources_name_unique",
}
SOURCES = 20_000


@pytest.fixture(scope="module")
def unanalysed(postgres_url: str) -> Iterator[str]:
    """A store of 20,000 sources (one in ten tagged `a`, one in a hundred a CSV file, names
    `src-...`), filled in SQL and never analysed."""
    stores = PostgresStores(postgres_url)
    try:
        with stores.schema_url() as url:
            db = PostgresDatabase(url)
            try:
                run(db.upgrade())
            finally:
                db.close()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    """
                    INSERT INTO sources (id, name, source_type, connection, description, tags,
                        registered_by, registered_at, status, version, updated_at, updated_by)
                    SELECT gen_random_uuid(), 'src-' || lpad(i::text, 8, '0'),
                        CASE WHEN mod(i, 100) = 0 THEN 'csv' ELSE 'postgres' END, '{}', '',
                        CASE WHEN mod(i, 10) = 0 THEN ARRAY['a', 'common'] ELSE ARRAY['common'] END,
                        'tdb', t, 'active', 1, t, 'tdb'
                    FROM generate_series(1, %s) AS i,
                        LATERAL (SELECT timestamptz '2026-05-01' + i * interval '1 second') AS m(t)
                    """,
                    [SOURCES],
                )
                analysed = conn.execute(
                    "SELECT count(*) FROM pg_stats WHERE tablename IN ('sources', 'source_tags')"
                ).fetchone()
                assert analysed == (0,), "the store was analysed: the test would prove nothing"
            yield url
    finally:
        stores.close()


def _plan(url: str, sql: str, parameters: list[object]) -> str:
    with psycopg.connect(url) as conn:  # a transaction, as the store reads a page in
        conn.execute(INDEX_WALKS)
        rows = conn.execute("EXPLAIN " + sql, parameters).fetchall()
        conn.rollback()
    return "\n".join(row[0] for row in rows)


def _reads_through(plan: str) -> bool:
    return any(step in plan for step in ("Seq Scan", "Bitmap", "Hash", "Merge Join"))


@pytest.mark.parametrize(
    "way", [Way("all"), Way("tag", "a"), Way("type", "csv"), Way("prefix", "src-0000001")]
)
def test_each_way_walks_its_index(unanalysed: str, way: Way) -> None:
    for after in (None, AFTER):
        for window in (None, 200) if way.kind != "prefix" else (None,):
            sql, parameters = walk(POSTGRES_WAYS, way, EVERY, 100, after, window)
            plan = _plan(unanalysed, sql, parameters)
            assert EXPECTED[way.kind] in plan, plan
            assert not _reads_through(plan), plan
            if way.kind != "all" and window is None:
                assert "sources_by_registration" not in plan, plan
        if way.kind == "all":
            continue  # no filter is counted: the listing order is walked without
        sql, parameters = probe(POSTGRES_WAYS, way, after)
        plan = _plan(unanalysed, sql, parameters)
        assert EXPECTED[way.kind] in plan, plan
        assert not _reads_through(plan), plan
