"""Column patterns and the search use case, on the in-memory index."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.storage.columns import memory_column_index
from adapters.storage.memory import MemorySnapshotRepository, MemorySourceRepository
from application.columns import FindColumns, FindColumnsQuery
from domain.columns import ColumnFilter, ColumnPattern, prefix_end
from domain.errors import InvalidInput, PermissionDenied
from domain.history import SchemaSnapshot, fingerprint
from domain.keys import Principal, Scope
from domain.sources import Column
from tests.builders import make_source
from tests.helpers import run

READER = Principal("tdbk_r", frozenset({Scope.READ}))


def pattern(text: str) -> ColumnPattern:
    return ColumnPattern.parse("name", text)


def test_a_pattern_is_folded_and_its_sql_form_escapes_what_like_would_read() -> None:
    p = pattern("Cust_%\\*")
    assert p.text == "cust_%\\*"
    assert p.like() == "cust\\_\\%\\\\%"
    assert p.prefix == "cust_%\\"
    assert not p.exact
    assert pattern("ID").exact
    for bad in ("", "x" * 201):
        with pytest.raises(InvalidInput) as raised:
            pattern(bad)
        assert raised.value.errors[0].field == "name"


@given(st.text(min_size=1, max_size=5), st.text(max_size=5))
def test_prefix_end_bounds_every_text_with_the_prefix(prefix: str, rest: str) -> None:
    end = prefix_end(prefix)
    assert end is None or prefix + rest < end
    assert end is None or prefix <= end


@given(st.text(alphabet="ab*%_", min_size=1, max_size=6), st.text(alphabet="abAB%_", max_size=6))
def test_matching_is_a_case_insensitive_glob_of_star_alone(raw: str, name: str) -> None:
    import fnmatch

    expected = fnmatch.fnmatchcase(name.lower(), raw.lower())
    assert pattern(raw).matches(name) == expected


def test_the_use_case_checks_scope_and_limit_and_finds_nothing_for_a_nul() -> None:
    sources = MemorySourceRepository()
    snapshots = MemorySnapshotRepository(sources)
    find = FindColumns(memory_column_index(sources, snapshots))
    source = make_source("orders")
    columns = (Column("id", "integer"),)
    run(sources.add(source))
    at = datetime(2026, 5, 1, tzinfo=UTC)
    run(snapshots.append(SchemaSnapshot(source.id, 1, fingerprint(columns), columns, at)))
    by_id = ColumnFilter(pattern("ID"))
    assert [m.column.name for m in run(find(FindColumnsQuery(READER, by_id))).matches] == ["id"]
    with pytest.raises(PermissionDenied):
        run(find(FindColumnsQuery(Principal("tdbk_w", frozenset({Scope.WRITE})), by_id)))
    with pytest.raises(InvalidInput):
        run(find(FindColumnsQuery(READER, by_id, limit=1001)))
    assert run(find(FindColumnsQuery(READER, ColumnFilter(pattern("i\x00d"))))).matches == ()
    run(sources.remove(source.id))
    assert run(find(FindColumnsQuery(READER, by_id))).matches == ()
