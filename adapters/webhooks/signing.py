"""Standard Webhooks v1 signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
where the key is the base64-decoded part of a `whsec_` secret; several are space-separated."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from domain.webhooks import SECRET_PREFIX


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the message with one secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers, one signature per secret in the order given."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }
