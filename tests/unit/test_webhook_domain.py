"""Webhook rules of the domain: URLs, retries; and our signatures as the reference
`standardwebhooks` package reads them."""

from __future__ import annotations

import base64
import random
import time
import uuid
from datetime import timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from adapters.webhooks.signing import signed_headers
from adapters.webhooks.transport import retry_after
from application.webhooks import new_secret
from domain.webhooks import (
    RETRY_AFTER_MAX,
    AttemptError,
    AttemptResult,
    RetryPolicy,
    parse_schedule,
    url_errors,
)
from tests.builders import T0


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/tdb",
        "https://hooks.example.com:8443/tdb?team=data",
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://[::1]:9000/hook",
    ],
)
def test_https_anywhere_and_http_to_loopback_are_valid(url: str) -> None:
    assert url_errors(url, allow_http=False) == []


@pytest.mark.parametrize(
    "url",
    [
        "",
        "hooks.example.com/tdb",
        "ftp://hooks.example.com/x",
        "http://hooks.example.com/x",
        "http://10.0.0.1/x",
        "https://user:secret@hooks.example.com/x",
        "https://hooks.example.com/x#frag",
        "https://hooks example.com/x",
        "https://hooks.example.com:0/x",
        "https://hooks.example.com:99999/x",
        "https://0.0.0.0/x",
        "https://h\u00e9.example/x",
        "https://example.com/" + "x" * 2000,
    ],
)
def test_other_urls_are_refused_on_url(url: str) -> None:
    assert [e.field for e in url_errors(url, allow_http=False)] == ["url"]


def test_http_anywhere_when_the_operator_allows_it() -> None:
    assert url_errors("http://hooks.example.com/x", allow_http=True) == []


def test_the_schedule_is_followed_with_at_most_ten_percent_jitter() -> None:
    policy = RetryPolicy(parse_schedule("5,300,1800"))
    failed = AttemptResult(500, AttemptError.STATUS, 1.0)
    rng = random.Random(7)
    for attempts, delay in ((1, 5), (2, 300), (3, 1800)):
        due = policy.next_attempt(T0, attempts, failed, rng)
        assert due is not None
        assert timedelta(seconds=delay) <= due - T0 <= timedelta(seconds=delay * 1.1)
    assert policy.next_attempt(T0, 4, failed, rng) is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_kept_on_429_and_503_up_to_an_hour(status: int) -> None:
    policy = RetryPolicy((5, 5))
    asked = AttemptResult(status, AttemptError.STATUS, 1.0, retry_after=120)
    assert policy.next_attempt(T0, 1, asked) == T0 + timedelta(seconds=120)
    greedy = AttemptResult(status, AttemptError.STATUS, 1.0, retry_after=10**7)
    assert policy.next_attempt(T0, 1, greedy) == T0 + timedelta(seconds=RETRY_AFTER_MAX)
    ignored = AttemptResult(500, AttemptError.STATUS, 1.0, retry_after=120)
    assert policy.next_attempt(T0, 1, ignored) != T0 + timedelta(seconds=120)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("30") == 30
    assert retry_after("Wed, 21 Oct 2099 07:28:00 GMT") is not None
    assert retry_after("soon") is None
    assert retry_after(None) is None


@given(text=st.text(max_size=500), keys=st.integers(min_value=1, max_value=3))
def test_every_signature_verifies_with_the_reference_implementation(text: str, keys: int) -> None:
    body = text.encode("utf-8", "surrogatepass")
    assume(_utf8(body))
    secrets = [new_secret() for _ in range(keys)]
    message_id = str(uuid.uuid4())
    headers = signed_headers(secrets, message_id, int(time.time()), body)
    for secret in secrets:
        _verify(secret, body, headers)
    with pytest.raises(WebhookVerificationError):
        _verify(new_secret(), body, headers)


def _utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _verify(secret: str, body: bytes, headers: dict[str, str]) -> None:
    # json_parse off: the reference checks any UTF-8 body, not only JSON ones.
    Webhook(secret).verify(body, headers, json_parse=False)


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != new_secret()
