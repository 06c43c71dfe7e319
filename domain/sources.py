"""Data sources, their column schemas and the invariants their fields keep."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs

from domain.errors import FieldError, InvalidInput, SourceNotFound

if TYPE_CHECKING:
    from domain.history import HistoryEntry

NAME_MAX = 100
DESCRIPTION_MAX = 500
TAG_MAX = 100
TAGS_MAX = 50
MASK = "********"
# The most columns a source's schema may have: PostgreSQL's own limit on a table's. A wider
# answer, which no table can give, is refused (`too_many_columns`) rather than cut short.
MAX_COLUMNS = 1600


# Unicode's control (Cc) and surrogate (Cs) characters, as one character class.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# PostgreSQL text cannot hold NUL, and no store can encode a lone surrogate as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


# Bidirectional controls (embeddings, overrides, isolates and marks): they make a text display
# in another order than it is stored, so two names that look alike may differ (Trojan Source).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Letters that display as nothing: Hangul fillers, and the blank braille pattern (a symbol).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def normalized(text: str) -> str:
    """The text in Unicode NFC: one spelling for what displays the same (é is one character)."""
    return unicodedata.normalize("NFC", text)


def visible(char: str) -> bool:
    """Whether the character shows: what a name needs one of."""
    # Letters, digits, punctuation and symbols show; separators, marks alone, format characters
    # (zero-width space, joiners, soft hyphen, BOM, tag characters) do not.
    return unicodedata.category(char)[0] in "LNPS" and char not in _BLANK_LETTERS


def _unstorable(text: str) -> bool:
    return _UNSTORABLE.search(text) is not None


def name_errors(name: object, field: str = "name") -> list[FieldError]:
    """Problems with a source name (checked in NFC): 1-100 characters, at least one of them
    visible, no control or bidirectional control characters."""
    if not isinstance(name, str):
        return [FieldError(field, "must be a string")]
    if _unstorable(name):
        return [FieldError(field, "must not contain control characters")]
    name = normalized(name)
    if not 1 <= len(name) <= NAME_MAX:
        return [FieldError(field, f"must be 1 to {NAME_MAX} characters long")]
    if not name.strip():
        return [FieldError(field, "must not be blank")]
    if _has_control(name):
        return [FieldError(field, "must not contain control characters")]
    if _BIDI.search(name):
        return [FieldError(field, "must not contain bidirectional control characters")]
    if not any(visible(char) for char in name):
        return [FieldError(field, "must contain a visible character")]
    return []


def description_errors(description: object) -> list[FieldError]:
    """Problems with a description: a string of at most 500 characters."""
    if not isinstance(description, str):
        return [FieldError("description", "must be a string")]
    if len(description) > DESCRIPTION_MAX:
        return [FieldError("description", f"must be at most {DESCRIPTION_MAX} characters long")]
    if _unstorable(description):
        return [FieldError("description", "must not contain NUL or unpaired surrogate characters")]
    return []


def tags_errors(tags: object) -> list[FieldError]:
    """Problems with tags: at most 50 distinct strings (in NFC) of 1-100 characters each, with
    no control or bidirectional control characters. A repeated tag is refused, not dropped: a
    client that sends one has a bug worth telling it about."""
    if not isinstance(tags, (list, tuple)):
        return [FieldError("tags", "must be an array of strings")]
    errors = []
    if len(tags) > TAGS_MAX:
        errors.append(FieldError("tags", f"must hold at most {TAGS_MAX} tags"))
    seen: dict[str, int] = {}
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or _unstorable(tag):
            errors.append(
                FieldError(f"tags[{i}]", f"must be a string of 1 to {TAG_MAX} characters")
            )
            continue
        tag = normalized(tag)
        if not 1 <= len(tag) <= TAG_MAX:
            errors.append(
                FieldError(f"tags[{i}]", f"must be a string of 1 to {TAG_MAX} characters")
            )
        elif _has_control(tag) or _BIDI.search(tag):
            errors.append(FieldError(f"tags[{i}]", "must not contain control characters"))
        elif tag in seen:
            errors.append(FieldError(f"tags[{i}]", f"repeats tags[{seen[tag]}]"))
        else:
            seen[tag] = i
    return errors


def _check(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidInput(errors)


def parse_source_id(raw: str) -> UUID:
    """The id a caller names; anything that is not a UUID names no source."""
    try:
        return UUID(raw)
    except ValueError:
        raise SourceNotFound(raw) from None


@attrs.frozen
class IfMatch:
    """An `If-Match` condition: the change applies only at one of these versions (None: any)."""

    versions: frozenset[int] | None = None

    def admits(self, version: int) -> bool:
        """Whether a source at this version meets the condition."""
        return self.versions is None or version in self.versions


_ETAG = re.compile(r'\s*"([1-9][0-9]{0,17})"\s*')
# A weak entity tag (RFC 9110 8.8.3): If-Match compares strongly, so it never matches.
_WEAK_ETAG = re.compile(r'\s*W/"[\x21\x23-\x7e]*"\s*')


def parse_if_match(raw: str) -> IfMatch:
    """`*` or a comma-separated list of quoted versions (`"3"`), where a weak tag (`W/"3"`)
    names no version; `InvalidInput` otherwise."""
    if raw.strip() == "*":
        return IfMatch()
    versions = []
    for part in raw.split(","):
        if _WEAK_ETAG.fullmatch(part):
            continue
        match = _ETAG.fullmatch(part)
        if match is None:
            raise InvalidInput.single("If-Match", 'must be * or quoted versions such as "3"')
        versions.append(int(match.group(1)))
    return IfMatch(frozenset(versions))


def etag(version: int) -> str:
    """The entity tag of a source at this version: `"<version>"`."""
    return f'"{version}"'


@attrs.frozen
class SourceName:
    """A source's unique, human-readable name."""

    value: str = attrs.field(converter=normalized)

    @value.validator
    def _valid(self, _: attrs.Attribute[str], value: str) -> None:
        _check(name_errors(value))

    def __str__(self) -> str:
        return self.value

    @classmethod
    def restored(cls, value: str) -> SourceName:
        """A name as a store kept it: checked and normalised when it was stored."""
        name = object.__new__(cls)
        object.__setattr__(name, "value", value)
        return name


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _valid_description(_: object, __: object, value: str) -> None:
    _check(description_errors(value))


def _valid_tags(_: object, __: object, value: tuple[str, ...]) -> None:
    _check(tags_errors(value))


def _tags(values: Any) -> tuple[str, ...]:
    return tuple(normalized(v) if isinstance(v, str) else v for v in values)


# Not slotted: a source is copied whole on every GET (as stored, then as shown), and copying an
# instance dict is one call where twelve slots are twelve.
@attrs.frozen(slots=False)
class Source:
    """A registered data source, as the store keeps it (secret connection fields encrypted)."""

    id: UUID
    name: SourceName
    source_type: str
    connection: Mapping[str, Any] = attrs.field(converter=_freeze)
    description: str = attrs.field(validator=_valid_description)
    tags: tuple[str, ...] = attrs.field(converter=_tags, validator=_valid_tags)
    registered_by: str
    registered_at: datetime
    status: str = "active"
    version: int = 1
    """1 at registration, one more at each change."""
    updated_at: datetime = attrs.field(
        default=attrs.Factory(lambda self: self.registered_at, takes_self=True)
    )
    updated_by: str = attrs.field(
        default=attrs.Factory(lambda self: self.registered_by, takes_self=True)
    )

    @classmethod
    def restored(cls, **fields: Any) -> Source:
        """A source as a store kept it, from every field's value.

        It was checked when it was stored, so it is not checked again: reading back is on the
        path of every GET, and a rule made stricter since then must not make it unreadable.
        """
        if fields.keys() != _FIELDS:
            raise TypeError(f"a source has the fields {sorted(_FIELDS)}, got {sorted(fields)}")
        source = object.__new__(cls)
        state = vars(source)
        state.update(fields)
        state["connection"] = _freeze(fields["connection"])
        return source

    def with_connection(self, connection: Mapping[str, Any]) -> Source:
        """This source with another connection object (as shown to a caller, or as stored)."""
        # The other fields are this valid source's own: copy them rather than check them again.
        source = object.__new__(Source)
        state = vars(source)
        state.update(vars(self))
        state["connection"] = _freeze(connection)
        return source


_FIELDS = frozenset(f.name for f in attrs.fields(Source))


@attrs.frozen
class SourceStamp:
    """What a change shows an actor that may not read sources: which source, at which version,
    since when (a read would be refused it, so its answer holds nothing more)."""

    id: UUID
    version: int
    updated_at: datetime

    @classmethod
    def of(cls, source: Source) -> SourceStamp:
        return cls(source.id, source.version, source.updated_at)


@attrs.frozen
class SourceFilter:
    """Which sources a listing returns: all given tags, one type, a name prefix."""

    # In NFC, as the names and tags they are compared with.
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    source_type: str | None = None
    name_prefix: str | None = attrs.field(
        default=None, converter=attrs.converters.optional(normalized)
    )

    def matches(self, source: Source) -> bool:
        """Whether a source passes this filter (the reference semantics every store follows)."""
        return (
            set(self.tags) <= set(source.tags)
            and (self.source_type is None or source.source_type == self.source_type)
            and (self.name_prefix is None or source.name.value.startswith(self.name_prefix))
        )


@attrs.frozen
class PageKey:
    """A position in the oldest-first order of sources: strictly after this (time, id)."""

    registered_at: datetime
    id: UUID


def sort_key(source: Source | SourceSummary) -> tuple[datetime, UUID]:
    """The listing order: oldest first, ties broken by id."""
    return (source.registered_at, source.id)


@attrs.frozen
class SourceSummary:
    """What a listing shows of a source: everything but its connection."""

    id: UUID
    name: str
    source_type: str
    description: str
    tags: tuple[str, ...]
    registered_at: datetime

    @classmethod
    def of(cls, source: Source) -> SourceSummary:
        return cls(
            id=source.id,
            name=source.name.value,
            source_type=source.source_type,
            description=source.description,
            tags=source.tags,
            registered_at=source.registered_at,
        )


@attrs.frozen
class SourcePage:
    """One page of a listing (summaries) and the key of the page after it, if there is one."""

    sources: tuple[SourceSummary, ...]
    next_key: PageKey | None = None


@attrs.frozen
class Column:
    """One column of a live source, typed in PostgreSQL's vocabulary."""

    name: str
    type: str
    nullable: bool | None = None


@attrs.frozen
class SourceSchema:
    """The live column list of a source at the moment it was inspected.

    `recorded` is the history entry this inspection stored, if the columns had changed.
    """

    source_id: UUID
    source_name: str
    columns: tuple[Column, ...]
    inspected_at: datetime
    fingerprint: str
    recorded: HistoryEntry | None = None
