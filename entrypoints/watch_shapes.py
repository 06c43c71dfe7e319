"""The JSON shapes of watches, which every entrypoint reads and writes (the OpenAPI document
shows them too)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from application.watches import PutWatchCommand
from domain.errors import FieldError, InvalidInput
from domain.keys import Principal
from domain.watches import Watch
from entrypoints.presenters import Timestamp, api_time

WatchStatusOut = Literal["pending", "ok", "failing"]
CheckOutcomeOut = Literal["unchanged", "changed", "breaking", "failed"]


def put_watch_command(actor: Principal, source_id: UUID, body: object) -> PutWatchCommand:
    """The command a `PUT .../watch` body makes: an object with `interval_seconds` alone, an
    integer (its bounds are the use case's); `InvalidInput` names every field that breaks it."""
    if not isinstance(body, dict):
        raise InvalidInput.single("body", "must be a JSON object")
    errors = [FieldError(name, "is not a known field") for name in sorted(body.keys() - _FIELDS)]
    interval = body.get("interval_seconds")
    if interval is None:
        errors.append(FieldError("interval_seconds", "is required"))
    elif isinstance(interval, bool) or not isinstance(interval, int):
        errors.append(FieldError("interval_seconds", "must be an integer"))
    if errors or not isinstance(interval, int):
        raise InvalidInput(errors)
    return PutWatchCommand(actor, source_id, interval)


_FIELDS = frozenset({"interval_seconds"})


class WatchOut(msgspec.Struct):
    """A source's watch: its schedule and how its last check went."""

    source_id: UUID
    source_name: str
    interval_seconds: int
    status: Annotated[
        WatchStatusOut,
        Meta(description="pending until the first check; then ok or failing, as the last went"),
    ]
    next_check_at: Timestamp
    last_checked_at: Timestamp | None
    last_outcome: CheckOutcomeOut | None
    last_reason: Annotated[
        str | None, Meta(description="Why the last check failed (the schema's reasons)")
    ]
    consecutive_failures: int
    created_at: Timestamp
    created_by: str

    @classmethod
    def of(cls, watch: Watch) -> WatchOut:
        checked = watch.last_checked_at
        outcome = watch.last_outcome
        return cls(
            source_id=watch.source_id,
            source_name=watch.source_name,
            interval_seconds=watch.interval_seconds,
            status=watch.status.value,  # type: ignore[arg-type]
            next_check_at=api_time(watch.next_check_at),
            last_checked_at=None if checked is None else api_time(checked),
            last_outcome=None if outcome is None else outcome.value,  # type: ignore[arg-type]
            last_reason=watch.last_reason,
            consecutive_failures=watch.consecutive_failures,
            created_at=api_time(watch.created_at),
            created_by=watch.created_by,
        )
