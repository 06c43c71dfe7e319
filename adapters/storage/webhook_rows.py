"""Webhook endpoints, deliveries and attempts to and from the SQL stores' rows (both dialects)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from adapters.serialization import parse_timestamp, timestamp
from domain.webhooks import Attempt, AttemptError, Delivery, Endpoint, SigningSecret

ENDPOINT_COLUMNS = (
    "id, url, events, breaking_only, source_ids, tags, description, enabled, disabled_reason,"
    " secrets, created_at, created_by, updated_at"
)
DELIVERY_COLUMNS = (
    "id, endpoint_id, event_id, type, state, attempts, next_attempt_at, created_at, round_attempts"
)


def secrets_text(secrets: Sequence[SigningSecret]) -> str:
    return json.dumps(
        [
            {
                "ciphertext": s.ciphertext,
                "expires_at": None if s.expires_at is None else timestamp(s.expires_at),
            }
            for s in secrets
        ]
    )


def _secrets_of(value: Any) -> tuple[SigningSecret, ...]:
    items = json.loads(value) if isinstance(value, str | bytes) else value
    return tuple(
        SigningSecret(
            item["ciphertext"],
            None if item["expires_at"] is None else parse_timestamp(item["expires_at"]),
        )
        for item in items
    )


def _json_list(value: Any) -> list[Any]:
    return list(json.loads(value)) if isinstance(value, str) else list(value)


def endpoint_of(row: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        id=UUID(str(row["id"])),
        url=row["url"],
        events=_json_list(row["events"]),
        breaking_only=bool(row["breaking_only"]),
        source_ids=[UUID(str(v)) for v in _json_list(row["source_ids"])],
        tags=_json_list(row["tags"]),
        description=row["description"],
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        secrets=_secrets_of(row["secrets"]),
        created_at=parse_timestamp(row["created_at"]),
        created_by=row["created_by"],
        updated_at=parse_timestamp(row["updated_at"]),
    )


def attempt_json(attempt: Attempt) -> str:
    return json.dumps(
        {
            "at": timestamp(attempt.at),
            "status_code": attempt.status_code,
            "error": None if attempt.error is None else attempt.error.value,
            "duration_ms": attempt.duration_ms,
        }
    )


def _attempt_of(item: Mapping[str, Any]) -> Attempt:
    return Attempt(
        at=parse_timestamp(item["at"]),
        status_code=item["status_code"],
        error=None if item["error"] is None else AttemptError(item["error"]),
        duration_ms=item["duration_ms"],
    )


def delivery_of(row: Mapping[str, Any]) -> Delivery:
    next_at = row["next_attempt_at"]
    return Delivery(
        id=UUID(str(row["id"])),
        endpoint_id=UUID(str(row["endpoint_id"])),
        event_id=None if row["event_id"] is None else UUID(str(row["event_id"])),
        type=row["type"],
        state=row["state"],
        attempts=[_attempt_of(a) for a in _json_list(row["attempts"])],
        next_attempt_at=None if next_at is None else parse_timestamp(next_at),
        created_at=parse_timestamp(row["created_at"]),
        round_attempts=row["round_attempts"],
    )
