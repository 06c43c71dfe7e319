"""What the log formatter masks before a traceback or a library's message is written."""

from __future__ import annotations

import pytest

from entrypoints.logs import redact

SECRET = "Sup3rS3cret-value"


@pytest.mark.parametrize(
    "text",
    [
        f"connection to postgresql://tdb:{SECRET}@db.internal:5432/tdb failed",
        f"dsn: host=db user=tdb password={SECRET} dbname=tdb",
        f"{{'host': 'db', 'password': '{SECRET}', 'table': 't'}}",
        f'{{"password": "{SECRET}"}}',
        f"PGPASSWORD={SECRET} psql",
        f"Authorization: Bearer tdbk_0123456789abcdef_{SECRET}",
    ],
)
def test_secrets_are_masked(text: str) -> None:
    masked = redact(text)
    assert SECRET not in masked
    assert "***" in masked


def test_the_rest_is_kept() -> None:
    text = "GET /v1/sources/1 answered 503: connection refused by 127.0.0.1:5432"
    assert redact(text) == text
    assert redact("key tdbk_0123456789abcdef_secret") == "key tdbk_0123456789abcdef_***"
