"""Fingerprints, the diff between column lists and the breaking rule, as properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.history import ChangeKind, ColumnChange, apply, diff, fingerprint
from domain.sources import Column

TYPES = ["integer", "bigint", "text", "numeric", "date", "boolean"]

columns_strategy = st.lists(
    st.builds(
        Column,
        name=st.sampled_from("abcdefgh") | st.text(min_size=1, max_size=4),
        type=st.sampled_from(TYPES),
        nullable=st.sampled_from([None, True, False]),
    ),
    max_size=8,
    unique_by=lambda c: c.name,
).map(tuple)


def is_breaking_by_the_spec(change: ColumnChange) -> bool:
    if change.change in (ChangeKind.REMOVED, ChangeKind.TYPE_CHANGED):
        return True
    if change.change is ChangeKind.NULLABILITY_CHANGED:
        assert change.before is not None
        assert change.after is not None
        return change.before.nullable is False and change.after.nullable is True
    return False


@given(columns_strategy)
def test_the_diff_of_a_list_with_itself_is_empty(columns: tuple[Column, ...]) -> None:
    assert diff(columns, columns) == ()


@given(columns_strategy, columns_strategy)
def test_applying_the_diff_of_x_to_y_to_x_gives_y(
    x: tuple[Column, ...], y: tuple[Column, ...]
) -> None:
    assert apply(x, diff(x, y)) == y


@given(columns_strategy, columns_strategy)
def test_the_diff_is_empty_exactly_when_the_fingerprints_are_equal(
    x: tuple[Column, ...], y: tuple[Column, ...]
) -> None:
    assert (diff(x, y) == ()) == (x == y) == (fingerprint(x) == fingerprint(y))


@given(columns_strategy, columns_strategy)
def test_a_change_is_breaking_exactly_as_the_spec_lists(
    x: tuple[Column, ...], y: tuple[Column, ...]
) -> None:
    for change in diff(x, y):
        assert change.breaking == is_breaking_by_the_spec(change)
        assert (change.before is None) == (change.change is ChangeKind.ADDED)
        assert (change.after is None) == (change.change is ChangeKind.REMOVED)


@given(columns_strategy, st.data())
def test_adding_and_removing_columns_moves_nothing(
    x: tuple[Column, ...], data: st.DataObject
) -> None:
    kept = [c for c in x if data.draw(st.booleans())]
    extra = Column("new column", "text", True)
    at = data.draw(st.integers(0, len(kept)))
    y = (*kept[:at], extra, *kept[at:])
    kinds = [c.change for c in diff(x, y)]
    assert kinds.count(ChangeKind.ADDED) == 1
    assert kinds.count(ChangeKind.REMOVED) == len(x) - len(kept)
    assert ChangeKind.MOVED not in kinds


def test_the_fewest_columns_are_called_moved() -> None:
    a, b, c, d = (Column(n, "integer", False) for n in "abcd")
    assert [(ch.column, ch.change) for ch in diff((a, b, c, d), (b, c, d, a))] == [
        ("a", ChangeKind.MOVED)
    ]
    swapped = diff((a, b), (b, a))
    assert len(swapped) == 1
    assert swapped[0].change is ChangeKind.MOVED
    assert not swapped[0].breaking


def test_a_retyped_column_made_nullable_is_two_breaking_changes() -> None:
    before = (Column("id", "integer", False),)
    after = (Column("id", "bigint", True),)
    changes = diff(before, after)
    assert [(c.change, c.breaking) for c in changes] == [
        (ChangeKind.TYPE_CHANGED, True),
        (ChangeKind.NULLABILITY_CHANGED, True),
    ]
    assert all(c.before == before[0] and c.after == after[0] for c in changes)


def test_nullability_that_tightens_or_becomes_known_does_not_break() -> None:
    for old, new in ((True, False), (None, True), (None, False), (False, None), (True, None)):
        (change,) = diff((Column("x", "text", old),), (Column("x", "text", new),))
        assert change.change is ChangeKind.NULLABILITY_CHANGED
        assert not change.breaking


def test_added_is_not_breaking_and_removed_is() -> None:
    a, b = Column("a", "text", True), Column("b", "text", False)
    assert [(c.change, c.breaking) for c in diff((a,), (a, b))] == [(ChangeKind.ADDED, False)]
    assert [(c.change, c.breaking) for c in diff((a, b), (a,))] == [(ChangeKind.REMOVED, True)]


def test_the_fingerprint_covers_order_name_type_and_nullability() -> None:
    base = (Column("a", "integer", False), Column("b", "text", True))
    variants = [
        tuple(reversed(base)),
        (Column("A", "integer", False), base[1]),
        (Column("a", "bigint", False), base[1]),
        (Column("a", "integer", None), base[1]),
        (Column("a", "integer", True), base[1]),
        base[:1],
    ]
    prints = {fingerprint(v) for v in [base, *variants]}
    assert len(prints) == len(variants) + 1
    assert fingerprint(base).startswith("sha256:")
    assert len(fingerprint(base)) == len("sha256:") + 64
    assert fingerprint(list(base)) == fingerprint(tuple(base))


def test_repeated_names_are_told_apart_by_occurrence() -> None:
    first, second = Column("x", "integer", None), Column("x", "text", None)
    assert diff((first, second), (first, second)) == ()
    changes = diff((first, second), (first,))
    assert [(c.change, c.before) for c in changes] == [(ChangeKind.REMOVED, second)]
