"""What the log formatter masks before a traceback or a library's message is written."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from entrypoints.logs import SECRET_PART_MIN, SecretMask, redact
from entrypoints.settings import Settings

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


@given(password=st.text(min_size=1, max_size=40), encoded=st.booleans())
def test_the_store_password_is_masked_however_a_library_quotes_it(
    password: str, encoded: bool
) -> None:
    # A text made of the mask itself could only be masked by quoting it.
    assume("*" not in password)
    spelled = quote(password, safe="") if encoded else password
    mask = SecretMask(Settings(database_url=f"postgresql://tdb:{spelled}@127.0.0.1/db").secrets())
    quoted = [
        f'unexpected spaces found in "{password}", use percent-encoded spaces (%20) instead\n',
        f"authentication failed with {password!r}",
        json.dumps({"value": password}),
        json.dumps({"value": password}, ensure_ascii=False),
    ]
    for text in quoted:
        assert password not in mask(text)
    for word in password.split():
        if len(word) >= SECRET_PART_MIN:
            assert word not in mask(f"near {word}: syntax error")


def test_a_mask_without_secrets_changes_nothing() -> None:
    assert SecretMask()("postgresql://u:pw@h/d") == "postgresql://u:pw@h/d"
    assert Settings(database_url="sqlite:///tdb.sqlite3").secrets() == ()
