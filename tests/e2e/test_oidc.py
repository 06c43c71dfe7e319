"""A real `tdb serve` that trusts an OIDC issuer on loopback: RSA and EC tokens work as keys do,
every bad token is the 401 of an unknown key, and a key the issuer rotates in is picked up
without a restart (here when the JWKS has kept its time; the refetch of an unknown kid, at most
once per 10 s, is tests/integration/test_oidc_verifier.py's)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TdbServer
from tests.oidc_issuer import AUDIENCE, Issuer, new_key, running_issuer

# Seconds the server keeps the JWKS (TDB_OIDC_JWKS_TTL).
JWKS_TTL = 2


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as issuer:
        issuer.add_key("rsa-1", "RSA")
        issuer.add_key("ec-1", "EC")
        yield issuer


def _unauthorized(response: httpx.Response) -> tuple[int, str | None, dict[str, Any]]:
    body = response.json()
    body.pop("request_id", None)
    return response.status_code, response.headers.get("WWW-Authenticate"), body


def test_oidc_tokens_authenticate_fail_alike_and_follow_a_rotation(
    serve: Callable[..., TdbServer], issuer: Issuer
) -> None:
    server = serve(
        {
            "TDB_OIDC_ISSUER": issuer.url,
            "TDB_OIDC_AUDIENCE": AUDIENCE,
            "TDB_OIDC_JWKS_TTL": str(JWKS_TTL),
            "TDB_CONNECT_TIMEOUT": "2",
        }
    )
    admin = server.admin_token()
    assert admin is not None

    def get(token: str, path: str = "/v1/sources") -> httpx.Response:
        return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"})

    unknown = _unauthorized(get("tdbk_0123456789abcdef_" + "x" * 43))
    assert unknown[0] == 401
    # RSA and EC keys; the scopes are the tdb scope names the claim holds.
    assert get(issuer.token("rsa-1")).status_code == 200
    assert get(issuer.token("ec-1", scope=["sources:read", "openid"])).status_code == 200
    assert get(issuer.token("rsa-1", scope="openid")).status_code == 403
    assert issuer.requests[:2] == ["/.well-known/openid-configuration", "/jwks"]

    # The actor is oidc:<sub> in records and events.
    manager = issuer.token("rsa-1", sub="bob", scope="keys:manage sources:read audit:read")
    made = httpx.post(
        f"{server.url}/v1/keys",
        headers={"Authorization": f"Bearer {manager}"},
        json={"name": "from-oidc", "scopes": ["sources:read"]},
    )
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "oidc:bob"
    events = get(manager, "/v1/events?action=key.created").json()
    assert [e["actor"] for e in events][-1] == "oidc:bob"
    refused = httpx.post(
        f"{server.url}/v1/keys",
        headers={"Authorization": f"Bearer {manager}"},
        json={"name": "escalating", "scopes": ["sources:write"]},
    )
    assert refused.status_code == 403

    forged_key = new_key("RSA")
    bad_tokens = {
        "none": issuer.unsigned_token("rsa-1"),
        "HS256 with the public key": issuer.confused_token("rsa-1"),
        "another issuer": issuer.token("rsa-1", iss="http://127.0.0.1:9/other"),
        "another audience": issuer.token("rsa-1", aud="someone-else"),
        "expired": issuer.token("rsa-1", exp=int(time.time()) - 120),
        "not yet valid": issuer.token("rsa-1", nbf=int(time.time()) + 120),
        "no subject": issuer.token("rsa-1", sub=None),
        "unknown kid": issuer.token("rsa-9", key=forged_key),
        "forged signature": issuer.token("rsa-1", key=forged_key),
        "not a JWT": "eyJhbGciOiJSUzI1NiJ9.e30",
    }
    for cause, token in bad_tokens.items():
        assert _unauthorized(get(token)) == unknown, cause

    # The issuer rotates: a new key in, the old one out; the server follows once the JWKS it
    # holds has kept its time.
    issuer.add_key("rsa-2", "RSA")
    issuer.remove_key("rsa-1")
    rotated = issuer.token("rsa-2")
    deadline = time.monotonic() + JWKS_TTL + 15
    while get(rotated).status_code != 200:
        assert time.monotonic() < deadline, "the rotated key was never picked up"
        time.sleep(0.2)  # the JWKS's time to live, not a synchronisation
    assert issuer.jwks_fetches() >= 2
    assert issuer.requests.count("/.well-known/openid-configuration") == 1  # discovered once
    assert get(issuer.token("rsa-2")).status_code == 200
    assert _unauthorized(get(issuer.token("rsa-1", key=forged_key))) == unknown
    # API keys are untouched by all of it.
    assert get(admin).status_code == 200

    server.stop()
    log = server.stderr_path.read_text()
    assert "oidc:bob" in log
    assert "eyJ" not in log  # no token in a log line
