"""Schema history: fingerprints of column lists, the diff between two of them, what breaks."""

from __future__ import annotations

import bisect
import enum
import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import attrs

from domain.sources import Column


def fingerprint(columns: Iterable[Column]) -> str:
    """`sha256:<hex>` of the ordered columns (name, type, nullable): equal columns, equal print."""
    canonical = json.dumps(
        [[c.name, c.type, c.nullable] for c in columns], separators=(",", ":"), ensure_ascii=True
    )
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


class ChangeKind(enum.StrEnum):
    """How one column differs between two snapshots."""

    ADDED = "added"
    REMOVED = "removed"
    TYPE_CHANGED = "type_changed"
    NULLABILITY_CHANGED = "nullability_changed"
    MOVED = "moved"


@attrs.frozen
class ColumnChange:
    """One change to one column; `position` is its index in the newer list (None if removed)."""

    column: str
    change: ChangeKind
    before: Column | None
    after: Column | None
    position: int | None = None

    @property
    def breaking(self) -> bool:
        """Whether consumers of the older columns may break: removed, retyped, made nullable."""
        if self.change in (ChangeKind.REMOVED, ChangeKind.TYPE_CHANGED):
            return True
        return (
            self.change is ChangeKind.NULLABILITY_CHANGED
            and self.before is not None
            and self.after is not None
            and self.before.nullable is False
            and self.after.nullable is True
        )


# A column is known by its name and, should a list repeat a name, which occurrence it is.
_Key = tuple[str, int]


def _keyed(columns: Sequence[Column]) -> list[tuple[_Key, Column]]:
    seen: dict[str, int] = {}
    keyed = []
    for column in columns:
        n = seen[column.name] = seen.get(column.name, -1) + 1
        keyed.append(((column.name, n), column))
    return keyed


def _stay_in_order(indexes: Sequence[int]) -> set[int]:
    """Positions (into `indexes`) of a longest strictly increasing subsequence."""
    tails: list[int] = []  # smallest tail value of an increasing run of each length
    tail_at: list[int] = []  # where in `indexes` that tail is
    parent = [-1] * len(indexes)
    for i, value in enumerate(indexes):
        length = bisect.bisect_left(tails, value)
        if length == len(tails):
            tails.append(value)
            tail_at.append(i)
        else:
            tails[length] = value
            tail_at[length] = i
        parent[i] = tail_at[length - 1] if length else -1
    kept: set[int] = set()
    i = tail_at[-1] if tail_at else -1
    while i != -1:
        kept.add(i)
        i = parent[i]
    return kept


def diff(before: Sequence[Column], after: Sequence[Column]) -> tuple[ColumnChange, ...]:
    """The changes that turn `before` into `after`: removed ones first, then in `after`'s order.

    A column is matched by name. Of the columns in both, the fewest are called `moved` that
    leave the others in their old relative order; adding or removing a column moves nothing.
    """
    old = _keyed(before)
    new = _keyed(after)
    old_by_key = {key: (i, column) for i, (key, column) in enumerate(old)}
    new_keys = {key for key, _ in new}
    changes = [
        ColumnChange(column.name, ChangeKind.REMOVED, column, None)
        for key, column in old
        if key not in new_keys
    ]
    common = [(p, key) for p, (key, _) in enumerate(new) if key in old_by_key]
    in_order = _stay_in_order([old_by_key[key][0] for _, key in common])
    moved = {key for n, (_, key) in enumerate(common) if n not in in_order}
    for position, (key, column) in enumerate(new):
        if key not in old_by_key:
            changes.append(ColumnChange(column.name, ChangeKind.ADDED, None, column, position))
            continue
        was = old_by_key[key][1]
        if key in moved:
            changes.append(ColumnChange(column.name, ChangeKind.MOVED, was, column, position))
        if was.type != column.type:
            changes.append(
                ColumnChange(column.name, ChangeKind.TYPE_CHANGED, was, column, position)
            )
        if was.nullable != column.nullable:
            changes.append(
                ColumnChange(column.name, ChangeKind.NULLABILITY_CHANGED, was, column, position)
            )
    return tuple(changes)


def apply(columns: Sequence[Column], changes: Iterable[ColumnChange]) -> tuple[Column, ...]:
    """The columns after these changes: `apply(x, diff(x, y)) == y` for lists of unique names."""
    changes = tuple(changes)
    removed = {c.column for c in changes if c.change is ChangeKind.REMOVED}
    placed: dict[int, Column] = {}
    replaced: dict[str, Column] = {}
    for change in changes:
        if change.after is None or change.position is None:
            continue
        if change.change in (ChangeKind.ADDED, ChangeKind.MOVED):
            placed[change.position] = change.after
        replaced[change.after.name] = change.after
    moved = {c.column for c in changes if c.change is ChangeKind.MOVED}
    staying = iter(
        replaced.get(column.name, column)
        for column in columns
        if column.name not in removed and column.name not in moved
    )
    size = len(columns) - len(removed) + sum(c.change is ChangeKind.ADDED for c in changes)
    return tuple(placed[i] if i in placed else next(staying) for i in range(size))


@attrs.frozen
class SchemaSnapshot:
    """A source's columns as one inspection saw them; `sequence` counts 1, 2, ... per source."""

    source_id: UUID
    sequence: int
    fingerprint: str
    columns: tuple[Column, ...]
    observed_at: datetime


@attrs.frozen
class SnapshotHead:
    """Which snapshot of a source is the newest, and its fingerprint."""

    sequence: int
    fingerprint: str


@attrs.frozen
class HistoryEntry:
    """A snapshot and its changes against the snapshot before it (none for the first)."""

    snapshot: SchemaSnapshot
    changes: tuple[ColumnChange, ...]

    @property
    def breaking(self) -> bool:
        """Whether any of its changes is breaking."""
        return any(change.breaking for change in self.changes)


@attrs.frozen
class HistoryPage:
    """Snapshots newest first, each with its changes, and where the next page starts."""

    entries: tuple[HistoryEntry, ...]
    next_before: int | None = None


def history_page(snapshots: Sequence[SchemaSnapshot], limit: int) -> HistoryPage:
    """A page from at most `limit + 1` snapshots newest first: the extra one is there to diff."""
    entries = []
    for i, snapshot in enumerate(snapshots[:limit]):
        older = snapshots[i + 1] if i + 1 < len(snapshots) else None
        changes = diff(older.columns, snapshot.columns) if older is not None else ()
        entries.append(HistoryEntry(snapshot, changes))
    more = len(snapshots) > limit
    return HistoryPage(tuple(entries), snapshots[limit - 1].sequence if more else None)
