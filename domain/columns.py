"""Columns across sources: which sources' latest snapshots have a column of a name or a type.

A search answers from the newest snapshot of each source (what the last inspection that found
a change recorded), never from a live backend: it is as fresh as the history.
"""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

import attrs

from domain.errors import InvalidInput
from domain.sources import Column

PATTERN_MAX = 200
"""The longest pattern a search takes (a column name is rarely a tenth of it)."""
WILDCARD = "*"


def folded(text: str) -> str:
    """How names and types are compared: case-insensitively (`str.lower`, the same in every
    store, which keeps this form beside the original)."""
    return text.lower()


def _check(field: str, raw: str) -> str:
    if not 1 <= len(raw) <= PATTERN_MAX:
        raise InvalidInput.single(field, f"must be 1 to {PATTERN_MAX} characters long")
    return folded(raw)


@attrs.frozen
class ColumnPattern:
    """A name or type to look for: case-insensitive, `*` standing for any run of characters
    (none included); every other character stands for itself."""

    text: str

    @classmethod
    def parse(cls, field: str, raw: str) -> ColumnPattern:
        """The pattern of a client's text; `InvalidInput` naming `field` if it cannot be one."""
        return cls(_check(field, raw))

    @property
    def exact(self) -> bool:
        return WILDCARD not in self.text

    @property
    def prefix(self) -> str:
        """The text every match starts with (what an index on the folded names can seek to)."""
        return self.text.split(WILDCARD, 1)[0]

    def like(self) -> str:
        """The pattern in SQL's LIKE, escaped with a backslash (`ESCAPE '\\'`)."""
        escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return escaped.replace(WILDCARD, "%")

    def matches(self, value: str) -> bool:
        parts = (re.escape(p) for p in self.text.split(WILDCARD))
        return re.fullmatch(".*".join(parts), folded(value), re.DOTALL) is not None


def prefix_end(prefix: str) -> str | None:
    """The least text greater than every text starting with `prefix` (code point order), or
    None if there is none: the upper bound of an index range scan."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


@attrs.frozen
class ColumnFilter:
    """What a search asks for: a name (`*` for any) and perhaps a type; both must match."""

    name: ColumnPattern
    type: ColumnPattern | None = None

    def matches(self, column: Column) -> bool:
        return self.name.matches(column.name) and (
            self.type is None or self.type.matches(column.type)
        )

    @property
    def can_match(self) -> bool:
        """False for a pattern no stored name can match (a NUL, which no store holds)."""
        patterns = (self.name, self.type)
        return not any(p is not None and "\x00" in p.text for p in patterns)


@attrs.frozen(order=True)
class ColumnKey:
    """A position in a search's order: folded column name, then source id, then the column's
    place in its source (a source may have `ID` and `id`)."""

    folded_name: str
    source_id: UUID
    position: int


@attrs.frozen
class ColumnMatch:
    """One column of one source's newest snapshot that a search matched."""

    source_id: UUID
    source_name: str
    source_type: str
    column: Column
    position: int
    observed_at: datetime

    @property
    def key(self) -> ColumnKey:
        return ColumnKey(folded(self.column.name), self.source_id, self.position)


@attrs.frozen
class ColumnPage:
    """One page of matches, and the key of the page after it (None: this is the last)."""

    matches: tuple[ColumnMatch, ...]
    next_key: ColumnKey | None = None
