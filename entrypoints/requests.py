"""The request bodies tdb takes, decoded at the edge into the use cases' typed commands.

Every entrypoint decodes what a client sent through these (the HTTP API's bodies, the CLI's
JSON files), so the same input gets the same answer whichever way it came in. Decoding checks
the body's shape: an object, no unknown or read-only field, the required ones there, each of
the JSON type it must have (null, in an optional field, means "not given"). Whether the values
make a valid source (name rules, tags, the connection as its connector declares it) is for the
use cases to say. A body that breaks the shape raises `InvalidInput` naming every field that
does, and nothing else: decoding any JSON value never fails otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from datetime import datetime
from typing import Any
from uuid import UUID

from application.sources import (
    ABSENT,
    Absent,
    CheckNewConnectionCommand,
    Connection,
    RegisterSourceCommand,
    SourcePatch,
    UpdateSourceCommand,
)
from domain.errors import FieldError, InvalidInput
from domain.events import Action, EventFilter
from domain.keys import Principal
from domain.sources import TAG_MAX, IfMatch
from entrypoints.presenters import SourceRecord

# What a merge patch may change; every other field of the record is read-only.
PATCHABLE = frozenset({"name", "description", "tags", "connection"})
READ_ONLY = frozenset(SourceRecord.__struct_fields__) - PATCHABLE
_SOURCE_FIELDS = frozenset({"name", "source_type", "connection", "description", "tags"})


def _fields(
    value: object,
    root: str,
    known: Set[str],
    required: Set[str] = frozenset(),
    read_only: Set[str] = frozenset(),
) -> Mapping[str, Any]:
    """The body as an object whose fields are all known and the required ones given."""
    if not isinstance(value, Mapping):
        raise InvalidInput.single(root, "must be a JSON object")
    given = value.keys()
    if given <= known and required <= given:
        return value
    errors = []
    for field in sorted(value, key=str):
        if field in read_only:
            errors.append(FieldError(str(field), "is read-only"))
        elif field not in known:
            errors.append(FieldError(str(field), "is not a known field"))
    errors += [FieldError(field, "is required") for field in sorted(required - set(value))]
    if errors:
        raise InvalidInput(errors)
    return value


class _Fields:
    """The typed fields of one body, and the problems found while reading them."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.errors: list[FieldError] = []

    def string(self, field: str) -> str:
        value = self.body.get(field)
        if isinstance(value, str):
            return value
        self.errors.append(FieldError(field, "must be a string"))
        return ""

    def optional_string(self, field: str) -> str | None:
        return None if self.body.get(field) is None else self.string(field)

    def tags(self) -> tuple[str, ...] | None:
        value = self.body.get("tags")
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            self.errors.append(FieldError("tags", "must be an array of strings"))
            return ()
        self.errors += [
            FieldError(f"tags[{i}]", f"must be a string of 1 to {TAG_MAX} characters")
            for i, tag in enumerate(value)
            if not isinstance(tag, str)
        ]
        return tuple(value)

    def connection(self) -> Connection:
        value = self.body.get("connection")
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            return value
        self.errors.append(FieldError("connection", "must be an object"))
        return {}

    def check(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)


class _Body:
    """Equality and a readable repr for a body's fields (a plain class, see `REQUEST_TYPES`)."""

    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"{type(self).__name__}({fields})"


def _source_fields(fields: _Fields, name_required: bool) -> dict[str, Any]:
    """The fields of a would-be source, typed, or `InvalidInput` naming those of a wrong type."""
    # In the order the use cases check their rules, so that the errors read the same way.
    decoded = {
        "name": fields.string("name") if name_required else fields.optional_string("name"),
        "description": fields.optional_string("description"),
        "tags": fields.tags(),
        "source_type": fields.string("source_type"),
        "connection": fields.connection(),
    }
    fields.check()
    return decoded


class RegisterSourceRequest(_Body):
    """Body of `POST /v1/sources` and of `tdb sources register FILE.json`: `name`, `source_type`
    and `connection` required; `description` and `tags` optional (null: not given)."""

    __slots__ = ("connection", "description", "name", "source_type", "tags")
    _REQUIRED = frozenset({"name", "source_type", "connection"})

    def __init__(
        self,
        *,
        name: str,
        source_type: str,
        connection: Connection,
        description: str = "",
        tags: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.source_type = source_type
        self.connection = connection
        self.description = description
        self.tags = tags

    @classmethod
    def decode(cls, value: object, root: str = "body") -> RegisterSourceRequest:
        """The body in `value` (a JSON value), or `InvalidInput` naming every field of the wrong
        shape (the body itself as `root` if it is not an object)."""
        fields = _Fields(_fields(value, root, _SOURCE_FIELDS, cls._REQUIRED))
        decoded = _source_fields(fields, name_required=True)
        return cls(
            name=decoded["name"],
            source_type=decoded["source_type"],
            connection=decoded["connection"],
            description=decoded["description"] or "",
            tags=decoded["tags"] or (),
        )

    def command(self, actor: Principal, verify: bool = False) -> RegisterSourceCommand:
        return RegisterSourceCommand(
            actor=actor,
            name=self.name,
            source_type=self.source_type,
            connection=self.connection,
            description=self.description,
            tags=self.tags,
            verify=verify,
        )


class ConnectionTestRequest(_Body):
    """Body of `POST /v1/sources/test`: a registration body whose `name` may be left out
    (None: not given)."""

    __slots__ = ("connection", "description", "name", "source_type", "tags")
    _REQUIRED = frozenset({"source_type", "connection"})

    def __init__(
        self,
        *,
        source_type: str,
        connection: Connection,
        name: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] | None = None,
    ) -> None:
        self.name = name
        self.source_type = source_type
        self.connection = connection
        self.description = description
        self.tags = tags

    @classmethod
    def decode(cls, value: object, root: str = "body") -> ConnectionTestRequest:
        """As `RegisterSourceRequest.decode`, `name` optional too."""
        fields = _Fields(_fields(value, root, _SOURCE_FIELDS, cls._REQUIRED))
        return cls(**_source_fields(fields, name_required=False))

    def command(self, actor: Principal) -> CheckNewConnectionCommand:
        return CheckNewConnectionCommand(
            actor=actor,
            source_type=self.source_type,
            connection=self.connection,
            name=self.name,
            description=self.description,
            tags=self.tags,
        )


def decode_patch(value: object, root: str = "body") -> SourcePatch:
    """The JSON Merge Patch in `value`: `InvalidInput` naming every read-only, unknown or
    mistyped field. A field left out stays `ABSENT`; null is kept where it means "back to the
    default" (`description`, `tags`, a connection field) and refused where the field is
    required (`name`, `connection`)."""
    fields = _Fields(_fields(value, root, PATCHABLE, read_only=READ_ONLY))
    body = fields.body
    name: str | Absent = ABSENT
    if "name" in body:
        if body["name"] is None:
            fields.errors.append(FieldError("name", "is required"))
        else:
            name = fields.string("name")
    description = fields.optional_string("description") if "description" in body else ABSENT
    tags = fields.tags() if "tags" in body else ABSENT
    connection: Connection | Absent = ABSENT
    if "connection" in body:
        if body["connection"] is None:
            fields.errors.append(FieldError("connection", "is required"))
        else:
            connection = fields.connection()
    fields.check()
    return SourcePatch(name=name, description=description, tags=tags, connection=connection)


def update_command(
    actor: Principal,
    source_id: UUID,
    patch: object,
    if_match: IfMatch | None = None,
    verify: bool = False,
    root: str = "body",
) -> UpdateSourceCommand:
    """The update that applies the merge patch in `patch` (a JSON value) to one source."""
    return UpdateSourceCommand(actor, source_id, decode_patch(patch, root), if_match, verify)


REQUEST_TYPES = (RegisterSourceRequest, ConnectionTestRequest)
"""The bodies the HTTP API declares as a handler's `data`, decoded by their own `decode`.

They are plain classes on purpose: Litestar hands msgspec the handler's signature, and msgspec
would build a Struct, dataclass or attrs class itself; for a type it does not know it asks the
app's `type_decoders`, which call `decode`."""


def event_filter(
    source_id: str | None, action: str | None, actor: str | None, since: str | None
) -> EventFilter:
    """The audit trail's filter from its query parameters (text as given, None: not given);
    `InvalidInput` naming each one that is not what it must be."""
    errors = []
    parsed_id = parsed_action = parsed_since = None
    if source_id is not None:
        try:
            parsed_id = UUID(source_id)
        except ValueError:
            errors.append(FieldError("source_id", "must be a UUID"))
    if action is not None:
        try:
            parsed_action = Action(action)
        except ValueError:
            known = ", ".join(a.value for a in Action)
            errors.append(FieldError("action", f"must be one of {known}"))
    if since is not None:
        try:
            parsed_since = datetime.fromisoformat(since)
            if parsed_since.tzinfo is None:
                raise ValueError("no offset")
        except ValueError:
            errors.append(FieldError("since", "must be an RFC 3339 timestamp with an offset"))
    if errors:
        raise InvalidInput(errors)
    return EventFilter(source_id=parsed_id, action=parsed_action, actor=actor, since=parsed_since)
